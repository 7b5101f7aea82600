package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestMetricsRoute: /metrics answers without a token, unless MetricsAuth
// asks for a read token; without a Metrics handler there is no route.
func TestMetricsRoute(t *testing.T) {
	db := newFakeStore()
	read, err := NewToken(db, RoleRead, "reader")
	if err != nil {
		t.Fatal(err)
	}
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("bootforge_up 1\n")) })
	get := func(s *Server, token string) (int, string) {
		r := httptest.NewRequest("GET", "/metrics", nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}

	open := &Server{DB: db, Metrics: metrics}
	if code, body := get(open, ""); code != http.StatusOK || body != "bootforge_up 1\n" {
		t.Fatalf("open /metrics: %d %q", code, body)
	}
	guarded := &Server{DB: db, Metrics: metrics, MetricsAuth: true}
	if code, _ := get(guarded, ""); code != http.StatusUnauthorized {
		t.Fatalf("/metrics with metrics_auth and no token: %d, want 401", code)
	}
	if code, _ := get(guarded, "bf_00000000_00"); code != http.StatusUnauthorized {
		t.Fatalf("/metrics with metrics_auth and a wrong token: %d, want 401", code)
	}
	if code, body := get(guarded, read); code != http.StatusOK || body != "bootforge_up 1\n" {
		t.Fatalf("/metrics with metrics_auth and a read token: %d %q", code, body)
	}
	if code, _ := get(&Server{DB: db}, ""); code != http.StatusNotFound {
		t.Fatalf("/metrics without a handler: %d, want 404", code)
	}
}
