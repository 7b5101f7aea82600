package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"bootforge/internal/durable"
)

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func randBytes(n int, seed uint64) []byte {
	var s [32]byte
	s[0] = byte(seed)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// snapshot lists everything below dir, recursively: path, type and mode,
// size and, for files, the SHA-256 of the content.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		line := fmt.Sprintf("%s %s %d", rel, info.Mode(), info.Size())
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += " " + sum(b)
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func requireNoTemps(t *testing.T, s *Store) {
	t.Helper()
	entries, err := os.ReadDir(s.tmpDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("temporary files left behind: %v", names)
	}
}

func TestCheckDigest(t *testing.T) {
	good := sum([]byte("x"))
	if err := CheckDigest(good); err != nil {
		t.Errorf("%s: %v", good, err)
	}
	for _, bad := range []string{
		"", good[:63], good + "0", strings.ToUpper(good), "../../../../etc/passwd",
		strings.Repeat("g", 64), good[:62] + "/a", good[:63] + "\x00", strings.Repeat(".", 64),
	} {
		if err := CheckDigest(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBadDigestNeverTouchesAPath(t *testing.T) {
	s := openStore(t)
	outside := filepath.Join(filepath.Dir(s.Dir()), "victim")
	if err := os.WriteFile(outside, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := "../../victim"
	if _, err := s.Path(bad); err == nil {
		t.Error("Path accepted a bad digest")
	}
	if _, err := s.Has(bad); err == nil {
		t.Error("Has accepted a bad digest")
	}
	if err := s.Remove(bad); err == nil {
		t.Error("Remove accepted a bad digest")
	}
	if _, err := s.Import(context.Background(), strings.NewReader("x"), bad); err == nil {
		t.Error("Import accepted a bad expected digest")
	}
	if _, err := os.Stat(outside); err != nil {
		t.Fatal(err)
	}
	requireNoTemps(t, s)
}

func TestImportStoresByDigest(t *testing.T) {
	s := openStore(t)
	data := randBytes(3*chunkSize+12345, 1)
	want := sum(data)
	res, err := s.Import(context.Background(), bytes.NewReader(data), want)
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != want || res.Size != int64(len(data)) || res.Existed {
		t.Fatalf("result %+v, want digest %s size %d, new", res, want, len(data))
	}
	p, err := s.Path(want)
	if err != nil {
		t.Fatal(err)
	}
	if p != filepath.Join(s.Dir(), "sha256", want) {
		t.Errorf("path %s", p)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("stored content differs")
	}
	if info, _ := os.Stat(p); info.Mode().Perm() != 0o444 {
		t.Errorf("blob mode %s, want read-only", info.Mode())
	}
	if ok, err := s.Has(want); !ok || err != nil {
		t.Errorf("Has = %v, %v", ok, err)
	}
	if ok, err := s.Has(sum(nil)); ok || err != nil {
		t.Errorf("Has(other) = %v, %v", ok, err)
	}
	list, err := s.List()
	if err != nil || len(list) != 1 || list[0] != (Info{Digest: want, Size: int64(len(data))}) {
		t.Errorf("List = %+v, %v", list, err)
	}
	requireNoTemps(t, s)
}

func TestImportWithoutExpectedDigest(t *testing.T) {
	s := openStore(t)
	res, err := s.Import(context.Background(), strings.NewReader("hello\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != sum([]byte("hello\n")) || res.Size != 6 {
		t.Fatalf("%+v", res)
	}
}

func TestImportSizesAroundChunks(t *testing.T) {
	s := openStore(t)
	for i, n := range []int{0, 1, 4095, chunkSize - 1, chunkSize, chunkSize + 1, chunks*chunkSize + 7} {
		data := randBytes(n, uint64(100+i))
		res, err := s.Import(context.Background(), bytes.NewReader(data), sum(data))
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if res.Size != int64(n) {
			t.Errorf("%d bytes: size %d", n, res.Size)
		}
		d, size, err := HashFile(mustPath(t, s, res.Digest))
		if err != nil || d != res.Digest || size != int64(n) {
			t.Errorf("%d bytes: HashFile = %s %d %v", n, d, size, err)
		}
	}
	requireNoTemps(t, s)
}

// A source that returns a few bytes at a time, as a slow network does.
func TestImportSmallReads(t *testing.T) {
	s := openStore(t)
	data := randBytes(chunkSize+999, 7)
	for _, r := range []io.Reader{iotest.OneByteReader(bytes.NewReader(data[:50000])), iotest.HalfReader(bytes.NewReader(data)), iotest.DataErrReader(bytes.NewReader(data))} {
		res, err := s.Import(context.Background(), r, "")
		if err != nil {
			t.Fatal(err)
		}
		if res.Size != 50000 && res.Size != int64(len(data)) {
			t.Errorf("size %d", res.Size)
		}
		b, err := os.ReadFile(mustPath(t, s, res.Digest))
		if err != nil || !bytes.Equal(b, data[:res.Size]) {
			t.Errorf("content differs (%v)", err)
		}
	}
}

func mustPath(t *testing.T, s *Store, d string) string {
	t.Helper()
	p, err := s.Path(d)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImportTwiceStoredOnce(t *testing.T) {
	s := openStore(t)
	data := randBytes(2*chunkSize+1, 2)
	first, err := s.Import(context.Background(), bytes.NewReader(data), "")
	if err != nil {
		t.Fatal(err)
	}
	p := mustPath(t, s, first.Digest)
	before, _ := os.Stat(p)
	second, err := s.Import(context.Background(), bytes.NewReader(data), first.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if first.Existed || !second.Existed || second.Digest != first.Digest || second.Size != first.Size {
		t.Fatalf("first %+v, second %+v", first, second)
	}
	after, _ := os.Stat(p)
	if !os.SameFile(before, after) {
		t.Error("the stored blob was replaced")
	}
	list, _ := s.List()
	if len(list) != 1 {
		t.Errorf("List = %+v", list)
	}
	requireNoTemps(t, s)
}

// A damaged blob is replaced by importing its content again; the rename
// leaves a reader of the damaged file with what it opened.
func TestImportReplacesDamagedBlob(t *testing.T) {
	data := randBytes(2*chunkSize+5, 12)
	for name, damage := range map[string]func(t *testing.T, p string){
		"truncated": func(t *testing.T, p string) {
			if err := os.Truncate(p, 1000); err != nil {
				t.Fatal(err)
			}
		},
		"longer": func(t *testing.T, p string) {
			os.Chmod(p, 0o644)
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte("junk"))
			f.Close()
		},
		"same size, other bytes": func(t *testing.T, p string) {
			os.Chmod(p, 0o644)
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt(make([]byte, 4096), chunkSize+17)
			f.Close()
		},
		"empty": func(t *testing.T, p string) {
			if err := os.Truncate(p, 0); err != nil {
				t.Fatal(err)
			}
		},
		"a symlink": func(t *testing.T, p string) {
			os.Remove(p)
			if err := os.Symlink("/dev/null", p); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := openStore(t)
			first, err := s.Import(context.Background(), bytes.NewReader(data), sum(data))
			if err != nil {
				t.Fatal(err)
			}
			p := mustPath(t, s, first.Digest)
			damage(t, p)
			reader, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer reader.Close()
			damaged, _ := io.ReadAll(reader)

			res, err := s.Import(context.Background(), bytes.NewReader(data), sum(data))
			if err != nil {
				t.Fatal(err)
			}
			if !res.Replaced || res.Existed || res.Digest != sum(data) || res.Size != int64(len(data)) {
				t.Fatalf("%+v, want Replaced", res)
			}
			info, err := os.Lstat(p)
			if err != nil || !info.Mode().IsRegular() || info.Mode().Perm() != 0o444 {
				t.Fatalf("the blob now: %v, %v", info, err)
			}
			if b, _ := os.ReadFile(p); !bytes.Equal(b, data) {
				t.Fatal("the blob is still damaged")
			}
			reader.Seek(0, io.SeekStart)
			if b, _ := io.ReadAll(reader); !bytes.Equal(b, damaged) {
				t.Error("a reader of the damaged copy saw it change")
			}
			requireNoTemps(t, s)

			again, err := s.Import(context.Background(), bytes.NewReader(data), "")
			if err != nil || !again.Existed || again.Replaced {
				t.Fatalf("the import after the repair: %+v, %v; want Existed", again, err)
			}
		})
	}
}

// A blob that cannot be checked or replaced fails the import, and the store
// is left as it was.
func TestImportDamagedBlobNotReplaceable(t *testing.T) {
	s := openStore(t)
	data := randBytes(1000, 13)
	p := mustPath(t, s, sum(data))
	if err := os.Mkdir(p, 0o755); err != nil { // not a file at all
		t.Fatal(err)
	}
	before := snapshot(t, s.Dir())
	if res, err := s.Import(context.Background(), bytes.NewReader(data), sum(data)); err == nil {
		t.Fatalf("imported over a directory: %+v", res)
	}
	if after := snapshot(t, s.Dir()); after != before {
		t.Fatalf("store changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// Checking a stored copy of the right size means hashing it, which a
// cancelled context stops.
func TestHoldsCancelled(t *testing.T) {
	s := openStore(t)
	data := randBytes(3*chunkSize, 14)
	res, err := s.Import(context.Background(), bytes.NewReader(data), "")
	if err != nil {
		t.Fatal(err)
	}
	p := mustPath(t, s, res.Digest)
	if there, ok, err := holds(context.Background(), p, res); !there || !ok || err != nil {
		t.Fatalf("holds = %v, %v, %v; want there and intact", there, ok, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok, err := holds(ctx, p, res); ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("holds with a cancelled context = %v, %v; want context.Canceled", ok, err)
	}
	os.Remove(p)
	if there, ok, err := holds(context.Background(), p, res); there || ok || err != nil {
		t.Fatalf("holds on a removed blob = %v, %v, %v", there, ok, err)
	}

	// Something else in the blob's place is there but does not hold it,
	// and is not followed or waited on: a link to an intact copy, a FIFO
	// (an open that waited for a writer would hang the import), a directory.
	good := filepath.Join(t.TempDir(), "copy")
	if err := os.WriteFile(good, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, put := range map[string]func() error{
		"link":      func() error { return os.Symlink(good, p) },
		"FIFO":      func() error { return syscall.Mkfifo(p, 0o644) },
		"directory": func() error { return os.Mkdir(p, 0o755) },
		"socket":    func() error { return syscall.Mknod(p, syscall.S_IFSOCK|0o644, 0) },
	} {
		if err := put(); err != nil {
			t.Fatal(err)
		}
		if there, ok, err := holds(context.Background(), p, res); !there || ok || err != nil {
			t.Errorf("holds on a %s = %v, %v, %v; want there, not holding it, no error", name, there, ok, err)
		}
		os.Remove(p)
	}
}

// Imports of the same content at once, over a damaged blob, all succeed;
// the name shows the damaged copy or the whole new one, never a part.
func TestImportConcurrentOverDamaged(t *testing.T) {
	s := openStore(t)
	data := randBytes(3*chunkSize+77, 15)
	if _, err := s.Import(context.Background(), bytes.NewReader(data), ""); err != nil {
		t.Fatal(err)
	}
	p := mustPath(t, s, sum(data))
	const damagedSize = 1000
	if err := os.Truncate(p, damagedSize); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	watched := make(chan error, 1)
	go func() {
		// Every look at the name finds one of the two whole files.
		for {
			select {
			case <-stop:
				watched <- nil
				return
			default:
			}
			info, err := os.Stat(p)
			if err != nil {
				watched <- err
				return
			}
			if info.Size() != damagedSize && info.Size() != int64(len(data)) {
				watched <- fmt.Errorf("the blob showed %d bytes", info.Size())
				return
			}
		}
	}()

	results, err := importAtOnce(s, data, 4)
	close(stop)
	if err := <-watched; err != nil {
		t.Error(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	replaced := 0
	for _, r := range results {
		if r.Replaced {
			replaced++
		}
	}
	if replaced == 0 {
		t.Errorf("no import says it replaced the damaged copy: %+v", results)
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, data) {
		t.Error("the blob is still damaged")
	}
	requireNoTemps(t, s)
}

func TestImportWrongDigestLeavesStoreUnchanged(t *testing.T) {
	s := openStore(t)
	for i := range 3 {
		if _, err := s.Import(context.Background(), bytes.NewReader(randBytes(1000*(i+1), uint64(i))), ""); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshot(t, s.Dir())
	data := randBytes(2*chunkSize+5, 3)
	wrong := sum([]byte("something else"))
	_, err := s.Import(context.Background(), bytes.NewReader(data), wrong)
	var mm *MismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("err = %v, want a MismatchError", err)
	}
	if mm.Want != wrong || mm.Got != sum(data) || mm.Size != int64(len(data)) {
		t.Errorf("mismatch %+v", mm)
	}
	if !strings.Contains(err.Error(), wrong) || !strings.Contains(err.Error(), sum(data)) {
		t.Errorf("error %q does not name both digests", err)
	}
	if after := snapshot(t, s.Dir()); after != before {
		t.Fatalf("store changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// The content whose digest was claimed is not stored either.
	if ok, _ := s.Has(sum(data)); ok {
		t.Error("the mismatching content was stored")
	}
}

// failingReader yields its data, then fails; with together, the last
// data comes with the error.
type failingReader struct {
	data     []byte
	err      error
	together bool
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	if r.together && len(r.data) == 0 {
		return n, r.err
	}
	return n, nil
}

func TestImportSourceFailsMidway(t *testing.T) {
	s := openStore(t)
	if _, err := s.Import(context.Background(), strings.NewReader("already here"), ""); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, s.Dir())
	// io.ErrUnexpectedEOF is what an HTTP body cut short returns: it
	// must not pass for the end of a shorter file.
	all := randBytes(3*chunkSize+100, 4)
	for _, broken := range []error{errors.New("connection reset by peer"), io.ErrUnexpectedEOF} {
		for _, n := range []int{0, 10, chunkSize, len(all)} {
			for _, together := range []bool{false, true} {
				data := all[:n]
				_, err := s.Import(context.Background(), &failingReader{data: data, err: broken, together: together}, "")
				if !errors.Is(err, broken) {
					t.Fatalf("%d bytes, then %v (together %v): err = %v", n, broken, together, err)
				}
				if after := snapshot(t, s.Dir()); after != before {
					t.Fatalf("store changed after a failure at %d bytes:\nbefore:\n%s\nafter:\n%s", n, before, after)
				}
			}
		}
	}
}

// cancellingReader cancels its context after n bytes and keeps going.
type cancellingReader struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= n
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func TestImportCancelled(t *testing.T) {
	s := openStore(t)
	before := snapshot(t, s.Dir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	data := randBytes(8*chunkSize, 5)
	_, err := s.Import(ctx, &cancellingReader{r: bytes.NewReader(data), n: 2 * chunkSize, cancel: cancel}, "")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if after := snapshot(t, s.Dir()); after != before {
		t.Fatalf("store changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// Cancelled after the last byte was read: still nothing stored.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	_, err = s.Import(ctx2, &cancellingReader{r: bytes.NewReader(data), n: len(data), cancel: cancel2}, "")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if after := snapshot(t, s.Dir()); after != before {
		t.Fatalf("store changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// importAtOnce imports data n times at once, each through an Open of its
// own of s's directory, as other processes importing the same content at
// once would. The error names each import that failed.
func importAtOnce(s *Store, data []byte, n int) ([]Result, error) {
	results := make([]Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			other, err := Open(filepath.Dir(s.Dir()))
			if err == nil {
				results[i], err = other.Import(context.Background(), iotest.HalfReader(bytes.NewReader(data)), sum(data))
			}
			if err != nil {
				errs[i] = fmt.Errorf("import %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

func TestImportConcurrentSameContent(t *testing.T) {
	s := openStore(t)
	data := randBytes(3*chunkSize+77, 6)
	results, err := importAtOnce(s, data, 8)
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	for i, r := range results {
		if r.Digest != sum(data) || r.Size != int64(len(data)) {
			t.Errorf("import %d: %+v", i, r)
		}
		if !r.Existed {
			stored++
		}
	}
	if stored != 1 {
		t.Errorf("%d imports say they stored the blob, want exactly 1", stored)
	}
	list, err := s.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	b, _ := os.ReadFile(mustPath(t, s, list[0].Digest))
	if !bytes.Equal(b, data) {
		t.Error("stored content differs")
	}
	requireNoTemps(t, s)
}

func TestListSkipsWhatIsNotABlob(t *testing.T) {
	s := openStore(t)
	res, err := s.Import(context.Background(), strings.NewReader("a"), "")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(s.Dir(), "sha256")
	os.WriteFile(filepath.Join(dir, "README"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, strings.ToUpper(sum([]byte("b")))), []byte("b"), 0o644)
	os.Mkdir(filepath.Join(dir, sum([]byte("c"))), 0o755)
	os.Symlink("/etc/passwd", filepath.Join(dir, sum([]byte("d"))))
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Digest != res.Digest || list[0].Size != 1 {
		t.Errorf("List = %+v", list)
	}
	if _, err := s.Has(sum([]byte("d"))); err == nil {
		t.Error("Has accepted a symlink as a blob")
	}
}

func TestListSorted(t *testing.T) {
	s := openStore(t)
	var want []string
	for i := range 20 {
		res, err := s.Import(context.Background(), strings.NewReader(fmt.Sprint(i)), "")
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, res.Digest)
	}
	sort.Strings(want)
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range list {
		if b.Digest != want[i] {
			t.Fatalf("List[%d] = %s, want %s", i, b.Digest, want[i])
		}
	}
}

func TestRemove(t *testing.T) {
	s := openStore(t)
	res, err := s.Import(context.Background(), strings.NewReader("gone soon"), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(res.Digest); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(res.Digest); ok {
		t.Error("still there")
	}
	if err := s.Remove(res.Digest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("second Remove: %v, want not-exist", err)
	}
	// It can be imported again.
	again, err := s.Import(context.Background(), strings.NewReader("gone soon"), res.Digest)
	if err != nil || again.Existed {
		t.Errorf("re-import: %+v %v", again, err)
	}
}

func TestOpenRemovesStaleTemps(t *testing.T) {
	s := openStore(t)
	stale := filepath.Join(s.tmpDir(), "import-1")
	fresh := filepath.Join(s.tmpDir(), "import-2")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTemp)
	os.Chtimes(stale, old, old)
	if _, err := Open(filepath.Dir(s.Dir())); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Error("stale temp kept")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Error("fresh temp (an import in progress) removed")
	}
}

// An import that was killed leaves its work directory unlocked; the next
// import removes it, and not the one a running import holds, however old.
func TestImportRemovesKilledImports(t *testing.T) {
	s := openStore(t)
	killed := filepath.Join(s.TempDir(), ImportWorkPrefix+"killed")
	if err := os.Mkdir(killed, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(killed, "blob"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	running, err := durable.NewWorkDir(s.TempDir(), ImportWorkPrefix)
	if err != nil {
		t.Fatal(err)
	}
	defer running.Done()
	old := time.Now().Add(-10 * time.Minute)
	os.Chtimes(killed, old, old)
	os.Chtimes(running.Path, old, old)
	if _, err := s.Import(context.Background(), strings.NewReader("next"), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(killed); !errors.Is(err, fs.ErrNotExist) {
		t.Error("the killed import's work directory was kept")
	}
	if _, err := os.Stat(running.Path); err != nil {
		t.Error("a running import's work directory was removed")
	}
}

func TestHashFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	data := randBytes(2*chunkSize+3, 8)
	os.WriteFile(p, data, 0o644)
	d, n, err := HashFile(p)
	if err != nil || d != sum(data) || n != int64(len(data)) {
		t.Fatalf("HashFile = %s %d %v", d, n, err)
	}
	if _, _, err := HashFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestHashCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Hash(ctx, bytes.NewReader(randBytes(chunkSize, 9))); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}

// A failing second stage (a full disk) stops the pump with its error.
func TestPumpSecondStageFails(t *testing.T) {
	full := errors.New("no space left on device")
	var written int64
	n, err := pump(context.Background(), bytes.NewReader(randBytes(10*chunkSize, 10)), nil, func(b []byte) (int, error) {
		if written >= 2*chunkSize {
			return 0, full
		}
		written += int64(len(b))
		return len(b), nil
	})
	if !errors.Is(err, full) {
		t.Fatalf("err = %v (after %d bytes)", err, n)
	}
}

func BenchmarkHash(b *testing.B) {
	data := randBytes(64<<20, 11)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := Hash(context.Background(), bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// An import leaves its blob out of the page cache, so that a large import
// does not push out what the server is serving.
func TestImportLeavesPageCache(t *testing.T) {
	s := openStore(t)
	var fs unix.Statfs_t
	if err := unix.Statfs(s.Dir(), &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type == unix.TMPFS_MAGIC {
		t.Skip("on tmpfs, the page cache is the storage")
	}
	data := randBytes(3*writebackWindow+5, 12)
	res, err := s.Import(context.Background(), bytes.NewReader(data), "")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(mustPath(t, s, res.Digest))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, len(data), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	pages := (len(data) + os.Getpagesize() - 1) / os.Getpagesize()
	vec := make([]byte, pages)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	resident := 0
	for _, v := range vec {
		resident += int(v & 1)
	}
	if resident > pages/4 {
		t.Errorf("%d of %d pages of the blob are in the page cache", resident, pages)
	}
}

// Regular checks the opened file, and says what a file that is not a
// regular one is instead.
func TestRegular(t *testing.T) {
	dir := t.TempDir()
	file, link, fifo := filepath.Join(dir, "file"), filepath.Join(dir, "link"), filepath.Join(dir, "fifo")
	if err := os.WriteFile(file, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	f, st, err := Regular(os.OpenFile(file, ReadFlags|syscall.O_NOFOLLOW, 0))
	if err != nil || st.Size() != 3 {
		t.Fatalf("a regular file: %v %v", st, err)
	}
	f.Close()
	for name, want := range map[string]string{
		link: link + " is a symbolic link, which is not followed here",
		fifo: fifo + " is a named pipe (FIFO), not a regular file",
		dir:  dir + " is a directory, not a regular file",
	} {
		if _, _, err := Regular(os.OpenFile(name, ReadFlags|syscall.O_NOFOLLOW, 0)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
	if _, _, err := Regular(os.OpenFile(filepath.Join(dir, "missing"), ReadFlags, 0)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	// OpenRegular looks before it opens: no FIFO or device is opened.
	f, st, err = OpenRegular(file)
	if err != nil || st.Size() != 3 {
		t.Fatalf("OpenRegular of a regular file: %v %v", st, err)
	}
	f.Close()
	for name, want := range map[string]string{
		link: link + " is a symbolic link, not a regular file",
		fifo: fifo + " is a named pipe (FIFO), not a regular file",
	} {
		if _, _, err := OpenRegular(name); err == nil || err.Error() != want {
			t.Errorf("OpenRegular(%s): %v, want %q", name, err, want)
		}
	}
	if _, _, err := OpenRegular(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenRegular of a missing file: %v", err)
	}
}
