package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bootforge/internal/image"
	"bootforge/internal/store/storetest"
)

// An inventory file that cannot be read does not stop `profile list` or
// `menu render`, as it does not stop the host commands: they warn, naming
// the file and its line, and go on without it.
func TestReadCommandsLeaveOutUnreadableFile(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"profiles", "hosts", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("bootforge.yaml", "root: "+filepath.Join(dir, "root")+"\ndata_dir: "+filepath.Join(dir, "data")+
		"\ninventory:\n  default_profile: lab\n")
	write("profiles/lab.yaml", "name: lab\nmenu: {default: disk, entries: [{name: disk, kind: local}]}\n")
	write("hosts/good.yaml", "- {name: pc1, macs: [\"52:54:00:aa:00:01\"], profile: lab}\n")
	broken := filepath.Join(dir, "hosts", "broken.yaml")
	write("hosts/broken.yaml", "- {name: t1, macs: [\"52:54:00:aa:00:09\"]\n")

	run := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		root := newRootCmd(&globalFlags{})
		root.SetOut(&out)
		root.SetErr(&errOut)
		root.SetArgs(append([]string{"--config", filepath.Join(dir, "bootforge.yaml")}, args...))
		err := root.Execute()
		return out.String(), errOut.String(), err
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"profile", "list"}, "lab"},
		{[]string{"menu", "render", "--mac", "52:54:00:aa:00:01"}, "# profile: lab"},
	} {
		out, warn, err := run(tc.args...)
		if err != nil || !strings.Contains(out, tc.want) {
			t.Errorf("%s with a broken host file: %v, want %q in:\n%s", strings.Join(tc.args, " "), err, tc.want, out)
		}
		if !strings.Contains(warn, "warning") || !strings.Contains(warn, broken+":1") {
			t.Errorf("%s: want a warning naming %s:1, got:\n%s", strings.Join(tc.args, " "), broken, warn)
		}
	}
}

// With --log-format json, the warnings the commands print on stderr are
// JSON log lines, as serve's are: an inventory file left out, and a
// server on api.listen that uses another store.
func TestCommandWarningsInJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"status":"ready","store":"/elsewhere/bootforge.db"}`))
	}))
	defer srv.Close()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "hosts"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := "root: " + filepath.Join(dir, "root") + "\ndata_dir: " + filepath.Join(dir, "data") +
		"\napi: {listen: \"" + strings.TrimPrefix(srv.URL, "http://") + "\"}\n"
	if err := os.WriteFile(filepath.Join(dir, "bootforge.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts", "broken.yaml"), []byte("- {name: t1, macs: [\"52:54:00:aa:00:09\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	root := newRootCmd(&globalFlags{})
	root.SetOut(io.Discard)
	root.SetErr(&errOut)
	root.SetArgs([]string{"--config", filepath.Join(dir, "bootforge.yaml"), "--log-format", "json", "host", "list"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, l := range strings.Split(strings.TrimSpace(errOut.String()), "\n") {
		var line struct{ Level, Msg string }
		if err := json.Unmarshal([]byte(l), &line); err != nil || line.Level != "WARN" {
			t.Errorf("not a JSON warning: %q", l)
		}
		msgs = append(msgs, line.Msg)
	}
	all := strings.Join(msgs, "\n")
	for _, w := range []string{"inventory files that cannot be read are left out", "broken.yaml:1", "uses the store /elsewhere/bootforge.db"} {
		if !strings.Contains(all, w) {
			t.Errorf("no warning with %q in:\n%s", w, errOut.String())
		}
	}
}

// host rm takes a name; given a MAC (which host show and next-boot take)
// it names the host that has it, rather than saying there is no such
// host.
func TestHostRmByMAC(t *testing.T) {
	cfg := apiOffConfig(t)
	run := func(args ...string) error {
		root := newRootCmd(&globalFlags{})
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		root.SetArgs(append([]string{"--config", cfg}, args...))
		return root.Execute()
	}
	if err := run("host", "add", "pc1", "--mac", "52:54:00:00:00:01"); err != nil {
		t.Fatal(err)
	}
	err := run("host", "rm", "52-54-00-00-00-01")
	if err == nil || !strings.Contains(err.Error(), `not a MAC: 52:54:00:00:00:01 is host pc1's (bootforge host rm pc1)`) {
		t.Errorf("host rm MAC: %v", err)
	}
	if err := run("host", "rm", "52:54:00:00:00:09"); err == nil || !strings.Contains(err.Error(), "no host has 52:54:00:00:00:09") {
		t.Errorf("host rm of a MAC no host has: %v", err)
	}
	if err := run("host", "rm", "nosuch"); err == nil || !strings.Contains(err.Error(), `no host "nosuch" in the store`) {
		t.Errorf("host rm nosuch: %v", err)
	}
}

// runWith runs bootforge with the config cfg and returns its output.
func runWith(cfg string, args ...string) (string, error) {
	var out bytes.Buffer
	root := newRootCmd(&globalFlags{})
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetArgs(append([]string{"--config", cfg}, args...))
	err := root.Execute()
	return out.String(), err
}

// A change whose boot-log event the store refuses is not made: `host add`
// fails, and the host is not stored. Before, the host was stored and its
// line was missing, with only a warning (and, before that, not a word).
func TestHostAddFailsWhenItsEventIsRefused(t *testing.T) {
	cfg := apiOffConfig(t)
	run := func(args ...string) (string, error) { return runWith(cfg, args...) }
	if _, err := run("host", "list"); err != nil { // creates the store
		t.Fatal(err)
	}
	storetest.RefuseEvents(t, filepath.Join(filepath.Dir(cfg), "data", "bootforge.db"), false)
	if _, err := run("host", "add", "pc1", "--mac", "52:54:00:00:00:01"); err == nil || !strings.Contains(err.Error(), "events refused") {
		t.Errorf("host add with its event refused: %v, want the store's refusal", err)
	}
	if out, err := run("host", "list"); err != nil || strings.Contains(out, "pc1") {
		t.Errorf("host list after the refused add (%v):\n%s", err, out)
	}
}

// An image promote whose boot-log event the store refuses is not made:
// the command fails and the version stays staged. Before, it was
// promoted, with only a warning that its line was missing.
func TestImagePromoteFailsWhenItsEventIsRefused(t *testing.T) {
	cfg := apiOffConfig(t)
	dir := filepath.Dir(cfg)
	version := filepath.Join(dir, "root", "images", "deb", "1.0.0")
	if err := os.MkdirAll(version, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(version, "vmlinuz"), []byte("kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("kernel"))
	m, _ := json.Marshal(image.Manifest{Name: "deb", Version: "1.0.0", Template: image.TemplateLinux, Built: time.Now().UTC(),
		Boot:  image.Boot{Kind: "linux", Kernel: "vmlinuz"},
		Files: []image.File{{Path: "vmlinuz", Size: 6, SHA256: hex.EncodeToString(sum[:])}}})
	if err := os.WriteFile(filepath.Join(version, image.ManifestName), m, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) { return runWith(cfg, args...) }
	if out, err := run("image", "list"); err != nil || !strings.Contains(out, "staged") {
		t.Fatalf("image list (%v):\n%s", err, out)
	}
	storetest.RefuseEvents(t, filepath.Join(dir, "data", "bootforge.db"), false)
	if _, err := run("image", "promote", "deb@1.0.0"); err == nil || !strings.Contains(err.Error(), "events refused") {
		t.Errorf("promote with its event refused: %v, want the store's refusal", err)
	}
	if out, err := run("image", "list"); err != nil || !strings.Contains(out, "staged") || strings.Contains(out, "active") {
		t.Errorf("image list after the refused promote (%v):\n%s", err, out)
	}
}
