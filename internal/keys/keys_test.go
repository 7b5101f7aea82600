package keys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestInitSignVerify(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if err := Init(dir, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("keys dir: %v %v", st.Mode(), err)
	}
	for _, n := range []string{CAKey, SigningKey} {
		st, err := os.Stat(filepath.Join(dir, n))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", n, st.Mode(), err)
		}
	}
	s, err := LoadSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := LoadVerifier(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("#!ipxe\necho hello\n")
	sig, err := s.Sign(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(data, sig); err != nil {
		t.Fatalf("round trip: %v", err)
	}
	if err := v.Verify([]byte("#!ipxe\necho hellO\n"), sig); err == nil {
		t.Error("tampered data verified")
	}
	if err := v.Verify(data, sig[:len(sig)-3]); err == nil {
		t.Error("truncated signature verified")
	}
	// Another CA's signature does not verify.
	other := filepath.Join(t.TempDir(), "other")
	if err := Init(other, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	ov, _ := LoadVerifier(other)
	if err := ov.Verify(data, sig); err == nil {
		t.Error("signature verified against another CA")
	}
	info, err := Show(dir)
	if err != nil || len(info) != 2 || info[1].KeyMode != "0600" || len(info[0].SHA256) != 64 {
		t.Errorf("Show: %+v %v", info, err)
	}
}

func TestInitRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	if err := Init(dir, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, CACert))
	if err := Init(dir, InitOptions{}); !errors.Is(err, ErrExist) {
		t.Fatalf("second init: %v, want ErrExist", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, CACert))
	if string(before) != string(after) {
		t.Error("refused init changed ca.pem")
	}
	if err := Init(dir, InitOptions{Force: true}); err != nil {
		t.Fatalf("--force: %v", err)
	}
	forced, _ := os.ReadFile(filepath.Join(dir, CACert))
	if string(before) == string(forced) {
		t.Error("--force kept the old CA")
	}
}

func TestInitBringYourOwnCA(t *testing.T) {
	tmp := t.TempDir()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "Operator CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(k)
	certF, keyF := filepath.Join(tmp, "op.pem"), filepath.Join(tmp, "op.key")
	os.WriteFile(certF, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyF, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)

	dir := filepath.Join(tmp, "keys")
	if err := Init(dir, InitOptions{CACertFile: certF, CAKeyFile: keyF}); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Certificate().Issuer.CommonName != "Operator CA" || !s.Certificate().NotAfter.Before(tmpl.NotAfter.Add(time.Second)) {
		t.Errorf("signing cert issuer %v, not after %v", s.Certificate().Issuer, s.Certificate().NotAfter)
	}
	v, _ := LoadVerifier(dir)
	sig, _ := s.Sign([]byte("x"))
	if err := v.Verify([]byte("x"), sig); err != nil {
		t.Error(err)
	}
	// A key that is not the CA's is refused.
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2der, _ := x509.MarshalECPrivateKey(k2)
	os.WriteFile(keyF, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: k2der}), 0o600)
	if err := Init(filepath.Join(tmp, "k2"), InitOptions{CACertFile: certF, CAKeyFile: keyF}); err == nil {
		t.Error("mismatched CA key accepted")
	}
}

func TestVerifyNeedsCodeSigning(t *testing.T) {
	dir := t.TempDir()
	if err := Init(dir, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	caCert, _, _ := readCert(filepath.Join(dir, CACert))
	caKey, _ := readKey(filepath.Join(dir, CAKey))
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "web"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, caCert, k.Public(), caKey)
	c, _ := x509.ParseCertificate(der)
	s := &Signer{cert: c, key: k}
	sig, err := s.Sign([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := LoadVerifier(dir)
	if err := v.Verify([]byte("x"), sig); err == nil {
		t.Error("a serverAuth-only signer verified")
	}
}

// keys show before keys init says what makes the keys, as serve and
// image build do: it said only "open .../ca.pem: no such file or
// directory".
func TestShowBeforeInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	_, err := Show(dir)
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "bootforge keys init makes them") {
		t.Fatalf("Show of no keys: %v", err)
	}
}

// Digest tells keys replaced under a reader from keys left alone: keys
// init --force replaces the X.509 keys and keeps the OpenPGP key.
func TestDigest(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	none := Digest(dir, X509Files)
	if err := Init(dir, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	first, pgp := Digest(dir, X509Files), Digest(dir, OpenPGPFiles)
	if first == "" || first == none || Digest(dir, X509Files) != first || pgp == "" || pgp == first {
		t.Fatalf("digests: none %q, after init %q, again %q, OpenPGP %q", none, first, Digest(dir, X509Files), pgp)
	}
	if err := Init(dir, InitOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if d := Digest(dir, X509Files); d == "" || d == first {
		t.Errorf("keys init --force: digest %q, before %q", d, first)
	}
	if d := Digest(dir, OpenPGPFiles); d != pgp {
		t.Errorf("keys init --force kept the OpenPGP key, but its digest changed: %q, before %q", d, pgp)
	}
}
