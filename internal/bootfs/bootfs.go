// Package bootfs is the read-only file tree that boot clients see over TFTP
// and HTTP.
//
// Boot clients are untrusted: firmware sends whatever path it was told, and
// anyone on the segment can send anything. So every name passes one set of
// rules (Clean) before it touches the disk, and disk access stays beneath
// the root: through os.Root, and for the open of a file to serve through
// openat2 (open_linux.go); both resolve symlinks inside the root and
// refuse any that lead out of it. Once open, a file that is a private key
// or the store, or lies in data_dir, is refused too (private.go): names
// and config checks cannot see hard links, copies or bind mounts. A small
// file that passed all of this is served again from memory for as long as
// its name leads to the same unchanged file (small_linux.go). Protocol
// servers depend only on the FS interface, so later layers can answer
// virtual files (a generated pxelinux.cfg/01-<mac>, say) without anything
// on disk.
package bootfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"strings"
	"syscall"
	"time"
)

// MaxPathLen bounds a requested path. Real boot paths are far shorter; a
// longer one is an attack or a bug.
const MaxPathLen = 255

// Request says who asks for which path, over which protocol.
type Request struct {
	Path     string         // as sent by the client
	Client   netip.AddrPort // the client's address
	Protocol string         // "tftp", "http", "https"
	Query    url.Values     // HTTP query parameters; nil over TFTP
	Host     string         // HTTP Host header: how the client reached us
	// Peek asks what the answer would be without taking it (HTTP HEAD):
	// a generated file is made as for a fetch but changes nothing, no
	// one-shot state, no boot-log event, no sighting.
	Peek bool
}

// File is an open file. A file on disk (an *os.File, or the file
// open_linux.go opens) is also a syscall.Conn, which lets HTTP hand it to
// the kernel's sendfile path.
type File interface {
	io.ReaderAt
	io.ReadSeeker
	io.Closer
	Stat() (fs.FileInfo, error)
}

// FS answers requests for files.
type FS interface {
	Open(req Request) (File, error)
}

// ErrRefused is wrapped by every error for a path that breaks the rules,
// as opposed to one that is merely missing (fs.ErrNotExist).
var ErrRefused = errors.New("refused")

func refused(reason string) error { return fmt.Errorf("%w: %s", ErrRefused, reason) }

// Clean checks a client's path and returns it relative to the root, with
// '/' separators. A backslash is read as '/', as Windows loaders send them;
// a leading '/' means the root, as with tftpd-hpa's -s. Any ".." component,
// control character or over-long name is refused, even where it would not
// escape: no legitimate loader needs one.
func Clean(name string) (string, error) {
	if name == "" {
		return "", refused("empty path")
	}
	// The root's '/' is not part of the name: HTTP always sends it,
	// TFTP clients mostly not, and both must take the same names.
	rel := name
	if rel[0] == '/' || rel[0] == '\\' {
		rel = rel[1:]
	}
	if len(rel) > MaxPathLen {
		return "", refused(fmt.Sprintf("path longer than %d bytes", MaxPathLen))
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c == 0x7f {
			return "", refused("control character in path")
		}
	}
	if c, ok := tidy(name); ok {
		return c, nil
	}
	name = strings.ReplaceAll(name, `\`, "/")
	parts := strings.Split(name, "/")
	kept := parts[:0]
	for _, p := range parts {
		switch p {
		case "", ".":
			continue
		case "..":
			return "", refused("parent directory (..) in path")
		}
		kept = append(kept, p)
	}
	if len(kept) == 0 {
		return "", fmt.Errorf("the root directory: %w", fs.ErrNotExist) // not a file; nothing to refuse
	}
	return strings.Join(kept, "/"), nil
}

// tidy returns name without its leading slashes if that is already what
// Clean would make of it, as nearly every request's path is: no
// backslash, and no empty, "." or ".." component. Clean then makes no
// copy; a request's path is cleaned by each layer it passes.
func tidy(name string) (string, bool) {
	name = strings.TrimLeft(name, "/")
	if name == "" || strings.IndexByte(name, '\\') >= 0 {
		return "", false
	}
	for rest := name; ; {
		part, after, more := strings.Cut(rest, "/")
		if part == "" || part == "." || part == ".." {
			return "", false
		}
		if !more {
			return name, true
		}
		rest = after
	}
}

// Dir serves the regular files below one directory.
type Dir struct {
	root            *os.Root
	beneath         *beneath // opens served files in one system call; nil: through root (open_linux.go)
	caseInsensitive bool
	rootReal        string   // the root, symlinks resolved
	rootPrivate     string   // the private path root is, if any: nothing served
	private         []string // private paths inside root, symlinks resolved (private.go)
	clean           cleanFiles
	regularNames    memory[string] // names last opened as regular files
	small           smallFiles     // small files' content (small_linux.go)
}

// OpenDir opens dir as a root. With caseInsensitive, a name that does not
// exist as spelled is looked up component by component ignoring case.
// No file inside a private path (data_dir, the keys directory, the TLS
// key) is served, whatever leads to it.
func OpenDir(dir string, caseInsensitive bool, private ...string) (*Dir, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	d := &Dir{root: r, beneath: openBeneath(r), caseInsensitive: caseInsensitive, rootReal: realPath(dir)}
	d.clean.settle = settleTime
	d.small.reconfirm = reconfirmAfter
	d.setPrivate(private)
	return d, nil
}

// Path is the directory's name.
func (d *Dir) Path() string { return d.root.Name() }

// Replaced reports whether Path now names another directory than the one
// open: the root swapped for a new one (renamed into place, or a symlink
// flipped), as deployments do. The open directory is followed, wherever
// it moves, until the root is opened again. A Path that is gone or
// unreadable is no replacement.
func (d *Dir) Replaced() bool {
	now, err := os.Stat(d.Path())
	if err != nil {
		return false
	}
	open, err := d.root.Stat(".")
	return err == nil && !os.SameFile(now, open)
}

// Close releases the directory.
func (d *Dir) Close() error {
	if d.beneath != nil {
		d.beneath.close()
	}
	return d.root.Close()
}

// Open opens a regular file. Errors wrap ErrRefused for a rule broken and
// fs.ErrNotExist for a missing file.
func (d *Dir) Open(req Request) (File, error) {
	name, err := Clean(req.Path)
	if err != nil {
		return nil, err
	}
	if f, ok := d.openSmall(name); ok {
		return f, nil
	}
	asked := name
	// A name that was a regular file when last opened is opened without
	// the Stat that guards the open: a file is replaced with a device
	// node only by root. Anything else (a FIFO, a directory) is refused
	// by the Stat of the open file, and the name looked at again.
	if d.regularNames.has(name) {
		f, st, err := d.openRegular(name)
		if err == nil {
			return d.guardedKept(f, asked, name, st)
		}
		d.regularNames.forget(name)
	}
	// Stat before Open: opening a FIFO or device could block or have effects.
	st, err := d.root.Stat(name)
	if errors.Is(err, fs.ErrNotExist) && d.caseInsensitive {
		if alt, ok := d.fold(name); ok {
			name = alt
			st, err = d.root.Stat(name)
		}
	}
	if err != nil {
		return nil, classify(err)
	}
	if err := regular(st); err != nil {
		return nil, err
	}
	f, st, err := d.openRegular(name)
	if err != nil {
		return nil, err
	}
	d.regularNames.add(name)
	return d.guardedKept(f, asked, name, st)
}

// guardedKept is guarded, keeping a small file's content for the next
// request of the name asked.
func (d *Dir) guardedKept(f File, asked, name string, st fs.FileInfo) (File, error) {
	f, err := d.guarded(f, name, st)
	if err == nil {
		d.keepSmall(asked, name, f, st)
	}
	return f, err
}

// openRegular opens name and checks that what it opened is a regular file.
// O_NONBLOCK: a FIFO swapped in since the Stat cannot block the open (the
// Stat after it refuses it); a regular file's reads ignore the flag.
// O_NOCTTY: a terminal swapped in does not become the process's.
func (d *Dir) openRegular(name string) (File, fs.FileInfo, error) {
	var f File
	var err error
	if d.beneath != nil {
		f, err = d.beneath.open(name)
	} else {
		// Go, finding O_NONBLOCK set, also skips the four fcntl calls it
		// makes on every opened file to try the netpoller.
		f, err = d.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	}
	if err != nil {
		return nil, nil, classify(err)
	}
	st, err := f.Stat()
	if err != nil || regular(st) != nil { // swapped since the first Stat
		f.Close()
		return nil, nil, refused("file changed while opening")
	}
	return f, st, nil
}

// guarded returns f if the guard lets it be served (keys and the store:
// private.go), else closes it.
func (d *Dir) guarded(f File, name string, st fs.FileInfo) (File, error) {
	if err := d.guard(f, name, st); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func regular(st fs.FileInfo) error {
	switch {
	case st.Mode().IsRegular():
		return nil
	case st.IsDir():
		return refused("is a directory")
	default:
		return refused("not a regular file")
	}
}

// classify turns os.Root's errors into ours: an escape is a refusal.
func classify(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && (strings.Contains(pe.Err.Error(), "escapes") || escaped(err)) {
		return refused("symlink leads out of the root")
	}
	if errors.Is(err, fs.ErrPermission) {
		return refused("permission denied")
	}
	if errors.Is(err, syscall.ELOOP) {
		return refused("symlink loop")
	}
	if strings.Contains(err.Error(), "not a directory") {
		return fmt.Errorf("%w", fs.ErrNotExist)
	}
	return err
}

// fold finds the real spelling of name, one component at a time.
func (d *Dir) fold(name string) (string, bool) {
	dir := "."
	for _, part := range strings.Split(name, "/") {
		// O_DIRECTORY: a component that is a FIFO fails at once instead of
		// blocking the open until a writer comes.
		f, err := d.root.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
		if err != nil {
			return "", false
		}
		entries, err := f.ReadDir(-1)
		f.Close()
		if err != nil {
			return "", false
		}
		found := ""
		for _, e := range entries {
			if e.Name() == part {
				found = part
				break
			}
			if found == "" && strings.EqualFold(e.Name(), part) {
				found = e.Name()
			}
		}
		if found == "" {
			return "", false
		}
		dir = path.Join(dir, found)
	}
	return dir, true
}

// Virtual is a file made in memory, for generated content.
type Virtual struct {
	*bytes.Reader
	info virtualInfo
	// MAC, if set, is the client the file was made for (a per-client
	// menu): its transfer belongs to that MAC in the boot log, whatever
	// MAC was last seen at the address that fetched it.
	MAC net.HardwareAddr
}

// MadeFor returns the MAC a generated file was made for, or "".
func MadeFor(f File) string {
	if v, ok := f.(*Virtual); ok && v.MAC != nil {
		return v.MAC.String()
	}
	return ""
}

// NewVirtual returns a file with the given name, content and time.
func NewVirtual(name string, data []byte, mod time.Time) *Virtual {
	return &Virtual{Reader: bytes.NewReader(data), info: virtualInfo{name: path.Base(name), size: int64(len(data)), mod: mod}}
}

// Close does nothing.
func (v *Virtual) Close() error { return nil }

// Stat describes the file.
func (v *Virtual) Stat() (fs.FileInfo, error) { return v.info, nil }

type virtualInfo struct {
	name string
	size int64
	mod  time.Time
}

func (i virtualInfo) Name() string       { return i.name }
func (i virtualInfo) Size() int64        { return i.size }
func (i virtualInfo) Mode() fs.FileMode  { return 0o444 }
func (i virtualInfo) ModTime() time.Time { return i.mod }
func (i virtualInfo) IsDir() bool        { return false }
func (i virtualInfo) Sys() any           { return nil }
