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
	otherCASigner(t, dir)
	want := filepath.Join(dir, keys.SigningCert) + " was not issued by " + filepath.Join(dir, keys.CACert)
	if it := checkSigning(cfg); it.Status != "fail" || !strings.Contains(it.Detail, want) {
		t.Errorf("another CA's signer: %+v\nwant %q", it, want)
	}
}

// otherCASigner puts into dir a signer issued by another CA, of the same
// name: one that serve refuses.
func otherCASigner(t *testing.T, dir string) {
	t.Helper()
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
}

// keys init writes the GRUB OpenPGP key with the X.509 set, all or
// nothing: a failure on it leaves no X.509 keys behind, so the retry is
// not refused with "keys exist".
func TestKeysInitAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bootforge.yaml")
	if err := os.WriteFile(cfg, []byte("root: "+filepath.Join(dir, "root")+"\ndata_dir: "+filepath.Join(dir, "data")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	kd := filepath.Join(dir, "data", "keys")
	// A directory where openpgp.pub goes: writing it fails.
	blocker := filepath.Join(kd, keys.OpenPGPPublicFile)
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	run := func() error {
		root := newRootCmd(&globalFlags{})
		var out strings.Builder
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs([]string{"--config", cfg, "keys", "init"})
		return root.Execute()
	}
	if err := run(); err == nil {
		t.Fatal("keys init with openpgp.pub unwritable succeeded")
	}
	for _, n := range []string{keys.CACert, keys.CAKey, keys.SigningCert, keys.SigningKey, keys.OpenPGPPrivateFile} {
		if _, err := os.Stat(filepath.Join(kd, n)); err == nil {
			t.Errorf("a failed keys init left %s", n)
		}
	}
	if err := os.RemoveAll(blocker); err != nil {
		t.Fatal(err)
	}
	if err := run(); err != nil {
		t.Fatalf("retry: %v", err)
	}
	for _, n := range []string{keys.CACert, keys.CAKey, keys.SigningCert, keys.SigningKey, keys.OpenPGPPrivateFile, keys.OpenPGPPublicFile} {
		if _, err := os.Stat(filepath.Join(kd, n)); err != nil {
			t.Errorf("after the retry: %v", err)
		}
	}
}

// serve's error for signing keys it cannot use gives the advice once:
// the keys package's (keys init --force for a refused signer), not that
// and serve's own "keys init makes them" too; missing keys get the latter.
func TestServeSignerAdviceOnce(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bootforge.yaml")
	data := filepath.Join(dir, "data")
	// The boot log is on: its recorder and retention run when the signer
	// is refused, and stop before the store closes (run with -race).
	if err := os.WriteFile(cfg, []byte("root: "+filepath.Join(dir, "root")+"\ndata_dir: "+data+
		"\nsigning: {enabled: true}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "root"), 0o755); err != nil {
		t.Fatal(err)
	}
	serve := func() string {
		t.Helper()
		root := newRootCmd(&globalFlags{})
		var out strings.Builder
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs([]string{"--config", cfg, "serve"})
		err := root.Execute()
		if err == nil {
			t.Fatal("serve with unusable signing keys started")
		}
		return err.Error()
	}
	if msg := serve(); strings.Count(msg, "keys init") != 1 || !strings.Contains(msg, "keys init makes them") {
		t.Errorf("no keys: want the keys init advice once:\n%s", msg)
	}
	kd := filepath.Join(data, "keys")
	if err := keys.Init(kd, keys.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	otherCASigner(t, kd)
	if msg := serve(); strings.Count(msg, "keys init") != 1 || !strings.Contains(msg, "keys init --force") || !strings.Contains(msg, "was not issued by") {
		t.Errorf("another CA's signer: want why and the keys init --force advice once:\n%s", msg)
	}
}

// keys init --force, which replaces keys, says that a running serve goes
// on with the old ones until it is restarted: serve reads the keys at
// start only, and the operator took the new keys to be in use. A first
// keys init replaces nothing and says nothing of it.
func TestKeysInitForceSaysRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bootforge.yaml")
	if err := os.WriteFile(cfg, []byte("root: "+filepath.Join(dir, "root")+"\ndata_dir: "+filepath.Join(dir, "data")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		root := newRootCmd(&globalFlags{})
		var out strings.Builder
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append([]string{"--config", cfg, "keys", "init"}, args...))
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	if out := run(); strings.Contains(out, "restart") {
		t.Errorf("first keys init:\n%s", out)
	}
	out := run("--force")
	for _, want := range []string{"replacing the old ones", "a running bootforge serve", "until it is restarted", "SIGHUP", "GRUB's OpenPGP key is kept"} {
		if !strings.Contains(out, want) {
			t.Errorf("keys init --force lacks %q:\n%s", want, out)
		}
	}
	// Without an OpenPGP key, --force makes one: not "kept".
	if err := os.Remove(filepath.Join(dir, "data", "keys", keys.OpenPGPPrivateFile)); err != nil {
		t.Fatal(err)
	}
	if out := run("--force"); !strings.Contains(out, "GRUB's OpenPGP key was made") {
		t.Errorf("keys init --force without an OpenPGP key:\n%s", out)
	}
}
