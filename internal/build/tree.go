package build

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kdomanski/iso9660"

	"bootforge/internal/blob"
)

// A tree is a source that holds files by path: an ISO 9660 image or a
// directory (an extracted ISO).
type tree interface {
	// list returns the entries of the directory at dir ("" is the root).
	list(dir string) ([]node, error)
	// describe names the tree in messages.
	describe() string
	// foldsCase tells whether names compare without case everywhere, as
	// ISO 9660 names without Rock Ridge do.
	foldsCase() bool
}

// node is one entry of a tree directory.
type node struct {
	name string
	dir  bool
	size int64
	mode fs.FileMode
	open func() (io.ReadCloser, error)
	file *iso9660.File // an ISO's entry, to list a directory
	// sha256 is what a directory source's file hashed to with its
	// source, which what is copied must hash to; "" for an ISO's entry,
	// read through the image's descriptor.
	sha256 string
}

// cleanInside turns a path inside a tree, as an operator writes it
// (/install.amd/vmlinuz, install.amd\vmlinuz), into its components.
func cleanInside(p string) ([]string, error) {
	p = strings.ReplaceAll(p, `\`, "/")
	var parts []string
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return nil, fmt.Errorf("%q: a path inside the source may not contain ..", p)
		}
		parts = append(parts, c)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("%q names no file", p)
	}
	return parts, nil
}

// errNotFound is wrapped by lookup when no entry matches.
var errNotFound = errors.New("not found")

// lookup finds the file at p in t. A name matches exactly, or ignoring case
// when fold is set or the tree has no case (ISO 9660 without Rock Ridge,
// whose level 1 names are upper-case). Among several names that differ
// only in case, the exact one wins; without it, the lookup is ambiguous.
func lookup(t tree, p string, fold bool) (node, error) {
	parts, err := cleanInside(p)
	if err != nil {
		return node{}, err
	}
	fold = fold || t.foldsCase()
	dir := ""
	for i, want := range parts {
		entries, err := t.list(dir)
		if err != nil {
			return node{}, fmt.Errorf("%s: reading /%s: %w", t.describe(), dir, err)
		}
		n, err := match(entries, want, fold)
		if err != nil {
			where := "/" + dir
			hint := ""
			if errors.Is(err, errNotFound) {
				hint = siblings(entries)
				if !fold && hasFolded(entries, want) {
					hint += "; names on this image are case-sensitive (Rock Ridge)"
				}
				if _, iso := t.(*isoTree); iso && t.foldsCase() {
					hint += "; the image has no Rock Ridge names, so its names are ISO 9660's (at most 8.3, upper-case): make it with -r to keep long names"
				}
			}
			return node{}, fmt.Errorf("%s not found in %s (%s: %w%s)", "/"+strings.Join(parts, "/"), t.describe(), where, err, hint)
		}
		last := i == len(parts)-1
		if what := special(n.mode); what != "" {
			return node{}, fmt.Errorf("/%s in %s is %s, not a file or directory: a source's links are not followed (one could lead out of it); name the file it leads to", strings.Join(parts[:i+1], "/"), t.describe(), what)
		}
		if last && n.dir {
			return node{}, fmt.Errorf("/%s in %s is a directory", strings.Join(parts, "/"), t.describe())
		}
		if !last && !n.dir {
			return node{}, fmt.Errorf("/%s in %s is not a directory", strings.Join(parts[:i+1], "/"), t.describe())
		}
		dir = path.Join(dir, n.name)
		if last {
			return n, nil
		}
	}
	panic("unreachable")
}

// special says what an entry is that is neither a regular file nor a
// directory ("a symbolic link"), or "" for one that is. A Rock Ridge
// link's entry holds no data: copied, it made a 0-byte kernel.
func special(m fs.FileMode) string {
	if m.Type()&^fs.ModeDir == 0 {
		return ""
	}
	return blob.TypeName(m)
}

// match picks want among entries.
func match(entries []node, want string, fold bool) (node, error) {
	var folded []node
	for _, e := range entries {
		if e.name == want {
			return e, nil
		}
		if fold && strings.EqualFold(e.name, want) {
			folded = append(folded, e)
		}
	}
	switch len(folded) {
	case 0:
		return node{}, fmt.Errorf("%w: no %q", errNotFound, want)
	case 1:
		return folded[0], nil
	}
	names := make([]string, len(folded))
	for i, e := range folded {
		names[i] = e.name
	}
	return node{}, fmt.Errorf("%q is ambiguous: %s differ only in case", want, strings.Join(names, ", "))
}

func hasFolded(entries []node, want string) bool {
	for _, e := range entries {
		if strings.EqualFold(e.name, want) {
			return true
		}
	}
	return false
}

// siblings lists what a directory holds, for a not-found message.
func siblings(entries []node) string {
	if len(entries) == 0 {
		return "; it is empty"
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		n := e.name
		if e.dir {
			n += "/"
		}
		names = append(names, n)
	}
	sort.Strings(names)
	const most = 12
	if len(names) > most {
		names = append(names[:most], fmt.Sprintf("and %d more", len(names)-most))
	}
	return "; it holds " + strings.Join(names, ", ")
}

// isoTree reads an ISO 9660 image with github.com/kdomanski/iso9660. That
// library reads the primary volume: Rock Ridge names when the image has
// them, else the ISO 9660 names (their ";1" versions and trailing dots
// dropped). Joliet and UDF are not read.
type isoTree struct {
	name string // as given, for messages
	root *iso9660.File
	rr   bool
	dirs map[string][]node
}

// openISO opens the image in f. The library is fed untrusted bytes; a
// panic in it is turned into an error.
func openISO(name string, f io.ReaderAt) (t *isoTree, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("%s: malformed ISO 9660 image (%v)", name, r)
		}
	}()
	if err := checkISO(f); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	img, err := iso9660.OpenImage(f)
	if errors.Is(err, iso9660.ErrUDFNotSupported) {
		return nil, fmt.Errorf("%s is a UDF image without ISO 9660 files; bootforge reads ISO 9660: extract it (7z x, or mount -o loop,ro and copy) and give the directory to --from", name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s is not a readable ISO 9660 image: %w", name, err)
	}
	root, err := img.RootDir()
	if err != nil {
		return nil, fmt.Errorf("%s: no primary volume: %w", name, err)
	}
	t = &isoTree{name: name, root: root, dirs: map[string][]node{}}
	entries, err := t.list("")
	if err != nil {
		return nil, err
	}
	// The library reports Rock Ridge's POSIX mode (the PX entry RRIP
	// requires on every entry) when it reads Rock Ridge names, and no
	// permission bits otherwise.
	for _, e := range entries {
		if e.mode.Perm() != 0 {
			t.rr = true
			break
		}
	}
	return t, nil
}

func (t *isoTree) describe() string { return t.name }
func (t *isoTree) foldsCase() bool  { return !t.rr }

// list reads a directory, by walking from the root (each directory once).
func (t *isoTree) list(dir string) (out []node, err error) {
	if n, ok := t.dirs[dir]; ok {
		return n, nil
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("malformed directory record (%v)", r)
		}
	}()
	f := t.root
	if dir != "" {
		parent, base := path.Split(dir)
		if _, err := t.list(strings.TrimSuffix(parent, "/")); err != nil {
			return nil, err
		}
		var ok bool
		if f, ok = t.file(strings.TrimSuffix(parent, "/"), base); !ok {
			return nil, fs.ErrNotExist
		}
	}
	children, err := f.GetChildren()
	if err != nil {
		return nil, err
	}
	for _, c := range children {
		out = append(out, node{name: c.Name(), dir: c.IsDir(), size: c.Size(), mode: c.Mode(), file: c,
			open: func() (io.ReadCloser, error) { return io.NopCloser(c.Reader()), nil }})
	}
	t.dirs[dir] = out
	return out, nil
}

// file finds the library's entry for base in the listed directory dir.
func (t *isoTree) file(dir, base string) (*iso9660.File, bool) {
	for _, n := range t.dirs[dir] {
		if n.name == base && n.file != nil {
			return n.file, true
		}
	}
	return nil, false
}

// dirTree is a directory on disk, such as an extracted Windows ISO, read
// through the root it was hashed through.
type dirTree struct {
	given string
	root  *os.Root
	files map[string]string // path → SHA-256, from hashDir
}

func (t *dirTree) describe() string { return t.given }
func (t *dirTree) foldsCase() bool  { return false }

func (t *dirTree) list(dir string) ([]node, error) {
	if dir == "" {
		dir = "."
	}
	des, err := fs.ReadDir(t.root.FS(), dir)
	if err != nil {
		return nil, err
	}
	var out []node
	for _, de := range des {
		info, err := de.Info()
		if err != nil {
			return nil, err
		}
		// Links and special files are listed, for lookup to refuse by
		// what they are, but never opened: a link could lead out of the
		// tree, and a FIFO would hang the copy. What is opened is
		// checked again (blob.Regular): it may not be what was listed.
		p := path.Join(dir, de.Name())
		want := t.files[p]
		open := func() (io.ReadCloser, error) {
			if want == "" {
				return nil, fmt.Errorf("%s: /%s appeared after the source was hashed; build again once it no longer changes", t.given, p)
			}
			f, _, err := blob.Regular(t.root.OpenFile(filepath.FromSlash(p), blob.ReadFlags, 0))
			if err != nil {
				return nil, err
			}
			return f, nil
		}
		if special(info.Mode()) != "" {
			open = func() (io.ReadCloser, error) {
				return nil, fmt.Errorf("/%s in %s is not a regular file", p, t.given)
			}
		}
		out = append(out, node{name: de.Name(), dir: de.IsDir(), size: info.Size(), mode: info.Mode(), open: open, sha256: want})
	}
	return out, nil
}
