package httpd

import (
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sendFile sends n bytes of src, a disk file, from offset off, on c, a
// plain TCP connection, with sendfile(2). It returns the bytes sent.
//
// Go's own sendfile (net.TCPConn.ReadFrom) makes the call through
// syscall.Syscall, which tells the scheduler that the call may block. A
// sendfile of a megabyte of cached file on a fast link does not block but
// takes a few hundred microseconds, and while such calls keep coming the
// runtime's monitor (sysmon) wakes every 20 µs and hands the processor of
// each one that lasts to another thread, which finds nothing to do and
// sleeps again. On 64 connections fetching 1 MiB files that churn
// (nanosleep, futex, the processor's hand-back) cost 7–18% of the
// server's CPU per request (bench/README.md, twenty-eighth session).
//
// So a chunk whose pages are all in the page cache (cachestat(2)) goes out
// in a raw call, which keeps its processor: it is CPU work, as the
// copying of a read(2) into a buffer would be. A chunk not all cached
// goes out through syscall.Syscall as before, because reading it from the
// disk may block for milliseconds, and a raw call the scheduler cannot
// take back would hold its processor, and any stop of the world, that
// long. A chunk is at most sendfileChunk, which bounds how long a raw call
// lasts (a few hundred µs here). On a kernel without cachestat (before 6.5),
// and on 32-bit systems, every chunk goes through syscall.Syscall.
func sendFile(c *net.TCPConn, src syscall.Conn, off, n int64) (sent int64, err error) {
	out, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	in, err := src.SyscallConn()
	if err != nil {
		return 0, err
	}
	var serr error
	cerr := in.Control(func(infd uintptr) {
		werr := out.Write(func(outfd uintptr) bool {
			for sent < n {
				chunk := min(n-sent, sendfileChunk)
				var r int
				var e error
				if rawSendfile && cached(infd, off, chunk) {
					sendfileCalls.raw.Add(1)
					w, _, errno := unix.RawSyscall6(unix.SYS_SENDFILE, outfd, infd, uintptr(unsafe.Pointer(&off)), uintptr(chunk), 0, 0)
					if r = int(w); errno != 0 {
						e = errno
					}
				} else {
					sendfileCalls.watched.Add(1)
					r, e = unix.Sendfile(int(outfd), int(infd), &off, int(chunk))
				}
				switch {
				case e == unix.EAGAIN:
					return false // the socket's buffer is full: wait until it drains
				case e == unix.EINTR:
					continue
				case e != nil:
					serr = e
					return true
				case r == 0:
					serr = io.ErrUnexpectedEOF // the file is shorter than it was
					return true
				}
				sent += int64(r) // sendfile moved off past what it sent
			}
			return true
		})
		if serr == nil {
			serr = werr
		}
	})
	if serr == nil {
		serr = cerr
	}
	if serr != nil {
		serr = &net.OpError{Op: "sendfile", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: serr}
	}
	return sent, serr
}

// sendfileChunk is the most a sendfile call is asked to send.
const sendfileChunk = 1 << 20

// rawSendfile says the raw call may be made: SYS_SENDFILE takes a 64-bit
// offset only where pointers are 64 bits (32-bit kernels have sendfile64,
// which unix.Sendfile calls there).
const rawSendfile = unsafe.Sizeof(uintptr(0)) == 8

// sendfileCalls counts the calls made each way, for the tests.
var sendfileCalls struct{ raw, watched atomic.Int64 }

// noCachestat is set once cachestat(2) failed for a reason other than
// the file (ENOSYS on a kernel before 6.5): it is not asked again.
var noCachestat atomic.Bool

// cached reports whether every page of n bytes of the file fd from off is
// in the page cache.
func cached(fd uintptr, off, n int64) bool {
	if noCachestat.Load() {
		return false
	}
	r := unix.CachestatRange{Off: uint64(off), Len: uint64(n)}
	var st unix.Cachestat_t
	_, _, e := unix.RawSyscall6(unix.SYS_CACHESTAT, fd, uintptr(unsafe.Pointer(&r)), uintptr(unsafe.Pointer(&st)), 0, 0, 0)
	if e != 0 {
		if e == unix.ENOSYS || e == unix.EPERM {
			noCachestat.Store(true)
		}
		return false
	}
	page := int64(unix.Getpagesize())
	pages := (off+n+page-1)/page - off/page
	return int64(st.Cache) >= pages
}
