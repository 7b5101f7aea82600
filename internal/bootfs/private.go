package bootfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The serving guard: private keys and the store are never served, whatever
// the config says and whatever path leads to them. Config validation keeps
// data_dir out of root, but a hard link, a copy, a bind mount or a symlink
// made later gets around any check on names. So every file, once open, is
// checked three ways, cheaply (one readlink and one 4 KiB read, the read
// only the first time a file is served: see cleanFiles):
//
//   - by name: *.key, key.pem, *-key.pem, PKCS#12 files, SQLite's -wal,
//     -shm and -journal files;
//   - by where it really is: inside a private path (data_dir, its tls
//     directory and store, the keys directory, the TLS key) with symlinks
//     resolved — unless root lies strictly inside that path and the file
//     inside root (the default layout, root = data_dir/root);
//   - by content: a PEM "PRIVATE KEY" block, an OpenPGP secret key, a DER
//     private key or PKCS#12 bag, a PuTTY key, a SQLite database or WAL.

// peekSize is how much of a file the content check reads.
const peekSize = 4096

// realPath is where a path really is: symlinks resolved; where it does
// not exist (yet), its parent's real path and its name.
func realPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	a, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	if parent := filepath.Dir(a); parent != a {
		return filepath.Join(realPath(parent), filepath.Base(a))
	}
	return a
}

// inside reports whether p is dir or below it.
func inside(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// setPrivate records the private paths that matter to this root. A file
// opened through os.Root lies below root, so only a private path inside
// root needs the file's real path checked (one readlink per open); root
// strictly inside a private path (root = data_dir/root, the default) is
// served; root equal to one is not served at all.
func (d *Dir) setPrivate(paths []string) {
	for _, p := range paths {
		if p == "" {
			continue
		}
		p = realPath(p)
		switch {
		case p == d.rootReal:
			d.rootPrivate = p
		case inside(p, d.rootReal):
			d.private = append(d.private, p)
		}
	}
}

// guard refuses f, opened as name below the root, if it is private. st
// is f's Stat.
func (d *Dir) guard(f File, name string, st fs.FileInfo) error {
	if why := privateName(name); why != "" {
		return refused(why)
	}
	if d.rootPrivate != "" {
		return refused(fmt.Sprintf("root is private %s", d.rootPrivate))
	}
	if len(d.private) > 0 {
		real := openedPath(f)
		if real == "" {
			real = realPath(filepath.Join(d.rootReal, name))
		}
		for _, p := range d.private {
			if inside(real, p) {
				return refused(fmt.Sprintf("resolves into private %s", p))
			}
		}
	}
	key, known := identify(st)
	if known && d.clean.has(key) {
		return nil
	}
	// A file changed within the last moments may change again within the
	// same tick of the clock its ctime comes from, keeping its key: only
	// a settled file's verdict is kept (as git treats a "racily clean"
	// file).
	known = known && time.Since(time.Unix(0, key.ctime)) >= d.clean.settle
	var buf [peekSize]byte
	n, _ := f.ReadAt(buf[:], 0)
	if why := privateContent(buf[:n], st.Size()); why != "" {
		return refused(why)
	}
	if known {
		d.clean.add(key)
	}
	return nil
}

// fileKey identifies one version of a file's content: the file (device
// and inode) and its size, mtime and ctime. Writing to a file moves its
// ctime, and nothing but the kernel sets a ctime (utimes can set mtime
// back, not ctime), so a key seen before names content seen before, as
// long as the file was not written in the same tick of the kernel's
// coarse clock as it was read (see settle).
type fileKey struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // nanoseconds
}

// identify is the key of an open file's Stat (Linux's stat fields), if it has one.
func identify(st fs.FileInfo) (fileKey, bool) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fileKey{}, false
	}
	return fileKey{dev: uint64(sys.Dev), ino: uint64(sys.Ino), size: sys.Size,
		mtime: sys.Mtim.Nano(), ctime: sys.Ctim.Nano()}, true
}

// cleanFiles remembers the file versions whose content the guard read and
// found not private, so that a file served again needs no 4 KiB read: a
// busy HTTP server serves the same few files thousands of times a second.
type cleanFiles struct {
	memory[fileKey]
	settle time.Duration // how old a ctime must be to be remembered
}

const (
	// maxMemory bounds a memory: a boot root serves a few hundred files.
	maxMemory = 4096
	// settleTime is how long after its last change a file's verdict may
	// be kept: far longer than a tick of the kernel's timestamp clock
	// (1–10 ms).
	settleTime = 2 * time.Second
)

// memory is a set of what was found true of files served. It forgets
// everything when full, and is then refilled as files are served.
type memory[K comparable] struct {
	mu   sync.Mutex
	seen map[K]struct{}
}

func (m *memory[K]) has(k K) bool {
	m.mu.Lock()
	_, ok := m.seen[k]
	m.mu.Unlock()
	return ok
}

func (m *memory[K]) add(k K) {
	m.mu.Lock()
	if m.seen == nil || len(m.seen) >= maxMemory {
		m.seen = make(map[K]struct{})
	}
	m.seen[k] = struct{}{}
	m.mu.Unlock()
}

func (m *memory[K]) forget(k K) {
	m.mu.Lock()
	delete(m.seen, k)
	m.mu.Unlock()
}

// openedPath is where the open file f really is, from /proc (Linux), or
// "".
func openedPath(f File) string {
	sc, ok := f.(syscall.Conn)
	if !ok {
		return ""
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return ""
	}
	var real string
	rc.Control(func(fd uintptr) {
		real, _ = os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	})
	if !filepath.IsAbs(real) {
		return ""
	}
	return real
}

// privateName says why a file name marks a private key or a store file,
// or "".
func privateName(name string) string {
	base := strings.ToLower(path.Base(name))
	switch {
	case strings.HasSuffix(base, ".key"), base == "key.pem", strings.HasSuffix(base, "-key.pem"),
		strings.HasSuffix(base, "_key.pem"), strings.HasSuffix(base, ".key.pem"),
		strings.HasSuffix(base, ".p12"), strings.HasSuffix(base, ".pfx"), strings.HasSuffix(base, ".ppk"):
		return "named like a private key file"
	case strings.HasSuffix(base, ".db-wal"), strings.HasSuffix(base, ".db-shm"), strings.HasSuffix(base, ".db-journal"):
		return "named like a store file (SQLite)"
	}
	return ""
}

// privateContent says why the first bytes of a file (b; size is the whole
// file's, -1 if unknown) mark a private key or a database, or "".
func privateContent(b []byte, size int64) string {
	switch {
	case bytes.HasPrefix(b, []byte("SQLite format 3\x00")):
		return "is a SQLite database"
	case len(b) >= 4 && (binary.BigEndian.Uint32(b) == 0x377f0682 || binary.BigEndian.Uint32(b) == 0x377f0683):
		return "is a SQLite WAL file"
	case bytes.HasPrefix(b, []byte("PuTTY-User-Key-File-")):
		return "holds a private key (PuTTY)"
	case openPGPSecret(b):
		return "holds an OpenPGP secret key"
	case derPrivate(b, size):
		return "holds a private key (DER)"
	}
	if label := pemPrivate(b); label != "" {
		return "holds a private key (PEM " + label + ")"
	}
	return ""
}

// pemPrivate returns the label of the first PEM block in b whose label
// says PRIVATE KEY ("RSA PRIVATE KEY", "PGP PRIVATE KEY BLOCK", ...).
func pemPrivate(b []byte) string {
	begin := []byte("-----BEGIN ")
	for {
		i := bytes.Index(b, begin)
		if i < 0 {
			return ""
		}
		b = b[i+len(begin):]
		end := bytes.Index(b, []byte("-----"))
		if end < 0 {
			return ""
		}
		if label := b[:end]; bytes.Contains(label, []byte("PRIVATE KEY")) && bytes.IndexByte(label, '\n') < 0 {
			return string(label)
		}
	}
}

// openPGPSecret reports whether b starts with an OpenPGP secret-key or
// secret-subkey packet (RFC 4880 and 9580, tags 5 and 7) of a known
// version and algorithm.
func openPGPSecret(b []byte) bool {
	if len(b) < 8 || b[0]&0x80 == 0 {
		return false
	}
	var tag byte
	hdr := 0
	if b[0]&0x40 != 0 { // new format
		tag = b[0] & 0x3f
		switch l := b[1]; {
		case l < 192:
			hdr = 2
		case l < 224:
			hdr = 3
		case l == 255:
			hdr = 6
		default:
			return false // partial lengths are not used for key packets
		}
	} else {
		tag = (b[0] >> 2) & 0x0f
		switch b[0] & 3 {
		case 0:
			hdr = 2
		case 1:
			hdr = 3
		case 2:
			hdr = 5
		default:
			return false
		}
	}
	if tag != 5 && tag != 7 || len(b) < hdr+8 {
		return false
	}
	body := b[hdr:]
	algo := body[5] // version, 4 bytes of creation time, algorithm
	switch body[0] {
	case 3:
		algo = body[7] // v3 has 2 bytes of validity before it
	case 4, 5, 6:
	default:
		return false
	}
	switch algo {
	case 1, 2, 3, 16, 17, 18, 19, 20, 22, 25, 26, 27, 28:
		return true
	}
	return false
}

// derPrivate reports whether b is the start of a DER private key (PKCS#1,
// PKCS#8, SEC 1) or PKCS#12 file: one SEQUENCE spanning the whole file
// whose first element is a small INTEGER version (0, 1 or 3). A
// certificate starts with a SEQUENCE inside, a CMS signature with an OID.
func derPrivate(b []byte, size int64) bool {
	if len(b) < 8 || b[0] != 0x30 {
		return false
	}
	n, hdr := int64(b[1]), 2
	if b[1]&0x80 != 0 {
		k := int(b[1] & 0x7f)
		if k == 0 || k > 3 {
			return false
		}
		n = 0
		for i := 0; i < k; i++ {
			n = n<<8 | int64(b[2+i])
		}
		hdr = 2 + k
	}
	if size >= 0 && int64(hdr)+n != size {
		return false
	}
	v := b[hdr:]
	return v[0] == 0x02 && v[1] == 0x01 && (v[2] == 0 || v[2] == 1 || v[2] == 3)
}
