package build

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func openTestISO(t *testing.T, p string) *isoTree {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	tr, err := openISO(filepath.Base(p), f)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// openTestDir opens the directory src as a build opens a directory source.
func openTestDir(t *testing.T, src string) *dirTree {
	t.Helper()
	root, err := os.OpenRoot(src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	_, _, files, err := hashDir(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	return &dirTree{given: "src", root: root, files: files}
}

func readNode(t *testing.T, n node) string {
	t.Helper()
	rc, err := n.open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var isoFiles = map[string]string{
	"install.amd/vmlinuz":   "kernel",
	"install.amd/initrd.gz": "initrd",
	"Boot/BCD":              "bcd",
	"bootmgr":               "bootmgr",
}

// Without Rock Ridge, names are ISO 9660 level 1 (INITRD.GZ;1, VMLINUZ.;1)
// and compare ignoring case.
func TestLookupISOLevel1(t *testing.T) {
	src := t.TempDir()
	writeFiles(t, src, isoFiles)
	writeFiles(t, src, map[string]string{"install.amd/vmlinuz-6.1.0-amd64": "long"})
	tr := openTestISO(t, makeISO(t, src, false))
	if !tr.foldsCase() {
		t.Fatal("a level 1 ISO without Rock Ridge reads as case-sensitive")
	}
	for p, want := range map[string]string{
		"/install.amd/vmlinuz":   "kernel",
		"install.amd/initrd.gz":  "initrd",
		"/INSTALL.AMD/INITRD.GZ": "initrd",
		`\boot\bcd`:              "bcd",
		"./BootMgr":              "bootmgr",
	} {
		n, err := lookup(tr, p, false)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if got := readNode(t, n); got != want {
			t.Fatalf("%s holds %q, want %q", p, got, want)
		}
	}
	// A long name was mangled to 8.3; the message says why it is missing.
	_, err := lookup(tr, "/install.amd/vmlinuz-6.1.0-amd64", false)
	mustContain(t, err, "/install.amd/vmlinuz-6.1.0-amd64 not found in src.iso", "it holds", "INITRD.GZ", "no Rock Ridge")
}

// With Rock Ridge, names are the original ones and case-sensitive.
func TestLookupRockRidge(t *testing.T) {
	src := t.TempDir()
	writeFiles(t, src, isoFiles)
	writeFiles(t, src, map[string]string{"install.amd/vmlinuz-6.1.0-amd64": "long"})
	tr := openTestISO(t, makeISO(t, src, true))
	if tr.foldsCase() {
		t.Fatal("a Rock Ridge ISO reads as case-insensitive")
	}
	n, err := lookup(tr, "/install.amd/vmlinuz-6.1.0-amd64", false)
	if err != nil || readNode(t, n) != "long" {
		t.Fatalf("long name: %v", err)
	}
	_, err = lookup(tr, "/INSTALL.AMD/vmlinuz", false)
	mustContain(t, err, "not found", "case-sensitive (Rock Ridge)")
	// winpe asks ignoring case on any image.
	n, err = lookup(tr, "/boot/bcd", true)
	if err != nil || readNode(t, n) != "bcd" {
		t.Fatalf("boot/bcd ignoring case: %v", err)
	}
	_, err = lookup(tr, "/bootmgr/x", false)
	mustContain(t, err, "/bootmgr in src.iso is not a directory")
	_, err = lookup(tr, "/install.amd", false)
	mustContain(t, err, "is a directory")
}

func TestLookupDirAndAmbiguity(t *testing.T) {
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"Boot/BCD": "upper", "boot/bcd": "lower", "boot/Bcd": "mixed", "x/A": "a", "x/a": "b"})
	tr := openTestDir(t, src)
	// The exact spelling wins over folded ones.
	if n, err := lookup(tr, "boot/bcd", true); err != nil || readNode(t, n) != "lower" {
		t.Fatalf("exact: %v", err)
	}
	_, err := lookup(tr, "BOOT/BCD", true)
	mustContain(t, err, `"BOOT" is ambiguous`, "Boot, boot")
	_, err = lookup(tr, "x/A/..", true)
	mustContain(t, err, "may not contain ..")
}

func TestCleanInside(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b":      "a/b",
		`\a\b`:      "a/b",
		"a//./b/":   "a/b",
		"./vmlinuz": "vmlinuz",
	} {
		got, err := cleanInside(in)
		if err != nil || strings.Join(got, "/") != want {
			t.Fatalf("%q: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "/", "../x", "a/../../b"} {
		if _, err := cleanInside(in); err == nil {
			t.Fatalf("%q accepted", in)
		}
	}
}

func TestOpenISORefusesGarbage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.iso")
	os.WriteFile(p, make([]byte, 40000), 0o644)
	f, _ := os.Open(p)
	defer f.Close()
	if _, err := openISO("x.iso", f); err == nil || !strings.Contains(err.Error(), "x.iso is not a readable ISO 9660 image") {
		t.Fatalf("zeros: %v", err)
	}
}

// FuzzOpenISO feeds untrusted bytes to the ISO reader and a lookup: a
// malformed image is an error, never a panic or a hang.
func FuzzOpenISO(f *testing.F) {
	src := f.TempDir()
	writeFiles(f, src, isoFiles)
	for _, rr := range []bool{false, true} {
		b, err := os.ReadFile(makeISO(f, src, rr))
		if err != nil {
			f.Fatal(err)
		}
		// The descriptors and directories are in the first sectors; the
		// rest is file data and padding, which only slow the fuzzer.
		f.Add(b[:min(len(b), 48*isoSector)])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := openISO("fuzz.iso", bytesReaderAt(data))
		if err != nil {
			return
		}
		for _, p := range []string{"install.amd/vmlinuz", "boot/bcd", "bootmgr"} {
			if n, err := lookup(tr, p, true); err == nil {
				rc, _ := n.open()
				io.Copy(io.Discard, io.LimitReader(rc, 1<<20))
			}
		}
	})
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// The ISO library never returns on a System Use entry of length 0, and
// recurses without end on a continuation area that points at itself;
// checkISO refuses both before it reads them.
func TestOpenISORefusesWhatHangsTheLibrary(t *testing.T) {
	src := t.TempDir()
	writeFiles(t, src, isoFiles)
	good, err := os.ReadFile(makeISO(t, src, true))
	if err != nil {
		t.Fatal(err)
	}
	root, ok, _ := rootRecord(bytesReaderAt(good))
	if !ok {
		t.Fatal("no root directory record")
	}
	dir := good[int(root.loc)*isoSector : int(root.loc)*isoSector+isoSector]
	for name, corrupt := range map[string]func(d []byte) bool{
		"zero-length entry": func(d []byte) bool {
			i := strings.Index(string(d), "PX")
			if i < 0 {
				return false
			}
			d[i+2] = 0
			return true
		},
		"continuation loop": func(d []byte) bool {
			i := strings.Index(string(d), "CE\x1c\x01")
			if i < 0 {
				return false
			}
			// Point the area at this CE entry itself.
			loc := root.loc
			area := d[i : i+28]
			binary.LittleEndian.PutUint32(area[4:], loc)
			binary.BigEndian.PutUint32(area[8:], loc)
			binary.LittleEndian.PutUint32(area[12:], uint32(i))
			binary.BigEndian.PutUint32(area[16:], uint32(i))
			binary.LittleEndian.PutUint32(area[20:], 28)
			binary.BigEndian.PutUint32(area[24:], 28)
			return true
		},
	} {
		t.Run(name, func(t *testing.T) {
			bad := append([]byte(nil), good...)
			if !corrupt(bad[int(root.loc)*isoSector : int(root.loc)*isoSector+len(dir)]) {
				t.Fatal("the test ISO has no such entry to corrupt")
			}
			done := make(chan error, 1)
			go func() {
				_, err := openISO("bad.iso", bytesReaderAt(bad))
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, errMalformed) {
					t.Fatalf("openISO: %v, want a malformed-image error", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("openISO did not return")
			}
		})
	}
}

// A kernel or initrd named in a source that is a symbolic link (vmlinuz ->
// install.amd/vmlinuz) or a special file is refused, saying what it is.
// Before, on a Rock Ridge ISO the link's entry was copied as the kernel: a
// 0-byte file, and the build said it was done; in a directory it was "not
// found" in a listing that did not show it, though ls did.
func TestBuildRefusesLinksAndSpecialFiles(t *testing.T) {
	src := linuxSrc(t)
	for link, to := range map[string]string{"vmlinuz": "install.amd/vmlinuz", "passwd": "/etc/passwd", "amd": "install.amd"} {
		if err := os.Symlink(to, filepath.Join(src, link)); err != nil {
			t.Fatal(err)
		}
	}
	iso := makeISO(t, src, true)
	if err := unix.Mkfifo(filepath.Join(src, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		from, kernel, want string
	}{
		{iso, "vmlinuz", "/vmlinuz in " + iso + " is a symbolic link"},
		{iso, "passwd", "/passwd in " + iso + " is a symbolic link"},
		{iso, "amd/vmlinuz", "/amd in " + iso + " is a symbolic link"},
		{src, "vmlinuz", "/vmlinuz in " + src + " is a symbolic link"},
		{src, "passwd", "/passwd in " + src + " is a symbolic link"},
		{src, "amd/vmlinuz", "/amd in " + src + " is a symbolic link"},
		{src, "fifo", "/fifo in " + src + " is a named pipe"},
	}
	e := newEnv(t)
	for i, tt := range tests {
		res, err := e.build(t, Spec{ID: id(t, fmt.Sprintf("l@1.0.%d", i)), Template: "linux", From: tt.from, Kernel: tt.kernel})
		if err == nil {
			k, _ := res.Manifest.File(res.Manifest.Boot.Kernel)
			t.Errorf("--from %s --kernel %s: built, with a kernel of %d bytes", tt.from, tt.kernel, k.Size)
			continue
		}
		mustContain(t, err, tt.want)
	}
}
