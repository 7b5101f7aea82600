package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"bootforge/internal/blob"
	"bootforge/internal/image"
	"bootforge/internal/sums"
)

// bufSize is the copy and hash buffer.
const bufSize = 1 << 20

// Kinds of source.
type kind int

const (
	kindFile kind = iota
	kindISO
	kindDir
)

// source is one input of a build, resolved and hashed. It stays open
// until the build ends, and what the build takes from it is read through
// what was opened, never by its name again: by then the name could lead
// to another file, a link out of the source, or a FIFO that blocks.
type source struct {
	given string // as the operator gave it
	path  string // on disk
	kind  kind
	blob  bool
	rec   image.Source
	// file is a file or ISO source: the descriptor its bytes were
	// hashed from, and are copied from.
	file *os.File
	// dir is a directory source, and files maps each of its regular
	// files (by slash-separated path) to the SHA-256 it had when the
	// source was hashed: every copy from it must be the same bytes.
	dir   *os.Root
	files map[string]string
}

var digestRE = regexp.MustCompile(`^(?:sha256:)?([0-9a-fA-F]{64})$`)

// blobDigest returns the hex digest when s names a blob: 64 hex digits,
// or sha256:<hex>.
func blobDigest(s string) (string, bool) {
	m := digestRE.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	return strings.ToLower(m[1]), true
}

// resolve finds, classifies and hashes the source given as s.
func (b *run) resolve(ctx context.Context, s string) (*source, error) {
	if src, ok := b.sources[s]; ok {
		return src, nil
	}
	src := &source{given: s}
	var err error
	if d, ok := blobDigest(s); ok {
		src.blob = true
		if src.path, err = blob.PathIn(b.DataDir, d); err != nil {
			return nil, err
		}
		// The store's files are its own: a link there is not followed.
		src.file, _, err = blob.OpenRegular(src.path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("blob sha256:%s is not in the store (%s): import it first with bootforge image import", d, src.path)
		}
		if err != nil {
			return nil, fmt.Errorf("blob sha256:%s: %w", d, err)
		}
	} else {
		src.path = s
		if !filepath.IsAbs(s) && b.spec.Dir != "" {
			src.path = filepath.Join(b.spec.Dir, s)
		}
		// Only a regular file or a directory is opened: opening a
		// device or a socket can do something by itself. What was
		// opened is checked again, below: it may not be what was
		// looked at. The operator named it: a link there is followed.
		if st, err := os.Stat(src.path); err != nil {
			return nil, err
		} else if !st.IsDir() && !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%s is neither a regular file nor a directory: it is %s", s, blob.TypeName(st.Mode()))
		}
		f, err := os.OpenFile(src.path, blob.ReadFlags, 0)
		if err != nil {
			return nil, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		if st.IsDir() {
			f.Close()
			src.kind = kindDir
			if err := src.openDir(st); err != nil {
				return nil, err
			}
		} else if src.file, _, err = blob.Regular(f, nil); err != nil {
			return nil, err // "... is a named pipe (FIFO), not a regular file"
		}
	}
	if src.file != nil {
		b.closers = append(b.closers, src.file)
		iso, err := isISO(src.file)
		if err != nil {
			return nil, err
		}
		if iso {
			src.kind = kindISO
		}
		src.rec.Size, src.rec.SHA256, err = hashFile(ctx, src.file)
		if err != nil {
			return nil, fmt.Errorf("hashing %s: %w", s, err)
		}
	} else {
		b.closers = append(b.closers, src.dir)
		src.rec.Size, src.rec.SHA256, src.files, err = hashDir(ctx, src.dir)
		if err != nil {
			return nil, fmt.Errorf("hashing %s: %w", s, err)
		}
	}
	src.rec.Origin = s
	if src.blob {
		src.rec.Origin = "blob"
		if d, _ := blobDigest(s); d != src.rec.SHA256 {
			return nil, fmt.Errorf("blob sha256:%s is damaged: its content hashes to %s", d, src.rec.SHA256)
		}
	} else if b.spec.Pins != nil {
		want, ok := b.spec.Pins[s]
		if !ok {
			return nil, fmt.Errorf("recipe: source %q has no sha256 under sources; add it (its SHA-256 is %s)", s, src.rec.SHA256)
		}
		if !strings.EqualFold(want, src.rec.SHA256) {
			return nil, fmt.Errorf("recipe: source %q has SHA-256 %s, the recipe expects %s", s, src.rec.SHA256, strings.ToLower(want))
		}
	}
	b.sources[s] = src
	b.order = append(b.order, src)
	return src, nil
}

// openDir opens the directory source at src.path, which was opened and
// found a directory (st). Given through a link
// (/srv/isos/debian-current), it is the directory the link leads to:
// walks follow no link, and would find no file to hash (an empty source
// that any pin of an empty directory matches) and no driver to copy.
func (src *source) openDir(st fs.FileInfo) error {
	p, err := filepath.EvalSymlinks(src.path)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(p)
	if err != nil {
		return err
	}
	// The directory opened is the one that was looked at, not one
	// that has taken its name since.
	if now, err := root.Stat("."); err != nil || !os.SameFile(now, st) {
		root.Close()
		return fmt.Errorf("%s was replaced while the build opened it", src.given)
	}
	src.path, src.dir = p, root
	return nil
}

// reader reads a file source from its first byte, through the
// descriptor it was hashed from, however often it is read.
func (src *source) reader() io.Reader {
	return io.NewSectionReader(src.file, 0, math.MaxInt64)
}

// isoMagic is the ISO 9660 standard identifier of the first volume
// descriptor, at 0x8001 (sector 16, after the type byte).
var isoMagic = []byte("CD001")

// isISO tells an ISO image by its extension or its volume descriptor.
func isISO(f *os.File) (bool, error) {
	if strings.EqualFold(filepath.Ext(f.Name()), ".iso") {
		return true, nil
	}
	var magic [5]byte
	if _, err := f.ReadAt(magic[:], 0x8001); err != nil {
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		return false, err
	}
	return bytes.Equal(magic[:], isoMagic), nil
}

// copyHash copies r to w through h with a 1 MiB buffer, checking ctx
// between chunks.
func copyHash(ctx context.Context, w io.Writer, r io.Reader, h hash.Hash) (int64, error) {
	buf := make([]byte, bufSize)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, rerr := r.Read(buf)
		if k > 0 {
			h.Write(buf[:k])
			if w != nil {
				if _, err := w.Write(buf[:k]); err != nil {
					return n, err
				}
			}
			n += int64(k)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// hashFile returns the size and SHA-256 of an open file, from its first
// byte.
func hashFile(ctx context.Context, f *os.File) (int64, string, error) {
	h := sha256.New()
	n, err := copyHash(ctx, nil, io.NewSectionReader(f, 0, math.MaxInt64), h)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// hashDir digests a directory: the SHA-256 of its listing in sha256sum's
// format ("<hex>  <relative path>\n" for every regular file, sorted by
// path), so `(cd DIR && find . -type f -print0 | sed -z 's|^\./||' |
// LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum` gives the same
// digest, names with a backslash or a line break included. Size is the
// sum of the files'. A directory source is its regular files: symbolic
// links (an extracted Debian ISO has debian -> .) and special files are
// neither followed nor used. It also returns each file's SHA-256, by
// path, for the copies to be checked against.
//
// Each file is opened through the root, so nothing outside the directory
// is read, with O_NONBLOCK, so that a FIFO put in a file's place does not
// block; and it must be the file the walk saw.
func hashDir(ctx context.Context, root *os.Root) (int64, string, map[string]string, error) {
	seen := map[string]fs.FileInfo{}
	var files []string
	err := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		seen[p] = info
		files = append(files, p)
		return nil
	})
	if err != nil {
		return 0, "", nil, err
	}
	sort.Strings(files)
	var total int64
	list := sha256.New()
	digests := make(map[string]string, len(files))
	for _, rel := range files {
		f, st, err := blob.Regular(root.OpenFile(filepath.FromSlash(rel), blob.ReadFlags, 0))
		if err != nil {
			return 0, "", nil, err
		}
		if !os.SameFile(st, seen[rel]) {
			f.Close()
			return 0, "", nil, fmt.Errorf("%s was replaced while it was hashed", rel)
		}
		n, sum, err := hashFile(ctx, f)
		f.Close()
		if err != nil {
			return 0, "", nil, fmt.Errorf("%s: %w", rel, err)
		}
		total += n
		digests[rel] = sum
		// Names escaped as sha256sum escapes them: raw, "a\n<hex>  b"
		// listed like two files, a and b.
		io.WriteString(list, sums.Line(sum, rel))
	}
	return total, hex.EncodeToString(list.Sum(nil)), digests, nil
}
