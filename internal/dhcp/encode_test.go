package dhcp

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"bootforge/internal/boot"
)

// encodePeers are packets whose wire form appendPacket must write as the
// library does: replies of every kind the handler makes, and packets with
// what the layout has rules for (option 82 last, values over 255 bytes,
// empty values, pad and end in the map, names over their fields, a long
// hardware address).
func encodePeers(t testing.TB) []*dhcpv4.DHCPv4 {
	var out []*dhcpv4.DHCPv4
	for _, mode := range []string{ModeProxy, ModeAuthoritative} {
		h := fuzzHandler(t, mode)
		for _, arch := range []uint16{0, 7, 16} {
			mods := append(pxeMods(arch), dhcpv4.WithGatewayIP(net.IPv4(198, 51, 100, 1)),
				dhcpv4.WithOption(dhcpv4.OptRelayAgentInfo(dhcpv4.OptGeneric(dhcpv4.AgentCircuitIDSubOption, []byte("port7")))))
			res := h.handle(request{pkt: discover(t, mods...), iface: "br0", ifAddrs: ifAddrs, src: netip.MustParseAddrPort("198.51.100.1:67"), port: 67})
			if res.Reply != nil {
				out = append(out, res.Reply)
			}
		}
	}
	if len(out) < 4 {
		t.Fatalf("only %d replies to compare", len(out))
	}
	long := bytes.Repeat([]byte{0xab}, 600)
	p, _ := dhcpv4.New(dhcpv4.WithHwAddr(mac), dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionVendorSpecificInformation, long)),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionRelayAgentInformation, []byte{1, 2, 'a', 'b'})),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClassIdentifier, nil)),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(254), []byte{1})),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(0), []byte{9})),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(255), []byte{9})))
	p.ServerHostName = strings.Repeat("s", 70)
	p.BootFileName = strings.Repeat("f", 130)
	out = append(out, p)
	q, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeNak))
	q.ClientHWAddr = bytes.Repeat([]byte{7}, 20)
	return append(out, q)
}

func TestAppendPacketIsToBytes(t *testing.T) {
	for i, p := range encodePeers(t) {
		want := p.ToBytes()
		if got := appendPacket(nil, p); !bytes.Equal(got, want) {
			t.Errorf("packet %d (%v):\n got %x\nwant %x", i, p.MessageType(), got, want)
		}
		if got := appendPacket([]byte("prefix"), p); !bytes.Equal(got[len("prefix"):], want) {
			t.Errorf("packet %d after a prefix:\n got %x\nwant %x", i, got[len("prefix"):], want)
		}
	}
}

// An address field the library cannot write (it panics) is 0.0.0.0.
func TestAppendPacketNotIPv4(t *testing.T) {
	p, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeAck))
	p.YourIPAddr = net.ParseIP("2001:db8::1")
	p.GatewayIPAddr = nil
	b := appendPacket(nil, p)
	if !bytes.Equal(b[16:20], []byte{0, 0, 0, 0}) || !bytes.Equal(b[24:28], []byte{0, 0, 0, 0}) {
		t.Fatalf("yiaddr %v, giaddr %v", b[16:20], b[24:28])
	}
}

func TestAppendPacketAllocs(t *testing.T) {
	p := encodePeers(t)[0]
	buf := make([]byte, 0, maxReply)
	if n := testing.AllocsPerRun(100, func() { buf = appendPacket(buf[:0], p) }); n != 0 {
		t.Fatalf("%v allocations per reply", n)
	}
}

// FuzzAppendPacket: any packet the library parses is written as its own
// encoder writes it.
func FuzzAppendPacket(f *testing.F) {
	for _, p := range encodePeers(f) {
		f.Add(p.ToBytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		if want, got := p.ToBytes(), appendPacket(nil, p); !bytes.Equal(got, want) {
			t.Fatalf("\n got %x\nwant %x", got, want)
		}
	})
}

// FuzzRelayIDs: the circuit and remote IDs are those the library's own
// parse of option 82 gives.
func FuzzRelayIDs(f *testing.F) {
	f.Add([]byte{1, 5, 'p', 'o', 'r', 't', '7', 2, 2, 'r', 'x'})
	f.Add([]byte{0, 1, 1, 'a', 255, 2, 1, 'b'})
	f.Add([]byte{1, 1, 'a', 1, 2, 'b', 'c', 2, 0})
	f.Add([]byte{1, 3, 'a'})
	f.Fuzz(func(t *testing.T, v []byte) {
		p, _ := dhcpv4.New(dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionRelayAgentInformation, v)))
		var wantC, wantR []byte
		if ri := p.RelayAgentInfo(); ri != nil {
			wantC, wantR = ri.Get(dhcpv4.AgentCircuitIDSubOption), ri.Get(dhcpv4.AgentRemoteIDSubOption)
		}
		c, r := relayIDs(v)
		if !bytes.Equal(c, wantC) || !bytes.Equal(r, wantR) || (c == nil) != (wantC == nil) || (r == nil) != (wantR == nil) {
			t.Fatalf("relayIDs(%x) = %x, %x; library: %x, %x", v, c, r, wantC, wantR)
		}
	})
}

// The reply's option map is made for the options withBoot will add:
// bootOptions must count what it sets, for every kind of plan.
func TestBootOptionsCounted(t *testing.T) {
	withUUID, _ := dhcpv4.NewDiscovery(mac, pxeMods(7)...)
	without, _ := dhcpv4.NewDiscovery(mac)
	plans := []boot.Plan{
		{},
		{Boot: true, BootFile: "ipxe.efi", Stage: boot.StageFirmware},
		{Boot: true, BootFile: "boot.ipxe", Stage: boot.StageIPXE},
		{Boot: true, BootFile: "http://192.0.2.1/ipxe.efi", HTTPClient: true, Stage: boot.StageFirmware},
	}
	for _, req := range []*dhcpv4.DHCPv4{withUUID, without} {
		for _, plan := range plans {
			reply := newReply(req, dhcpv4.MessageTypeOffer, 0)
			before := len(reply.Options)
			withBoot(reply, req, plan, netip.MustParseAddr("192.0.2.1"))
			if got, want := len(reply.Options)-before, bootOptions(req, plan); got != want {
				t.Errorf("plan %+v, uuid %v: withBoot set %d options, bootOptions counts %d", plan, req.Options.Has(dhcpv4.OptionClientMachineIdentifier), got, want)
			}
		}
	}
}

// Each of a reply's setters writes the value the library's typed option
// of its kind writes, and a value stays as it was set while more are
// written after it, past the reply's buffer too.
func TestReplySettersMatchLibrary(t *testing.T) {
	req, _ := dhcpv4.NewDiscovery(mac)
	r := newReply(req, dhcpv4.MessageTypeAck, 0)
	v4, v6, mapped := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("::ffff:198.51.100.7")
	long := strings.Repeat("x", 3*replyValues)
	want := map[dhcpv4.OptionCode][]byte{}
	check := func(o dhcpv4.Option) {
		t.Helper()
		want[o.Code] = o.Value.ToBytes()
		for code, w := range want {
			if got := r.Options.Get(code); !bytes.Equal(got, w) || (got == nil) != (w == nil) {
				t.Fatalf("option %v: %x, the library's %x", code, got, w)
			}
		}
	}
	check(dhcpv4.OptMessageType(dhcpv4.MessageTypeAck))
	r.setIPs(dhcpv4.OptionServerIdentifier, v4)
	check(dhcpv4.OptServerIdentifier(v4.AsSlice()))
	r.setIPs(dhcpv4.OptionRouter, v6)
	check(dhcpv4.OptRouter(v6.AsSlice()))
	r.setIPs(dhcpv4.OptionDomainNameServer, v4, v6, mapped)
	check(dhcpv4.OptDNS(v4.AsSlice(), v6.AsSlice(), mapped.AsSlice()))
	for _, bits := range []int{0, 1, 8, 23, 24, 31, 32} {
		r.setMask(dhcpv4.OptionSubnetMask, bits)
		check(dhcpv4.OptSubnetMask(net.CIDRMask(bits, 32)))
	}
	for _, d := range []time.Duration{0, 1500 * time.Millisecond, time.Hour, 7 * time.Hour / 8, 1 << 32 * time.Second} {
		r.setSeconds(dhcpv4.OptionIPAddressLeaseTime, d)
		check(dhcpv4.OptIPAddressLeaseTime(d))
	}
	r.setText(dhcpv4.OptionDomainName, "")
	check(dhcpv4.OptDomainName(""))
	r.setText(dhcpv4.OptionHostName, long)
	check(dhcpv4.OptHostName(long))
	r.setAddrText(dhcpv4.OptionTFTPServerName, v6)
	check(dhcpv4.OptTFTPServerName(v6.String()))
	r.setText(dhcpv4.OptionMessage, "not on this network")
	check(dhcpv4.OptMessage("not on this network"))
}
