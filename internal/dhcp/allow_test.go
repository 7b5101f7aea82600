package dhcp

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"bootforge/internal/allow"
)

// A relayed client is served by its relay's subnet, a client on the link
// by the interface's: against the allow-list (dhcp.allow, else allow)
// when there is one, a reload's too, else against the defaults.
func TestServerAllow(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := &Handler{Mode: ModeProxy}
	own := []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}
	relayed, err := dhcpv4.NewDiscovery(net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	relayed.GatewayIPAddr = net.IPv4(198, 51, 100, 1)
	local, _ := dhcpv4.NewDiscovery(net.HardwareAddr{0x52, 0x54, 0, 0, 0, 2})

	ok := func(s *Server, req *dhcpv4.DHCPv4) bool { a, _ := s.allowed(req, own, h); return a }
	s := NewServer(h, Config{}, quiet)
	if ok(s, relayed) || !ok(s, local) {
		t.Error("defaults: a relay from a subnet not served was allowed, or the link was not")
	}
	s.SetAllow(allow.List{Key: "allow", Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}})
	if !ok(s, relayed) || ok(s, local) {
		t.Error("allow 198.51.100.0/24: the relay was refused, or the link outside it served")
	}
	if _, why := s.allowed(local, own, h); why != "192.0.2.1 is not in allow" {
		t.Errorf("refusal reason %q", why)
	}
	s = NewServer(h, Config{Allow: allow.List{Key: "dhcp.allow", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}}, quiet)
	if ok(s, relayed) || !ok(s, local) {
		t.Error("dhcp.allow 192.0.2.0/24: wrong clients served")
	}
}
