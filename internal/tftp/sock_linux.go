package tftp

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sock is a transfer's own UDP socket (its TID). It waits for ACKs in one
// of three ways (waitMode), chosen when the transfer starts:
//
//   - Blocking system calls from the transfer's goroutine, while few
//     transfers run. A lockstep transfer (windowsize 1) waits for one ACK
//     per block, and through Go's netpoller every wait parks the goroutine
//     and wakes it through epoll — measured here at 1.5–1.9× atftpd's CPU
//     per block. A blocking recvfrom with SO_RCVTIMEO costs one system
//     call and one context switch per ACK, as in atftpd.
//   - Those calls made raw (waitRaw), for the first transfers: one fewer
//     than the runtime has processors. A call made through
//     syscall.Syscall tells the scheduler it may block, and while such
//     calls keep coming the runtime's monitor (sysmon) wakes every 20 µs
//     to take the processor of one that lasts: on two processors it took
//     a quarter of the server's samples in a lockstep transfer, and the
//     transfer ran at 0.78× tftpd-hpa's speed. A raw call keeps its
//     processor while it waits, and a stop of the world (the garbage
//     collector's) waits for it. So one processor is always left to the
//     rest of the server, and a raw wait lasts at most rawWait; an ACK
//     that takes longer is awaited in a call the scheduler knows of.
//     Lockstep transfers took a quarter to a third less wall time and a
//     third to a half less CPU (bench/README.md).
//   - The netpoller (waitPoll), once more transfers run than the runtime
//     has processors. A blocking wait holds an OS thread, and hundreds of
//     threads waking for ACKs fight over two processors: in a storm of 500
//     clients perf put 39% of the time in the scheduler's context switch.
//     Parked goroutines cost no thread, and one epoll_wait hands the
//     runtime every transfer whose ACK has arrived.
type sock struct {
	fd      int
	wait    waitMode
	scope   uint32        // the peer's interface, if its address is link-local
	name    []byte        // the peer as a raw sockaddr, for sendto and sendmmsg
	timeout time.Duration // SO_RCVTIMEO as last set
	raw     bool          // system calls are made raw (waitRaw, but for a long wait)
	closed  atomic.Bool

	// In netpoller mode, the socket is non-blocking and registered with
	// the runtime through file; rc runs system calls that wait on it.
	file  *os.File
	rc    syscall.RawConn
	armed time.Time // the read deadline set on file; zero if none or passed

	// The system calls, as write and recv run them: method values made
	// once, with their arguments and results in the fields below. A
	// function handed to rc escapes to the heap, so a closure per packet
	// would be an allocation per packet.
	sendFn, manyFn, recvFn func(fd uintptr) bool
	pkt                    []byte     // sendOne's packet
	batch                  []mmsghdr  // sendMany's messages not yet sent
	buf                    []byte     // recvOne's buffer
	rflags                 int        // recvOne's flags: MSG_DONTWAIT in late, else none
	n                      int        // recvOne's length
	errno                  unix.Errno // the last call's

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

// waitMode is how a transfer's socket waits for ACKs (see sock).
type waitMode int

const (
	waitRaw      waitMode = iota // blocking calls made raw, rawWait at a time
	waitBlocking                 // blocking calls through the scheduler
	waitPoll                     // the netpoller
)

func (w waitMode) String() string { return [...]string{"raw", "blocking", "netpoller"}[w] }

// rawWait bounds a raw wait for an ACK: the time a processor is kept
// from the rest of the server. A client on the same network ACKs well
// within it. SO_RCVTIMEO counts in clock ticks, so the kernel may wait up
// to one tick (4 ms at 250 Hz).
const rawWait = time.Millisecond

var errRecvTimeout = errors.New("receive timed out")

// openSock binds a socket to local (any address if invalid or not ours)
// and port 0, for talking to peer. ifindex is the interface the request
// came in on: a link-local address (fe80::/10) means nothing without it,
// so it becomes the scope of a link-local local or peer address that has
// no zone of its own. w is how it waits for ACKs.
func openSock(local netip.Addr, peer netip.AddrPort, ifindex int, w waitMode) (*sock, error) {
	poll := w == waitPoll
	family := unix.AF_INET
	if peer.Addr().Is6() {
		family = unix.AF_INET6
	}
	typ := unix.SOCK_DGRAM | unix.SOCK_CLOEXEC
	if poll {
		typ |= unix.SOCK_NONBLOCK
	}
	fd, err := unix.Socket(family, typ, unix.IPPROTO_UDP)
	if err != nil {
		return nil, err
	}
	s := &sock{fd: fd, wait: w, raw: w == waitRaw, scope: scopeID(peer.Addr(), ifindex)}
	if err := unix.Bind(fd, sockaddr(local, 0, family, scopeID(local, ifindex))); err != nil {
		if err := unix.Bind(fd, sockaddr(netip.Addr{}, 0, family, 0)); err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	s.name = rawSockaddr(peer, s.scope)
	if poll {
		s.file = os.NewFile(uintptr(fd), "tftp") // non-blocking: registered with the netpoller
		if s.rc, err = s.file.SyscallConn(); err != nil {
			s.file.Close()
			return nil, err
		}
	}
	s.sendFn, s.manyFn, s.recvFn = s.sendOne, s.sendMany, s.recvOne
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

// write runs a sending system call, which leaves its result in s.errno:
// at once on a blocking socket; in netpoller mode through rc, which waits
// while the socket buffer is full.
func (s *sock) write(fn func(fd uintptr) bool) error {
	if s.rc == nil {
		fn(uintptr(s.fd))
	} else if err := s.rc.Write(fn); err != nil {
		return err
	}
	if s.errno != 0 {
		return s.errno
	}
	return nil
}

// syscall6 runs a system call on the socket. In netpoller mode the
// socket is non-blocking, so the call returns at once (EAGAIN rather
// than wait) and runs raw: without telling the scheduler it entered a
// system call. Told, the scheduler's monitor hands the processor of a
// call that lasts over 20 µs, while other goroutines wait, to another
// thread, and a sendto that delivers a block to a local client takes
// about that long. In raw mode the calls block, for rawWait at most.
func (s *sock) syscall6(trap, a1, a2, a3, a4, a5, a6 uintptr) (uintptr, uintptr, unix.Errno) {
	if s.rc != nil || s.raw {
		return unix.RawSyscall6(trap, a1, a2, a3, a4, a5, a6)
	}
	return unix.Syscall6(trap, a1, a2, a3, a4, a5, a6)
}

// sendOne is sendto(2) of s.pkt to the peer, again while interrupted. The
// raw system call takes the peer's prepared sockaddr; unix.Sendto would
// convert and allocate one per packet. It reports whether the call is
// done (it would not block).
func (s *sock) sendOne(fd uintptr) bool {
	for {
		_, _, s.errno = s.syscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&s.pkt[0])), uintptr(len(s.pkt)),
			0, uintptr(unsafe.Pointer(&s.name[0])), uintptr(len(s.name)))
		if s.errno != unix.EINTR {
			return s.errno != unix.EAGAIN
		}
	}
}

// sendMany is one sendmmsg(2) of s.batch, which it advances past the
// messages sent.
func (s *sock) sendMany(fd uintptr) bool {
	for {
		var n uintptr
		n, _, s.errno = s.syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.batch[0])), uintptr(len(s.batch)), 0, 0, 0)
		if s.errno == 0 {
			s.batch = s.batch[n:]
		}
		if s.errno != unix.EINTR {
			return s.errno != unix.EAGAIN
		}
	}
}

// recvOne is recvfrom(2) into s.buf, the length in s.n and the source in
// s.from.
func (s *sock) recvOne(fd uintptr) bool {
	for {
		fromLen := uint32(unix.SizeofSockaddrAny)
		var r uintptr
		r, _, s.errno = s.syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&s.buf[0])), uintptr(len(s.buf)),
			uintptr(s.rflags), uintptr(unsafe.Pointer(&s.from)), uintptr(unsafe.Pointer(&fromLen)))
		s.n = int(r)
		if s.errno != unix.EINTR {
			return s.errno != unix.EAGAIN
		}
	}
}

// send sends one packet to the peer.
func (s *sock) send(pkt []byte) error {
	s.pkt = pkt
	return s.write(s.sendFn)
}

// sendAside sends pkt to the peer from a goroutine other than the
// transfer's: it shares none of the fields send uses, and never waits.
// The caller holds the transfer's lock, so the socket is not closed
// under it.
func (s *sock) sendAside(pkt []byte) error {
	_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(&pkt[0])), uintptr(len(pkt)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&s.name[0])), uintptr(len(s.name)))
	if errno != 0 {
		return errno
	}
	return nil
}

// sendTo sends one packet elsewhere (ERROR 5 to a stranger). It is rare,
// and may allocate.
func (s *sock) sendTo(pkt []byte, to netip.AddrPort) error {
	family := unix.AF_INET
	if to.Addr().Is6() {
		family = unix.AF_INET6
	}
	sa := sockaddr(to.Addr(), to.Port(), family, s.scope)
	return s.write(func(fd uintptr) bool {
		for {
			if s.errno = errnoOf(unix.Sendto(int(fd), pkt, 0, sa)); s.errno != unix.EINTR {
				return s.errno != unix.EAGAIN
			}
		}
	})
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
	for s.batch = msgs; len(s.batch) > 0; {
		if err := s.write(s.manyFn); err != nil {
			return err
		}
	}
	return nil
}

// recv waits until deadline for a packet. It returns errRecvTimeout when
// the deadline passes and errClosed after abort.
func (s *sock) recv(buf []byte, deadline time.Time) (int, netip.AddrPort, error) {
	if s.rc != nil {
		return s.recvPoll(buf, deadline)
	}
	// In raw mode the wait starts raw, for rawWait at most, and goes on
	// through the scheduler (s.raw false) until it returns.
	defer func() { s.raw = s.wait == waitRaw }()
	for {
		if s.closed.Load() {
			return 0, netip.AddrPort{}, errClosed
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return s.late(buf)
		}
		if s.raw {
			wait = min(wait, rawWait)
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
		s.buf = buf
		s.recvFn(uintptr(s.fd))
		r, errno := s.n, s.errno
		if s.closed.Load() && (errno != 0 || r == 0) {
			// Woken by abort's shutdown. A packet read as it came is
			// still returned: it may be the final ACK (transfer.replace).
			return 0, netip.AddrPort{}, errClosed
		}
		switch errno {
		case 0:
			return r, rawAddrPort(&s.from), nil
		case unix.EAGAIN:
			s.raw = false // timed out: the deadline (checked above), or the raw part of the wait
			continue
		case unix.EINTR:
			continue
		default:
			return 0, netip.AddrPort{}, errno
		}
	}
}

// recvPoll is recv in netpoller mode. Moving the read deadline is a timer
// change in the runtime, so it is moved only when it must come sooner:
// when it fires before the deadline asked for, it is moved there and the
// wait goes on. It moves about once per timeout rather than once per ACK.
func (s *sock) recvPoll(buf []byte, deadline time.Time) (int, netip.AddrPort, error) {
	for {
		if s.closed.Load() {
			return 0, netip.AddrPort{}, errClosed
		}
		if s.armed.IsZero() || deadline.Before(s.armed) {
			if err := s.file.SetReadDeadline(deadline); err != nil {
				return 0, netip.AddrPort{}, err
			}
			s.armed = deadline
		}
		s.buf = buf
		err := s.rc.Read(s.recvFn)
		r, errno := s.n, s.errno
		switch {
		case s.closed.Load() && (err != nil || errno != 0):
			return 0, netip.AddrPort{}, errClosed // woken by abort's deadline; a packet read is returned, as in recv
		case errors.Is(err, os.ErrDeadlineExceeded):
			s.armed = time.Time{} // passed: set it again before the next wait
			if time.Now().Before(deadline) {
				continue // it was an earlier wait's deadline
			}
			return s.late(buf)
		case err != nil:
			return 0, netip.AddrPort{}, err
		case errno != 0:
			return 0, netip.AddrPort{}, errno
		}
		return r, rawAddrPort(&s.from), nil
	}
}

// late is the end of a wait whose deadline has passed: a packet already
// in the socket is returned, and only an empty socket means a timeout. A
// goroutine that got no CPU until after its deadline (a storm on a busy
// machine) finds the client's ACK waiting there; calling that a timeout
// would resend what the client has acknowledged.
func (s *sock) late(buf []byte) (int, netip.AddrPort, error) {
	s.buf = buf
	peek := func(fd uintptr) {
		s.rflags = unix.MSG_DONTWAIT
		s.recvOne(fd)
		s.rflags = 0
	}
	if s.rc != nil {
		if err := s.rc.Control(peek); err != nil {
			return 0, netip.AddrPort{}, err
		}
	} else {
		peek(uintptr(s.fd))
	}
	if s.errno != 0 {
		return 0, netip.AddrPort{}, errRecvTimeout
	}
	return s.n, rawAddrPort(&s.from), nil
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
	if s.file != nil {
		s.file.SetDeadline(time.Unix(1, 0)) // closing here could free the fd number under a running call
		return
	}
	unix.Shutdown(s.fd, unix.SHUT_RDWR)
}

func (s *sock) close() error {
	if s.file != nil {
		return s.file.Close()
	}
	return unix.Close(s.fd)
}
