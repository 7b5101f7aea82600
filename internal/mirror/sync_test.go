package mirror

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"bootforge/internal/catalog"
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

// A sync interrupted on a version's second file keeps the first, which
// arrived whole and verified, for the next sync: that one fetches only the
// rest of the second. Before, the first file had already been moved into
// the version's staging directory, which the failed sync removed, so every
// interrupted sync fetched every finished file of the version again (a
// whole boot.wim, to resume a BCD).
func TestSyncInterruptedKeepsFinishedFiles(t *testing.T) {
	kernel := bytes.Repeat([]byte("kernel.."), 40_000)
	initrd := bytes.Repeat([]byte("initrd.."), 40_000)
	p := newFakePrimary(t, []string{"vmlinuz", "initrd.gz"}, map[string][]byte{"vmlinuz": kernel, "initrd.gz": initrd})
	p.stallAfter["/images/deb/1.0.0/initrd.gz"] = 100_000
	root := t.TempDir()
	if _, err := p.sync(t, root); !errors.Is(err, stall.ErrStalled) {
		t.Fatalf("first sync: %v; want the stall", err)
	}
	if _, err := os.Stat(filepath.Join(root, image.Dir, PartialDir, sumOf(kernel))); err != nil {
		t.Errorf("the finished vmlinuz is not kept for the next sync: %v", err)
	}
	delete(p.stallAfter, "/images/deb/1.0.0/initrd.gz")
	res, err := p.sync(t, root)
	if err != nil || len(res.Installed) != 1 {
		t.Fatalf("second sync: %v, installed %v", err, res.Installed)
	}
	if n := p.getsOf("vmlinuz"); n != 1 {
		t.Errorf("vmlinuz was fetched %d times; want once, the second sync using the file the first one finished", n)
	}
	if n := p.getsOf("initrd.gz"); n != 2 {
		t.Errorf("initrd.gz was fetched %d times; want 2 (the stalled fetch, then its rest)", n)
	}
	for name, want := range map[string][]byte{"vmlinuz": kernel, "initrd.gz": initrd} {
		got, err := os.ReadFile(filepath.Join(root, image.Dir, "deb", "1.0.0", name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("installed %s: %v, %d bytes, not the primary's", name, err, len(got))
		}
	}
	left, _ := os.ReadDir(filepath.Join(root, image.Dir, PartialDir))
	if len(left) != 0 {
		t.Errorf("partial files left after the version was installed: %v", left)
	}
}

// A partial file whose bytes are not the start of the file (what a primary
// that served garbage left when its sync was cut short) spoils only that
// attempt: the sync fetches the file again from its first byte and
// installs the version. Before, the resumed file failed its check, the
// sync failed naming a mismatch the primary no longer had, and only a
// second run succeeded.
func TestSyncBadPartialRefetched(t *testing.T) {
	kernel := bytes.Repeat([]byte("kernel.."), 40_000)
	p := newFakePrimary(t, []string{"vmlinuz"}, map[string][]byte{"vmlinuz": kernel})
	root := t.TempDir()
	partial := filepath.Join(root, image.Dir, PartialDir)
	if err := os.MkdirAll(partial, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(partial, sumOf(kernel)), bytes.Repeat([]byte("garbage!"), 5_000), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := p.sync(t, root)
	if err != nil || len(res.Installed) != 1 {
		t.Fatalf("sync: %v, installed %v; want deb@1.0.0 installed from a fresh fetch", err, res.Installed)
	}
	got, err := os.ReadFile(filepath.Join(root, image.Dir, "deb", "1.0.0", "vmlinuz"))
	if err != nil || !bytes.Equal(got, kernel) {
		t.Errorf("installed vmlinuz: %v, not the primary's", err)
	}
	if n := p.getsOf("vmlinuz"); n != 2 {
		t.Errorf("vmlinuz was fetched %d times; want 2 (the resume, then the whole file)", n)
	}
}

// A sync that installs every version it is asked for leaves nothing in
// .mirror-partial: a partial file of a version the primary has since
// replaced would otherwise stay there for good (nothing else removes
// them), gigabytes of an ISO on a mirror's disk.
func TestSyncCleanLeavesNoPartials(t *testing.T) {
	p := newFakePrimary(t, []string{"vmlinuz"}, map[string][]byte{"vmlinuz": bytes.Repeat([]byte("k"), 10_000)})
	root := t.TempDir()
	partial := filepath.Join(root, image.Dir, PartialDir)
	if err := os.MkdirAll(partial, 0o700); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(partial, sumOf([]byte("a file of a version the primary no longer has")))
	if err := os.WriteFile(stale, []byte("half of it"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := p.sync(t, root); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(partial); len(left) != 0 {
		t.Errorf("after a sync that installed everything, .mirror-partial still holds %v", left)
	}
}

// A second sync into the same root while one runs (a timer's and one by
// hand) stops at once and says so, instead of writing the same partial
// files: a restart in one truncated a file the other had checked.
func TestSyncRefusesConcurrentSync(t *testing.T) {
	p := newFakePrimary(t, []string{"vmlinuz"}, map[string][]byte{"vmlinuz": bytes.Repeat([]byte("k"), 200_000)})
	p.stallAfter["/images/deb/1.0.0/vmlinuz"] = 100_000
	root := t.TempDir()
	first := make(chan error, 1)
	go func() {
		s := &Syncer{Base: p.URL, Root: root, Catalog: catalog.New(root, t.TempDir(), &memStates{}), Stall: time.Second}
		_, err := s.Sync(context.Background())
		first <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); p.getsOf("vmlinuz") == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first sync never asked for vmlinuz")
		}
	}
	_, err := p.sync(t, root)
	if err == nil || !strings.Contains(err.Error(), "another mirror sync") {
		t.Errorf("a sync while another runs: %v; want it refused", err)
	}
	if n := p.getsOf("vmlinuz"); n != 1 {
		t.Errorf("vmlinuz was fetched %d times; want once, by the first sync only", n)
	}
	<-first
}

// swapAtEnd is a Progress writer that, once the last byte of a file has
// arrived, puts another file in the partial file's place: after the sync
// has written and hashed the bytes, before it links the file it verified
// into the version.
type swapAtEnd struct {
	t           *testing.T
	left        int64
	name, other string
}

func (w *swapAtEnd) Write(b []byte) (int, error) {
	w.left -= int64(len(b))
	if w.left == 0 {
		if err := os.Rename(w.other, w.name); err != nil {
			w.t.Error(err)
		}
	}
	return len(b), nil
}

// What a sync installs is the file it verified. Before, it verified the
// partial file through its descriptor but linked it into the version by
// name: a file put in its place in between (of the same size here) was
// installed, unverified, and the sync reported the version installed.
func TestSyncInstallsTheFileItVerified(t *testing.T) {
	kernel := bytes.Repeat([]byte("k"), 10_000)
	p := newFakePrimary(t, []string{"vmlinuz"}, map[string][]byte{"vmlinuz": kernel})
	root := t.TempDir()
	other := filepath.Join(root, image.Dir, "other")
	if err := os.MkdirAll(filepath.Dir(other), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, bytes.Repeat([]byte("X"), len(kernel)), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &Syncer{Base: p.URL, Root: root, Catalog: catalog.New(root, t.TempDir(), &memStates{}), Stall: 200 * time.Millisecond}
	s.Progress = func(name string, size, have int64) io.Writer {
		return &swapAtEnd{t: t, left: size - have, name: filepath.Join(root, image.Dir, PartialDir, sumOf(kernel)), other: other}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := s.Sync(ctx)
	if got, rerr := os.ReadFile(filepath.Join(root, "images", "deb", "1.0.0", "vmlinuz")); rerr == nil && !bytes.Equal(got, kernel) {
		t.Fatalf("installed a vmlinuz that is not the file verified (%q...); sync: %v, %+v", got[:8], err, res)
	}
	if err == nil || !strings.Contains(err.Error(), "deb@1.0.0: vmlinuz: the partial file") || !strings.Contains(err.Error(), "was replaced after the sync verified it") {
		t.Fatalf("sync: %v; want the replaced partial file named", err)
	}
	if len(res.Installed) != 0 {
		t.Errorf("installed %v", res.Installed)
	}
	// The next sync fetches the file again, and installs it.
	if _, err := p.sync(t, root); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "images", "deb", "1.0.0", "vmlinuz")); !bytes.Equal(got, kernel) {
		t.Fatal("the next sync did not install the primary's vmlinuz")
	}
}

// A version's manifest on the mirror is read as a sync writes it: a
// regular file. Before, it was read by name, following a link (a version
// directory holding only a link to the primary's manifest, kept
// elsewhere, was "present" and made active, though none of its files
// were there) and blocking for good on a FIFO.
func TestSyncReadsOnlyARegularManifest(t *testing.T) {
	kernel := bytes.Repeat([]byte("k"), 10_000)
	p := newFakePrimary(t, []string{"vmlinuz"}, map[string][]byte{"vmlinuz": kernel})
	resp, err := http.Get(p.URL + "/images/deb/1.0.0/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for name, plant := range map[string]func(p string) error{
		"symlink": func(p string) error {
			elsewhere := filepath.Join(t.TempDir(), "manifest.json")
			if err := os.WriteFile(elsewhere, manifest, 0o644); err != nil {
				return err
			}
			return os.Symlink(elsewhere, p)
		},
		"fifo": func(p string) error { return syscall.Mkfifo(p, 0o644) },
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			mp := filepath.Join(root, "images", "deb", "1.0.0", image.ManifestName)
			if err := os.MkdirAll(filepath.Dir(mp), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := plant(mp); err != nil {
				t.Fatal(err)
			}
			// Nor is a FIFO opened: opening one (or a device) can do
			// something by itself.
			in, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(in)
			if name == "fifo" {
				if _, err := unix.InotifyAddWatch(in, mp, unix.IN_OPEN); err != nil {
					t.Fatal(err)
				}
			}
			defer func() {
				if n, err := unix.Read(in, make([]byte, 4096)); n > 0 || !errors.Is(err, unix.EAGAIN) {
					t.Errorf("the sync opened the FIFO (inotify: %d bytes, %v)", n, err)
				}
			}()
			type result struct {
				res Result
				err error
			}
			done := make(chan result, 1)
			go func() {
				res, err := p.sync(t, root)
				done <- result{res, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(30 * time.Second):
				// Not a time limit on the sync: it is blocked in open(2)
				// on the FIFO and would stay there; a writer that comes
				// and goes lets it return, to end the test.
				if w, err := os.OpenFile(mp, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					w.Close()
				}
				<-done
				t.Fatal("the sync blocked opening a FIFO in a version's manifest's place")
			}
			if r.err == nil || !strings.Contains(r.err.Error(), "deb@1.0.0: "+mp+" is a ") || !strings.Contains(r.err.Error(), "remove the version's directory") {
				t.Fatalf("sync: %v, %+v; want deb@1.0.0's manifest refused, named", r.err, r.res)
			}
			if len(r.res.Present)+len(r.res.Installed)+len(r.res.Moves) != 0 {
				t.Fatalf("sync: %+v", r.res)
			}
		})
	}
}
