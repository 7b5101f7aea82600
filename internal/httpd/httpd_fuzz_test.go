package httpd

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"bootforge/internal/bootfs"
)

// FuzzServePath sends arbitrary request paths through the real handler
// over a root with symlinks leading out of it: nothing outside the root
// is ever returned, and no path makes a 5xx or a panic.
func FuzzServePath(f *testing.F) {
	for _, s := range []string{"/ok.txt", "/sub/inner.txt", "/inside-link", "/out/secret", "/secret-rel", "/secret-abs",
		"/dir-abs/secret", "/sub/up/secret", "/sub/back/out/secret", "/../outside/secret", "/%2e%2e/outside/secret",
		"/..%2foutside%2fsecret", `/..\outside\secret`, "/%5c..%5coutside%5csecret", "/loop", "/fifo", "/sub", "/",
		"/ok.txt%00", "/ok.txt?x=1", "//ok.txt", "/%ff%fe"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	base := f.TempDir()
	outside, root := filepath.Join(base, "outside"), filepath.Join(base, "root")
	for _, d := range []string{outside, filepath.Join(root, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			f.Fatal(err)
		}
	}
	for p, text := range map[string]string{filepath.Join(outside, "secret"): "SECRET-OUTSIDE",
		filepath.Join(root, "ok.txt"): "ok", filepath.Join(root, "sub", "inner.txt"): "inner"} {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	for name, target := range map[string]string{"out": "../outside", "secret-rel": "../outside/secret",
		"secret-abs": filepath.Join(outside, "secret"), "dir-abs": outside, "sub/up": "../../outside",
		"sub/back": "..", "inside-link": "ok.txt", "loop": "loop"} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			f.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		f.Fatal(err)
	}
	handlers := map[bool]*Server{}
	for _, ci := range []bool{false, true} {
		d, err := bootfs.OpenDir(root, ci)
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { d.Close() })
		handlers[ci] = New(d, false, 16, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}
	f.Fuzz(func(t *testing.T, target string, caseInsensitive bool) {
		r := httptest.NewRequest("GET", "/", nil)
		if u, err := url.ParseRequestURI(target); err == nil {
			r.URL = u // as net/http would have read it
		} else {
			r.URL.Path = target // what a lax parser in front might pass on
		}
		r.RemoteAddr = "192.0.2.7:40000"
		w := httptest.NewRecorder()
		handlers[caseInsensitive].Handler().ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%q: %d %s", target, w.Code, w.Body)
		}
		if strings.Contains(w.Body.String(), "SECRET") {
			t.Fatalf("%q: %d served the file outside the root", target, w.Code)
		}
	})
}
