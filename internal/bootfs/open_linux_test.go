package bootfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFileReadsAsOSFile: a file opened with openat2 reads, seeks and
// reports its Stat as an *os.File of the same file does, and a closed one
// refuses everything, a second Close included.
func TestFileReadsAsOSFile(t *testing.T) {
	root := t.TempDir()
	data := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80,000 bytes
	p := filepath.Join(root, "sub", "vmlinuz")
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, data, 0o640))
	must(t, os.Chtimes(p, time.Now(), time.Unix(1700000000, 123456789)))
	d := openWay(t, root, false, false)
	f, err := d.beneath.open("sub/vmlinuz")
	must(t, err)
	want, err := os.Stat(p)
	must(t, err)
	got, err := f.Stat()
	must(t, err)
	if got.Name() != want.Name() || got.Size() != want.Size() || got.Mode() != want.Mode() ||
		!got.ModTime().Equal(want.ModTime()) || got.IsDir() {
		t.Errorf("Stat = %s %d %v %v, want %s %d %v %v", got.Name(), got.Size(), got.Mode(), got.ModTime(),
			want.Name(), want.Size(), want.Mode(), want.ModTime())
	}
	if k1, ok1 := identify(got); !ok1 {
		t.Error("Stat has no device and inode")
	} else if k2, _ := identify(want); k1 != k2 {
		t.Errorf("Stat's key %+v, os.Stat's %+v", k1, k2)
	}

	buf := make([]byte, 1000)
	if n, err := f.ReadAt(buf, 79500); n != 500 || err != io.EOF || !bytes.Equal(buf[:n], data[79500:]) {
		t.Errorf("ReadAt across the end = %d, %v", n, err)
	}
	if n, err := f.ReadAt(buf, 80000); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at the end = %d, %v", n, err)
	}
	if pos, err := f.Seek(70000, io.SeekStart); pos != 70000 || err != nil {
		t.Errorf("Seek = %d, %v", pos, err)
	}
	rest, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(rest, data[70000:]) {
		t.Errorf("read from 70000: %d bytes, %v", len(rest), err)
	}
	if n, err := f.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("Read at the end = %d, %v", n, err)
	}

	must(t, f.Close())
	if err := f.Close(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("second Close: %v, want closed", err)
	}
	if _, err := f.Read(buf); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
	if _, err := f.ReadAt(buf, 0); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("ReadAt after Close: %v", err)
	}
	rc, _ := f.SyscallConn()
	if err := rc.Control(func(uintptr) { t.Error("Control ran on a closed file") }); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Control after Close: %v", err)
	}
}
