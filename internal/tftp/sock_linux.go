package tftp

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sock is a transfer's own UDP socket (its TID). It waits for ACKs in one
// of two ways, chosen when the transfer starts:
//
//   - Blocking system calls from the transfer's goroutine, while few
//     transfers run. A lockstep transfer (windowsize 1) waits for one ACK
//     per block. A blocking recvfrom with SO_RCVTIMEO costs one system
//     call and one context switch per ACK, as in atftpd; through Go's
//     netpoller every wait parked the goroutine and woke it through epoll,
//     measured here at 1.5–1.9× atftpd's CPU per block.
//   - A waiter's loop (waiter.go), once more transfers run than the
//     runtime has processors. A blocking wait holds an OS thread, and
//     hundreds of threads waking for ACKs fight over two processors: in a
//     storm of 500 clients perf put 39% of the time in the scheduler's
//     context switch. The socket is then non-blocking, and one thread
//     waits for many transfers in one epoll set.
type sock struct {
	fd       int
	nonblock bool   // a waiter's: never blocks; a full buffer drops the packet
	scope    uint32 // the peer's interface, if its address is link-local
	name     []byte // the peer as a raw sockaddr, for sendto and sendmmsg
	timeout  time.Duration
	closed   atomic.Bool

	msgs []mmsghdr
	iovs []unix.Iovec
	from unix.RawSockaddrAny // recv's source, reused: unix.Recvfrom allocates and asks getsockopt per call
}

// mmsghdr is struct mmsghdr from <sys/socket.h>.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

var errRecvTimeout = errors.New("receive timed out")

// sendBuffer is a waiter's socket's send buffer: a window (at most
// maxWindowBytes of data) takes about twice its size in the kernel's
// accounting.
const sendBuffer = 1 << 20

// openSock binds a socket to local (any address if invalid or not ours)
// and port 0, for talking to peer. ifindex is the interface the request
// came in on: a link-local address (fe80::/10) means nothing without it,
// so it becomes the scope of a link-local local or peer address that has
// no zone of its own. nonblock makes the socket a waiter's.
func openSock(local netip.Addr, peer netip.AddrPort, ifindex int, nonblock bool) (*sock, error) {
	family := unix.AF_INET
	if peer.Addr().Is6() {
		family = unix.AF_INET6
	}
	typ := unix.SOCK_DGRAM | unix.SOCK_CLOEXEC
	if nonblock {
		typ |= unix.SOCK_NONBLOCK
	}
	fd, err := unix.Socket(family, typ, unix.IPPROTO_UDP)
	if err != nil {
		return nil, err
	}
	s := &sock{fd: fd, nonblock: nonblock, scope: scopeID(peer.Addr(), ifindex)}
	if nonblock {
		// Room for the largest window twice over, so that a window is not
		// dropped for a full buffer: a waiter cannot wait for room.
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sendBuffer) != nil {
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sendBuffer)
		}
	}
	if err := unix.Bind(fd, sockaddr(local, 0, family, scopeID(local, ifindex))); err != nil {
		if err := unix.Bind(fd, sockaddr(netip.Addr{}, 0, family, 0)); err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	s.name = rawSockaddr(peer, s.scope)
	return s, nil
}

// scopeID is the interface index a link-local IPv6 address is scoped to:
// its zone (an interface name or number), else ifindex. Other addresses
// have none (0).
func scopeID(a netip.Addr, ifindex int) uint32 {
	if !a.Is6() || !(a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast()) {
		return 0
	}
	if z := a.Zone(); z != "" {
		if n, err := strconv.ParseUint(z, 10, 32); err == nil {
			return uint32(n)
		}
		if ifc, err := net.InterfaceByName(z); err == nil {
			return uint32(ifc.Index)
		}
	}
	return uint32(max(ifindex, 0))
}

func sockaddr(a netip.Addr, port uint16, family int, scope uint32) unix.Sockaddr {
	if family == unix.AF_INET6 {
		sa := &unix.SockaddrInet6{Port: int(port), ZoneId: scope}
		if a.IsValid() {
			sa.Addr = a.As16()
		}
		return sa
	}
	sa := &unix.SockaddrInet4{Port: int(port)}
	if a.IsValid() && a.Is4() {
		sa.Addr = a.As4()
	}
	return sa
}

// rawSockaddr lays out sockaddr_in or sockaddr_in6 for sendmmsg.
func rawSockaddr(ap netip.AddrPort, scope uint32) []byte {
	port := ap.Port()
	if ap.Addr().Is4() {
		var sa unix.RawSockaddrInet4
		sa.Family = unix.AF_INET
		sa.Port = port<<8 | port>>8 // network byte order
		sa.Addr = ap.Addr().As4()
		return unsafe.Slice((*byte)(unsafe.Pointer(&sa)), unix.SizeofSockaddrInet4)
	}
	var sa unix.RawSockaddrInet6
	sa.Family = unix.AF_INET6
	sa.Port = port<<8 | port>>8
	sa.Addr = ap.Addr().As16()
	sa.Scope_id = scope
	return unsafe.Slice((*byte)(unsafe.Pointer(&sa)), unix.SizeofSockaddrInet6)
}

// pktinfo6 is an IPV6_PKTINFO control message: send from src (an IPv6
// or IPv4-mapped address) out of interface ifindex (0: as routed).
func pktinfo6(src netip.Addr, ifindex uint32) []byte {
	b := make([]byte, unix.CmsgSpace(unix.SizeofInet6Pktinfo))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = unix.IPPROTO_IPV6
	h.Type = unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&b[unix.CmsgLen(0)]))
	pi.Addr = src.As16()
	pi.Ifindex = ifindex
	return b
}

// sent is the outcome of a sending system call: nil, also when a
// non-blocking socket's buffer was full and the packet was dropped, as a
// network would drop it (the timeout sends it again).
func sent(errno unix.Errno) error {
	if errno == 0 || errno == unix.EAGAIN {
		return nil
	}
	return errno
}

// send sends one packet to the peer. The raw system call takes the peer's
// prepared sockaddr; unix.Sendto would convert and allocate one per
// packet.
func (s *sock) send(pkt []byte) error {
	for {
		_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(&pkt[0])), uintptr(len(pkt)),
			0, uintptr(unsafe.Pointer(&s.name[0])), uintptr(len(s.name)))
		if errno != unix.EINTR {
			return sent(errno)
		}
	}
}

// sendTo sends one packet elsewhere (ERROR 5 to a stranger). It is rare,
// and may allocate.
func (s *sock) sendTo(pkt []byte, to netip.AddrPort) error {
	family := unix.AF_INET
	if to.Addr().Is6() {
		family = unix.AF_INET6
	}
	sa := sockaddr(to.Addr(), to.Port(), family, s.scope)
	for {
		if errno := errnoOf(unix.Sendto(s.fd, pkt, 0, sa)); errno != unix.EINTR {
			return sent(errno)
		}
	}
}

func errnoOf(err error) unix.Errno {
	if err == nil {
		return 0
	}
	if errno, ok := err.(unix.Errno); ok {
		return errno
	}
	return unix.EINVAL
}

// sendBatch sends packets to the peer with as few sendmmsg calls as the
// kernel allows.
func (s *sock) sendBatch(pkts [][]byte) error {
	if len(pkts) == 1 {
		return s.send(pkts[0])
	}
	if cap(s.msgs) < len(pkts) {
		s.msgs = make([]mmsghdr, len(pkts))
		s.iovs = make([]unix.Iovec, len(pkts))
	}
	msgs, iovs := s.msgs[:len(pkts)], s.iovs[:len(pkts)]
	for i, p := range pkts {
		iovs[i].Base = &p[0]
		iovs[i].SetLen(len(p))
		msgs[i] = mmsghdr{}
		msgs[i].hdr.Name = &s.name[0]
		msgs[i].hdr.Namelen = uint32(len(s.name))
		msgs[i].hdr.Iov = &iovs[i]
		msgs[i].hdr.SetIovlen(1)
	}
	for len(msgs) > 0 {
		n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), 0, 0, 0)
		switch errno {
		case 0:
			msgs = msgs[n:]
		case unix.EINTR:
		default:
			return sent(errno) // the rest of a window dropped, if the buffer is full
		}
	}
	return nil
}

// recvNow is one recvfrom(2) into buf, with the length and the source.
// On a non-blocking socket, EAGAIN says nothing has come.
func (s *sock) recvNow(buf []byte) (int, netip.AddrPort, unix.Errno) {
	for {
		fromLen := uint32(unix.SizeofSockaddrAny)
		r, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(s.fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
			0, uintptr(unsafe.Pointer(&s.from)), uintptr(unsafe.Pointer(&fromLen)))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, netip.AddrPort{}, errno
		}
		return int(r), rawAddrPort(&s.from), 0
	}
}

// recv waits until deadline for a packet on a blocking socket. It returns
// errRecvTimeout when the deadline passes and errClosed after abort.
func (s *sock) recv(buf []byte, deadline time.Time) (int, netip.AddrPort, error) {
	for {
		if s.closed.Load() {
			return 0, netip.AddrPort{}, errClosed
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return 0, netip.AddrPort{}, errRecvTimeout
		}
		// Round up, so that a wait never rounds to zero (which means forever).
		wait = (wait + time.Millisecond - 1).Truncate(time.Millisecond)
		if wait != s.timeout {
			tv := unix.NsecToTimeval(wait.Nanoseconds())
			if err := unix.SetsockoptTimeval(s.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
				return 0, netip.AddrPort{}, err
			}
			s.timeout = wait
		}
		n, from, errno := s.recvNow(buf)
		if s.closed.Load() {
			return 0, netip.AddrPort{}, errClosed // woken by abort's shutdown
		}
		switch errno {
		case 0:
			return n, from, nil
		case unix.EAGAIN:
			continue // timed out (checked above)
		default:
			return 0, netip.AddrPort{}, errno
		}
	}
}

// rawAddrPort reads a sockaddr_in or sockaddr_in6.
func rawAddrPort(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), sa.Port<<8|sa.Port>>8)
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), sa.Port<<8|sa.Port>>8)
	}
	return netip.AddrPort{}
}

var errClosed = errors.New("transfer aborted")

// abort wakes a blocked recv and makes every later one fail; a waiter
// sees it at its next look (waiter.go).
func (s *sock) abort() {
	s.closed.Store(true)
	if !s.nonblock {
		unix.Shutdown(s.fd, unix.SHUT_RDWR)
	}
}

func (s *sock) close() error { return unix.Close(s.fd) }
