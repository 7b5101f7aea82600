package dhcp

import (
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"

	"bootforge/internal/sockopt"
)

// sender sends a listening socket's replies from a second socket bound to
// the same interface and port, one that Go's network poller never sees.
//
// The poller registers every socket it serves for both directions,
// edge-triggered (EPOLLIN|EPOLLOUT|EPOLLET). A UDP socket becomes
// writable again as soon as a datagram it sent is freed, and each time
// the kernel queues an EPOLLOUT event for it: under load, every reply
// woke the poller for a write that no goroutine waited on. The
// listening socket now only receives, so it raises only EPOLLIN, and the
// replies leave through a plain blocking descriptor (a UDP send waits
// only while its buffer is full). At 16 requests in flight, in 22
// interleaved pairs of runs, it was ahead in 18, by 2–14% more leases a
// second in the three sets' medians, with 2–10% less CPU per lease
// (bench/README.md, twenty-seventh session).
//
// Both sockets share the port through SO_REUSEPORT, which the listener
// sets (server4.NewIPv4UDPConn), and sockopt.SteerToFirst hands every
// datagram for the port to the listener, which joined the group first.
// The kernel gives every socket on the port a copy of a broadcast,
// steering or not, so the sender drops all it is given
// (sockopt.ReceiveNothing). It is bound as the listener is (its
// interface, the wildcard address), so a reply leaves with the same
// source address and port as before, broadcast included.
//
// The steering is only safe in a group of our own. Were a socket of
// another process in it (a second bootforge on the interface joins it,
// as its listener sets SO_REUSEPORT too), the first place could be that
// socket's, and every request with it; and as the last socket of a group
// takes the place of one that leaves, our sender could come first. So a
// listener gets a sender only if the port was free before it bound it
// (portFree); else its replies go out through it, as they always did. A
// process that joins later finds our listener first, and takes its place
// when ours close.
type sender struct{ fd int }

// portFree reports whether no socket is bound to port on iface, or on
// every interface: a socket without SO_REUSEADDR or SO_REUSEPORT binds
// only then. Anything else (no permission, no such interface) is "not
// free", which keeps the listener without a sender.
func portFree(iface string, port int) bool {
	fd, err := bindMute(iface, port)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// newSender opens conn's sender: iface and port are what conn is bound to.
func newSender(conn *net.UDPConn, iface string, port int) (*sender, error) {
	if err := sockopt.SteerToFirst(conn); err != nil {
		return nil, fmt.Errorf("steering datagrams to the listener: %w", err)
	}
	return openSender(iface, port)
}

// openSender opens a socket that sends from port on iface (any if empty)
// and receives nothing.
func openSender(iface string, port int) (*sender, error) {
	fd, err := bindMute(iface, port, unix.SO_BROADCAST, unix.SO_REUSEADDR, unix.SO_REUSEPORT)
	if err != nil {
		return nil, err
	}
	return &sender{fd: fd}, nil
}

// bindMute binds a UDP socket that receives nothing to port on iface (any
// if empty), with the given socket options (SOL_SOCKET, set to 1).
func bindMute(iface string, port int, opts ...int) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, err
	}
	err = func() error {
		if err := sockopt.ReceiveNothing(fd); err != nil {
			return err
		}
		for _, opt := range opts {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, 1); err != nil {
				return err
			}
		}
		if iface != "" {
			if err := unix.BindToDevice(fd, iface); err != nil {
				return err
			}
		}
		return unix.Bind(fd, &unix.SockaddrInet4{Port: port})
	}()
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// send sends b to dst, an IPv4 address.
func (s *sender) send(b []byte, dst netip.AddrPort) error {
	a := dst.Addr().Unmap()
	if !a.Is4() {
		return fmt.Errorf("%s is not an IPv4 address", a)
	}
	to := &unix.SockaddrInet4{Port: int(dst.Port()), Addr: a.As4()}
	for {
		if err := unix.Sendto(s.fd, b, 0, to); err != unix.EINTR {
			return err
		}
	}
}

// close closes the socket. No send may be running or follow: the
// descriptor's number may be reused at once.
func (s *sender) close() { unix.Close(s.fd) }
