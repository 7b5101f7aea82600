package dhcp

import (
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"
)

// destination is where a reply goes (RFC 2131 4.1): to the relay if there
// is one, else to a configured client's address, else broadcast if the
// client asked for it or the reply is a NAK or carries no address, else
// unicast to the new address at the client's hardware address.
type destination struct {
	addr netip.AddrPort
	arp  bool // the client has no ARP entry yet: add one for chaddr first
}

func route(req, reply *dhcpv4.DHCPv4, src netip.AddrPort) destination {
	bcast := netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), dhcpv4.ClientPort)
	if gi, ok := addr4(req.GatewayIPAddr); ok {
		return destination{addr: netip.AddrPortFrom(gi, dhcpv4.ServerPort)}
	}
	if src.Port() != dhcpv4.ClientPort && src.Port() != 0 && src.Addr().IsValid() && !src.Addr().IsUnspecified() {
		// A PXE boot-server request on 4011 or a client on an odd port:
		// answer where it came from. Port 0 is no port (a forged or
		// broken packet): that one is answered as a client on 68 would
		// be, never sent to port 0.
		return destination{addr: src}
	}
	if reply.MessageType() == dhcpv4.MessageTypeNak {
		return destination{addr: bcast}
	}
	if ci, ok := addr4(req.ClientIPAddr); ok {
		return destination{addr: netip.AddrPortFrom(ci, dhcpv4.ClientPort)}
	}
	yi, ok := addr4(reply.YourIPAddr)
	if req.IsBroadcast() || !ok || len(req.ClientHWAddr) != 6 {
		return destination{addr: bcast}
	}
	return destination{addr: netip.AddrPortFrom(yi, dhcpv4.ClientPort), arp: true}
}

// atfCom is ATF_COM from <net/if_arp.h>: the entry is complete.
const atfCom = 0x02

// arpreq is struct arpreq from <net/if_arp.h>.
type arpreq struct {
	pa      unix.RawSockaddrInet4
	ha      unix.RawSockaddr
	flags   int32
	netmask unix.RawSockaddrInet4
	dev     [16]byte
}

// setARP adds a complete ARP entry ip → mac on iface through the socket's
// descriptor, as dnsmasq does, so that a unicast reply can reach a client
// that cannot answer ARP yet.
func setARP(conn syscall.Conn, iface string, ip netip.Addr, mac net.HardwareAddr) error {
	var req arpreq
	req.pa.Family = unix.AF_INET
	req.pa.Addr = ip.As4()
	req.ha.Family = unix.ARPHRD_ETHER
	for i, b := range mac {
		req.ha.Data[i] = int8(b)
	}
	req.flags = atfCom
	copy(req.dev[:15], iface)
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	err = rc.Control(func(fd uintptr) {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, unix.SIOCSARP, uintptr(unsafe.Pointer(&req)))
		if errno != 0 {
			ioErr = errno
		}
	})
	if err != nil {
		return err
	}
	return ioErr
}
