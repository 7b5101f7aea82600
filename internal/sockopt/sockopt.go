// Package sockopt holds the socket options that boot servers need and the
// standard library does not offer.
package sockopt

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// GrowReadBuffer raises a socket's receive buffer to size bytes. It tries
// SO_RCVBUFFORCE first, which may pass net.core.rmem_max (it needs
// CAP_NET_ADMIN), then SO_RCVBUF, which the kernel caps there. Boot storms
// arrive as bursts: a rack powering on sends hundreds of requests within
// milliseconds, and the default 208 KiB buffer drops the tail of them,
// costing each dropped client a firmware retry of seconds.
func GrowReadBuffer(conn syscall.Conn, size int) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size) != nil {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, size)
		}
	})
}

// Cork sets or clears TCP_CORK on a TCP connection. While it is set the
// kernel sends only full segments; clearing it sends what is left. An
// HTTP response written as a header and then a sendfile(2) body goes out
// as one stream of segments instead of a header-only segment first:
// nginx's tcp_nopush does the same. Errors are ignored: without the
// option the response is the same, only sent in more segments.
func Cork(conn syscall.Conn, on bool) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return
	}
	v := 0
	if on {
		v = 1
	}
	rc.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, v)
	})
}
