package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// firstHourScript is the README's way in, on a machine of its own: a
// network namespace (the default ports, loopback only) whose mount
// namespace has empty /etc/bootforge and /srv. No command but init is
// given a path: serve, check and token find the installed config.
const firstHourScript = `set -u
mount -t tmpfs tmpfs /etc/bootforge
mount -t tmpfs tmpfs /srv
ip link set lo up
cd "$BIN"
echo "== init"
./bootforge init /srv/bootforge --install 2>&1
./bootforge serve >/srv/serve.log 2>&1 &
pid=$!
for i in $(seq 100); do
  curl -sf -o /dev/null http://127.0.0.1:9090/readyz && break
  sleep 0.1
done
echo "== check"
./bootforge check 2>&1; echo "exit $?"
echo "== token"
tok=$(./bootforge token create --role admin 2>/srv/token.err); echo "exit $?"
cat /srv/token.err
echo "== api"
curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $tok" http://127.0.0.1:9090/api/v1/hosts
echo "== verbose"
./bootforge -v host list 2>&1; echo "exit $?"
echo "== other store"
printf 'data_dir: /srv/elsewhere\nroot: /srv/bootforge/root\n' >/srv/elsewhere.yaml
BOOTFORGE_CONFIG=/srv/elsewhere.yaml ./bootforge host list 2>&1
kill $pid; wait $pid
echo "== serve log"
cat /srv/serve.log
`

// TestFirstHour: init --install, then serve, check and token create
// without any -c, as the README shows them; the token works against the
// server, and a command that opens another store than the server's is
// warned.
func TestFirstHour(t *testing.T) {
	need(t, "ip", "curl")
	// The mount points the namespace's tmpfs go on; made here if missing
	// (empty, so they change nothing outside) and removed again.
	for _, d := range []string{"/etc/bootforge", "/srv"} {
		if _, err := os.Stat(d); err == nil {
			continue
		}
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(d) })
	}
	ns := newNetnsName()
	addNetns(t, ns)
	cmd := netnsCommand(ns, "sh", "-c", firstHourScript)
	cmd.Env = append(os.Environ(), "BIN="+filepath.Dir(binary), "BOOTFORGE_CONFIG=")
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("the first hour did not finish in 2 minutes:\n%s", out)
	}
	if err != nil {
		t.Fatalf("the script failed: %v\n%s", err, out)
	}
	sections := map[string]string{}
	for _, part := range strings.Split(string(out), "== ")[1:] {
		name, body, _ := strings.Cut(part, "\n")
		sections[name] = body
	}
	t.Logf("output:\n%s", out)

	if s := sections["init"]; !strings.Contains(s, "wrote     /etc/bootforge/bootforge.yaml") || !strings.Contains(s, "Start with:  bootforge serve\n") {
		t.Errorf("init --install did not write /etc/bootforge/bootforge.yaml or say how to start:\n%s", s)
	}
	if s := sections["check"]; !strings.Contains(s, "exit 0") || strings.Contains(s, "[FAIL]") {
		t.Errorf("check after a fresh init does not pass:\n%s", s)
	}
	if s := sections["token"]; !strings.HasPrefix(s, "exit 0") || strings.Contains(s, "warning") {
		t.Errorf("token create without -c:\n%s", s)
	}
	if s := strings.TrimSpace(sections["api"]); s != "200" {
		t.Errorf("the token made without -c gets %s from the server, not 200", s)
	}
	if s := sections["verbose"]; !strings.Contains(s, "config: /etc/bootforge/bootforge.yaml") ||
		!strings.Contains(s, "store:  /srv/bootforge/bootforge.db") || !strings.Contains(s, "uses this store") {
		t.Errorf("-v does not name the installed config and its store, or the server's agreement:\n%s", s)
	}
	if s := sections["other store"]; !regexp.MustCompile(`warning: the server at \S+ uses the store /srv/bootforge/bootforge.db, but this command opened /srv/elsewhere/bootforge.db`).MatchString(s) {
		t.Errorf("a command on another store is not warned:\n%s", s)
	}
}

// TestCLIProfileShowAndNextBootByName: profile show prints the profile as
// written (YAML, the OUI as text), profile list --json parses, and a
// one-shot can be set by host name.
func TestCLIProfileShowAndNextBootByName(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "root"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "bootforge.yaml")
	text := "root: " + filepath.Join(dir, "root") + "\ndata_dir: " + filepath.Join(dir, "data") + `
inventory:
  profiles:
    - name: lab
      priority: 5
      match: [{oui: "52:54:00", arch: efi-x64}]
      menu:
        default: disk
        entries:
          - {name: disk, kind: local}
          - {name: shell, kind: shell}
`
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := clRun(t, 30*time.Second, nil, "--config", cfg, "profile", "show", "lab")
	want := "# " + cfg + ": inventory.profiles[0]\nname: lab\npriority: 5\nmatch:\n  - oui: \"52:54:00\"\n    arch: efi-x64\n"
	if code != 0 || !strings.HasPrefix(out, want) || strings.Contains(out, "secure_boot") {
		t.Errorf("profile show (exit %d):\n%s\nwant it to start with:\n%s", code, out, want)
	}
	out, code = clRun(t, 30*time.Second, nil, "--config", cfg, "profile", "list", "--json")
	var list []struct {
		Name    string   `json:"name"`
		Entries []string `json:"entries"`
	}
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list) != 1 || list[0].Name != "lab" || len(list[0].Entries) != 2 {
		t.Errorf("profile list --json (exit %d, %v):\n%s", code, err, out)
	}
	if out, code := clRun(t, 30*time.Second, nil, "--config", cfg, "host", "add", "pc1", "--mac", "52:54:00:12:34:56"); code != 0 {
		t.Fatalf("host add: %s", out)
	}
	out, code = clRun(t, 30*time.Second, nil, "--config", cfg, "host", "next-boot", "pc1", "shell")
	if code != 0 || !strings.Contains(out, "next boot of 52:54:00:12:34:56: shell") {
		t.Errorf("next-boot by host name (exit %d): %s", code, out)
	}
}
