// Package blob keeps image sources — vendor ISOs, WIMs, kernels, initrds —
// in a content-addressed store below the data dir:
//
//	DATA_DIR/blobs/sha256/<hex>   one file per content, named by its SHA-256
//	DATA_DIR/blobs/tmp/           imports in progress
//
// Naming a file by its digest is what lets the image workflow trust it: the
// same source imported twice is stored once, a build names its inputs by
// digest and gets exactly those bytes, and any stored file can be re-hashed
// against its own name for an integrity audit.
//
// An import streams its source into a temporary file in the same tree,
// hashing as it copies, syncs it and only then links it under its digest, so
// that a blob is never seen half-written. The file is in a work directory
// of its own that the import locks while it runs (durable.NewWorkDir): an
// import that is killed cannot remove it, and the next import or image gc
// does. A file already under that name is checked; if it is damaged
// (truncated, overwritten), the fresh copy is renamed over it, so that
// importing a source again repairs its blob.
// Whatever goes wrong — a digest that
// is not the expected one, a source that dies mid-transfer, a full disk, a
// cancelled context — the temporary file is removed and the store is left as
// it was.
package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"bootforge/internal/durable"
)

// Algorithm is the only digest algorithm: the directory below blobs/.
const Algorithm = "sha256"

// staleTemp is how long an untouched temporary file may stay in blobs/tmp
// before Open removes it. Imports write into locked work directories,
// which the next import and image gc remove once their import is gone; a
// plain file there was left by an older bootforge, which held no lock, so
// only its age says it is abandoned. A running import writes to its file
// at least once a chunk, so its mtime stays fresh.
const staleTemp = 24 * time.Hour

// ImportWorkPrefix starts the name of each import's work directory in
// TempDir.
const ImportWorkPrefix = "import-"

// CheckDigest accepts a SHA-256 digest as 64 lower-case hex digits, the only
// form that names a blob. Everything that turns a digest into a path calls it
// first.
func CheckDigest(d string) error {
	if len(d) != 2*sha256.Size {
		return fmt.Errorf("digest %q: want 64 lower-case hex digits (a SHA-256)", d)
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("digest %q: want 64 lower-case hex digits (a SHA-256)", d)
		}
	}
	return nil
}

// Store is a blob store rooted at DATA_DIR/blobs. It is safe for concurrent
// use, also by several processes.
type Store struct {
	dir string // DATA_DIR/blobs
}

// Open opens (and creates) the blob store below dataDir, and removes the
// temporary files an older bootforge's killed imports left.
func Open(dataDir string) (*Store, error) {
	if dataDir == "" {
		return nil, errors.New("blob store: no data dir")
	}
	s := &Store{dir: filepath.Join(dataDir, "blobs")}
	for _, d := range []string{s.blobDir(), s.tmpDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("blob store: %w", err)
		}
	}
	s.removeStale(time.Now().Add(-staleTemp))
	return s, nil
}

// Dir is the store's root, DATA_DIR/blobs.
func (s *Store) Dir() string { return s.dir }

func (s *Store) blobDir() string { return filepath.Join(s.dir, Algorithm) }
func (s *Store) tmpDir() string  { return filepath.Join(s.dir, "tmp") }

// TempDir holds the work directories of imports in progress, and of
// imports that were killed (durable.SweepWorkDirs with ImportWorkPrefix
// finds those).
func (s *Store) TempDir() string { return s.tmpDir() }

func (s *Store) removeStale(before time.Time) {
	entries, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			continue // a work directory: SweepWorkDirs knows whether it is held
		}
		if info, err := e.Info(); err == nil && info.ModTime().Before(before) {
			os.Remove(filepath.Join(s.tmpDir(), e.Name()))
		}
	}
}

// Path is where the blob with this digest is (or would be) stored.
func (s *Store) Path(digest string) (string, error) {
	if err := CheckDigest(digest); err != nil {
		return "", err
	}
	return filepath.Join(s.blobDir(), digest), nil
}

// PathIn is where the store in dataDir keeps the blob with this digest,
// for readers that need no store of their own (a build's --from).
func PathIn(dataDir, digest string) (string, error) {
	return (&Store{dir: filepath.Join(dataDir, "blobs")}).Path(digest)
}

// Has reports whether the blob is stored.
func (s *Store) Has(digest string) (bool, error) {
	p, err := s.Path(digest)
	if err != nil {
		return false, err
	}
	info, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !info.Mode().IsRegular() {
		return false, fmt.Errorf("blob %s is not a regular file", digest)
	}
	return true, nil
}

// Info describes one stored blob.
type Info struct {
	Digest string
	Size   int64
}

// List returns every stored blob, sorted by digest. Files whose names are
// not digests are not blobs and are left out.
func (s *Store) List() ([]Info, error) {
	entries, err := os.ReadDir(s.blobDir())
	if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	var out []Info
	for _, e := range entries {
		if CheckDigest(e.Name()) != nil || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since ReadDir
		}
		if err != nil {
			return nil, fmt.Errorf("blob store: %w", err)
		}
		out = append(out, Info{Digest: e.Name(), Size: info.Size()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out, nil
}

// Remove deletes a blob. Removing one that is not stored is an error that
// matches fs.ErrNotExist. A reader that has the blob open keeps reading it.
func (s *Store) Remove(digest string) error {
	p, err := s.Path(digest)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return err
	}
	if err := durable.SyncDir(s.blobDir()); err != nil {
		return fmt.Errorf("blob store: %w", err)
	}
	return nil
}

// Result is what an import stored.
type Result struct {
	Digest string
	Size   int64
	// Existed says the blob was already stored, intact: the new copy was
	// dropped.
	Existed bool
	// Replaced says a damaged copy was stored under the digest: the new
	// copy took its place.
	Replaced bool
}

// MismatchError is an import whose content is not the expected one.
type MismatchError struct {
	Want, Got string
	Size      int64 // bytes read
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("SHA-256 mismatch: expected %s, got %s (%d bytes read)", e.Want, e.Got, e.Size)
}

// Import copies src into the store and returns its digest. If want is not
// empty, the content must hash to it, or Import fails with a *MismatchError.
// A blob already stored is checked, by its size and then its hash, and
// replaced if it is damaged. On any error nothing is left behind: no blob,
// no temporary file, and a stored blob as it was.
func (s *Store) Import(ctx context.Context, src io.Reader, want string) (res Result, err error) {
	if want != "" {
		if err := CheckDigest(want); err != nil {
			return Result{}, fmt.Errorf("expected %w", err)
		}
	}
	// Locked until the blob is in place: a killed import leaves its
	// directory unlocked, and the next import (here) or gc removes it.
	durable.SweepWorkDirs(s.tmpDir(), ImportWorkPrefix)
	work, err := durable.NewWorkDir(s.tmpDir(), ImportWorkPrefix)
	if err != nil {
		return Result{}, fmt.Errorf("blob store: %w", err)
	}
	tmpName := filepath.Join(work.Path, "blob")
	tmp, err := os.OpenFile(tmpName, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		work.Done()
		return Result{}, fmt.Errorf("blob store: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
		}
		// The temp file goes in every case, with its directory: linked
		// into place (the blob keeps the inode), renamed, or dropped.
		work.Done()
	}()

	h := sha256.New()
	w := newWriteback(tmp)
	n, err := pump(ctx, src, h.Write, w.Write)
	if err != nil {
		return Result{}, err
	}
	res = Result{Digest: hex.EncodeToString(h.Sum(nil)), Size: n}
	if want != "" && res.Digest != want {
		return Result{}, &MismatchError{Want: want, Got: res.Digest, Size: n}
	}
	if err := tmp.Chmod(0o444); err != nil {
		return Result{}, fmt.Errorf("blob store: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return Result{}, fmt.Errorf("blob store: sync: %w", err)
	}
	w.drop()
	err = tmp.Close()
	tmp = nil
	if err != nil {
		return Result{}, fmt.Errorf("blob store: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	final := filepath.Join(s.blobDir(), res.Digest)
	// A link never replaces: if the blob is there (maybe put there by a
	// concurrent import of the same content), it is kept and so is its
	// inode, which a reader may have open.
	switch err := os.Link(tmpName, final); {
	case err == nil:
	case errors.Is(err, fs.ErrExist):
		there, ok, err := holds(ctx, final, res)
		if err != nil {
			return Result{}, fmt.Errorf("blob store: checking the stored copy: %w", err)
		}
		if ok {
			res.Existed = true
			return res, nil
		}
		// The stored copy is damaged (or was removed since). The fresh
		// one, verified and synced, takes its name in one rename: a reader
		// sees the old file or the whole new one, never a part. Imports
		// racing here each rename a whole, verified copy, so whichever is
		// last, the blob is intact.
		if err := os.Rename(tmpName, final); err != nil {
			return Result{}, fmt.Errorf("blob store: replacing a damaged copy: %w", err)
		}
		res.Replaced = there
	default:
		return Result{}, fmt.Errorf("blob store: %w", err)
	}
	if err := durable.SyncDir(s.blobDir()); err != nil {
		return Result{}, fmt.Errorf("blob store: %w", err)
	}
	return res, nil
}

// holds says whether the file at p is there, and whether it is a blob with
// the content res describes. The size is compared first, so that a
// truncated copy is found without reading it; a copy of the right size is
// hashed. A file that is not a regular one (a link, a FIFO, a directory)
// does not hold it. The checks are made on the opened file, not the name,
// so that what is hashed is what was checked.
func holds(ctx context.Context, p string, res Result) (there, ok bool, err error) {
	f, err := os.OpenFile(p, ReadFlags|syscall.O_NOFOLLOW, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, false, nil
	case errors.Is(err, syscall.ELOOP), // a symbolic link
		errors.Is(err, syscall.ENXIO), errors.Is(err, syscall.ENODEV): // a socket, a device without its driver
		return true, false, nil
	case err != nil:
		return true, false, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return true, false, err
	}
	if !info.Mode().IsRegular() || info.Size() != res.Size {
		return true, false, nil
	}
	digest, _, err := Hash(ctx, f)
	if err != nil {
		return true, false, err
	}
	return true, digest == res.Digest, nil
}

// HashFile returns the SHA-256 (hex) and size of the file at path, hashed
// with the same fast path imports use.
func HashFile(path string) (digest string, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	return Hash(context.Background(), f)
}

// ReadFlags open a file that is to be checked and then read: O_NONBLOCK,
// so that a FIFO put where a file was expected does not block the open
// until some writer comes (on a regular file the flag changes nothing).
// Add syscall.O_NOFOLLOW where a final symbolic link must not be followed.
const ReadFlags = os.O_RDONLY | syscall.O_NONBLOCK

// Regular takes what an open with ReadFlags returned and checks, with
// fstat, that the opened file is a regular one. Checking the descriptor,
// not the name, is what makes the check hold for what is read next: a
// name checked and then opened again may by then be a link, a FIFO or
// another file. The error names the file and says what it is instead; a
// file that is not regular is closed.
func Regular(f *os.File, err error) (*os.File, fs.FileInfo, error) {
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && errors.Is(pe.Err, syscall.ELOOP) {
			return nil, nil, fmt.Errorf("%s is a symbolic link, which is not followed here", pe.Path)
		}
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s is %s, not a regular file", f.Name(), TypeName(st.Mode()))
	}
	return f, st, nil
}

// OpenRegular opens the file at name for reading if it is a regular file,
// not following a final symbolic link. It is looked at first, so that a
// FIFO or a device found there is never opened (opening a device can do
// something by itself); what is opened is checked again (Regular), as it
// may no longer be what was looked at, and is what the caller reads.
func OpenRegular(name string) (*os.File, fs.FileInfo, error) {
	st, err := os.Lstat(name)
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is %s, not a regular file", name, TypeName(st.Mode()))
	}
	return Regular(os.OpenFile(name, ReadFlags|syscall.O_NOFOLLOW, 0))
}

// TypeName names the type of a file that is not a regular one, for an
// operator: "a symbolic link", "a named pipe (FIFO)".
func TypeName(m fs.FileMode) string {
	switch t := m.Type(); {
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}

// Hash returns the SHA-256 (hex) and length of what r yields. Wrap r to
// show progress; it is read in large chunks.
func Hash(ctx context.Context, r io.Reader) (digest string, size int64, err error) {
	h := sha256.New()
	n, err := pump(ctx, r, nil, h.Write)
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
