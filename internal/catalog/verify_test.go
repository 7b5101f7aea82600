package catalog

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"bootforge/internal/image"
)

// Verify checks each file through the root it opened and hashes the bytes
// of the file it checked. The served root here is a link, moved to
// another tree once Verify has opened it (from its first progress call,
// before any file is looked up), as an operator who switches a root link
// between two trees does. Before, each file's size was checked in the
// tree Verify opened but its bytes were hashed by path name, in the other
// tree: a tampered file was reported clean because its namesake there was
// intact, and a FIFO there blocked Verify for good.
func TestVerifyHashesTheFileItChecked(t *testing.T) {
	f := newFixture(t)
	base := filepath.Dir(f.root)
	a, b := filepath.Join(base, "tree-a"), filepath.Join(base, "tree-b")
	if err := os.Rename(f.root, a); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(a, f.root); err != nil {
		t.Fatal(err)
	}
	id := f.build(t, "deb@1.0.0", map[string]string{"vmlinuz": "kernel", "initrd.gz": "initrd"})
	if err := os.CopyFS(b, os.DirFS(a)); err != nil {
		t.Fatal(err)
	}
	verDir := func(tree string) string { return filepath.Join(tree, "images", "deb", "1.0.0") }
	// In the tree Verify opens, the kernel is tampered with (same size);
	// in the other, the initrd is a FIFO.
	if err := os.WriteFile(filepath.Join(verDir(a), "vmlinuz"), []byte("KERNEL"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(verDir(b), "initrd.gz")
	os.Remove(fifo)
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	moved := false
	progress := func(done, total int64) {
		if moved {
			return
		}
		moved = true
		tmp := f.root + ".new"
		if err := os.Symlink(b, tmp); err != nil {
			t.Error(err)
		}
		if err := os.Rename(tmp, f.root); err != nil {
			t.Error(err)
		}
	}
	type result struct {
		drifts []Drift
		err    error
	}
	done := make(chan result, 1)
	go func() {
		d, err := f.cat.Verify(progress, id)
		done <- result{d, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(20 * time.Second):
		// Not a time limit on Verify: it is blocked in open(2) on the
		// FIFO, and would stay there. A writer that comes and goes lets
		// it return, to end the test.
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		<-done
		t.Fatal("Verify blocked opening a FIFO that took the place of a file it had checked")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	var got []string
	for _, d := range r.drifts {
		got = append(got, d.String())
	}
	want := "deb@1.0.0: vmlinuz: digest differs (manifest sha256 " + sum([]byte("kernel")) + ", file sha256 " + sum([]byte("KERNEL")) + ")"
	if strings.Join(got, "\n") != want {
		t.Errorf("drifts:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}
}

// A FIFO in the place of a version's file is reported, named, and never
// opened: opening a FIFO or a device can do something by itself.
func TestVerifyFIFO(t *testing.T) {
	f := newFixture(t)
	id := f.build(t, "deb@1.0.0", map[string]string{"vmlinuz": "kernel"})
	p := filepath.Join(f.root, "images", "deb", "1.0.0", "vmlinuz")
	os.Remove(p)
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(in)
	if _, err := unix.InotifyAddWatch(in, p, unix.IN_OPEN); err != nil {
		t.Fatal(err)
	}
	drifts, err := f.cat.Verify(nil, id)
	buf := make([]byte, 4096)
	if n, rerr := unix.Read(in, buf); n > 0 || !errors.Is(rerr, unix.EAGAIN) {
		t.Errorf("Verify opened the FIFO (inotify: %d bytes, %v)", n, rerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(drifts) != 1 || drifts[0].Kind != Unreadable || !strings.Contains(drifts[0].Err, "named pipe") {
		t.Fatalf("drifts %v, want vmlinuz unreadable as a named pipe", drifts)
	}
	t.Log(drifts[0])
}

// keepSig accepts every signature and keeps the last one it was given.
type keepSig struct{ got []byte }

func (k *keepSig) Verify(data, sig []byte) error { k.got = sig; return nil }

// The signature is read through the served root, as the server serves it.
// Before, it was read by path name: a manifest.json.sig that is a link
// out of the root was checked with the bytes it led to, which no client
// is ever served, and a FIFO there blocked Verify.
func TestVerifySignatureThroughRoot(t *testing.T) {
	f := newFixture(t)
	k := &keepSig{}
	f.cat.Verifier = k
	id := f.build(t, "deb@1.0.0", map[string]string{"vmlinuz": "k"})
	sp := filepath.Join(f.root, filepath.FromSlash(id.Dir()), image.ManifestSigName)
	outside := filepath.Join(t.TempDir(), "sig")
	if err := os.WriteFile(outside, []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, sp); err != nil {
		t.Fatal(err)
	}
	d, err := f.cat.Verify(nil, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 1 || d[0].Kind != Unreadable || d[0].Path != image.ManifestSigName || k.got != nil {
		t.Fatalf("a signature leading out of the root: drifts %v, the verifier got %q; want it unreadable, unchecked", d, k.got)
	}
	os.Remove(sp)
	if err := syscall.Mkfifo(sp, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err = f.cat.Verify(nil, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 1 || d[0].Kind != Unreadable || !strings.Contains(d[0].Err, "named pipe") {
		t.Fatalf("a FIFO for the signature: drifts %v, want it unreadable", d)
	}
}

// A FIFO named manifest.json makes its version broken, at once. Before,
// Manifest read it by name and blocked until a writer came, and with it
// every scan of the catalog (image list, promote, gc, the server's).
func TestManifestFIFO(t *testing.T) {
	f := newFixture(t)
	id := f.build(t, "deb@1.0.0", map[string]string{"vmlinuz": "kernel"})
	p := filepath.Join(f.root, filepath.FromSlash(id.Dir()), image.ManifestName)
	os.Remove(p)
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := f.cat.Manifest(id); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "named pipe") {
			t.Fatalf("Manifest of a FIFO: %v, want an error naming a named pipe", err)
		}
		t.Log(err)
	case <-time.After(20 * time.Second):
		// Not a timing check: a way out of the hang, so that the test
		// fails instead of blocking. A writer lets the open return.
		if w, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
			w.Close()
		}
		<-done
		t.Fatal("Manifest blocked on a FIFO named manifest.json")
	}
}
