package httpd

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"bootforge/internal/allow"
	"bootforge/internal/bootfs"
)

// gateFS holds every Open of "slow" until the gate closes, so that a
// request stays in flight.
type gateFS struct {
	bootfs.FS
	entered chan struct{}
	gate    chan struct{}
}

func (g gateFS) Open(req bootfs.Request) (bootfs.File, error) {
	if req.Path == "/slow" {
		g.entered <- struct{}{}
		<-g.gate
	}
	return g.FS.Open(req)
}

// max_per_client counts an IPv6 client by its address, however the
// address is written (zone, mapped): another address of the same /64 is
// another client.
func TestPerClientIPv6(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"slow", "fast"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := bootfs.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	g := gateFS{FS: dir, entered: make(chan struct{}), gate: make(chan struct{})}
	s := New(g, false, 8, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.SetPerClient(1)
	h := s.Handler()
	get := func(remote, path string) int {
		r := httptest.NewRequest("GET", path, nil)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	done := make(chan int)
	go func() { done <- get("[2001:db8::5]:4000", "/slow") }()
	<-g.entered
	for _, tt := range []struct {
		remote string
		want   int
	}{
		{"[2001:db8::5]:4001", http.StatusServiceUnavailable},
		{"[2001:DB8:0::5]:4002", http.StatusServiceUnavailable},
		{"[2001:db8::5%br0]:4003", http.StatusServiceUnavailable},
		{"[2001:db8::6]:4004", http.StatusOK}, // the same /64, another machine
		{"192.0.2.5:4005", http.StatusOK},
	} {
		if got := get(tt.remote, "/fast"); got != tt.want {
			t.Errorf("%s while 2001:db8::5 has one in flight: status %d, want %d", tt.remote, got, tt.want)
		}
	}
	close(g.gate)
	if code := <-done; code != http.StatusOK {
		t.Errorf("the slow request: status %d", code)
	}
	if got := get("[2001:db8::5]:4006", "/fast"); got != http.StatusOK {
		t.Errorf("after the slow request: status %d", got)
	}
}

// Over a real IPv6 socket: an IPv6 allow-list refuses ::1 with 403 and
// the boot log names it; once ::1 is in the list it gets the file.
func TestAllowListIPv6(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "snponly.efi"), []byte("efi"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err := bootfs.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	s := New(dir, true, 8, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ev := &events{}
	s.Events = ev
	s.SetAllow(allow.List{Key: "http.allow", Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}})
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(s.Handler(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	url := "http://" + ln.Addr().String() + "/snponly.efi"
	get := func() (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != http.StatusForbidden || body == "efi" {
		t.Fatalf("::1 outside 2001:db8::/32: %d %q", code, body)
	}
	ev.mu.Lock()
	if len(ev.ev) != 1 || ev.ev[0].IP != "::1" || ev.ev[0].Reason != "::1 is not in http.allow" {
		t.Errorf("events %+v", ev.ev)
	}
	ev.mu.Unlock()
	s.SetAllow(allow.List{Key: "http.allow", Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("::1/128")}})
	if code, body := get(); code != http.StatusOK || body != "efi" {
		t.Fatalf("::1 inside the list: %d %q", code, body)
	}
}
