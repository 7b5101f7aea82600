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

// sock is a transfer's own UDP socket (its TID), used with blocking system
// calls from the transfer's goroutine.
//
// Why not net.UDPConn: a lockstep transfer (windowsize 1) waits for one
// ACK per block, and through Go's netpoller every wait parks the goroutine
// and wakes it through epoll — measured here at 1.5–1.9× atftpd's CPU per
// block. A blocking recvfrom with SO_RCVTIMEO costs one system call and one
// context switch per ACK, as in atftpd. The runtime hands the goroutine's
// processor to others while the thread sleeps, so concurrent transfers
// still run in parallel; each holds one thread while it waits.
type sock struct {
	fd      int
	peer    unix.Sockaddr
	scope   uint32 // the peer's interface, if its address is link-local
	name    []byte // the peer as a raw sockaddr, for sendmmsg
	timeout time.Duration
	closed  atomic.Bool

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

// openSock binds a socket to local (any address if invalid or not ours)
// and port 0, for talking to peer. ifindex is the interface the request
// came in on: a link-local address (fe80::/10) means nothing without it,
// so it becomes the scope of a link-local local or peer address that has
// no zone of its own.
func openSock(local netip.Addr, peer netip.AddrPort, ifindex int) (*sock, error) {
	family := unix.AF_INET
	if peer.Addr().Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, err
	}
	s := &sock{fd: fd, scope: scopeID(peer.Addr(), ifindex)}
	if err := unix.Bind(fd, sockaddr(local, 0, family, scopeID(local, ifindex))); err != nil {
		if err := unix.Bind(fd, sockaddr(netip.Addr{}, 0, family, 0)); err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	s.peer = sockaddr(peer.Addr(), peer.Port(), family, s.scope)
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

// send sends one packet to the peer.
func (s *sock) send(pkt []byte) error {
	return unix.Sendto(s.fd, pkt, 0, s.peer)
}

// sendTo sends one packet elsewhere (ERROR 5 to a stranger).
func (s *sock) sendTo(pkt []byte, to netip.AddrPort) error {
	family := unix.AF_INET
	if to.Addr().Is6() {
		family = unix.AF_INET6
	}
	return unix.Sendto(s.fd, pkt, 0, sockaddr(to.Addr(), to.Port(), family, s.scope))
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
	for sent := 0; sent < len(msgs); {
		n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd),
			uintptr(unsafe.Pointer(&msgs[sent])), uintptr(len(msgs)-sent), 0, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return errno
		}
		sent += int(n)
	}
	return nil
}

// recv waits until deadline for a packet. It returns errRecvTimeout when
// the deadline passes and net.ErrClosed-like errors after close.
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
		fromLen := uint32(unix.SizeofSockaddrAny)
		r, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(s.fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
			0, uintptr(unsafe.Pointer(&s.from)), uintptr(unsafe.Pointer(&fromLen)))
		if s.closed.Load() {
			return 0, netip.AddrPort{}, errClosed // woken by abort's shutdown
		}
		switch errno {
		case 0:
			return int(r), rawAddrPort(&s.from), nil
		case unix.EAGAIN, unix.EINTR:
			continue // timed out (checked above) or interrupted
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

// abort wakes a blocked recv and makes every later one fail.
func (s *sock) abort() {
	s.closed.Store(true)
	unix.Shutdown(s.fd, unix.SHUT_RDWR)
}

func (s *sock) close() error { return unix.Close(s.fd) }
