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
)

// fuzzTree makes a root with files, directories and symlinks that lead
// inside, outside (relative and absolute, to a file and to a directory)
// and nowhere, and a secret file outside it.
func fuzzTree(tb testing.TB) (root, outside string) {
	tb.Helper()
	base := tb.TempDir()
	outside = filepath.Join(base, "outside")
	root = filepath.Join(base, "root")
	for _, d := range []string{outside, filepath.Join(root, "Boot", "Fonts"), filepath.Join(root, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	files := map[string]string{
		filepath.Join(outside, "secret"):                      "SECRET-OUTSIDE",
		filepath.Join(root, "Boot", "BCD"):                    "bcd",
		filepath.Join(root, "Boot", "Fonts", "wgl4_boot.ttf"): "font",
		filepath.Join(root, "sub", "inner.txt"):               "inner",
		filepath.Join(root, "ok.txt"):                         "ok",
	}
	for p, text := range files {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	links := map[string]string{
		"out":         "../outside",
		"secret-rel":  "../outside/secret",
		"secret-abs":  filepath.Join(outside, "secret"),
		"dir-abs":     outside,
		"sub/up":      "../../outside",
		"sub/back":    "..",
		"inside-link": "Boot/BCD",
		"loop":        "loop",
		"dangling":    "nothing",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		tb.Fatal(err)
	}
	return root, outside
}

// FuzzDirOpen asks for arbitrary paths, case-sensitive and not: a file
// opened is a regular file whose real path is inside the root, and a
// failure is a refusal or "does not exist", never anything else.
func FuzzDirOpen(f *testing.F) {
	for _, s := range []string{"ok.txt", `Boot\BCD`, `\boot\fonts\WGL4_BOOT.TTF`, "/sub/inner.txt", "inside-link",
		"out/secret", "OUT/SECRET", "secret-rel", "secret-abs", "dir-abs/secret", "sub/up/secret", "sub/back/ok.txt",
		"sub/back/out/secret", "../outside/secret", "sub/../../outside/secret", "loop", "dangling", "fifo", "Boot",
		"ok.txt/x", "./ok.txt", "//ok.txt", "ok.txt\x00", strings.Repeat("a/", 128)} {
		f.Add(s, false)
		f.Add(s, true)
	}
	root, outside := fuzzTree(f)
	// Each path is opened both ways a Dir can open: with openat2, and
	// through os.Root where openat2 is missing.
	type mode struct{ caseInsensitive, throughRoot bool }
	dirs := map[mode]*Dir{}
	for _, ci := range []bool{false, true} {
		for _, throughRoot := range []bool{false, true} {
			d := openWay(f, root, ci, throughRoot)
			d.clean.settle = 0 // small files kept from the first open on
			dirs[mode{ci, throughRoot}] = d
		}
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name string, caseInsensitive bool) {
		for _, throughRoot := range []bool{false, true} {
			d := dirs[mode{caseInsensitive, throughRoot}]
			fuzzOpen(t, d, name, realRoot, outside)
			fuzzOpen(t, d, name, realRoot, outside) // a small file from memory, with openat2
		}
	})
}

// fuzzOpen opens name in d and checks what it got.
func fuzzOpen(t *testing.T, d *Dir, name, realRoot, outside string) {
	file, err := d.Open(Request{Path: name, Protocol: "tftp"})
	if err != nil {
		if !errors.Is(err, ErrRefused) && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%q: %v: neither refused nor missing", name, err)
		}
		return
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil || !st.Mode().IsRegular() {
		t.Fatalf("%q: not a regular file: %v %v", name, st, err)
	}
	var where string
	switch f := file.(type) {
	case *memFile: // a small file kept: it was read from the file its name leads to
		where = realPath(filepath.Join(realRoot, f.name))
		if now, err := os.Stat(where); err != nil || !SameFile(st, now) {
			t.Fatalf("%q: kept from another file than %s: %v", name, where, err)
		}
	case syscall.Conn:
		where = openedPath(file)
	default:
		t.Fatalf("%q: a %T, not a disk file", name, file)
	}
	if !strings.HasPrefix(where, realRoot+string(filepath.Separator)) {
		t.Fatalf("%q opened %q, outside the root %s", name, where, realRoot)
	}
	b, _ := io.ReadAll(file)
	if strings.Contains(string(b), "SECRET") {
		t.Fatalf("%q served the secret from %s", name, outside)
	}
}
