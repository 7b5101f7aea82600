package dhcp

import (
	"net"
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"bootforge/internal/boot"
)

// In proxy mode the address comes from the network's own DHCP server; the
// client's broadcast REQUEST for it is what the proxy sees, and that
// address is recorded so that pxelinux.cfg/<hex IP> finds the MAC.
func TestProxyRecordsRequestedAddress(t *testing.T) {
	h := newHandler(t, ModeProxy)
	seen := boot.NewSightingTable()
	h.Sightings = seen
	req := discover(t, pxeMods(0)...)
	req.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeRequest))
	req.UpdateOption(dhcpv4.OptRequestedIPAddress(net.IPv4(198, 51, 100, 23)))
	if _, err := handle(t, h, req, 67); err == nil {
		t.Fatal("proxy answered a REQUEST on 67")
	}
	c, ok := seen.ByIP(netip.MustParseAddr("198.51.100.23"))
	if !ok || c.MAC.String() != mac.String() {
		t.Fatalf("the requested address maps to %v (%v), want %s", c.MAC, ok, mac)
	}
	// A client that is not network-booting records no address.
	plain := discover(t)
	plain.ClientHWAddr = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0x77}
	plain.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeRequest))
	plain.UpdateOption(dhcpv4.OptRequestedIPAddress(net.IPv4(198, 51, 100, 24)))
	handle(t, h, plain, 67)
	if c, ok := seen.ByIP(netip.MustParseAddr("198.51.100.24")); ok {
		t.Fatalf("a plain client's request was recorded: %v", c.MAC)
	}
}
