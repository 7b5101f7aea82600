package dhcp

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// RFC 2131 4.3.2: a NAK to a relayed REQUEST has the broadcast bit set, so
// the relay broadcasts it; a NAK to a client on the link copies its flags.
func TestNAKThroughRelayIsBroadcast(t *testing.T) {
	h := &Handler{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	local := netip.MustParseAddr("192.0.2.1")
	for _, tt := range []struct {
		giaddr net.IP
		want   bool
	}{{net.ParseIP("192.0.2.9").To4(), true}, {net.IPv4zero, false}} {
		req, err := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithGatewayIP(tt.giaddr))
		if err != nil {
			t.Fatal(err)
		}
		req.SetUnicast()
		r := h.nak(req, local, "not on this network")
		if r.IsBroadcast() != tt.want {
			t.Errorf("giaddr %s: broadcast %v, want %v", tt.giaddr, r.IsBroadcast(), tt.want)
		}
	}
}
