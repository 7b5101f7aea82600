package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"bootforge/internal/allow"
)

// api.allow refuses a client outside it with 403 in the API's error
// shape, health checks and valid tokens included; one inside it (or an
// IPv4-mapped form of one) is answered as before.
func TestAPIAllow(t *testing.T) {
	a := newAPITest(t)
	a.srv.SetAllow(allow.List{Key: "api.allow", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	a.handler = a.srv.Handler()
	if code := a.call(a.read, "GET", "/api/v1/hosts", "", nil); code != http.StatusOK {
		t.Fatalf("allowed client: status %d\n%s", code, a.lastResponse)
	}
	for _, tt := range []struct{ remote, path, token string }{
		{"198.51.100.7:40000", "/api/v1/hosts", a.admin},
		{"198.51.100.7:40000", "/healthz", ""},
		{"[::ffff:198.51.100.7]:40000", "/api/v1/openapi.json", ""},
		{"[::1]:40000", "/readyz", ""},
	} {
		r := httptest.NewRequest("GET", tt.path, nil)
		r.RemoteAddr = tt.remote
		if tt.token != "" {
			r.Header.Set("Authorization", "Bearer "+tt.token)
		}
		w := httptest.NewRecorder()
		a.handler.ServeHTTP(w, r)
		var e apiError
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != http.StatusForbidden || e.Code != "client_not_allowed" || e.Message == "" {
			t.Errorf("%s %s: %d %q, want 403 client_not_allowed", tt.remote, tt.path, w.Code, w.Body)
		}
	}
	r := httptest.NewRequest("GET", "/healthz", nil)
	r.RemoteAddr = "[::ffff:192.0.2.9]:1"
	w := httptest.NewRecorder()
	a.handler.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Errorf("IPv4-mapped allowed client: status %d", w.Code)
	}
}
