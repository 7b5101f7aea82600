package e2e

// Key material and the store are never served (issues 13 and 14): not when
// data_dir reaches into root through a symlink (at start or on SIGHUP), not
// through a symlink, hard link or copy inside root, over TFTP (tftp-hpa,
// atftp), HTTP or HTTPS (curl). And the state directory is private: data_dir
// 0700, the store and the keys 0600.

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kgSpawn starts bootforge serve with args plus free loopback ports for
// every listener, without waiting for it to be ready.
func kgSpawn(t *testing.T, args ...string) *Server {
	t.Helper()
	s := &Server{t: t, log: &syncBuffer{}, done: make(chan error, 1)}
	s.TFTPAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t, "udp"))
	s.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	s.HTTPSAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	s.APIAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	full := append([]string{"serve", "--tftp-addr", s.TFTPAddr, "--http-addr", s.HTTPAddr,
		"--https-addr", s.HTTPSAddr, "--api-addr", s.APIAddr}, args...)
	s.cmd = exec.Command(binary, full...)
	s.cmd.Env = clEnv() // no BOOTFORGE_* from the caller's environment
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(s.Stop)
	return s
}

// kgRealDir is t.TempDir with symlinks resolved, so that paths in messages
// compare equal.
func kgRealDir(t *testing.T) string {
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// kgNotServed fetches name over HTTP, HTTPS, tftp-hpa and atftp and fails
// if any of them returns secret (or anything at all).
func kgNotServed(t *testing.T, s *Server, name string, secret []byte) {
	t.Helper()
	for _, base := range []string{"http://" + s.HTTPAddr, "https://" + s.HTTPSAddr} {
		res := htCurl(t, "-k", base+"/"+name)
		if res.code != 403 && res.code != 404 {
			t.Errorf("GET %s/%s: status %d, want 403 or 404", base, name, res.code)
		}
		if len(secret) > 0 && bytes.Contains(res.body, secret[:min(len(secret), 64)]) {
			t.Errorf("GET %s/%s: served the secret", base, name)
		}
	}
	dir := t.TempDir()
	hpa := filepath.Join(dir, "hpa")
	o, _ := run(t, 20*time.Second, "tftp", Host(s.TFTPAddr), Port(s.TFTPAddr), "-m", "binary", "-c", "get", name, hpa)
	if !strings.Contains(o, "Error code") {
		t.Errorf("tftp-hpa get %s: no TFTP error: %q", name, o)
	}
	if b, _ := os.ReadFile(hpa); len(b) > 0 {
		t.Errorf("tftp-hpa get %s: got %d bytes", name, len(b))
	}
	at := filepath.Join(dir, "atftp")
	o, err := run(t, 20*time.Second, "atftp", "-g", "-r", name, "-l", at, Host(s.TFTPAddr), Port(s.TFTPAddr))
	if err == nil {
		t.Errorf("atftp get %s: succeeded: %q", name, o)
	}
	if b, _ := os.ReadFile(at); len(b) > 0 {
		t.Errorf("atftp get %s: got %d bytes", name, len(b))
	}
}

// TestKeysGuardSymlinkedDataDir: data_dir written as a path through a
// symlink that leads into root is refused at start, naming both paths.
// Before the check was on resolved paths, bootforge started and served
// /st/tls/key.pem and /st/bootforge.db.
func TestKeysGuardSymlinkedDataDir(t *testing.T) {
	need(t, "curl")
	base := kgRealDir(t)
	root := filepath.Join(base, "r")
	must(t, os.MkdirAll(root, 0o755))
	must(t, os.Symlink("r", filepath.Join(base, "link")))
	data := filepath.Join(base, "link", "st")

	s := kgSpawn(t, "--root", root, "--data-dir", data)
	err, exited := s.Exited(10 * time.Second)
	if !exited {
		res, _ := htCurlTry(t, "http://"+s.HTTPAddr+"/st/tls/key.pem")
		t.Fatalf("bootforge started with data_dir %s inside root %s; GET /st/tls/key.pem: %d, %d bytes\n%s",
			data, root, res.code, len(res.body), s.Log())
	}
	if err == nil {
		t.Fatalf("bootforge exited 0; log:\n%s", s.Log())
	}
	for _, want := range []string{"data_dir", data, root} {
		if !strings.Contains(s.Log(), want) {
			t.Errorf("error does not name %q:\n%s", want, s.Log())
		}
	}
	if _, err := os.Stat(filepath.Join(root, "st", "bootforge.db")); err == nil {
		t.Errorf("a store was made inside root")
	}
}

// TestKeysGuardReload: a SIGHUP whose new root reaches data_dir through a
// symlink is refused, and the running root stays.
func TestKeysGuardReload(t *testing.T) {
	need(t, "curl")
	base := kgRealDir(t)
	root, data := filepath.Join(base, "r"), filepath.Join(base, "st")
	must(t, os.MkdirAll(root, 0o755))
	must(t, os.WriteFile(filepath.Join(root, "hello"), []byte("hello"), 0o644))
	conf := filepath.Join(base, "bootforge.yaml")
	must(t, os.WriteFile(conf, []byte(fmt.Sprintf("root: %s\ndata_dir: %s\n", root, data)), 0o644))
	s := kgSpawn(t, "--config", conf)
	s.WaitLog("bootforge ready", 10*time.Second)
	key, err := os.ReadFile(filepath.Join(data, "tls", "key.pem"))
	must(t, err)

	// root: base/up, where up -> base: lexically unrelated to base/st.
	must(t, os.Symlink(".", filepath.Join(base, "up")))
	up := filepath.Join(base, "up")
	must(t, os.WriteFile(conf, []byte(fmt.Sprintf("root: %s\ndata_dir: %s\n", up, data)), 0o644))
	s.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(s.Log(), "reload refused") && !strings.Contains(s.Log(), "config reloaded") {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(s.Log(), "reload refused") {
		t.Errorf("reload with root %s (resolving to %s, holding data_dir %s) was not refused", up, base, data)
	}
	for _, want := range []string{up, data} {
		if !strings.Contains(s.Log(), want) {
			t.Errorf("the refusal does not name %q", want)
		}
	}
	for _, name := range []string{"st/tls/key.pem", "st/bootforge.db"} {
		res := htCurl(t, "http://"+s.HTTPAddr+"/"+name)
		if res.code == 200 || bytes.Contains(res.body, key[:40]) {
			t.Errorf("GET /%s after reload: %d, %d bytes", name, res.code, len(res.body))
		}
	}
	if res := htCurl(t, "http://"+s.HTTPAddr+"/hello"); res.code != 200 || string(res.body) != "hello" {
		t.Errorf("the running root no longer serves: %d %q", res.code, res.body)
	}
}

// TestKeysGuardRefused: private keys and the store are refused whatever
// path leads to them inside root: an absolute symlink to data_dir/keys or
// the TLS key, a hard link, a copy under another name, a name that says
// "key"; and a refusal is logged with its reason.
func TestKeysGuardRefused(t *testing.T) {
	need(t, "curl", "tftp", "atftp", "gpg")
	data := kgRealDir(t)
	root := kgRealDir(t)
	if out, code := clRun(t, time.Minute, nil, "keys", "init", "--root", root, "--data-dir", data); code != 0 {
		t.Fatalf("keys init: %d\n%s", code, out)
	}
	s := StartServer(t, ServerOptions{Root: root, Args: []string{"--data-dir", data}})
	read := func(p string) []byte {
		t.Helper()
		b, err := os.ReadFile(p)
		must(t, err)
		return b
	}
	tlsKey := filepath.Join(data, "tls", "key.pem")
	signingKey := filepath.Join(data, "keys", "signing.key")
	pgpKey := filepath.Join(data, "keys", "openpgp.key")

	// An OpenPGP secret key in gpg's binary format.
	home := t.TempDir()
	if o, err := run(t, time.Minute, "gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
		"--quick-gen-key", "kg <kg@example.org>", "ed25519", "sign", "never"); err != nil {
		t.Fatalf("gpg --quick-gen-key: %v\n%s", err, o)
	}
	cmd := exec.Command("gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--export-secret-keys")
	secring, err := cmd.Output()
	if err != nil || len(secring) == 0 {
		t.Fatalf("gpg --export-secret-keys: %v", err)
	}

	must(t, os.WriteFile(filepath.Join(root, "ok.txt"), []byte("fine"), 0o644))
	must(t, os.Symlink(signingKey, filepath.Join(root, "abs-signing")))
	must(t, os.Symlink(tlsKey, filepath.Join(root, "abs-tls")))
	must(t, os.Symlink(filepath.Join(data, "bootforge.db"), filepath.Join(root, "abs-db")))
	rel, err := filepath.Rel(root, signingKey)
	must(t, err)
	must(t, os.Symlink(rel, filepath.Join(root, "rel-signing")))
	must(t, os.Link(tlsKey, filepath.Join(root, "hard-tls.bin")))
	must(t, os.WriteFile(filepath.Join(root, "copy-signing.bin"), read(signingKey), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "pgp.txt"), read(pgpKey), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "secring.bin"), secring, 0o644))
	must(t, os.WriteFile(filepath.Join(root, "store.bin"), read(filepath.Join(data, "bootforge.db")), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "client.key"), []byte("harmless"), 0o644))
	must(t, os.MkdirAll(filepath.Join(root, "tls"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "tls", "key.pem"), []byte("harmless"), 0o644))

	if res := htCurl(t, "http://"+s.HTTPAddr+"/ok.txt"); res.code != 200 || string(res.body) != "fine" {
		t.Fatalf("control file: %d %q", res.code, res.body)
	}
	cases := []struct {
		name   string
		secret []byte
		reason string // in the logged refusal
	}{
		{"abs-signing", read(signingKey), "symlink"},
		{"abs-tls", read(tlsKey), "symlink"},
		{"abs-db", nil, "symlink"},
		{"rel-signing", read(signingKey), "symlink"},
		{"hard-tls.bin", read(tlsKey), "private key"},
		{"copy-signing.bin", read(signingKey), "private key"},
		{"pgp.txt", read(pgpKey), "private key"},
		{"secring.bin", secring, "OpenPGP secret key"},
		{"store.bin", nil, "SQLite"},
		{"client.key", []byte("harmless"), "key file"},
		{"tls/key.pem", []byte("harmless"), "key file"},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, "/", "_"), func(t *testing.T) {
			kgNotServed(t, s, c.name, c.secret)
			if n := s.CountLog("refused"); n == 0 || !kgLogged(s, c.name, c.reason) {
				t.Errorf("no refusal of %s with reason %q logged", c.name, c.reason)
			}
		})
	}
}

// kgLogged reports whether a refusal line names path and reason.
func kgLogged(s *Server, path, reason string) bool {
	for _, l := range strings.Split(s.Log(), "\n") {
		if strings.Contains(l, "refused") && strings.Contains(l, path) && strings.Contains(l, reason) {
			return true
		}
	}
	return false
}

// TestKeysGuardModes: a fresh start makes data_dir 0700 and the store, its
// WAL files and the keys 0600; a looser store or TLS key left by an older
// version is tightened, a looser data_dir warned about.
func TestKeysGuardModes(t *testing.T) {
	need(t, "stat")
	base := kgRealDir(t)
	data := filepath.Join(base, "state") // does not exist yet: the server makes it
	root := filepath.Join(data, "root")  // the default layout: root inside data_dir
	if out, code := clRun(t, time.Minute, nil, "keys", "init", "--root", root, "--data-dir", filepath.Join(base, "keysonly")); code != 0 {
		t.Fatalf("keys init: %d\n%s", code, out)
	}
	mode := func(p string) string {
		t.Helper()
		o, err := run(t, 5*time.Second, "stat", "-c", "%a", p)
		if err != nil {
			t.Fatalf("stat %s: %v %s", p, err, o)
		}
		return strings.TrimSpace(o)
	}
	check := func(want map[string]string) {
		t.Helper()
		for p, m := range want {
			if got := mode(p); got != m {
				t.Errorf("%s: mode %s, want %s", p, got, m)
			}
		}
	}
	private := map[string]string{
		data:                                    "700",
		filepath.Join(data, "bootforge.db"):     "600",
		filepath.Join(data, "bootforge.db-wal"): "600",
		filepath.Join(data, "bootforge.db-shm"): "600",
		filepath.Join(data, "tls"):              "700",
		filepath.Join(data, "tls", "key.pem"):   "600",
	}

	s := StartServer(t, ServerOptions{Args: []string{"--data-dir", data, "--root", root}})
	check(private)
	check(map[string]string{
		filepath.Join(base, "keysonly", "keys"):                "700",
		filepath.Join(base, "keysonly", "keys", "ca.key"):      "600",
		filepath.Join(base, "keysonly", "keys", "signing.key"): "600",
		filepath.Join(base, "keysonly", "keys", "openpgp.key"): "600",
	})
	s.Stop()

	// What an older version left: everything world-readable.
	for p := range private {
		if st, err := os.Stat(p); err == nil {
			m := fs.FileMode(0o644)
			if st.IsDir() {
				m = 0o755
			}
			must(t, os.Chmod(p, m))
		}
	}
	s = StartServer(t, ServerOptions{Args: []string{"--data-dir", data, "--root", root}})
	delete(private, data) // left as it is, with a warning: it may be shared
	check(private)
	check(map[string]string{data: "755"})
	if !strings.Contains(s.Log(), "readable by group or others") || !strings.Contains(s.Log(), data) {
		t.Errorf("no warning that data_dir is readable by others:\n%s", s.Log())
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
