package httpd

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
)

// A Keypair serves the files' certificate until Reload finds another
// there; a file that cannot be read leaves the one in service.
func TestKeypairReload(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := writeSelfSigned(cert, key); err != nil {
		t.Fatal(err)
	}
	kp, err := LoadKeypair(cert, key, dir)
	if err != nil {
		t.Fatal(err)
	}
	first := Fingerprint(kp.Certificate())
	if changed, err := kp.Reload(); changed || err != nil {
		t.Fatalf("reload of the same files: changed %v, %v", changed, err)
	}
	if err := writeSelfSigned(cert, key); err != nil {
		t.Fatal(err)
	}
	if changed, err := kp.Reload(); !changed || err != nil {
		t.Fatalf("reload of a new certificate: changed %v, %v", changed, err)
	}
	got, _ := kp.GetCertificate(nil)
	second := Fingerprint(*got)
	if second == first {
		t.Fatal("GetCertificate still gives the first certificate")
	}
	if err := os.WriteFile(cert, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if changed, err := kp.Reload(); changed || err == nil {
		t.Fatalf("reload of a broken file: changed %v, %v", changed, err)
	}
	if Fingerprint(kp.Certificate()) != second {
		t.Error("a broken file replaced the certificate in service")
	}
}

// TestSuiteName: the access log's tls_suite is crypto/tls's name of the
// suite, for every suite it knows and for one it does not.
func TestSuiteName(t *testing.T) {
	suites := append(tls.CipherSuites(), tls.InsecureCipherSuites()...)
	for _, id := range []uint16{0x0000, 0xfefe} {
		suites = append(suites, &tls.CipherSuite{ID: id})
	}
	for _, s := range suites {
		if got, want := suiteName(s.ID), tls.CipherSuiteName(s.ID); got != want {
			t.Errorf("suite %#04x: %q, want %q", s.ID, got, want)
		}
	}
}
