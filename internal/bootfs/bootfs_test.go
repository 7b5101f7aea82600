package bootfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestClean(t *testing.T) {
	ok := map[string]string{
		"pxelinux.0":            "pxelinux.0",
		"/pxelinux.0":           "pxelinux.0",
		`boot\bcd`:              "boot/bcd",
		`\Boot\BCD`:             "Boot/BCD",
		"a//b/./c":              "a/b/c",
		"pxelinux.cfg/01-aa-bb": "pxelinux.cfg/01-aa-bb",
		"..foo":                 "..foo", // a name, not a parent
	}
	long := strings.Repeat("a", MaxPathLen) // as long as a name may be, with or without the root's '/'
	ok[long], ok["/"+long], ok[`\`+long] = long, long, long
	for in, want := range ok {
		if got, err := Clean(in); err != nil || got != want {
			t.Errorf("Clean(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	refused := []string{
		"", "..", "../etc/passwd", "a/../../b", "a/..", `..\..\etc\passwd`, "/../x",
		"a\x00b", "a\nb", "a\x7fb", strings.Repeat("a", MaxPathLen+1),
		"/" + strings.Repeat("a", MaxPathLen+1), "//" + strings.Repeat("a", MaxPathLen),
	}
	for _, in := range refused {
		if _, err := Clean(in); !errors.Is(err, ErrRefused) {
			t.Errorf("Clean(%q) = %v, want refused", in, err)
		}
	}
	for _, in := range []string{"/", ".", "./", "//"} {
		if _, err := Clean(in); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Clean(%q) = %v, want not-exist", in, err)
		}
	}
}

func TestDirOpen(t *testing.T) { bothWays(t, testDirOpen) }

func testDirOpen(t *testing.T, open openDir) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	must(t, os.WriteFile(secret, []byte("secret"), 0o644))
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "Boot", "Fonts"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "Boot", "BCD"), []byte("bcd"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "Boot", "Fonts", "wgl4_boot.ttf"), []byte("font"), 0o644))
	must(t, os.Symlink("Boot/BCD", filepath.Join(root, "inside-link")))
	must(t, os.Symlink(secret, filepath.Join(root, "abs-link")))
	rel, _ := filepath.Rel(root, secret)
	must(t, os.Symlink(rel, filepath.Join(root, "rel-link")))
	must(t, syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644))

	d, ci := open(t, root, false), open(t, root, true)

	read := readFile
	if got, err := read(d, `Boot\BCD`); err != nil || got != "bcd" {
		t.Errorf(`Boot\BCD = %q, %v`, got, err)
	}
	if got, err := read(d, "inside-link"); err != nil || got != "bcd" {
		t.Errorf("inside-link = %q, %v", got, err)
	}
	for _, name := range []string{"abs-link", "rel-link", "Boot", "fifo"} {
		if _, err := read(d, name); !errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v, want refused", name, err)
		}
	}
	if _, err := read(d, "boot/bcd"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("case-sensitive boot/bcd: %v, want not-exist", err)
	}
	if got, err := read(ci, `\boot\fonts\WGL4_BOOT.TTF`); err != nil || got != "font" {
		t.Errorf("case-insensitive lookup = %q, %v", got, err)
	}
	if _, err := read(ci, "boot/nothere"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("case-insensitive missing: %v", err)
	}
	if _, err := read(d, "Boot/BCD/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file as dir: %v, want not-exist", err)
	}
}

func TestVirtual(t *testing.T) {
	v := NewVirtual("pxelinux.cfg/default", []byte("DEFAULT menu"), time.Unix(0, 0))
	st, _ := v.Stat()
	if st.Name() != "default" || st.Size() != 12 || !st.Mode().IsRegular() {
		t.Fatalf("stat = %v %d %v", st.Name(), st.Size(), st.Mode())
	}
	var _ File = v
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestDirOpenRemembersRegularNames checks that a name opened before is
// still judged afresh when what it names changes: a FIFO, a directory or
// a symlink out of the root put in its place is refused, a removed file is
// missing, and a file renamed to another case is still found by a
// case-insensitive root.
func TestDirOpenRemembersRegularNames(t *testing.T) { bothWays(t, testDirOpenRemembersRegularNames) }

func testDirOpenRemembersRegularNames(t *testing.T, openDir openDir) {
	root, outside := t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644))
	d := openDir(t, root, true)
	name := filepath.Join(root, "f")
	open := func(path string) (string, error) { return readFile(d, path) }
	served := func(want string) {
		t.Helper()
		if got, err := open("f"); err != nil || got != want {
			t.Fatalf("f = %q, %v, want %q", got, err, want)
		}
		if !d.regularNames.has("f") {
			t.Fatal("f not remembered as a regular file")
		}
	}
	replace := func(put func() error) {
		t.Helper()
		must(t, os.RemoveAll(name))
		must(t, put())
	}

	must(t, os.WriteFile(name, []byte("one"), 0o644))
	served("one")
	for what, put := range map[string]func() error{
		"fifo":      func() error { return syscall.Mkfifo(name, 0o644) },
		"directory": func() error { return os.Mkdir(name, 0o755) },
		"escape":    func() error { return os.Symlink(filepath.Join(outside, "secret"), name) },
	} {
		replace(put)
		done := make(chan error, 1)
		go func() { _, err := open("f"); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrRefused) {
				t.Errorf("%s in place of a served file: %v, want refused", what, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s in place of a served file: the open blocked", what)
		}
		if d.regularNames.has("f") {
			t.Errorf("%s: f still remembered as a regular file", what)
		}
		replace(func() error { return os.WriteFile(name, []byte("two"), 0o644) })
		served("two")
	}

	must(t, os.Rename(name, filepath.Join(root, "F")))
	if got, err := open("f"); err != nil || got != "two" {
		t.Errorf("f renamed to F, case-insensitive: %q, %v", got, err)
	}
	must(t, os.Remove(filepath.Join(root, "F")))
	if _, err := open("f"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("f removed: %v, want not-exist", err)
	}
}

// openDir opens a Dir that the test closes.
type openDir func(t *testing.T, root string, caseInsensitive bool) *Dir

// bothWays runs test with Dirs that open files with openat2, and again
// with Dirs that open them through os.Root, as where openat2 is missing.
func bothWays(t *testing.T, test func(*testing.T, openDir)) {
	for _, throughRoot := range []bool{false, true} {
		name := "openat2"
		if throughRoot {
			name = "os.Root"
		}
		t.Run(name, func(t *testing.T) {
			test(t, func(t *testing.T, root string, caseInsensitive bool) *Dir {
				return openWay(t, root, caseInsensitive, throughRoot)
			})
		})
	}
}

// openWay opens a Dir on root that the test closes. throughRoot makes it
// open files through os.Root, as where openat2 is missing.
func openWay(tb testing.TB, root string, caseInsensitive, throughRoot bool) *Dir {
	tb.Helper()
	d, err := OpenDir(root, caseInsensitive)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	if d.beneath == nil {
		tb.Fatal("openat2 is not available: the tests need Linux 5.6 or later")
	}
	if throughRoot {
		d.beneath.close()
		d.beneath = nil
	}
	return d
}

// readFile opens name in d and reads it whole.
func readFile(d *Dir, name string) (string, error) {
	f, err := d.Open(Request{Path: name})
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	return string(b), err
}

// FuzzClean: Clean's result is a relative path of plain components that
// Clean leaves as it is, and where tidy takes its shortcut, the result is
// what cleaning component by component gives.
func FuzzClean(f *testing.F) {
	for _, s := range []string{"pxelinux.0", "/a/b", `\a\b`, "a//b", "a/./b", "a/../b", "..a", "a/", "//", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := Clean(name)
		if err != nil {
			if !errors.Is(err, ErrRefused) && !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Clean(%q): %v: neither refused nor missing", name, err)
			}
			return
		}
		for _, part := range strings.Split(got, "/") {
			if part == "" || part == "." || part == ".." || strings.Contains(part, `\`) {
				t.Fatalf("Clean(%q) = %q: component %q", name, got, part)
			}
		}
		if again, err := Clean(got); err != nil || again != got {
			t.Fatalf("Clean(%q) = %q, but Clean(%q) = %q, %v", name, got, got, again, err)
		}
		if _, ok := tidy(name); ok {
			var parts []string
			for _, p := range strings.Split(name, "/") {
				if p != "" {
					parts = append(parts, p)
				}
			}
			if want := strings.Join(parts, "/"); got != want {
				t.Fatalf("Clean(%q) = %q by the shortcut, want %q", name, got, want)
			}
		}
	})
}

// Replaced tells when the root's path names another directory than the
// one open: renamed into place, or a symlink flipped. A path that is gone
// is no replacement (the open directory is still served).
func TestDirReplaced(t *testing.T) {
	base := t.TempDir()
	p := filepath.Join(base, "root")
	for _, d := range []string{"r1", "r2", "r3"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("r1", p); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(p, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Replaced() {
		t.Fatal("replaced right after opening")
	}
	// Flip the symlink as deployments do: a new link renamed over the old.
	if err := os.Symlink("r2", p+".new"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		t.Fatal(err)
	}
	if !d.Replaced() {
		t.Error("the symlink now names r2: not seen as replaced")
	}
	os.Remove(p)
	if d.Replaced() {
		t.Error("the path is gone: seen as replaced")
	}
	// A directory renamed into place.
	if err := os.Rename(filepath.Join(base, "r3"), p); err != nil {
		t.Fatal(err)
	}
	if !d.Replaced() {
		t.Error("a directory renamed into place: not seen as replaced")
	}
}
