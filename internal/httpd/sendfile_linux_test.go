package httpd

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// pin reads n bytes of f from off (a multiple of the page size) into the
// page cache, with no readahead around them, and locks them there until
// the test ends: this machine's kernel pages out memory it finds cold
// (DAMON), even a file just written.
func pin(t *testing.T, f *os.File, off, n int64) {
	t.Helper()
	m, err := unix.Mmap(int(f.Fd()), off, int(n), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Madvise(m, unix.MADV_RANDOM); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mlock(m); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munlock(m); unix.Munmap(m) })
}

// dropCache evicts the file's pages in [off, off+n) from the page cache,
// or fails the test. FADV_DONTNEED is advice, and once in a while it
// left every page where it was (2 of 300 runs here, the cause not
// found), so it is asked up to five times.
func dropCache(t *testing.T, f *os.File, off, n int64) {
	t.Helper()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			t.Fatal(err)
		}
		if !cached(f.Fd(), off, n) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the file is still cached after FADV_DONTNEED, asked five times")
}

// sendFile sends exactly the bytes asked for, from the offset asked for,
// through more than one chunk and a socket buffer that fills while the
// client does not read, from the page cache or from the disk.
func TestSendFile(t *testing.T) {
	data := make([]byte, 2*sendfileChunk+12345)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	// The file read from the disk is a copy no other subtest maps and
	// locks in the cache.
	dir := t.TempDir()
	path, uncachedPath := filepath.Join(dir, "image"), filepath.Join(dir, "uncached")
	for _, p := range []string{path, uncachedPath} {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name      string
		off, n    int64
		uncached  bool
		slowStart bool // the client waits before it reads: the server's sends find the buffer full
	}{
		{name: "whole", off: 0, n: int64(len(data)), slowStart: true},
		{name: "range", off: 4097, n: sendfileChunk + 3},
		{name: "tail", off: int64(len(data)) - 10, n: 10},
		{name: "from the disk", off: 1, n: int64(len(data)) - 1, uncached: true, slowStart: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := path
			if tt.uncached {
				p = uncachedPath
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if tt.uncached {
				dropCache(t, f, tt.off, tt.n)
			} else {
				pin(t, f, 0, int64(len(data)))
			}
			srv, cli := tcpPair(t)
			srv.SetWriteBuffer(64 << 10)
			got := make(chan []byte, 1)
			go func() {
				if tt.slowStart {
					time.Sleep(50 * time.Millisecond)
				}
				b, _ := io.ReadAll(cli)
				got <- b
			}()
			raw, watched := sendfileCalls.raw.Load(), sendfileCalls.watched.Load()
			sent, err := sendFile(srv, f, tt.off, tt.n)
			raw, watched = sendfileCalls.raw.Load()-raw, sendfileCalls.watched.Load()-watched
			srv.Close()
			if err != nil || sent != tt.n {
				t.Fatalf("sendFile = %d, %v; want %d, nil", sent, err, tt.n)
			}
			if b := <-got; !bytes.Equal(b, data[tt.off:tt.off+tt.n]) {
				t.Fatalf("the client got %d bytes, not the %d asked for (identical: false)", len(b), tt.n)
			}
			// A chunk read from the disk never holds a processor; one from
			// the cache goes out raw. cachestat(2) counts the pages
			// without locking the file's page index, and now and then
			// comes up short on a locked, resident file (in 2 or 3 of 300
			// to 600 runs of this test here, by 1 to 4 pages): that chunk
			// goes out watched, the safe way. One such chunk is allowed.
			if tt.uncached && watched == 0 || !tt.uncached && (watched > 1 || raw == 0) {
				t.Errorf("%d raw and %d watched sendfile calls", raw, watched)
			}
			if pos, _ := f.Seek(0, io.SeekCurrent); pos != 0 {
				t.Errorf("the file's offset moved to %d", pos)
			}
		})
	}
}

// A file shorter than the length asked for ends the send with an error,
// after what there was.
func TestSendFileShortFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(path, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	srv, cli := tcpPair(t)
	go io.Copy(io.Discard, cli)
	sent, err := sendFile(srv, f, 4, 100)
	if sent != 6 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("sendFile = %d, %v; want 6, unexpected EOF", sent, err)
	}
}

// cached tells pages in the page cache from pages on the disk only.
func TestCached(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, make([]byte, 3*sendfileChunk), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dropCache(t, f, 0, 3*sendfileChunk)
	if noCachestat.Load() {
		t.Skip("this kernel has no cachestat(2) (Linux 6.5): every chunk goes through syscall.Syscall")
	}
	// The middle chunk in the cache, and a page on each side.
	page := int64(os.Getpagesize())
	pin(t, f, sendfileChunk-page, sendfileChunk+2*page)
	for _, tt := range []struct {
		off, n int64
		want   bool
	}{
		{sendfileChunk, sendfileChunk, true},
		{sendfileChunk - 1, 2, true}, // two pages, both in
		{sendfileChunk + 100, 1000, true},
		{sendfileChunk - page, sendfileChunk + 2*page, true},
		{0, sendfileChunk, false},
		{sendfileChunk - page - 1, 2, false},             // one page before
		{sendfileChunk, sendfileChunk + page, true},      // to the last byte of the page after
		{sendfileChunk, sendfileChunk + page + 1, false}, // one byte into the page past it
		{2*sendfileChunk + 8192, 10, false},
	} {
		if got := cached(f.Fd(), tt.off, tt.n); got != tt.want {
			t.Errorf("cached(%d, %d) = %v, want %v", tt.off, tt.n, got, tt.want)
		}
	}
}
