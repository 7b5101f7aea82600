package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bootforge/internal/config"
	"bootforge/internal/keys"
)

// The checklist's signing item fails on a signer that serve would refuse:
// here one issued by another data dir's CA.
func TestCheckSigning(t *testing.T) {
	var cfg config.Config
	cfg.DataDir = t.TempDir()
	if it := checkSigning(cfg); it.Status != "skip" {
		t.Errorf("signing off: %+v", it)
	}
	cfg.Signing.Enabled = true
	if it := checkSigning(cfg); it.Status != "fail" || !strings.Contains(it.Detail, "signing.pem") {
		t.Errorf("no keys: %+v", it)
	}
	dir := cfg.KeysDir()
	if err := keys.Init(dir, keys.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	if it := checkSigning(cfg); it.Status != "pass" || !strings.Contains(it.Detail, "CN=bootforge code signing") {
		t.Errorf("good keys: %+v", it)
	}
	other := t.TempDir()
	if err := keys.Init(other, keys.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{keys.SigningCert, keys.SigningKey} {
		b, err := os.ReadFile(filepath.Join(other, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	want := filepath.Join(dir, keys.SigningCert) + " was not issued by " + filepath.Join(dir, keys.CACert)
	if it := checkSigning(cfg); it.Status != "fail" || !strings.Contains(it.Detail, want) {
		t.Errorf("another CA's signer: %+v\nwant %q", it, want)
	}
}
