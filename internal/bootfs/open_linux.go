package bootfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Opening a served file: the one step of every TFTP and HTTP request that
// touches the disk, so it is made of as few system calls as Linux allows.
//
// os.Root, which Dir uses for everything else, keeps a path inside its
// root by walking it in Go: an openat and a close for every directory on
// the way. The kernel makes the same walk in one openat2(2) call: with
// RESOLVE_BENEATH it fails (EXDEV) for any path that would leave the
// directory, by ".." or by a symlink, an absolute symlink included, as
// os.Root refuses them; RESOLVE_NO_MAGICLINKS refuses /proc's links to
// other files.
//
// The descriptor is then not wrapped in an *os.File: os.NewFile asks the
// kernel for its flags and offers it to the netpoller, which refuses a
// regular file (two system calls), and an *os.File asks the kernel again
// on every Stat, which a request makes up to three times (the open's
// check, the catalog's guard, the HTTP headers). A file keeps the Stat it
// was checked with and reads with plain system calls, as an *os.File
// reads a regular file; it is a syscall.Conn, which is what sendfile(2)
// needs. An open, two Stats and a close make 3 system calls instead of 6
// for a file at the top of the root and 12 for one three directories
// down; BenchmarkDirOpen: about 1.5 and 2.4 times cheaper.
//
// Where the kernel lacks openat2 (Linux before 5.6) or a seccomp filter
// refuses it, openBeneath returns nil, and Dir opens through os.Root.

// beneath opens files below one directory.
type beneath struct {
	dir  *os.File // the root directory, kept open for its descriptor
	conn syscall.RawConn
}

// openBeneath returns a beneath for r's directory, or nil if openat2
// cannot be used here.
func openBeneath(r *os.Root) *beneath {
	dir, err := r.Open(".")
	if err != nil {
		return nil
	}
	conn, err := dir.SyscallConn()
	if err != nil {
		dir.Close()
		return nil
	}
	b := &beneath{dir: dir, conn: conn}
	fd, err := b.openat2(".", unix.O_DIRECTORY)
	if err != nil {
		dir.Close()
		return nil
	}
	unix.Close(fd)
	return b
}

// maxRetries bounds the retries of an open that failed with EAGAIN,
// which openat2 returns when a rename or mount elsewhere raced with its
// walk.
const maxRetries = 8

// open opens name, a path cleaned by Clean, below the directory, and
// takes its Stat, by which Dir.openRegular refuses anything but a regular
// file. O_NONBLOCK and O_NOCTTY: see Dir.openRegular.
func (b *beneath) open(name string) (*file, error) {
	fd, err := b.openat2(name, unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return nil, &fs.PathError{Op: "openat2", Path: name, Err: err}
	}
	f := &file{fd: fd, info: fileInfo{name: path.Base(name)}}
	err = syscall.Fstat(fd, &f.info.sys)
	for err == syscall.EINTR {
		err = syscall.Fstat(fd, &f.info.sys)
	}
	if err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "fstat", Path: name, Err: err}
	}
	// A file dropped without Close (a bug) does not keep its descriptor.
	f.cleanup = runtime.AddCleanup(f, func(fd int) { unix.Close(fd) }, fd)
	return f, nil
}

func (b *beneath) openat2(name string, flags uint64) (fd int, err error) {
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | flags,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	// Control holds the directory's descriptor for the call: a Close
	// meanwhile cannot hand its number to another file.
	cerr := b.conn.Control(func(dirfd uintptr) {
		for range maxRetries {
			fd, err = unix.Openat2(int(dirfd), name, &how)
			if err != unix.EAGAIN && err != unix.EINTR {
				return
			}
		}
	})
	if cerr != nil {
		return -1, cerr
	}
	return fd, err
}

// stat takes the Stat of name, a path cleaned by Clean, below the
// directory, following symlinks wherever they lead: only a caller that
// compares what it finds with a file opened through open may use it.
func (b *beneath) stat(name string, st *unix.Stat_t) (err error) {
	cerr := b.conn.Control(func(dirfd uintptr) {
		err = unix.Fstatat(int(dirfd), name, st, 0)
		for err == unix.EINTR {
			err = unix.Fstatat(int(dirfd), name, st, 0)
		}
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// close releases the directory.
func (b *beneath) close() error { return b.dir.Close() }

// escaped reports whether err is openat2's refusal of a path that leads
// out of the directory.
func escaped(err error) bool { return errors.Is(err, unix.EXDEV) }

// file is a regular file opened by beneath. It is used by one goroutine
// at a time, as every served file is.
type file struct {
	fd      int // -1 once closed
	info    fileInfo
	cleanup runtime.Cleanup
}

// Stat returns what the file was when it was opened.
func (f *file) Stat() (fs.FileInfo, error) { return &f.info, nil }

func (f *file) Read(p []byte) (int, error) {
	if f.fd < 0 {
		return 0, f.closed("read")
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := syscall.Read(f.fd, p)
	for err == syscall.EINTR {
		n, err = syscall.Read(f.fd, p)
	}
	switch {
	case err != nil:
		return 0, &fs.PathError{Op: "read", Path: f.info.name, Err: err}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// ReadAt reads len(p) bytes unless the file ends first, as io.ReaderAt
// asks.
func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if f.fd < 0 {
		return 0, f.closed("read")
	}
	read := 0
	for read < len(p) {
		n, err := syscall.Pread(f.fd, p[read:], off+int64(read))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return read, &fs.PathError{Op: "read", Path: f.info.name, Err: err}
		}
		if n == 0 {
			return read, io.EOF
		}
		read += n
	}
	return read, nil
}

func (f *file) Seek(offset int64, whence int) (int64, error) {
	if f.fd < 0 {
		return 0, f.closed("seek")
	}
	pos, err := syscall.Seek(f.fd, offset, whence)
	if err != nil {
		return 0, &fs.PathError{Op: "seek", Path: f.info.name, Err: err}
	}
	return pos, nil
}

// Close closes the descriptor; closing again is an error, never a close
// of a descriptor since given to another file.
func (f *file) Close() error {
	if f.fd < 0 {
		return f.closed("close")
	}
	f.cleanup.Stop()
	fd := f.fd
	f.fd = -1
	return unix.Close(fd)
}

// closed is the error of op on a closed file, as *os.File reports it.
func (f *file) closed(op string) error {
	return &fs.PathError{Op: op, Path: f.info.name, Err: fs.ErrClosed}
}

// SyscallConn hands the descriptor to sendfile(2) and to the guard's
// look at /proc.
func (f *file) SyscallConn() (syscall.RawConn, error) { return rawFile{f}, nil }

type rawFile struct{ f *file }

func (r rawFile) Control(fn func(fd uintptr)) error {
	if r.f.fd < 0 {
		return fs.ErrClosed
	}
	fn(uintptr(r.f.fd))
	return nil
}

// Read runs fn once: a regular file is always ready.
func (r rawFile) Read(fn func(fd uintptr) bool) error {
	return r.Control(func(fd uintptr) { fn(fd) })
}

func (r rawFile) Write(func(fd uintptr) bool) error { return errors.ErrUnsupported }

// fileInfo is a file's Stat, as os.File's Stat would report it.
type fileInfo struct {
	name string
	sys  syscall.Stat_t
}

func (i *fileInfo) Name() string       { return i.name }
func (i *fileInfo) Size() int64        { return i.sys.Size }
func (i *fileInfo) ModTime() time.Time { return time.Unix(i.sys.Mtim.Unix()) }
func (i *fileInfo) IsDir() bool        { return i.Mode().IsDir() }
func (i *fileInfo) Sys() any           { return &i.sys }

func (i *fileInfo) Mode() fs.FileMode {
	m := fs.FileMode(i.sys.Mode & 0o777)
	switch i.sys.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		m |= fs.ModeDir
	case syscall.S_IFLNK:
		m |= fs.ModeSymlink
	case syscall.S_IFIFO:
		m |= fs.ModeNamedPipe
	case syscall.S_IFSOCK:
		m |= fs.ModeSocket
	case syscall.S_IFBLK:
		m |= fs.ModeDevice
	case syscall.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	}
	if i.sys.Mode&syscall.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if i.sys.Mode&syscall.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if i.sys.Mode&syscall.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// SameFile is os.SameFile for the Stats of served files too: whether a
// and b describe the same file (device and inode).
func SameFile(a, b fs.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 {
		return os.SameFile(a, b)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
