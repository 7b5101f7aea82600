package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestAPI drives the management API with curl: no token 401, a read token
// writing 403, an admin token everywhere, a malformed body 400 naming the
// field, and every write in the boot log.
func TestAPI(t *testing.T) {
	need(t, "curl")
	root := t.TempDir()
	cfg := `inventory:
  default_profile: lab
  profiles:
    - name: lab
      menu:
        default: disk
        entries:
          - {name: disk, kind: local}
          - {name: rescue, kind: shell}
`
	s := StartServer(t, ServerOptions{Root: root, Config: cfg})
	token := func(role string) string {
		cmd := exec.Command(binary, "token", "create", "--role", role)
		cmd.Env = append(cmd.Environ(), "BOOTFORGE_DATA_DIR="+s.DataDir, "BOOTFORGE_ROOT="+root)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("token create: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	read, admin := token("read"), token("admin")
	base := "http://" + s.APIAddr
	call := func(tok, method, path, body string) (int, map[string]any, string) {
		t.Helper()
		args := []string{"-s", "-o", "-", "-w", "\n%{http_code}", "-X", method}
		if tok != "" {
			args = append(args, "-H", "Authorization: Bearer "+tok)
		}
		if body != "" {
			args = append(args, "-H", "Content-Type: application/json", "--data", body)
		}
		out, err := run(t, 10*time.Second, "curl", append(args, base+path)...)
		if err != nil {
			t.Fatalf("curl %s %s: %v\n%s", method, path, err, out)
		}
		i := strings.LastIndex(out, "\n")
		var code int
		json.Unmarshal([]byte(out[i+1:]), &code)
		text := out[:i]
		var obj map[string]any
		json.Unmarshal([]byte(text), &obj)
		return code, obj, text
	}

	for _, p := range []string{"/healthz", "/readyz", "/api/v1/openapi.json"} {
		if code, _, text := call("", "GET", p, ""); code != 200 {
			t.Errorf("GET %s without a token: %d %s", p, code, text)
		}
	}
	reads := []string{"/api/v1/health", "/api/v1/hosts", "/api/v1/profiles", "/api/v1/next-boot", "/api/v1/leases", "/api/v1/events"}
	for _, p := range reads {
		if code, obj, _ := call("", "GET", p, ""); code != 401 || obj["code"] != "unauthorized" {
			t.Errorf("GET %s without a token: %d %v", p, code, obj)
		}
		if code, _, _ := call("bf_00000000_nope", "GET", p, ""); code != 401 {
			t.Errorf("GET %s with a made-up token: %d", p, code)
		}
		if code, _, text := call(read, "GET", p, ""); code != 200 {
			t.Errorf("GET %s with a read token: %d %s", p, code, text)
		}
	}
	writes := []struct{ method, path, body string }{
		{"PUT", "/api/v1/hosts/pc1", `{"macs":["52:54:00:aa:00:01"],"labels":["lab"]}`},
		{"PUT", "/api/v1/next-boot/52:54:00:aa:00:01", `{"entry":"rescue","expires":"2h"}`},
		{"DELETE", "/api/v1/next-boot/52:54:00:aa:00:01", ""},
		{"DELETE", "/api/v1/hosts/pc1", ""},
	}
	for _, w := range writes {
		if code, obj, _ := call(read, w.method, w.path, w.body); code != 403 || obj["code"] != "forbidden" {
			t.Errorf("%s %s with a read token: %d %v", w.method, w.path, code, obj)
		}
	}
	for _, w := range writes {
		if code, _, text := call(admin, w.method, w.path, w.body); code != 200 {
			t.Errorf("%s %s with an admin token: %d %s", w.method, w.path, code, text)
		}
	}
	// The host is gone again; the store had it in between, and the log says so.
	bad := []struct{ path, body, field string }{
		{"/api/v1/hosts/pc2", `{"macs":["zz"]}`, "macs[0]"},
		{"/api/v1/hosts/pc2", `{"macs":"52:54:00:aa:00:02"}`, "macs"},
		{"/api/v1/hosts/pc2", `{"macz":[]}`, "macz"},
		{"/api/v1/hosts/pc2", `{"macs":["52:54:00:aa:00:02"],"profile":"ghost"}`, "profile"},
		{"/api/v1/next-boot/52:54:00:aa:00:02", `{"entry":"nope"}`, "entry"},
		{"/api/v1/next-boot/52:54:00:aa:00:02", `{"entry":"rescue","expires":"soon"}`, "expires"},
		{"/api/v1/next-boot/not-a-mac", `{"entry":"rescue"}`, "mac"},
		{"/api/v1/hosts/pc2", `{"macs":[`, ""},
	}
	for _, b := range bad {
		code, obj, text := call(admin, "PUT", b.path, b.body)
		if code != 400 || obj["code"] != "bad_request" || (b.field != "" && obj["field"] != b.field) {
			t.Errorf("PUT %s %s: %d %s, want 400 naming %q", b.path, b.body, code, text, b.field)
		}
	}
	code, _, text := call(read, "GET", "/api/v1/events?mac=52:54:00:aa:00:01", "")
	if code != 200 || !strings.Contains(text, `"protocol": "api"`) || !strings.Contains(text, "host stored") || !strings.Contains(text, "set by") {
		t.Errorf("writes missing from the boot log: %d %s", code, text)
	}
	if code, obj, _ := call(read, "GET", "/api/v1/events?since=yesterday", ""); code != 400 || obj["field"] != "since" {
		t.Errorf("bad since: %d %v", code, obj)
	}
	// A limit is the whole value: 5abc is not 5.
	if code, obj, _ := call(read, "GET", "/api/v1/events?limit=5abc", ""); code != 400 || obj["field"] != "limit" {
		t.Errorf("limit=5abc: %d %v, want 400 naming limit", code, obj)
	}
	if code, _, text := call(read, "GET", "/api/v1/events?limit=5", ""); code != 200 {
		t.Errorf("limit=5: %d %s", code, text)
	}
}
