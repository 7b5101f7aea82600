package e2e

import (
	"strings"
	"testing"
)

// TestAPIStoreDown: with its PostgreSQL store unreachable, the API says
// it could not check the token (503, code store) rather than that the
// token is unknown or revoked (401), and the dashboard's page keeps the
// session cookie. A store outage read as a revocation and signed every
// dashboard out. A garbage token is still 401.
func TestAPIStoreDown(t *testing.T) {
	need(t, "curl")
	st := e2eStore{name: "postgres", url: newPostgresStore(t)}
	s, cli := hiStart(t, st)
	out, code := dcCLI(t, cli, "token", "create", "--role", "read", "--name", "monitoring")
	if code != 0 {
		t.Fatalf("token create: exit %d\n%s", code, out)
	}
	tok := strings.TrimSpace(out)
	base := "http://" + s.APIAddr
	get := func(path string, args ...string) aeResult {
		t.Helper()
		r, err := aeCurl(t, base+path, args...)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := get("/api/v1/hosts", "-H", "Authorization: Bearer "+tok); r.code != 200 {
		t.Fatalf("with the store up: %d %s", r.code, r.body)
	}

	pgSetReachable(t, st.url, false)
	defer pgSetReachable(t, st.url, true)
	r := get("/api/v1/hosts", "-H", "Authorization: Bearer "+tok)
	if r.code != 503 || r.obj["code"] != "store" || !strings.Contains(r.body, "could not check the token") {
		t.Errorf("a good token with the store down: %d %s, want 503 code store", r.code, r.body)
	}
	if r := get("/api/v1/hosts", "-H", "Authorization: Bearer bf_00000000_nope"); r.code != 401 {
		t.Errorf("a garbage token with the store down: %d %s, want 401", r.code, r.body)
	}
	page := get("/", "-b", "bootforge_token="+tok)
	if strings.Contains(strings.ToLower(page.headers), "set-cookie: bootforge_token=;") || strings.Contains(page.body, "no longer valid") {
		t.Errorf("the dashboard signed out a good token with the store down: %d\n%s\n%s", page.code, page.headers, page.body)
	}

	pgSetReachable(t, st.url, true)
	if r := get("/api/v1/hosts", "-H", "Authorization: Bearer "+tok); r.code != 200 {
		t.Errorf("with the store back: %d %s", r.code, r.body)
	}
}
