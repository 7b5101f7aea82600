package mirror

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/catalog"
	"bootforge/internal/image"
	"bootforge/internal/store"
)

// memStates is a catalog.Store in memory.
type memStates struct {
	mu   sync.Mutex
	rows map[string]store.ImageState
}

func (m *memStates) ImageStates() ([]store.ImageState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.ImageState
	for _, r := range m.rows {
		out = append(out, r)
	}
	return out, nil
}

func (m *memStates) SetImageStates(_, changes []store.ImageState, _ ...audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rows == nil {
		m.rows = map[string]store.ImageState{}
	}
	for _, c := range changes {
		m.rows[c.Name+"@"+c.Version] = c
	}
	return nil
}

func (m *memStates) PutEvents([]audit.Event) error { return nil }

// fakePrimary serves deb@1.0.0 with files (path → content, in manifest
// order) as a primary's file server does. stallAfter, if set for a path,
// sends that many bytes of it and then nothing. It counts the GETs of
// each path.
type fakePrimary struct {
	*httptest.Server
	files      map[string][]byte
	stallAfter map[string]int
	mu         sync.Mutex
	gets       map[string]int
}

func newFakePrimary(t *testing.T, order []string, files map[string][]byte) *fakePrimary {
	t.Helper()
	m := image.Manifest{Name: "deb", Version: "1.0.0", Template: "linux"}
	for _, p := range order {
		sum := sha256.Sum256(files[p])
		m.Files = append(m.Files, image.File{Path: p, Size: int64(len(files[p])), SHA256: hex.EncodeToString(sum[:])})
	}
	manifest, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	msum := sha256.Sum256(manifest)
	index, err := json.Marshal(Index{Versions: []Version{{Name: "deb", Version: "1.0.0",
		Manifest: "images/deb/1.0.0/manifest.json", SHA256: hex.EncodeToString(msum[:])}}})
	if err != nil {
		t.Fatal(err)
	}
	p := &fakePrimary{files: files, stallAfter: map[string]int{}, gets: map[string]int{}}
	release := make(chan struct{})
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.gets[r.URL.Path]++
		stall, stalls := p.stallAfter[r.URL.Path]
		p.mu.Unlock()
		switch r.URL.Path {
		case "/bootforge/images.json":
			w.Write(index)
			return
		case "/images/deb/1.0.0/manifest.json":
			w.Write(manifest)
			return
		}
		data, ok := files[r.URL.Path[len("/images/deb/1.0.0/"):]]
		if !ok || len(r.URL.Path) <= len("/images/deb/1.0.0/") {
			http.NotFound(w, r)
			return
		}
		if !stalls {
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data[:stall])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(p.Close)
	t.Cleanup(func() { close(release) })
	return p
}

func (p *fakePrimary) getsOf(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gets["/images/deb/1.0.0/"+path]
}

func (p *fakePrimary) sync(t *testing.T, root string) (Result, error) {
	t.Helper()
	return syncFrom(t, p.URL, root)
}

// syncFrom syncs root from the primary at base.
func syncFrom(t *testing.T, base, root string) (Result, error) {
	t.Helper()
	s := &Syncer{Base: base, Root: root, Catalog: catalog.New(root, t.TempDir(), &memStates{}), Stall: 200 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return s.Sync(ctx)
}

func sumOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
