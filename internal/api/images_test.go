package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"bootforge/internal/catalog"
	"bootforge/internal/image"
	"bootforge/internal/store"
)

// writeVersion leaves a version on disk as `image build` would: its
// files and a manifest listing them.
func writeVersion(t *testing.T, root, ref string, files map[string]string) string {
	t.Helper()
	id, err := image.ParseID(ref)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, filepath.FromSlash(id.Dir()))
	m := image.Manifest{Name: id.Name, Version: id.Version.String(), Template: image.TemplateLinux,
		Built: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), Boot: image.Boot{Kind: "linux", Kernel: "vmlinuz"}}
	for p, content := range files {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256([]byte(content))
		m.Files = append(m.Files, image.File{Path: p, Size: int64(len(content)), SHA256: hex.EncodeToString(h[:])})
	}
	data, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, image.ManifestName), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The image list shows every built version, first pending, then the
// outcome of the background verify: ok, or drift naming the file.
func TestListImagesVerifies(t *testing.T) {
	d := newDashTest(t)
	dir := t.TempDir()
	root, data := filepath.Join(dir, "root"), filepath.Join(dir, "data")
	db, err := store.OpenSQLite(filepath.Join(data, "bootforge.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := catalog.New(root, data, db)
	d.srv.Images = func() *catalog.Catalog { return c }
	writeVersion(t, root, "alpine@1.0.0", map[string]string{"vmlinuz": "kernel one"})
	bad := writeVersion(t, root, "alpine@1.1.0", map[string]string{"vmlinuz": "kernel two"})
	if err := os.WriteFile(filepath.Join(bad, "vmlinuz"), []byte("kernel 2!!"), 0o644); err != nil {
		t.Fatal(err)
	}

	var list []imageView
	if code := d.call(d.read, "GET", "/api/v1/images", "", &list); code != 200 || len(list) != 2 {
		t.Fatalf("images: %d %s", code, d.lastResponse)
	}
	for _, v := range list {
		if v.State != "staged" || (v.Verify.Status != "pending" && v.Verify.Status != "ok" && v.Verify.Status != "drift") {
			t.Errorf("first listing: %+v", v)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		d.call(d.read, "GET", "/api/v1/images", "", &list)
		if list[0].Verify.Status != "pending" && list[1].Verify.Status != "pending" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still pending after 10 s: %s", d.lastResponse)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v := list[0]; v.Version != "1.0.0" || v.Verify.Status != "ok" || v.Verify.Checked.IsZero() {
		t.Errorf("the intact version: %+v", v)
	}
	if v := list[1]; v.Version != "1.1.0" || v.Verify.Status != "drift" || len(v.Verify.Drifts) != 1 ||
		!strings.Contains(v.Verify.Drifts[0], "vmlinuz: digest differs") {
		t.Errorf("the tampered version: %+v", v)
	}
	if code := d.call("", "GET", "/api/v1/images", "", nil); code != 401 {
		t.Errorf("images without a token: %d", code)
	}
}

// The list is of the catalog Images returns now: after a reload moves the
// root, the new root's versions, and no verification of the old root's.
func TestListImagesFollowsCatalog(t *testing.T) {
	d := newDashTest(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	db, err := store.OpenSQLite(filepath.Join(data, "bootforge.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	root1, root2 := filepath.Join(dir, "root1"), filepath.Join(dir, "root2")
	writeVersion(t, root1, "alpine@1.0.0", map[string]string{"vmlinuz": "kernel one"})
	writeVersion(t, root2, "alpine@1.0.0", map[string]string{"vmlinuz": "kernel one"})
	bad := writeVersion(t, root2, "alpine@2.0.0", map[string]string{"vmlinuz": "kernel two"})
	if err := os.WriteFile(filepath.Join(bad, "vmlinuz"), []byte("kernel 2!!"), 0o644); err != nil {
		t.Fatal(err)
	}
	var current atomic.Pointer[catalog.Catalog]
	current.Store(catalog.New(root1, data, db))
	d.srv.Images = current.Load

	var list []imageView
	waitVerified := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if code := d.call(d.read, "GET", "/api/v1/images", "", &list); code != 200 || len(list) != n {
				t.Fatalf("images: %d, want %d versions: %s", code, n, d.lastResponse)
			}
			pending := false
			for _, v := range list {
				pending = pending || v.Verify.Status == "pending"
			}
			if !pending {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("still pending after 10 s: %s", d.lastResponse)
			}
		}
	}
	waitVerified(1)
	if list[0].Verify.Status != "ok" {
		t.Fatalf("root1's version: %+v", list[0])
	}

	// The root moves to root2: the list shows root2's versions, each
	// verified in root2, not root1's result for 1.0.0.
	current.Store(catalog.New(root2, data, db))
	if code := d.call(d.read, "GET", "/api/v1/images", "", &list); code != 200 || len(list) != 2 {
		t.Fatalf("images after the move: %d %s", code, d.lastResponse)
	}
	if v := list[0]; v.Verify.Status != "pending" {
		t.Errorf("1.0.0 right after the move shows root1's verification: %+v", v)
	}
	waitVerified(2)
	if v := list[0]; v.Version != "1.0.0" || v.Verify.Status != "ok" {
		t.Errorf("root2's 1.0.0: %+v", v)
	}
	if v := list[1]; v.Version != "2.0.0" || v.Verify.Status != "drift" {
		t.Errorf("root2's 2.0.0: %+v", v)
	}
}

// stalledWriter is a client that stops reading: its first Write blocks
// until released.
type stalledWriter struct {
	h       http.Header
	entered chan struct{}
	release chan struct{}
}

func (s *stalledWriter) Header() http.Header { return s.h }
func (s *stalledWriter) WriteHeader(int)     {}
func (s *stalledWriter) Write(p []byte) (int, error) {
	close(s.entered)
	<-s.release
	return len(p), nil
}

// A client that stops reading the image list holds up nobody else: the
// list was written with the verifications' lock held, so every other
// /api/v1/images (the dashboard's, every 10 s) and the background verify
// waited on that one connection, up to the server's write timeout.
func TestListImagesSlowReader(t *testing.T) {
	d := newDashTest(t)
	dir := t.TempDir()
	db, err := store.OpenSQLite(filepath.Join(dir, "data", "bootforge.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := catalog.New(filepath.Join(dir, "root"), filepath.Join(dir, "data"), db)
	d.srv.Images = func() *catalog.Catalog { return c }
	writeVersion(t, filepath.Join(dir, "root"), "alpine@1.0.0", map[string]string{"vmlinuz": "kernel one"})

	slow := &stalledWriter{h: http.Header{}, entered: make(chan struct{}), release: make(chan struct{})}
	defer close(slow.release)
	go d.srv.listImages(slow, httptest.NewRequest("GET", "/api/v1/images", nil))
	<-slow.entered

	done := make(chan int)
	go func() {
		w := httptest.NewRecorder()
		d.srv.listImages(w, httptest.NewRequest("GET", "/api/v1/images", nil))
		done <- w.Code
	}()
	select {
	case code := <-done:
		if code != 200 {
			t.Errorf("the second list: %d", code)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a client that stopped reading the image list held up the next one")
	}
}
