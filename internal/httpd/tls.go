package httpd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"bootforge/internal/durable"
)

// LoadOrCreateCert returns the certificate at certFile/keyFile. When both
// are empty it uses a self-signed certificate kept in dir, making it on
// first use, so that its fingerprint stays the same across restarts and
// clients can pin it.
func LoadOrCreateCert(certFile, keyFile, dir string) (tls.Certificate, error) {
	certFile, keyFile, selfSigned := CertFiles(certFile, keyFile, dir)
	if selfSigned {
		if _, err := os.Stat(certFile); errors.Is(err, fs.ErrNotExist) {
			if err := writeSelfSigned(certFile, keyFile); err != nil {
				return tls.Certificate{}, fmt.Errorf("making a self-signed certificate in %s: %w", dir, err)
			}
		}
		// Ours to keep private, whatever an older version or a copy left.
		if err := tighten(dir, 0o700); err != nil {
			return tls.Certificate{}, err
		}
		if err := tighten(keyFile, 0o600); err != nil {
			return tls.Certificate{}, err
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("loading TLS certificate: %w", err)
	}
	return cert, nil
}

// CertFiles names the files LoadOrCreateCert reads: certFile and keyFile,
// or, when both are empty, the self-signed pair kept in dir.
func CertFiles(certFile, keyFile, dir string) (cert, key string, selfSigned bool) {
	if certFile == "" && keyFile == "" {
		return filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), true
	}
	return certFile, keyFile, false
}

// Keypair is a listener's certificate, which a reload can replace: the
// listener takes it through GetCertificate, so a renewed certificate
// (certbot, then SIGHUP) serves the next handshakes without a restart.
type Keypair struct {
	certFile, keyFile, dir string
	cur                    atomic.Pointer[tls.Certificate]
}

// LoadKeypair loads the certificate as LoadOrCreateCert does.
func LoadKeypair(certFile, keyFile, dir string) (*Keypair, error) {
	k := &Keypair{certFile: certFile, keyFile: keyFile, dir: dir}
	cert, err := LoadOrCreateCert(certFile, keyFile, dir)
	if err != nil {
		return nil, err
	}
	k.cur.Store(&cert)
	return k, nil
}

// Reload reads the files again. It reports whether the certificate
// changed; on an error the current one stays in service.
func (k *Keypair) Reload() (changed bool, err error) {
	cert, err := LoadOrCreateCert(k.certFile, k.keyFile, k.dir)
	if err != nil {
		return false, err
	}
	if Fingerprint(cert) == Fingerprint(*k.cur.Load()) {
		return false, nil
	}
	k.cur.Store(&cert)
	return true, nil
}

// Certificate is the certificate in service.
func (k *Keypair) Certificate() tls.Certificate { return *k.cur.Load() }

// GetCertificate is tls.Config's: the certificate in service.
func (k *Keypair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return k.cur.Load(), nil
}

// Fingerprint is the SHA-256 of the leaf certificate, as openssl x509
// -fingerprint -sha256 prints it.
func Fingerprint(cert tls.Certificate) string {
	if len(cert.Certificate) == 0 {
		return ""
	}
	sum := sha256.Sum256(cert.Certificate[0])
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	parts := make([]string, 0, len(sum))
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

func writeSelfSigned(certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "bootforge " + host, Organization: []string{"bootforge"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so that curl --cacert accepts it as its own anchor
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if host != "" && host != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ipn.IP)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return err
	}
	if err := durable.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return durable.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// tighten sets p's mode to perm if others or the group can read it.
func tighten(p string, perm os.FileMode) error {
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm()&0o077 == 0 {
		return nil // a missing key fails at load, with its own message
	}
	return os.Chmod(p, perm)
}
