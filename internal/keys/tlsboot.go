package keys

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"bootforge/internal/durable"
)

// The boot TLS certificate, kept in the TLS directory of data_dir.
const (
	BootCert = "boot-rsa.pem"
	BootKey  = "boot-rsa.key"
)

// bootCertLife is how long an issued boot TLS certificate is valid;
// bootCertRenew how long before its end it is issued anew.
const (
	bootCertLife  = 825 * 24 * time.Hour
	bootCertRenew = 30 * 24 * time.Hour
)

// BootTLSCert returns the certificate of the boot TLS listener: an RSA
// key and a serverAuth certificate issued by the signing CA in keysDir,
// whose SANs are addrs and names (the addresses clients are sent to).
// UEFI HTTPS boot (EDK2) accepts only RSA certificates and checks the
// URL's host against them.
//
// The certificate and its key (mode 0600) are kept in dir and used again
// while they still fit: issued by the current CA, RSA, valid for more than
// 30 days, and covering every address and name asked for. Otherwise (or
// when missing) they are issued anew; issued reports that.
func BootTLSCert(keysDir, dir string, addrs []net.IP, names []string, now time.Time) (cert tls.Certificate, issued bool, err error) {
	ca, _, err := readCert(filepath.Join(keysDir, CACert))
	if err != nil {
		return tls.Certificate{}, false, initHint(err)
	}
	certFile, keyFile := filepath.Join(dir, BootCert), filepath.Join(dir, BootKey)
	if c, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil && bootCertFits(c, ca, addrs, names, now) {
		return c, false, nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) && !pairTorn(certFile, keyFile) {
		return tls.Certificate{}, false, errf("%s: %v (remove it to issue a new one)", certFile, err)
	}
	caKey, err := readKey(filepath.Join(keysDir, CAKey))
	if err != nil {
		return tls.Certificate{}, false, initHint(err)
	}
	if !publicEqual(ca.PublicKey, caKey.Public()) {
		return tls.Certificate{}, false, errf("%s does not hold the key of %s", CAKey, CACert)
	}
	k, err := rsa.GenerateKey(rand.Reader, RSABits)
	if err != nil {
		return tls.Certificate{}, false, err
	}
	notAfter := now.Add(bootCertLife)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "bootforge boot TLS " + host, Organization: []string{"bootforge"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		// keyEncipherment: RSA key exchange encrypts the premaster secret
		// to this key, which is what the firmware's suites do.
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    names,
		IPAddresses: addrs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, k.Public(), caKey)
	if err != nil {
		return tls.Certificate{}, false, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return tls.Certificate{}, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, false, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	// The chain: the leaf, then the CA, so a client that was given only
	// the CA's fingerprint can still see it.
	certPEM := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})...)
	if err := durable.WriteFile(filepath.Join(dir, BootKey), keyPEM, 0o600); err != nil {
		return tls.Certificate{}, false, err
	}
	if err := durable.WriteFile(filepath.Join(dir, BootCert), certPEM, 0o644); err != nil {
		return tls.Certificate{}, false, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, false, fmt.Errorf("keys: the boot TLS certificate just issued: %w", err)
	}
	return c, true, nil
}

// pairTorn reports whether the kept certificate and key are each whole
// but of two issues: the new key is written before the new certificate,
// so an issue killed between the two leaves the old certificate beside
// the new key. Issuing anew repairs that; a file that does not parse is
// damaged in some other way, and is left to the operator.
func pairTorn(certFile, keyFile string) bool {
	c, _, err := readCert(certFile)
	if err != nil {
		return false
	}
	k, err := readKey(keyFile)
	return err == nil && !publicEqual(c.PublicKey, k.Public())
}

// bootCertFits reports whether a kept boot certificate can be used again.
func bootCertFits(c tls.Certificate, ca *x509.Certificate, addrs []net.IP, names []string, now time.Time) bool {
	if len(c.Certificate) == 0 {
		return false
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return false
	}
	if _, ok := leaf.PublicKey.(*rsa.PublicKey); !ok {
		return false
	}
	if leaf.CheckSignatureFrom(ca) != nil || now.Before(leaf.NotBefore) || now.Add(bootCertRenew).After(leaf.NotAfter) {
		return false
	}
	for _, a := range addrs {
		if !slices.ContainsFunc(leaf.IPAddresses, a.Equal) {
			return false
		}
	}
	for _, n := range names {
		if !slices.Contains(leaf.DNSNames, n) {
			return false
		}
	}
	return true
}
