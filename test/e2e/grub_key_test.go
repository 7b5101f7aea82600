package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// GRUB's OpenPGP key replaced under a running server (the key files
// removed and made anew by keys init --force) applies on restart, as the
// X.509 keys do: the server signs GRUB's files with the key it started
// with, and a reload says so. The key was read when first needed, so a
// server that had served no signed GRUB file yet signed with the new key
// at once, and the reload's "they apply on restart" was not true for it.
// A server started without a key still takes up the first one made
// (grub build, keys init) without a restart.
func TestGRUBKeyLoadedAtStart(t *testing.T) {
	need(t, "curl", "gpg")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bootforge.yaml")
	keysDir := filepath.Join(dir, "state", "keys")
	ccWrite(t, filepath.Join(dir, "root", "vmlinuz"), "kernel\n")
	ccWrite(t, cfg, `root: root
data_dir: state
inventory:
  profiles:
    - name: lab
      signed: true
      match: [{mac: "02:bf:00:00:00:0a"}]
      menu:
        entries:
          - {name: a, kind: linux, kernel: vmlinuz}
`)
	keysInit := func(args ...string) {
		t.Helper()
		if out, code := clRun(t, 2*time.Minute, nil, append([]string{"keys", "init", "--config", cfg}, args...)...); code != 0 {
			t.Fatalf("keys init %v: exit %d\n%s", args, code, out)
		}
	}
	// keyID is the key ID that gpg reads from an OpenPGP file: the
	// public key, or the signature made with it.
	idRE := regexp.MustCompile(`keyid:? ([0-9A-F]{16})`)
	keyID := func(file string) string {
		t.Helper()
		out, err := run(t, 20*time.Second, "gpg", "--homedir", t.TempDir(), "--list-packets", file)
		m := idRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("gpg --list-packets %s: %v: no key ID\n%s", file, err, out)
		}
		return m[1]
	}
	var s *Server
	var ha string
	start := func() {
		var addrs []string
		addrs, ha = ccAddrs(t)
		s = clStart(t, nil, append([]string{"serve", "--config", cfg}, addrs...)...)
	}
	sigFile := filepath.Join(dir, "vmlinuz.sig")
	signer := func() string {
		t.Helper()
		if _, err := run(t, 20*time.Second, "curl", "-sf", "-o", sigFile, "http://"+ha+"/vmlinuz.sig"); err != nil {
			t.Fatalf("GET vmlinuz.sig: %v\n%s", err, s.Log())
		}
		return keyID(sigFile)
	}
	replaceKey := func() string {
		t.Helper()
		for _, f := range []string{"openpgp.key", "openpgp.pub"} {
			if err := os.Remove(filepath.Join(keysDir, f)); err != nil {
				t.Fatal(err)
			}
		}
		keysInit("--force")
		return keyID(filepath.Join(keysDir, "openpgp.pub"))
	}

	keysInit()
	first := keyID(filepath.Join(keysDir, "openpgp.pub"))
	start()
	second := replaceKey() // before any signed file was served
	if second == first {
		t.Fatalf("the new key has the old one's ID %s", first)
	}
	if got := signer(); got != first {
		t.Errorf("GRUB's files are signed by key %s after the key was replaced, want %s, the key the server started with (the new one is %s)", got, first, second)
	}
	s.Signal(syscall.SIGHUP)
	clWaitCount(t, s, "config reloaded", 1)
	if want := "they apply on restart (until then GRUB files are signed with the old OpenPGP key)"; s.CountLog(want) != 1 {
		t.Errorf("the reload does not say %q:\n%s", want, s.Log())
	}
	if got := signer(); got != first {
		t.Errorf("after the reload GRUB's files are signed by key %s, want %s", got, first)
	}
	s.Stop()
	start()
	if got := signer(); got != second {
		t.Errorf("after a restart GRUB's files are signed by key %s, want the new %s", got, second)
	}
	s.Stop()

	// No key at start: the first one made is used without a restart.
	if err := os.RemoveAll(keysDir); err != nil {
		t.Fatal(err)
	}
	start()
	if _, err := run(t, 20*time.Second, "curl", "-sf", "-o", sigFile, "http://"+ha+"/vmlinuz.sig"); err == nil {
		t.Errorf("a signature was served without a key")
	}
	keysInit()
	if got, made := signer(), keyID(filepath.Join(keysDir, "openpgp.pub")); got != made {
		t.Errorf("the first key made while serving: GRUB's files are signed by %s, want %s", got, made)
	}
	if strings.Contains(s.Log(), "cannot be loaded") {
		t.Errorf("a missing key is logged as one that cannot be loaded:\n%s", s.Log())
	}
}
