package bootfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSmallFilesFromMemory: a settled small file served once is served
// again from memory, and whatever changes what its name leads to (a write
// that keeps its size, a file renamed over it, a symlink out of the root,
// a removal) is seen at the next request.
func TestSmallFilesFromMemory(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("SECRET"), 0o644))
	d := openWay(t, root, true, false)
	d.clean.settle = 0    // as if every file had settled
	d.small.reconfirm = 0 // every request confirms (TestSmallFilesReconfirmed)
	name := filepath.Join(root, "Boot.txt")
	// served reads asked twice: the first read sees the file as it is
	// now, the second is from memory.
	served := func(asked, want string) {
		t.Helper()
		if got, err := readFile(d, asked); err != nil || got != want {
			t.Fatalf("%s = %q, %v, want %q", asked, got, err, want)
		}
		f, err := d.Open(Request{Path: asked})
		if err != nil {
			t.Fatalf("%s: %v", asked, err)
		}
		f.Close()
		if _, ok := f.(*memFile); !ok {
			t.Fatalf("%s: served from disk (%T), want from memory", asked, f)
		}
		if got, err := readFile(d, asked); err != nil || got != want {
			t.Fatalf("%s = %q, %v, want %q", asked, got, err, want)
		}
		st, err := f.Stat()
		must(t, err)
		now, err := os.Stat(name)
		must(t, err)
		if !SameFile(st, now) || st.Size() != now.Size() || !st.ModTime().Equal(now.ModTime()) {
			t.Fatalf("%s: Stat %v, %d, %v; the file is %v, %d", asked, st.Sys(), st.Size(), st.ModTime(), now.Sys(), now.Size())
		}
	}
	tick := func() { time.Sleep(20 * time.Millisecond) } // past a tick of the kernel's timestamp clock

	must(t, os.WriteFile(name, []byte("one"), 0o644))
	served("Boot.txt", "one")

	tick()
	must(t, os.WriteFile(name, []byte("two"), 0o644)) // same size, same inode
	served("Boot.txt", "two")

	tick()
	tmp := filepath.Join(root, "new")
	must(t, os.WriteFile(tmp, []byte("three"), 0o644))
	must(t, os.Rename(tmp, name))
	served("Boot.txt", "three")

	must(t, os.Remove(name))
	must(t, os.Symlink(filepath.Join(outside, "secret"), name))
	if got, err := readFile(d, "Boot.txt"); !errors.Is(err, ErrRefused) {
		t.Fatalf("a symlink out of the root in place of a kept file: %q, %v, want refused", got, err)
	}

	must(t, os.Remove(name))
	if _, err := readFile(d, "Boot.txt"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a kept file removed: %v, want not found", err)
	}

	// A name found by ignoring case is read from disk each time: a file
	// spelled as asked, made later, wins.
	must(t, os.WriteFile(name, []byte("four"), 0o644))
	for range 2 {
		if got, err := readFile(d, "BOOT.TXT"); err != nil || got != "four" {
			t.Fatalf("BOOT.TXT = %q, %v, want four", got, err)
		}
	}
	if d.small.get("BOOT.TXT") != nil {
		t.Fatal("a case-folded name was kept")
	}
	must(t, os.WriteFile(filepath.Join(root, "BOOT.TXT"), []byte("five"), 0o644))
	if got, err := readFile(d, "BOOT.TXT"); err != nil || got != "five" {
		t.Fatalf("BOOT.TXT made = %q, %v, want five", got, err)
	}
}

// TestSmallFilesReconfirmed: one fstatat confirms a kept file for the
// requests of the next reconfirm; the first request after it sees what
// changed meanwhile.
func TestSmallFilesReconfirmed(t *testing.T) {
	if reconfirmAfter > 10*time.Millisecond {
		t.Fatalf("reconfirmAfter %v: a changed file would be served for longer than a request's round trip", reconfirmAfter)
	}
	root, outside := t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("SECRET"), 0o644))
	name := filepath.Join(root, "boot.ipxe")
	must(t, os.WriteFile(name, []byte("one"), 0o644))
	d := openWay(t, root, false, false)
	d.clean.settle = 0
	d.small.reconfirm = time.Hour // the window never ends until the test ends it
	for range 2 {
		if got, err := readFile(d, "boot.ipxe"); err != nil || got != "one" {
			t.Fatalf("boot.ipxe = %q, %v, want one", got, err)
		}
	}
	must(t, os.Remove(name))
	must(t, os.Symlink(filepath.Join(outside, "secret"), name))
	if got, err := readFile(d, "boot.ipxe"); err != nil || got != "one" {
		t.Fatalf("within the window: %q, %v, want the content confirmed (one)", got, err)
	}
	d.small.reconfirm = 0 // the window has passed
	if got, err := readFile(d, "boot.ipxe"); !errors.Is(err, ErrRefused) {
		t.Fatalf("after the window, a symlink out of the root: %q, %v, want refused", got, err)
	}
	if d.small.get("boot.ipxe") != nil {
		t.Fatal("a file whose name leads elsewhere is still kept")
	}
}

// TestSmallFilesKeptOnlySettledSmallAndServable: a file changed just now,
// a large file, a private file and a file opened through os.Root are
// always read from disk.
func TestSmallFilesKeptOnlySettledSmallAndServable(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"fresh":   "written just now",
		"large":   strings.Repeat("x", smallFileMax+1),
		"key.pem": "-----BEGIN PRIVATE KEY-----\n",
		"other":   "-----BEGIN PRIVATE KEY-----\n",
	}
	for name, text := range files {
		must(t, os.WriteFile(filepath.Join(root, name), []byte(text), 0o644))
	}
	d := openWay(t, root, false, false)
	for range 2 {
		if _, err := readFile(d, "fresh"); err != nil {
			t.Fatal(err)
		}
	}
	if d.small.get("fresh") != nil {
		t.Error("a file changed just now was kept")
	}

	d.clean.settle = 0
	for range 2 {
		if got, err := readFile(d, "large"); err != nil || len(got) != smallFileMax+1 {
			t.Fatalf("large: %d bytes, %v", len(got), err)
		}
		for _, private := range []string{"key.pem", "other"} {
			if _, err := readFile(d, private); !errors.Is(err, ErrRefused) {
				t.Fatalf("%s: %v, want refused", private, err)
			}
		}
	}
	for _, name := range []string{"large", "key.pem", "other"} {
		if d.small.get(name) != nil {
			t.Errorf("%s was kept", name)
		}
	}

	byRoot := openWay(t, root, false, true)
	byRoot.clean.settle = 0
	must(t, os.WriteFile(filepath.Join(root, "small"), []byte("small"), 0o644))
	for range 2 {
		if _, err := readFile(byRoot, "small"); err != nil {
			t.Fatal(err)
		}
	}
	if byRoot.small.get("small") != nil {
		t.Error("a file opened through os.Root was kept: its fstatat would not stay beneath the root")
	}
}

// TestSmallFilesBounded: the bytes kept stay under smallFilesMax.
func TestSmallFilesBounded(t *testing.T) {
	var s smallFiles
	data := make([]byte, smallFileMax)
	for i := range 2 * smallFilesMax / smallFileMax {
		s.put(strings.Repeat("n", i+1), &smallFile{data: data})
		if s.bytes > smallFilesMax {
			t.Fatalf("after %d files: %d bytes kept, bound %d", i+1, s.bytes, smallFilesMax)
		}
	}
	s.put("n", &smallFile{data: data[:10]})
	s.put("n", &smallFile{data: data[:20]})
	f := s.get("n")
	s.forget("n", &smallFile{}) // another version: kept
	if s.get("n") != f {
		t.Fatal("forgetting another version dropped the one kept")
	}
	before := s.bytes
	s.forget("n", f)
	if s.get("n") != nil || s.bytes != before-20 {
		t.Fatalf("forget: %v kept, %d bytes (was %d)", s.get("n"), s.bytes, before)
	}
}

// BenchmarkDirOpenSmall is the open, Stat, read and close of an 8 KiB
// file, from memory and, not settled so not kept, from disk.
func BenchmarkDirOpenSmall(b *testing.B) {
	root := b.TempDir()
	if err := os.WriteFile(filepath.Join(root, "boot.ipxe"), make([]byte, 8<<10), 0o644); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 16<<10)
	for _, keep := range []bool{true, false} {
		name := "memory"
		if !keep {
			name = "disk"
		}
		b.Run(name, func(b *testing.B) {
			d := openWay(b, root, false, false)
			d.clean.settle = 0
			if !keep {
				d.clean.settle = time.Hour // the file has not settled: not kept
			}
			for b.Loop() {
				f, err := d.Open(Request{Path: "boot.ipxe"})
				if err != nil {
					b.Fatal(err)
				}
				f.Stat()
				f.Read(buf)
				f.Close()
			}
		})
	}
}
