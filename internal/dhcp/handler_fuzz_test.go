package dhcp

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"bootforge/internal/boot"
	"bootforge/internal/dhcp/lease"
	"bootforge/internal/store"
)

// FuzzReplyWellFormed sends whole packets, direct and relayed, to the
// proxy and the authoritative handler, on port 67 and 4011: nothing
// panics, and every reply parses back, is a BOOTREPLY of a known message
// type to the request's xid and chaddr, fits EDK2's limit, and goes to an
// address (the relay's, when relayed).
func FuzzReplyWellFormed(f *testing.F) {
	relay := dhcpv4.WithGatewayIP(net.IPv4(198, 51, 100, 1))
	seeds := [][]dhcpv4.Modifier{
		pxeMods(7),
		pxeMods(0),
		append(pxeMods(16), dhcpv4.WithOption(dhcpv4.OptClassIdentifier("HTTPClient:Arch:00016:UNDI:003001"))),
		{dhcpv4.WithOption(dhcpv4.OptUserClass("iPXE")), relay},
		append(pxeMods(7), relay, func(d *dhcpv4.DHCPv4) { d.HopCount = 3 }),
		{dhcpv4.WithBroadcast(true)},
		{dhcpv4.WithOption(dhcpv4.OptClientIdentifier([]byte{1, 0x52, 0x54, 0, 0x12, 0x34, 0x57}))},
	}
	for _, mods := range seeds {
		d, err := dhcpv4.NewDiscovery(mac, mods...)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(d.ToBytes(), uint16(68), false)
		f.Add(d.ToBytes(), uint16(4011), true)
		for _, ip := range []net.IP{net.IPv4(192, 0, 2, 100), net.IPv4(198, 51, 100, 100)} {
			offer, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer), dhcpv4.WithYourIP(ip),
				dhcpv4.WithServerIP(serverIP.AsSlice()), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(serverIP.AsSlice())))
			r, err := dhcpv4.NewRequestFromOffer(offer, append(mods, dhcpv4.WithTransactionID(d.TransactionID), dhcpv4.WithHwAddr(mac))...)
			if err == nil {
				f.Add(r.ToBytes(), uint16(68), false)
			}
		}
	}
	for _, mt := range []dhcpv4.MessageType{dhcpv4.MessageTypeInform, dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeDecline} {
		p, _ := dhcpv4.New(dhcpv4.WithMessageType(mt), dhcpv4.WithHwAddr(mac), dhcpv4.WithClientIP(net.IPv4(192, 0, 2, 100)))
		f.Add(p.ToBytes(), uint16(68), false)
	}
	d, _ := dhcpv4.NewDiscovery(mac, pxeMods(7)...)
	f.Add(append(d.ToBytes()[:offOptions], 52, 1, 3, 53, 1, 1, 255), uint16(68), false) // option overload
	f.Add([]byte{1, 1, 6, 0}, uint16(68), false)

	hs := map[string]*Handler{}
	for _, mode := range []string{ModeProxy, ModeAuthoritative} {
		hs[mode] = fuzzHandler(f, mode)
	}
	f.Fuzz(func(t *testing.T, b []byte, srcPort uint16, bootServer bool) {
		p, err := parse(b)
		if err != nil {
			return
		}
		port := 67
		if bootServer {
			port = pxePort
		}
		src := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.9"), srcPort)
		for _, mode := range []string{ModeProxy, ModeAuthoritative} {
			res := hs[mode].handle(request{pkt: p, iface: "br0", ifAddrs: ifAddrs, src: src, port: port})
			if n := len(res.Client.MAC); n > 0 && n <= 20 { // what a sighting can key; its new facts win
				seen, ok := hs[mode].Sightings.ByMAC(res.Client.MAC)
				c := res.Client
				if !ok || !bytes.Equal(seen.MAC, c.MAC) || c.UUID != "" && seen.UUID != c.UUID || c.VendorClass != "" && seen.VendorClass != c.VendorClass ||
					c.IP.IsValid() && seen.IP != c.IP {
					t.Fatalf("%s: sighting %+v, %v, of client %+v", mode, seen, ok, res.Client)
				}
			}
			if res.Reply == nil {
				continue
			}
			out := appendPacket(nil, res.Reply) // as Server.send writes it
			if len(out) > maxReply {
				t.Fatalf("%s: reply of %d bytes", mode, len(out))
			}
			back, err := dhcpv4.FromBytes(out)
			if err != nil {
				t.Fatalf("%s: reply does not parse: %v\n%x", mode, err, out)
			}
			if back.OpCode != dhcpv4.OpcodeBootReply {
				t.Fatalf("%s: reply op %v", mode, back.OpCode)
			}
			if back.TransactionID != p.TransactionID {
				t.Fatalf("%s: reply xid %v, request %v", mode, back.TransactionID, p.TransactionID)
			}
			if !bytes.Equal(back.ClientHWAddr, p.ClientHWAddr) {
				t.Fatalf("%s: reply chaddr %v, request %v", mode, back.ClientHWAddr, p.ClientHWAddr)
			}
			switch back.MessageType() {
			case dhcpv4.MessageTypeOffer, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak:
			default:
				t.Fatalf("%s: reply of type %v to a %v", mode, back.MessageType(), p.MessageType())
			}
			dst := route(p, res.Reply, src)
			if !dst.addr.IsValid() || dst.addr.Port() == 0 {
				t.Fatalf("%s: reply to %v", mode, dst.addr)
			}
			if gi, ok := addr4(p.GatewayIPAddr); ok && dst.addr.Addr() != gi {
				t.Fatalf("%s: relayed by %v, reply to %v", mode, gi, dst.addr)
			}
		}
	})
}

// fuzzHandler is newHandler with the store kept for the whole fuzzing run
// and pools large enough to keep offering.
func fuzzHandler(tb testing.TB, mode string) *Handler {
	h := &Handler{Mode: mode, Resolver: resolver(), OfferHold: time.Minute, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Sightings: boot.NewSightingTable()}
	if mode != ModeAuthoritative {
		return h
	}
	db, err := store.OpenSQLite(filepath.Join(tb.TempDir(), "fuzz.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	for _, p := range []string{"192.0.2.0/24", "198.51.100.0/24"} {
		pfx := netip.MustParsePrefix(p)
		h.Subnets = append(h.Subnets, &Subnet{
			Pool: lease.NewPool(pfx, []lease.Range{{First: pfx.Addr().Next().Next(), Last: netip.AddrFrom4([4]byte{pfx.Addr().As4()[0],
				pfx.Addr().As4()[1], pfx.Addr().As4()[2], 250})}}, nil, db, nil),
			Router:    pfx.Addr().Next(),
			DNS:       []netip.Addr{pfx.Addr().Next()},
			Domain:    "lab.test",
			LeaseTime: time.Hour,
		})
	}
	return h
}
