package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bootforge/internal/boot"
	"bootforge/internal/check"
	"bootforge/internal/config"
)

// The checklist's https item fails on a certificate that serve refuses (a
// key of another certificate) and on one that HTTPS clients refuse
// (expired, not valid yet), and says what to do; it makes no
// self-signed certificate itself, as serve would.
func TestCheckHTTPSCert(t *testing.T) {
	now := time.Now()
	dir := t.TempDir()
	goodCert, goodKey := writeCert(t, dir, "good", now.Add(-time.Hour), now.Add(90*24*time.Hour))
	_, otherKey := writeCert(t, dir, "other", now.Add(-time.Hour), now.Add(90*24*time.Hour))
	oldCert, oldKey := writeCert(t, dir, "old", now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	newCert, newKey := writeCert(t, dir, "new", now.Add(24*time.Hour), now.Add(48*time.Hour))

	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Root = t.TempDir()
	// Nothing to ask a running server: only the files are checked.
	cfg.TFTP.Enabled, cfg.HTTP.Enabled, cfg.API.Enabled = false, false, false
	cfg.HTTP.TLS.Enabled = false
	if it := httpsItem(cfg); it.Status != "skip" {
		t.Errorf("TLS off: %+v", it)
	}
	cfg.HTTP.TLS.Enabled = true
	for _, tt := range []struct {
		name, cert, key string
		status          string
		want            []string
	}{
		{"self-signed, not made yet", "", "", "pass", []string{"self-signed", filepath.Join(cfg.DataDir, "tls")}},
		{"good", goodCert, goodKey, "pass", []string{goodCert, "CN=good", "valid until"}},
		{"key of another certificate", goodCert, otherKey, "fail", []string{"private key does not match", "serve refuses", "http.tls.key"}},
		{"missing key", goodCert, filepath.Join(dir, "none.pem"), "fail", []string{"none.pem", "serve refuses"}},
		{"expired", oldCert, oldKey, "fail", []string{oldCert, "expired on", "renew"}},
		{"not valid yet", newCert, newKey, "fail", []string{newCert, "not valid before", "clock"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			c.HTTP.TLS.Cert, c.HTTP.TLS.Key = tt.cert, tt.key
			it := httpsItem(c)
			if it.Status != tt.status {
				t.Errorf("%+v, want %s", it, tt.status)
			}
			for _, w := range tt.want {
				if !strings.Contains(it.Detail, w) {
					t.Errorf("%q lacks %q", it.Detail, w)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "tls")); err == nil {
		t.Error("the check made a self-signed certificate")
	}
	// The self-signed certificate serve made and keeps in data_dir/tls.
	tlsDir := filepath.Join(cfg.DataDir, "tls")
	os.MkdirAll(tlsDir, 0o700)
	os.Rename(oldCert, filepath.Join(tlsDir, "cert.pem"))
	os.Rename(oldKey, filepath.Join(tlsDir, "key.pem"))
	if it := httpsItem(cfg); it.Status != "fail" || !strings.Contains(it.Detail, "expired on") {
		t.Errorf("expired self-signed certificate: %+v", it)
	}
}

// httpsItem is the https item of the checklist run with cfg.
func httpsItem(cfg config.Config) check.Item {
	for _, it := range runChecklist(cfg, "", "02:bf:00:00:00:01", "", "", boot.FirmwareBIOS) {
		if it.Name == "https" {
			return it
		}
	}
	return check.Item{Status: "missing"}
}

// writeCert writes a self-signed certificate valid from notBefore to
// notAfter, and its key, into dir as NAME.pem and NAME-key.pem.
func writeCert(t *testing.T, dir, name string, notBefore, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: notBefore, NotAfter: notAfter, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
