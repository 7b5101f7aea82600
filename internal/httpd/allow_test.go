package httpd

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"bootforge/internal/allow"
	"bootforge/internal/audit"
	"bootforge/internal/bootfs"
)

type events struct {
	mu sync.Mutex
	ev []audit.Event
}

func (e *events) Record(ev audit.Event) { e.mu.Lock(); e.ev = append(e.ev, ev); e.mu.Unlock() }

// A client outside the allow-list gets 403 on every listener, before the
// file is looked at; the boot log says why. An allowed client, an
// IPv4-mapped one too, gets the file.
func TestNotAllowedIs403(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "boot.ipxe"), []byte("#!ipxe\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err := bootfs.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	s := New(dir, true, 8, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ev := &events{}
	s.Events = ev
	h := s.Handler()
	get := func(remote string, tls *tls.ConnectionState) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/boot.ipxe", nil)
		r.RemoteAddr, r.TLS = remote, tls
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := get("198.51.100.7:4000", nil); w.Code != http.StatusOK {
		t.Fatalf("no allow-list: status %d, want 200", w.Code)
	}
	s.SetAllow(allow.List{Key: "http.allow", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	for _, tt := range []struct {
		remote string
		tls    *tls.ConnectionState
		want   int
	}{
		{"198.51.100.7:4000", nil, http.StatusForbidden},
		{"198.51.100.7:4000", &tls.ConnectionState{}, http.StatusForbidden},
		{"[::ffff:198.51.100.7]:4000", nil, http.StatusForbidden},
		{"192.0.2.7:4000", nil, http.StatusOK},
		{"[::ffff:192.0.2.7]:4000", &tls.ConnectionState{}, http.StatusOK},
	} {
		w := get(tt.remote, tt.tls)
		if w.Code != tt.want {
			t.Errorf("%s (tls %v): status %d, want %d", tt.remote, tt.tls != nil, w.Code, tt.want)
		}
		if w.Code == http.StatusForbidden && strings.Contains(w.Body.String(), "ipxe") {
			t.Errorf("%s: refused, but the body holds the file", tt.remote)
		}
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	refused := 0
	for _, e := range ev.ev {
		if e.Result == "refused" {
			refused++
			if e.Reason != "198.51.100.7 is not in http.allow" || e.File != "boot.ipxe" {
				t.Errorf("refusal event %+v", e)
			}
		}
	}
	if refused != 3 {
		t.Errorf("%d refusal events, want 3", refused)
	}
}
