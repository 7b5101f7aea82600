package mirror

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"bootforge/internal/image"
	"bootforge/internal/stall"
)

// A primary that sends the headers and the first 100,000 bytes of a file
// and then nothing fails the sync once Stall passes without data, with
// an error that says so, and the bytes that came stay as the partial file
// the next sync resumes from. Before, the sync waited forever.
func TestSyncStalledTransfer(t *testing.T) {
	file := bytes.Repeat([]byte("0123456789"), 30_000)
	const sent = 100_000
	sum := sha256.Sum256(file)
	fileSum := hex.EncodeToString(sum[:])
	manifest, err := json.Marshal(image.Manifest{Name: "deb", Version: "1.0.0", Template: "linux",
		Files: []image.File{{Path: "vmlinuz", Size: int64(len(file)), SHA256: fileSum}}})
	if err != nil {
		t.Fatal(err)
	}
	msum := sha256.Sum256(manifest)
	index, err := json.Marshal(Index{Versions: []Version{{Name: "deb", Version: "1.0.0",
		Manifest: "images/deb/1.0.0/manifest.json", SHA256: hex.EncodeToString(msum[:])}}})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/bootforge/images.json":
			w.Write(index)
		case "/images/deb/1.0.0/manifest.json":
			w.Write(manifest)
		case "/images/deb/1.0.0/vmlinuz":
			w.Header().Set("Content-Length", strconv.Itoa(len(file)))
			w.Write(file[:sent])
			w.(http.Flusher).Flush()
			select { // the stall: nothing more until the client gives up
			case <-r.Context().Done():
			case <-release:
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	root := t.TempDir()
	s := &Syncer{Base: srv.URL, Root: root, Stall: 200 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	res, err := s.Sync(ctx)
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("the sync waited on the stalled transfer for %s: %v", took, err)
	}
	if !errors.Is(err, stall.ErrStalled) || !strings.Contains(err.Error(), "after 100000 bytes") {
		t.Fatalf("sync: %v; want the stall after 100000 bytes", err)
	}
	t.Logf("failed after %s: %v", took.Round(time.Millisecond), err)
	if len(res.Installed) != 0 {
		t.Errorf("installed %v from a stalled transfer", res.Installed)
	}
	st, err := os.Stat(filepath.Join(root, image.Dir, PartialDir, fileSum))
	if err != nil || st.Size() != sent {
		t.Errorf("the partial file: %v, want %d bytes kept for the next sync", err, sent)
	}
	if _, err := os.Stat(filepath.Join(root, image.Dir, "deb")); !os.IsNotExist(err) {
		t.Errorf("a stalled sync installed images/deb (%v)", err)
	}
}

// A sync into a root that has no images/ yet makes it as `image build`
// does, readable by others: the service runs as its own user
// (packaging/bootforge.service), and a sync run as root must not leave it
// a directory it cannot enter. Before, images/ was made 0700 along with
// .mirror-partial, and the mirror answered 403 for every image file.
func TestSyncImagesDirReadable(t *testing.T) {
	p := newFakePrimary(t, []string{"vmlinuz"}, map[string][]byte{"vmlinuz": bytes.Repeat([]byte("k"), 10_000)})
	root := t.TempDir()
	if _, err := p.sync(t, root); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(root, image.Dir))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o005 != 0o005 {
		t.Errorf("images/ is %v: others cannot enter it, so a server not run as the sync's user serves none of its files", st.Mode().Perm())
	}
	st, err = os.Stat(filepath.Join(root, image.Dir, PartialDir))
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("images/%s: %v, %v; want 0700", PartialDir, st.Mode().Perm(), err)
	}
}
