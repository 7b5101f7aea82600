package build

import (
	"bootforge/internal/blob"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

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

// source is one input of a build, resolved and hashed.
type source struct {
	given string // as the operator gave it
	path  string // on disk
	kind  kind
	blob  bool
	rec   image.Source
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
	if d, ok := blobDigest(s); ok {
		src.blob = true
		var err error
		if src.path, err = blob.PathIn(b.DataDir, d); err != nil {
			return nil, err
		}
		st, err := os.Stat(src.path)
		if err != nil {
			return nil, fmt.Errorf("blob sha256:%s is not in the store (%s): import it first with bootforge image import", d, src.path)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("blob sha256:%s: %s is not a regular file", d, src.path)
		}
	} else {
		src.path = s
		if !filepath.IsAbs(s) && b.spec.Dir != "" {
			src.path = filepath.Join(b.spec.Dir, s)
		}
		st, err := os.Stat(src.path)
		if err != nil {
			return nil, err
		}
		switch {
		case st.IsDir():
			src.kind = kindDir
			// Given through a link (/srv/isos/debian-current), it is the
			// directory the link leads to: walks follow no link, and
			// would find no file to hash (an empty source that any pin
			// of an empty directory matches) and no driver to copy.
			if src.path, err = filepath.EvalSymlinks(src.path); err != nil {
				return nil, err
			}
		case !st.Mode().IsRegular():
			return nil, fmt.Errorf("%s is neither a regular file nor a directory", s)
		}
	}
	if src.kind != kindDir {
		iso, err := isISO(src.path)
		if err != nil {
			return nil, err
		}
		if iso {
			src.kind = kindISO
		}
	}
	var err error
	if src.kind == kindDir {
		src.rec.Size, src.rec.SHA256, err = hashDir(ctx, src.path)
	} else {
		src.rec.Size, src.rec.SHA256, err = hashFile(ctx, src.path)
	}
	if err != nil {
		return nil, fmt.Errorf("hashing %s: %w", s, err)
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

// isoMagic is the ISO 9660 standard identifier of the first volume
// descriptor, at 0x8001 (sector 16, after the type byte).
var isoMagic = []byte("CD001")

// isISO tells an ISO image by its extension or its volume descriptor.
func isISO(p string) (bool, error) {
	if strings.EqualFold(filepath.Ext(p), ".iso") {
		return true, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
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

// hashFile returns a file's size and SHA-256.
func hashFile(ctx context.Context, p string) (int64, string, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := copyHash(ctx, nil, f, h)
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
// neither followed nor used.
func hashDir(ctx context.Context, dir string) (int64, string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return 0, "", err
	}
	sort.Strings(files)
	var total int64
	list := sha256.New()
	for _, rel := range files {
		n, sum, err := hashFile(ctx, filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return 0, "", err
		}
		total += n
		// Names escaped as sha256sum escapes them: raw, "a\n<hex>  b"
		// listed like two files, a and b.
		io.WriteString(list, sums.Line(sum, rel))
	}
	return total, hex.EncodeToString(list.Sum(nil)), nil
}
