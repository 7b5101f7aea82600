package keys

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The layout OVMF reads from etc/edk2/https/cacerts (UEFI 2.10, 32.4.1):
// EFI_SIGNATURE_LIST {SignatureType GUID, ListSize, HeaderSize,
// SignatureSize uint32}, no header, then one EFI_SIGNATURE_DATA {Owner
// GUID, DER certificate}. GUIDs are stored with their first three fields
// little-endian.
func TestEDK2CACertsLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if err := Init(dir, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	ca, _, err := readCert(filepath.Join(dir, CACert))
	if err != nil {
		t.Fatal(err)
	}
	b, err := EDK2CACerts(dir)
	if err != nil {
		t.Fatal(err)
	}
	der := ca.Raw
	if len(b) != 28+16+len(der) {
		t.Fatalf("length %d, want 28+16+%d", len(b), len(der))
	}
	// a5c059a1-94e4-4aa7-87b5-ab155c2bf072, mixed-endian.
	x509GUID := []byte{0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a, 0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72}
	if !bytes.Equal(b[0:16], x509GUID) {
		t.Errorf("SignatureType % x, want EFI_CERT_X509_GUID % x", b[0:16], x509GUID)
	}
	le := binary.LittleEndian
	if got := le.Uint32(b[16:20]); got != uint32(28+16+len(der)) {
		t.Errorf("SignatureListSize %d, want %d", got, 28+16+len(der))
	}
	if got := le.Uint32(b[20:24]); got != 0 {
		t.Errorf("SignatureHeaderSize %d, want 0", got)
	}
	if got := le.Uint32(b[24:28]); got != uint32(16+len(der)) {
		t.Errorf("SignatureSize %d, want %d", got, 16+len(der))
	}
	// b35fc275-70a0-4409-afed-211413bd9636, mixed-endian.
	owner := []byte{0x75, 0xc2, 0x5f, 0xb3, 0xa0, 0x70, 0x09, 0x44, 0xaf, 0xed, 0x21, 0x14, 0x13, 0xbd, 0x96, 0x36}
	if !bytes.Equal(b[28:44], owner) {
		t.Errorf("SignatureOwner % x, want % x", b[28:44], owner)
	}
	if !bytes.Equal(b[44:], der) {
		t.Error("SignatureData is not the CA's DER certificate")
	}
	if _, err := EDK2CACerts(t.TempDir()); err == nil {
		t.Error("no CA: no error")
	}
}

func TestBootTLSCert(t *testing.T) {
	keysDir := filepath.Join(t.TempDir(), "keys")
	if err := Init(keysDir, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "tls")
	now := time.Now()
	addrs := []net.IP{net.ParseIP("192.0.2.1"), net.ParseIP("2001:db8::1")}
	c, issued, err := BootTLSCert(keysDir, dir, addrs, []string{"boot.example"}, now)
	if err != nil || !issued {
		t.Fatalf("first: issued %v, %v", issued, err)
	}
	st, err := os.Stat(filepath.Join(dir, BootKey))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := leaf.PublicKey.(*rsa.PublicKey); !ok {
		t.Errorf("key is %T, want RSA (EDK2 takes nothing else)", leaf.PublicKey)
	}
	if leaf.KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
		t.Error("no keyEncipherment: RSA key exchange would be refused")
	}
	roots := x509.NewCertPool()
	ca, _, _ := readCert(filepath.Join(keysDir, CACert))
	roots.AddCert(ca)
	for _, host := range []string{"192.0.2.1", "2001:db8::1", "boot.example"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "198.51.100.1"}); err == nil {
		t.Error("verifies for an address it was not issued for")
	}

	// Kept while it fits: same addresses, or fewer.
	c2, issued, err := BootTLSCert(keysDir, dir, addrs[:1], nil, now)
	if err != nil || issued || !bytes.Equal(c2.Certificate[0], c.Certificate[0]) {
		t.Errorf("second start: issued %v, %v, same %v", issued, err, bytes.Equal(c2.Certificate[0], c.Certificate[0]))
	}
	// A new address, a new CA, a near end, or a missing file: issued anew.
	if _, issued, _ := BootTLSCert(keysDir, dir, append(addrs, net.ParseIP("198.51.100.7")), nil, now); !issued {
		t.Error("a new address did not issue a new certificate")
	}
	if _, issued, _ := BootTLSCert(keysDir, dir, addrs, nil, now.Add(bootCertLife-bootCertRenew/2)); !issued {
		t.Error("a certificate near its end was kept")
	}
	if err := Init(keysDir, InitOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	c3, issued, err := BootTLSCert(keysDir, dir, addrs, nil, now)
	if err != nil || !issued {
		t.Errorf("new CA: issued %v, %v", issued, err)
	}
	ca3, _, _ := readCert(filepath.Join(keysDir, CACert))
	leaf3, _ := x509.ParseCertificate(c3.Certificate[0])
	if leaf3.CheckSignatureFrom(ca3) != nil {
		t.Error("not issued by the new CA")
	}
	os.Remove(filepath.Join(dir, BootCert))
	if _, issued, err := BootTLSCert(keysDir, dir, addrs, nil, now); err != nil || !issued {
		t.Errorf("missing certificate: issued %v, %v", issued, err)
	}
	// An issue killed between its key and its certificate leaves the new
	// key beside the old certificate: issued anew, not a refusal to start.
	old, err := os.ReadFile(filepath.Join(dir, BootCert))
	if err != nil {
		t.Fatal(err)
	}
	if _, issued, err := BootTLSCert(keysDir, dir, append(addrs, net.ParseIP("198.51.100.8")), nil, now); err != nil || !issued {
		t.Fatalf("new address: issued %v, %v", issued, err)
	}
	if err := os.WriteFile(filepath.Join(dir, BootCert), old, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, issued, err := BootTLSCert(keysDir, dir, addrs, nil, now); err != nil || !issued {
		t.Errorf("the old certificate beside a new key: issued %v, %v; want issued anew", issued, err)
	}
	// Without a CA there is nothing to issue it with.
	if _, _, err := BootTLSCert(t.TempDir(), t.TempDir(), addrs, nil, now); err == nil {
		t.Error("no CA: no error")
	}
}

// The errors carry their one piece of advice: keys init for a CA that is
// not there, "remove it" for a damaged boot certificate, never both.
func TestBootTLSCertAdvice(t *testing.T) {
	keysDir, dir := filepath.Join(t.TempDir(), "keys"), t.TempDir()
	addrs := []net.IP{net.ParseIP("192.0.2.1")}
	for _, f := range []func() error{
		func() error { _, _, err := BootTLSCert(keysDir, dir, addrs, nil, time.Now()); return err },
		func() error { _, err := EDK2CACerts(keysDir); return err },
	} {
		if err := f(); err == nil || !strings.Contains(err.Error(), "keys init makes them") {
			t.Errorf("no CA: %v, want the keys init advice", err)
		}
	}
	if err := Init(keysDir, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, BootCert), []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, BootKey), []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := BootTLSCert(keysDir, dir, addrs, nil, time.Now())
	if err == nil || !strings.Contains(err.Error(), "remove it") || strings.Contains(err.Error(), "keys init") {
		t.Errorf("damaged boot certificate: %v, want only the remove-it advice", err)
	}
}
