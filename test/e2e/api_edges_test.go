package e2e

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// aeResult is one curl exchange with the API.
type aeResult struct {
	code    int
	headers string
	body    string
	obj     map[string]any
}

// aeCurl calls the API with curl: args are extra curl arguments (method,
// headers, data, TLS options) and url the whole URL. A curl failure (no
// answer at all) is returned as an error.
func aeCurl(t testing.TB, url string, args ...string) (aeResult, error) {
	t.Helper()
	hdr := filepath.Join(t.TempDir(), "headers")
	all := append([]string{"-s", "-o", "-", "-D", hdr, "-w", "\n%{http_code}", "-m", "10"}, args...)
	out, err := run(t, 15*time.Second, "curl", append(all, url)...)
	if err != nil {
		return aeResult{}, err
	}
	i := strings.LastIndex(out, "\n")
	var r aeResult
	json.Unmarshal([]byte(out[i+1:]), &r.code)
	r.body = out[:i]
	json.Unmarshal([]byte(r.body), &r.obj)
	h, _ := os.ReadFile(hdr)
	r.headers = string(h)
	return r, nil
}

// aeToken makes a token with the CLI against the server's store.
func aeToken(t testing.TB, s *Server, role, name string) string {
	t.Helper()
	out, code := aeCLI(t, s, "token", "create", "--role", role, "--name", name)
	if code != 0 {
		t.Fatalf("token create: exit %d\n%s", code, out)
	}
	return strings.TrimSpace(out)
}

// aeCLI runs the bootforge CLI against the server's data dir.
func aeCLI(t testing.TB, s *Server, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(cmd.Environ(), "BOOTFORGE_DATA_DIR="+s.DataDir, "BOOTFORGE_ROOT="+s.Root)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("bootforge %v: %v", args, err)
	}
	return string(out), 0
}

const aeConfig = `inventory:
  default_profile: lab
  profiles:
    - name: lab
      menu:
        default: disk
        entries:
          - {name: disk, kind: local}
`

// TestAPIEdges: a body over the limit gets 413; trailing data and duplicate
// keys get 400 naming the key; a wrong method gets 405 with Allow; the
// bearer scheme is case-insensitive; DELETE of a missing host is 404 and
// not a boot-log event. None of the refused writes reaches the store.
func TestAPIEdges(t *testing.T) {
	need(t, "curl")
	s := StartServer(t, ServerOptions{Config: aeConfig})
	read, admin := aeToken(t, s, "read", "reader"), aeToken(t, s, "admin", "ops")
	base := "http://" + s.APIAddr
	call := func(tok, method, path, body string, extra ...string) aeResult {
		t.Helper()
		args := []string{"-X", method, "-H", "Authorization: Bearer " + tok}
		if body != "" {
			f := filepath.Join(t.TempDir(), "body.json")
			os.WriteFile(f, []byte(body), 0o644)
			args = append(args, "-H", "Content-Type: application/json", "--data-binary", "@"+f)
		}
		r, err := aeCurl(t, base+path, append(args, extra...)...)
		if err != nil {
			t.Fatalf("curl %s %s: %v", method, path, err)
		}
		return r
	}

	t.Run("413", func(t *testing.T) {
		big := `{"macs":["52:54:00:aa:00:01"],"labels":["` + strings.Repeat("x", 2<<20) + `"]}`
		r := call(admin, "PUT", "/api/v1/hosts/big", big)
		if r.code != 413 || r.obj["code"] != "too_large" || !strings.Contains(r.body, "1048576") {
			t.Errorf("a 2 MiB body: %d %s, want 413 too_large naming the limit", r.code, r.body)
		}
		// Whitespace after a small value counts too: the body is what is limited.
		r = call(admin, "PUT", "/api/v1/hosts/big", `{"macs":["52:54:00:aa:00:01"]}`+strings.Repeat(" ", 2<<20))
		if r.code != 413 {
			t.Errorf("a small value padded to 2 MiB: %d %s, want 413", r.code, r.body)
		}
	})

	t.Run("trailing and duplicate keys", func(t *testing.T) {
		bad := []struct{ body, field, words string }{
			{`{"macs":["52:54:00:aa:00:02"]} x`, "", "after the JSON value"},
			{`{"macs":["52:54:00:aa:00:02"]}{"macs":["52:54:00:aa:00:03"]}`, "", "after the JSON value"},
			{`{"macs":["52:54:00:aa:00:02"],"macs":["52:54:00:aa:00:03"]}`, "macs", `duplicate key "macs"`},
			// encoding/json matches names case-insensitively: the same field twice.
			{`{"macs":["52:54:00:aa:00:02"],"MACS":["52:54:00:aa:00:03"]}`, "MACS", `duplicate key "MACS"`},
			{`{"macs":["52:54:00:aa:00:02"],"profile":"lab","profile":"lab"}`, "profile", `duplicate key "profile"`},
		}
		for _, b := range bad {
			r := call(admin, "PUT", "/api/v1/hosts/pc2", b.body)
			msg, _ := r.obj["message"].(string)
			if r.code != 400 || r.obj["code"] != "bad_request" || r.obj["field"] != anyOrNil(b.field) || !strings.Contains(msg, b.words) {
				t.Errorf("PUT %s: %d %s, want 400 naming %q with %q", b.body, r.code, r.body, b.field, b.words)
			}
		}
		r := call(admin, "PUT", "/api/v1/next-boot/52:54:00:aa:00:02", `{"entry":"disk","entry":"disk"}`)
		if r.code != 400 || r.obj["field"] != "entry" {
			t.Errorf("next-boot with entry twice: %d %s", r.code, r.body)
		}
		if r := call(read, "GET", "/api/v1/hosts", ""); strings.Contains(r.body, "pc2") || strings.Contains(r.body, "52:54:00:aa:00:0") {
			t.Errorf("a refused body reached the store: %s", r.body)
		}
		// Trailing whitespace is no garbage.
		if r := call(admin, "PUT", "/api/v1/hosts/pc3", "{\"macs\":[\"52:54:00:aa:00:04\"]}\n \r\n"); r.code != 200 {
			t.Errorf("trailing whitespace: %d %s", r.code, r.body)
		}
	})

	t.Run("405", func(t *testing.T) {
		wrong := []struct{ method, path, allow string }{
			{"POST", "/api/v1/hosts", "GET, HEAD"},
			{"DELETE", "/api/v1/hosts", "GET, HEAD"},
			{"GET", "/api/v1/hosts/pc3", "DELETE, PUT"},
			{"POST", "/api/v1/next-boot/52:54:00:aa:00:04", "DELETE, PUT"},
			{"PUT", "/api/v1/events", "GET, HEAD"},
			{"POST", "/healthz", "GET, HEAD"},
		}
		for _, w := range wrong {
			r := call(admin, w.method, w.path, "")
			if r.code != 405 || r.obj["code"] != "method_not_allowed" || !strings.Contains(r.headers, "Allow: "+w.allow+"\r\n") {
				t.Errorf("%s %s: %d %s\n%s, want 405 method_not_allowed with Allow: %s", w.method, w.path, r.code, r.body, r.headers, w.allow)
			}
		}
		if r := call(admin, "GET", "/api/v1/nothing", ""); r.code != 404 || r.obj["code"] != "not_found" {
			t.Errorf("GET of no endpoint: %d %s", r.code, r.body)
		}
	})

	// A path with "//" or ".." was a 307 to the cleaned path, HTML, before
	// the token was looked at; curl -L followed it with the token.
	t.Run("unclean paths", func(t *testing.T) {
		for _, p := range []string{"/api/v1//hosts", "/api/v1/hosts/../leases", "//api/v1/health"} {
			for _, tok := range []string{"", read} {
				r := call(tok, "GET", p, "", "--path-as-is", "-L")
				if r.code != 404 || r.obj["code"] != "not_found" || strings.Contains(r.headers, "Location:") {
					t.Errorf("curl -L --path-as-is %s (token %v): %d %s\n%s, want a JSON 404 and no redirect", p, tok != "", r.code, r.body, r.headers)
				}
			}
		}
	})

	t.Run("bearer scheme", func(t *testing.T) {
		for _, scheme := range []string{"bearer", "BEARER", "bEaReR"} {
			r, err := aeCurl(t, base+"/api/v1/hosts", "-H", "Authorization: "+scheme+" "+read)
			if err != nil || r.code != 200 {
				t.Errorf("Authorization: %s <token>: %d %s %v", scheme, r.code, r.body, err)
			}
		}
		for _, h := range []string{"Basic " + read, "Bearer", "Bearer ", read} {
			r, _ := aeCurl(t, base+"/api/v1/hosts", "-H", "Authorization: "+h)
			if r.code != 401 {
				t.Errorf("Authorization: %q: %d %s, want 401", h, r.code, r.body)
			}
		}
	})

	t.Run("DELETE of nothing", func(t *testing.T) {
		r := call(admin, "DELETE", "/api/v1/hosts/nobody", "")
		if r.code != 404 || r.obj["code"] != "not_found" {
			t.Errorf("DELETE of a host that does not exist: %d %s, want 404", r.code, r.body)
		}
		// A host removed twice: 200, then 404.
		for i, want := range []int{200, 404} {
			if r := call(admin, "DELETE", "/api/v1/hosts/pc3", ""); r.code != want {
				t.Errorf("DELETE pc3, time %d: %d %s, want %d", i+1, r.code, r.body, want)
			}
		}
		// A one-shot cleared where none is set.
		mac := "52:54:00:aa:00:09"
		if r := call(admin, "DELETE", "/api/v1/next-boot/"+mac, ""); r.code != 404 || r.obj["field"] != "mac" {
			t.Errorf("DELETE of a one-shot that is not set: %d %s, want 404 naming mac", r.code, r.body)
		}
		// The boot log is written in batches: wait for pc3's removal, which
		// came after the first refusal and before the last.
		var ev aeResult
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if ev = call(read, "GET", "/api/v1/events", ""); strings.Contains(ev.body, "host removed") {
				break
			}
		}
		time.Sleep(300 * time.Millisecond)
		ev = call(read, "GET", "/api/v1/events", "")
		if strings.Contains(ev.body, `"nobody"`) || strings.Contains(ev.body, mac) || strings.Count(ev.body, "host removed") != 1 {
			t.Errorf("refused DELETEs are boot-log events (want one \"host removed\", for pc3):\n%s", ev.body)
		}
	})
}

// anyOrNil is what a decoded JSON object holds for an optional string.
func anyOrNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// TestAPITokenListRevoke: token list shows ID, role, name and creation,
// never the secret; token revoke ID makes the token fail with 401 at once.
func TestAPITokenListRevoke(t *testing.T) {
	need(t, "curl")
	s := StartServer(t, ServerOptions{Config: aeConfig})
	keep, gone := aeToken(t, s, "read", "monitoring"), aeToken(t, s, "admin", "ci pipeline")
	id := func(tok string) string { return strings.Split(tok, "_")[1] }
	get := func(tok string) aeResult {
		r, err := aeCurl(t, "http://"+s.APIAddr+"/api/v1/hosts", "-H", "Authorization: Bearer "+tok)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := get(gone); r.code != 200 {
		t.Fatalf("a fresh token: %d %s", r.code, r.body)
	}

	out, code := aeCLI(t, s, "token", "list")
	if code != 0 {
		t.Fatalf("token list: exit %d\n%s", code, out)
	}
	for _, want := range []string{"ID", "ROLE", "NAME", "CREATED", id(keep), id(gone), "monitoring", "ci pipeline", "admin", "read"} {
		if !strings.Contains(out, want) {
			t.Errorf("token list lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{keep, gone, strings.Split(keep, "_")[2], strings.Split(gone, "_")[2]} {
		if strings.Contains(out, secret) {
			t.Errorf("token list shows a secret:\n%s", out)
		}
	}

	if out, code := aeCLI(t, s, "token", "revoke", id(gone)); code != 0 || !strings.Contains(out, id(gone)) {
		t.Fatalf("token revoke: exit %d\n%s", code, out)
	}
	if r := get(gone); r.code != 401 || !strings.Contains(r.body, "revoked") {
		t.Errorf("a revoked token: %d %s, want 401", r.code, r.body)
	}
	if r := get(keep); r.code != 200 {
		t.Errorf("the other token after a revoke: %d %s", r.code, r.body)
	}
	out, _ = aeCLI(t, s, "token", "list")
	if strings.Contains(out, id(gone)) || !strings.Contains(out, id(keep)) {
		t.Errorf("token list after revoking %s:\n%s", id(gone), out)
	}
	// A token unknown, or given whole: the whole token names its ID.
	if out, code := aeCLI(t, s, "token", "revoke", "0badc0de"); code == 0 || !strings.Contains(out, "0badc0de") {
		t.Errorf("revoking an unknown ID: exit %d\n%s", code, out)
	}
	if out, code := aeCLI(t, s, "token", "revoke", keep); code != 0 {
		t.Errorf("revoking by the whole token: exit %d\n%s", code, out)
	}
	if r := get(keep); r.code != 401 {
		t.Errorf("a token revoked by its whole text: %d", r.code)
	}
	if out, code := aeCLI(t, s, "token", "list", "--json"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("token list --json with none left: exit %d %q", code, out)
	}
}

// TestAPITokenNames: a token's name is printable UTF-8 of at most 64
// bytes, one rule on either store. On PostgreSQL a name that was not
// UTF-8 failed with the database's raw "invalid byte sequence", while
// SQLite kept it.
func TestAPITokenNames(t *testing.T) { eachStore(t, testAPITokenNames) }

func testAPITokenNames(t *testing.T, st e2eStore) {
	_, cli := hiStart(t, st)
	for name, want := range map[string]string{
		"bad\xffname":           `token name "bad\xffname" is not valid UTF-8`,
		"\x1b[31mred":           `token name "\x1b[31mred" is not printable text`,
		"two\nlines":            `is not printable text`,
		strings.Repeat("n", 65): "is 65 bytes long; at most 64",
	} {
		out, code := dcCLI(t, cli, "token", "create", "--role", "read", "--name", name)
		if code == 0 || !strings.Contains(out, want) || strings.Contains(out, "bf_") || strings.Contains(out, "\x1b") {
			t.Errorf("token create --name %q: exit %d, want a refusal with %q and no token:\n%q", name, code, want, out)
		}
	}
	const good = "ci runner ✓"
	if out, code := dcCLI(t, cli, "token", "create", "--role", "read", "--name", good); code != 0 || !strings.Contains(out, "bf_") {
		t.Fatalf("token create --name %q: exit %d\n%s", good, code, out)
	}
	out, code := dcCLI(t, cli, "token", "list", "--json")
	if code != 0 || strings.Count(out, `"id"`) != 1 || !strings.Contains(out, `"name": "`+good+`"`) {
		t.Errorf("token list --json: exit %d, want only the token named %q:\n%s", code, good, out)
	}
}

// TestAPIListenerBounds: with api.max_connections 2, two idle connections
// hold the listener and a third client waits; the header timeout frees
// the idle ones, and the third gets through. With api.tls on, the API
// speaks only TLS, with bootforge's self-signed certificate.
func TestAPIListenerBounds(t *testing.T) {
	need(t, "curl")
	s := StartServer(t, ServerOptions{Config: aeConfig + "api:\n  max_connections: 2\n"})
	url := "http://" + s.APIAddr + "/healthz"
	if r, err := aeCurl(t, url); err != nil || r.code != 200 {
		t.Fatalf("healthz: %v %d", err, r.code)
	}
	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", s.APIAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	time.Sleep(200 * time.Millisecond)
	if out, err := run(t, 10*time.Second, "curl", "-s", "-m", "2", url); err == nil {
		t.Fatalf("a third connection was served past api.max_connections 2: %s", out)
	}
	// The server drops connections that send no header within its
	// timeout (10 s); their slots come back.
	start := time.Now()
	for _, c := range idle {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("an idle connection got %d bytes", n)
		}
	}
	t.Logf("idle connections dropped after %s", time.Since(start).Round(time.Millisecond))
	if r, err := aeCurl(t, url); err != nil || r.code != 200 {
		t.Fatalf("healthz after the idle connections went: %v %d", err, r.code)
	}

	ts := StartServer(t, ServerOptions{Config: aeConfig + "api:\n  tls:\n    enabled: true\n"})
	cert := filepath.Join(ts.DataDir, "tls", "cert.pem")
	r, err := aeCurl(t, "https://"+ts.APIAddr+"/healthz", "--cacert", cert)
	if err != nil || r.code != 200 {
		t.Fatalf("https healthz with bootforge's certificate: %v %d %s", err, r.code, r.body)
	}
	if r, err := aeCurl(t, "http://"+ts.APIAddr+"/healthz"); err == nil && r.code == 200 {
		t.Errorf("plain HTTP answered on a TLS API listener")
	}
	if !strings.Contains(ts.Log(), "api_sha256=") {
		t.Errorf("the ready line lacks the API certificate's fingerprint:\n%s", ts.Log())
	}
	// The commands that ask the API find it over TLS too, pinned to
	// bootforge's certificate: check's health item, and -v's store probe.
	env := []string{"BOOTFORGE_API_TLS_ENABLED=true", "BOOTFORGE_API_ADDR=" + ts.APIAddr}
	cmd := exec.Command(binary, "check", "--json", "--data-dir", ts.DataDir, "--root", ts.Root,
		"--tftp-addr", ts.TFTPAddr, "--http-addr", ts.HTTPAddr)
	cmd.Env = append(cmd.Environ(), env...)
	out, _ := cmd.CombinedOutput()
	var items []struct{ Name, Status, Detail string }
	json.Unmarshal(out[:strings.LastIndex(string(out), "]")+1], &items)
	health := ""
	for _, it := range items {
		if it.Name == "health" {
			health = it.Status + ": " + it.Detail
		}
	}
	if !strings.HasPrefix(health, "pass") || !strings.Contains(health, "https://") {
		t.Errorf("check's health item against a TLS API: %q\n%s", health, out)
	}
	cmd = exec.Command(binary, "token", "list", "-v")
	cmd.Env = append(cmd.Environ(), append(env, "BOOTFORGE_DATA_DIR="+ts.DataDir, "BOOTFORGE_ROOT="+ts.Root)...)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "https://"+ts.APIAddr+"/readyz uses this store") {
		t.Errorf("token list -v against a TLS API: %v\n%s", err, out)
	}
}
