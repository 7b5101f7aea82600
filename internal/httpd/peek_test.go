package httpd

import (
	"path/filepath"
	"sync"
	"testing"

	"bootforge/internal/bootfs"
)

// peekLog records whether each request it opens is a peek.
type peekLog struct {
	bootfs.FS
	mu    sync.Mutex
	peeks []bool
}

func (p *peekLog) Open(req bootfs.Request) (bootfs.File, error) {
	p.mu.Lock()
	p.peeks = append(p.peeks, req.Peek)
	p.mu.Unlock()
	return p.FS.Open(req)
}

// A HEAD opens its file as a peek, so that a generated menu takes no
// effect (menufs); a GET does not. Both ways through: the fast path, and
// net/http's for a request with a condition.
func TestHeadOpensAPeek(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "menu.ipxe"), []byte("#!ipxe\n"))
	dir, err := bootfs.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	files := &peekLog{FS: dir}
	f := startFastFS(t, files, 8)
	for _, tt := range []struct {
		method string
		header []string
		peek   bool
	}{
		{"HEAD", nil, true},
		{"GET", nil, false},
		{"HEAD", []string{"If-None-Match", `"x"`}, true}, // net/http's path
		{"GET", []string{"If-None-Match", `"x"`}, false},
	} {
		files.mu.Lock()
		files.peeks = nil
		files.mu.Unlock()
		res, _ := f.do(t, tt.method, "/menu.ipxe", tt.header...)
		if res.StatusCode != 200 || res.ContentLength != 7 {
			t.Fatalf("%s %v: status %d, length %d", tt.method, tt.header, res.StatusCode, res.ContentLength)
		}
		files.mu.Lock()
		got := files.peeks
		files.mu.Unlock()
		if len(got) != 1 || got[0] != tt.peek {
			t.Errorf("%s %v opened with Peek %v, want [%v]", tt.method, tt.header, got, tt.peek)
		}
	}
}
