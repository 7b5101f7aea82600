package dhcp

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"bootforge/internal/boot"
	"bootforge/internal/dhcp/lease"
)

// BenchmarkDORA is the server's CPU for one relayed PXE client's
// DISCOVER and REQUEST: parsing, deciding, the sightings, and the replies'
// bytes. Every client is new, as in bench/dhcp.sh, so the leases and
// sightings grow with b.N, and the collector's work with them. The
// client's side (making the requests, reading the offer) is not timed.
func BenchmarkDORA(b *testing.B) {
	pfx := netip.MustParsePrefix("198.19.0.0/16")
	h := &Handler{Mode: ModeAuthoritative, Resolver: resolver(), OfferHold: time.Minute, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Sightings: boot.NewSightingTable()}
	h.Subnets = []*Subnet{{
		Pool:      lease.NewPool(pfx, []lease.Range{{First: netip.MustParseAddr("198.19.0.10"), Last: netip.MustParseAddr("198.19.255.250")}}, nil, &memLeases{}, nil),
		Router:    netip.MustParseAddr("198.19.0.1"),
		LeaseTime: time.Hour,
	}}
	giaddr := net.IPv4(198, 19, 0, 1)
	src := netip.MustParseAddrPort("198.19.0.1:67")
	own := []netip.Prefix{netip.MustParsePrefix("198.18.0.1/24")}
	buf := make([]byte, 0, maxReply)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		m := net.HardwareAddr{2, 0xbf, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
		mods := append(pxeMods(0), dhcpv4.WithGatewayIP(giaddr))
		d, _ := dhcpv4.NewDiscovery(m, mods...)
		req := d.ToBytes()
		b.StartTimer()
		p, err := parse(req)
		if err != nil {
			b.Fatal(err)
		}
		res := h.handle(request{pkt: p, iface: "vsrv", ifAddrs: own, src: src, port: 67})
		if res.Reply == nil {
			b.Fatal(res.Silent)
		}
		buf = appendPacket(buf[:0], res.Reply)
		b.StopTimer()
		o, _ := dhcpv4.FromBytes(buf)
		r, _ := dhcpv4.NewRequestFromOffer(o, mods...)
		req = r.ToBytes()
		b.StartTimer()
		p, err = parse(req)
		if err != nil {
			b.Fatal(err)
		}
		res = h.handle(request{pkt: p, iface: "vsrv", ifAddrs: own, src: src, port: 67})
		if res.Reply == nil || res.Reply.MessageType() != dhcpv4.MessageTypeAck {
			b.Fatal(res.Silent)
		}
		buf = appendPacket(buf[:0], res.Reply)
	}
}
