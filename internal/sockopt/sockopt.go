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
