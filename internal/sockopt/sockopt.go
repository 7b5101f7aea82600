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

// SteerToFirst makes every datagram for conn's port go to the socket that
// joined its SO_REUSEPORT group first, whichever sockets join after: it
// attaches a classic BPF program (SO_ATTACH_REUSEPORT_CBPF) that always
// picks index 0. Without it the kernel spreads datagrams over the group
// by a hash of their addresses, so a socket that only sends would be
// given requests nobody reads.
func SteerToFirst(conn syscall.Conn) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, returnZero())
	}); err != nil {
		return err
	}
	return serr
}

// ReceiveNothing makes socket fd drop every datagram it is given, before
// it is queued: a socket that only sends still gets a copy of each
// broadcast to its port, which the SO_REUSEPORT steering does not choose.
// Set it before bind, so that none slips in between.
func ReceiveNothing(fd int) error {
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, returnZero())
}

// returnZero is the classic BPF program "ret #0": as a socket filter it
// keeps no byte of a packet; as a SO_REUSEPORT program it picks the
// group's first socket.
func returnZero() *unix.SockFprog {
	prog := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	return &unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
}
