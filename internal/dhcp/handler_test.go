package dhcp

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"bootforge/internal/allow"
	"bootforge/internal/boot"
	"bootforge/internal/dhcp/lease"
	"bootforge/internal/store"
)

var (
	serverIP = netip.MustParseAddr("192.0.2.1")
	ifAddrs  = []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}
	mac      = net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}
)

func resolver() *boot.Resolver {
	return &boot.Resolver{
		Loaders:     map[boot.Firmware]string{boot.FirmwareBIOS: "undionly.kpxe", boot.FirmwareEFIx64: "snponly.efi"},
		HTTPLoaders: map[boot.Firmware]string{boot.FirmwareEFIx64: "ipxe.efi"},
		Script:      "boot.ipxe",
		HTTPPort:    8080,
	}
}

func newHandler(t testing.TB, mode string) *Handler {
	t.Helper()
	h := &Handler{Mode: mode, Resolver: resolver(), OfferHold: time.Minute, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mode == ModeAuthoritative {
		db, err := store.OpenSQLite(filepath.Join(t.TempDir(), "test.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		for _, p := range []string{"192.0.2.0/24", "198.51.100.0/24"} {
			pfx := netip.MustParsePrefix(p)
			first := pfx.Addr().Next().Next()
			h.Subnets = append(h.Subnets, &Subnet{
				Pool:      lease.NewPool(pfx, []lease.Range{{First: first, Last: first.Next().Next()}}, nil, db, nil),
				Router:    pfx.Addr().Next(),
				DNS:       []netip.Addr{pfx.Addr().Next()},
				Domain:    "lab.test",
				LeaseTime: time.Hour,
			})
		}
	}
	return h
}

func discover(t testing.TB, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	d, err := dhcpv4.NewDiscovery(mac, mods...)
	if err != nil {
		t.Fatal(err)
	}
	// Round trip through bytes, as the server sees it.
	p, err := parse(d.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func pxeMods(arch uint16) []dhcpv4.Modifier {
	return []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016")),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClientSystemArchitectureType, []byte{byte(arch >> 8), byte(arch)})),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, append([]byte{0}, bytes.Repeat([]byte{0xab}, 16)...))),
	}
}

func handle(t *testing.T, h *Handler, p *dhcpv4.DHCPv4, port int) (*dhcpv4.DHCPv4, error) {
	t.Helper()
	res := h.handle(request{pkt: p, iface: "br0", ifAddrs: ifAddrs, src: netip.MustParseAddrPort("0.0.0.0:68"), port: port})
	if res.Silent != "" {
		return nil, errors.New(res.Silent)
	}
	return res.Reply, nil
}

func TestProxyOffer(t *testing.T) {
	h := newHandler(t, ModeProxy)
	reply, err := handle(t, h, discover(t, pxeMods(7)...), 67)
	if err != nil {
		t.Fatal(err)
	}
	if reply.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatalf("type %s", reply.MessageType())
	}
	if !reply.YourIPAddr.IsUnspecified() {
		t.Fatalf("proxy offer gives an address: %s", reply.YourIPAddr)
	}
	if got := reply.ClassIdentifier(); got != "PXEClient" {
		t.Fatalf("option 60 = %q", got)
	}
	if reply.BootFileName != "snponly.efi" || reply.Options.Get(dhcpv4.OptionBootfileName) == nil {
		t.Fatalf("boot file %q", reply.BootFileName)
	}
	if !bytes.Equal(reply.Options.Get(dhcpv4.OptionVendorSpecificInformation), pxeVendorOptions) {
		t.Fatalf("option 43 = %x", reply.Options.Get(dhcpv4.OptionVendorSpecificInformation))
	}
	if u := reply.Options.Get(dhcpv4.OptionClientMachineIdentifier); len(u) != 17 {
		t.Fatalf("option 97 not echoed: %x", u)
	}
	if !reply.ServerIPAddr.Equal(serverIP.AsSlice()) || !reply.ServerIdentifier().Equal(serverIP.AsSlice()) {
		t.Fatalf("siaddr %s, server id %s", reply.ServerIPAddr, reply.ServerIdentifier())
	}
	if got := reply.TFTPServerName(); got != serverIP.String() {
		t.Fatalf("option 66 = %q, want the address in siaddr", got)
	}
}

// A reservation's hostname goes out as option 12, in the OFFER and the
// ACK; a client without one gets none.
func TestReservedHostname(t *testing.T) {
	h := newHandler(t, ModeAuthoritative)
	sub := h.Subnets[0]
	db, err := store.OpenSQLite(filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sub.Pool = lease.NewPool(sub.Pool.Subnet, []lease.Range{{First: netip.MustParseAddr("192.0.2.100"), Last: netip.MustParseAddr("192.0.2.110")}},
		[]lease.Reservation{{IP: netip.MustParseAddr("192.0.2.50"), MAC: mac, Hostname: "pc1"}}, db, nil)
	offer, err := handle(t, h, discover(t, pxeMods(0)...), 67)
	if err != nil {
		t.Fatal(err)
	}
	if offer.YourIPAddr.String() != "192.0.2.50" || offer.HostName() != "pc1" {
		t.Fatalf("offer to the reserved client: yiaddr %s, option 12 %q", offer.YourIPAddr, offer.HostName())
	}
	req, _ := dhcpv4.NewRequestFromOffer(offer)
	req, _ = parse(req.ToBytes())
	if ack, err := handle(t, h, req, 67); err != nil || ack.HostName() != "pc1" {
		t.Fatalf("ack: %v %v", ack, err)
	}
	other, err := dhcpv4.NewDiscovery(net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0x99})
	if err != nil {
		t.Fatal(err)
	}
	other, _ = parse(other.ToBytes())
	if o, err := handle(t, h, other, 67); err != nil || o.Options.Has(dhcpv4.OptionHostName) {
		t.Fatalf("an unreserved client: %v %v", o, err)
	}
}

func TestProxyIgnoresNonPXE(t *testing.T) {
	h := newHandler(t, ModeProxy)
	if reply, err := handle(t, h, discover(t), 67); err == nil {
		t.Fatalf("answered a plain client: %v", reply.Summary())
	}
	req := discover(t, pxeMods(7)...)
	req.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeRequest))
	if _, err := handle(t, h, req, 67); err == nil {
		t.Fatal("proxy answered a REQUEST on 67")
	}
}

func TestBootServer4011(t *testing.T) {
	h := newHandler(t, ModeProxy)
	req := discover(t, pxeMods(0)...)
	req.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeRequest))
	req.ClientIPAddr = net.IPv4(192, 0, 2, 77).To4()
	reply, err := handle(t, h, req, pxePort)
	if err != nil {
		t.Fatal(err)
	}
	if reply.MessageType() != dhcpv4.MessageTypeAck || reply.BootFileName != "undionly.kpxe" {
		t.Fatalf("%s %q", reply.MessageType(), reply.BootFileName)
	}
	dst := route(req, reply, netip.MustParseAddrPort("192.0.2.77:4011"))
	if dst.addr.String() != "192.0.2.77:4011" {
		t.Fatalf("4011 reply goes to %s", dst.addr)
	}
}

func TestIPXEGetsScript(t *testing.T) {
	h := newHandler(t, ModeProxy)
	mods := append(pxeMods(0), dhcpv4.WithOption(dhcpv4.OptUserClass("iPXE")))
	reply, err := handle(t, h, discover(t, mods...), 67)
	if err != nil {
		t.Fatal(err)
	}
	if reply.BootFileName != "http://192.0.2.1:8080/boot.ipxe" {
		t.Fatalf("iPXE got %q: a chainload loop", reply.BootFileName)
	}
	if reply.Options.Has(dhcpv4.OptionVendorSpecificInformation) {
		t.Fatal("iPXE got PXE option 43")
	}
}

func TestHTTPClient(t *testing.T) {
	h := newHandler(t, ModeProxy)
	reply, err := handle(t, h, discover(t,
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("HTTPClient:Arch:00016:UNDI:003001")),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClientSystemArchitectureType, []byte{0, 16}))), 67)
	if err != nil {
		t.Fatal(err)
	}
	if reply.ClassIdentifier() != "HTTPClient" || reply.BootFileName != "http://192.0.2.1:8080/ipxe.efi" {
		t.Fatalf("%q %q", reply.ClassIdentifier(), reply.BootFileName)
	}
}

func TestAuthoritativeExchange(t *testing.T) {
	h := newHandler(t, ModeAuthoritative)
	offer, err := handle(t, h, discover(t, pxeMods(0)...), 67)
	if err != nil {
		t.Fatal(err)
	}
	if offer.MessageType() != dhcpv4.MessageTypeOffer || offer.YourIPAddr.String() != "192.0.2.2" {
		t.Fatalf("%s yiaddr %s", offer.MessageType(), offer.YourIPAddr)
	}
	if offer.BootFileName != "undionly.kpxe" || offer.Router()[0].String() != "192.0.2.1" || offer.DomainName() != "lab.test" {
		t.Fatalf("offer options: %s", offer.Summary())
	}
	req, _ := dhcpv4.NewRequestFromOffer(offer)
	req, _ = parse(req.ToBytes())
	ack, err := handle(t, h, req, 67)
	if err != nil {
		t.Fatal(err)
	}
	if ack.MessageType() != dhcpv4.MessageTypeAck || !ack.YourIPAddr.Equal(offer.YourIPAddr) {
		t.Fatalf("%s %s", ack.MessageType(), ack.YourIPAddr)
	}
	if lt := ack.IPAddressLeaseTime(0); lt != time.Hour {
		t.Fatalf("lease time %s", lt)
	}
	// INIT-REBOOT for an address on another network: NAK, broadcast.
	bad, _ := dhcpv4.New(dhcpv4.WithReply(req), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(203, 0, 113, 9))))
	bad.OpCode = dhcpv4.OpcodeBootRequest
	nak, err := handle(t, h, bad, 67)
	if err != nil || nak.MessageType() != dhcpv4.MessageTypeNak {
		t.Fatalf("wrong-network request: %v %v", nak, err)
	}
	if dst := route(bad, nak, netip.MustParseAddrPort("0.0.0.0:68")); dst.addr.Addr() != netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		t.Fatalf("NAK goes to %s", dst.addr)
	}
}

func TestRelayed(t *testing.T) {
	h := newHandler(t, ModeAuthoritative)
	d := discover(t, dhcpv4.WithGatewayIP(net.IPv4(198, 51, 100, 1)),
		dhcpv4.WithOption(dhcpv4.OptRelayAgentInfo(
			dhcpv4.OptGeneric(dhcpv4.AgentCircuitIDSubOption, []byte("eth1")),
			dhcpv4.OptGeneric(dhcpv4.AgentRemoteIDSubOption, []byte("sw1")))))
	d.HopCount = 1
	offer, err := handle(t, h, d, 67)
	if err != nil {
		t.Fatal(err)
	}
	if !netip.MustParsePrefix("198.51.100.0/24").Contains(netip.MustParseAddr(offer.YourIPAddr.String())) {
		t.Fatalf("relayed client got %s", offer.YourIPAddr)
	}
	dst := route(d, offer, netip.MustParseAddrPort("198.51.100.1:67"))
	if dst.addr.String() != "198.51.100.1:67" {
		t.Fatalf("relayed reply goes to %s", dst.addr)
	}
	b := offer.ToBytes()
	// Option 82 must be the last option before END (RFC 3046 2.1).
	opts := b[offOptions:]
	last := -1
	for i := 0; i < len(opts) && opts[i] != 255; {
		if opts[i] == 0 {
			i++
			continue
		}
		last = int(opts[i])
		i += 2 + int(opts[i+1])
	}
	if last != 82 {
		t.Fatalf("last option is %d, want 82", last)
	}
}

func TestRouting(t *testing.T) {
	unspecified := netip.MustParseAddrPort("0.0.0.0:68")
	mk := func(flags uint16, ciaddr, giaddr, yiaddr net.IP, mt dhcpv4.MessageType) (*dhcpv4.DHCPv4, *dhcpv4.DHCPv4) {
		req, _ := dhcpv4.NewDiscovery(mac)
		req.Flags = flags
		req.ClientIPAddr, req.GatewayIPAddr = ciaddr, giaddr
		rep, _ := dhcpv4.NewReplyFromRequest(req, dhcpv4.WithMessageType(mt), dhcpv4.WithYourIP(yiaddr))
		return req, rep
	}
	z := net.IPv4zero
	tests := []struct {
		name string
		req  func() (*dhcpv4.DHCPv4, *dhcpv4.DHCPv4)
		want string
		arp  bool
	}{
		{"giaddr first", func() (*dhcpv4.DHCPv4, *dhcpv4.DHCPv4) {
			return mk(0x8000, net.IPv4(192, 0, 2, 9), net.IPv4(198, 51, 100, 1), net.IPv4(198, 51, 100, 5), dhcpv4.MessageTypeAck)
		}, "198.51.100.1:67", false},
		{"then ciaddr", func() (*dhcpv4.DHCPv4, *dhcpv4.DHCPv4) {
			return mk(0x8000, net.IPv4(192, 0, 2, 9), z, net.IPv4(192, 0, 2, 9), dhcpv4.MessageTypeAck)
		}, "192.0.2.9:68", false},
		{"then broadcast flag", func() (*dhcpv4.DHCPv4, *dhcpv4.DHCPv4) {
			return mk(0x8000, z, z, net.IPv4(192, 0, 2, 9), dhcpv4.MessageTypeOffer)
		}, "255.255.255.255:68", false},
		{"then chaddr/yiaddr", func() (*dhcpv4.DHCPv4, *dhcpv4.DHCPv4) {
			return mk(0, z, z, net.IPv4(192, 0, 2, 9), dhcpv4.MessageTypeOffer)
		}, "192.0.2.9:68", true},
		{"NAK broadcast", func() (*dhcpv4.DHCPv4, *dhcpv4.DHCPv4) {
			return mk(0, net.IPv4(192, 0, 2, 9), z, z, dhcpv4.MessageTypeNak)
		}, "255.255.255.255:68", false},
		{"no yiaddr: broadcast", func() (*dhcpv4.DHCPv4, *dhcpv4.DHCPv4) {
			return mk(0, z, z, z, dhcpv4.MessageTypeOffer)
		}, "255.255.255.255:68", false},
	}
	for _, tt := range tests {
		req, rep := tt.req()
		dst := route(req, rep, unspecified)
		if dst.addr.String() != tt.want || dst.arp != tt.arp {
			t.Errorf("%s: %s arp=%v, want %s arp=%v", tt.name, dst.addr, dst.arp, tt.want, tt.arp)
		}
	}
}

func TestOptionOverload(t *testing.T) {
	d, _ := dhcpv4.NewDiscovery(mac)
	b := d.ToBytes()
	// Move the message type into the file field, flag overload=1 (file).
	b = append(b[:offOptions], 52, 1, 1, 255)
	copy(b[offFile:], []byte{53, 1, 1, 60, 9, 'P', 'X', 'E', 'C', 'l', 'i', 'e', 'n', 't', 255})
	p, err := parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if p.MessageType() != dhcpv4.MessageTypeDiscover || p.ClassIdentifier() != "PXEClient" {
		t.Fatalf("overloaded options lost: %s", p.Summary())
	}
}

func TestUserClassTolerance(t *testing.T) {
	cases := map[string][]string{
		"iPXE":          {"iPXE"},      // bare, as iPXE sends it
		"\x04iPXE":      {"iPXE"},      // RFC 3004
		"\x03abc\x02de": {"abc", "de"}, // RFC 3004, two
		"\x09iPXE":      {"\x09iPXE"},  // length past the end: one string
		"\x00":          {"\x00"},      // zero length
	}
	for in, want := range cases {
		got := userClass([]byte(in))
		if len(got) != len(want) {
			t.Errorf("%q: %q, want %q", in, got, want)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%q: %q, want %q", in, got, want)
			}
		}
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(5)
	now := time.Unix(0, 0)
	n := 0
	for i := 0; i < 100; i++ {
		if l.allow("m", now.Add(time.Duration(i)*10*time.Millisecond)) { // 1 s of packets
			n++
		}
	}
	if n < 10 || n > 16 {
		t.Fatalf("%d of 100 packets in 1 s allowed at rate 5 burst 10", n)
	}
	if !l.allow("other", now) {
		t.Fatal("another MAC limited")
	}
}

// FuzzHandle feeds arbitrary bytes through parsing and both modes'
// handlers: nothing may panic, and any reply must fit EDK2's limit.
func FuzzHandle(f *testing.F) {
	d, _ := dhcpv4.NewDiscovery(mac, pxeMods(7)...)
	f.Add(d.ToBytes())
	r, _ := dhcpv4.NewDiscovery(mac, dhcpv4.WithOption(dhcpv4.OptUserClass("iPXE")), dhcpv4.WithGatewayIP(net.IPv4(198, 51, 100, 1)))
	f.Add(r.ToBytes())
	f.Add([]byte{1, 1, 6, 0})
	f.Add(append(d.ToBytes()[:offOptions], 52, 1, 3, 255))
	// The handlers, and the authoritative one's store, live as long as
	// the fuzz target, not one input: made with an input's t, the store
	// was closed and its directory removed when that input ended, and
	// every later input ran against a closed store.
	hs := map[string]*Handler{ModeProxy: newHandler(f, ModeProxy), ModeAuthoritative: newHandler(f, ModeAuthoritative)}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parse(b)
		if err != nil {
			return
		}
		for _, mode := range []string{ModeProxy, ModeAuthoritative} {
			h := hs[mode]
			for _, port := range []int{67, pxePort} {
				reply := h.handle(request{pkt: p, iface: "br0", ifAddrs: ifAddrs, src: netip.MustParseAddrPort("192.0.2.9:68"), port: port}).Reply
				if reply == nil {
					continue
				}
				if n := len(reply.ToBytes()); n > maxReply {
					t.Fatalf("reply of %d bytes", n)
				}
				route(p, reply, netip.MustParseAddrPort("192.0.2.9:68"))
			}
		}
	})
}

// A client on a link we serve directly, with no address yet, is on that
// link's subnet: dhcp.subnets[].secure_boot applies to it (issue #11, bug 1).
func TestSecureBootSubnetOnDirectLink(t *testing.T) {
	for _, mode := range []string{ModeProxy, ModeAuthoritative} {
		h := newHandler(t, mode)
		h.Resolver.SecureBootLoader = "shimx64.efi"
		h.Resolver.SecureBootSubnets = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
		res := h.handle(request{pkt: discover(t, pxeMods(7)...), iface: "br0", ifAddrs: ifAddrs,
			src: netip.MustParseAddrPort("0.0.0.0:68"), port: 67})
		if res.Reply == nil {
			t.Fatalf("%s: no reply: %s", mode, res.Silent)
		}
		if got := res.Reply.BootFileName; got != "shimx64.efi" {
			t.Errorf("%s: boot file %q, want shimx64.efi (%s)", mode, got, res.Plan.Reason)
		}
		if !res.Plan.SecureBoot || res.Client.Link != serverIP {
			t.Errorf("%s: plan %+v, link %s", mode, res.Plan, res.Client.Link)
		}
	}
}

// The Result carries the decision the reply was built from, so the boot
// log can say which profile and why (issue #11, bug 7).
func TestResultCarriesDecision(t *testing.T) {
	h := newHandler(t, ModeProxy)
	inv, err := boot.NewInventory([]boot.Profile{{Name: "lab", Match: []boot.Selector{{MAC: mac}},
		Menu: boot.Menu{Entries: []boot.Entry{{Name: "disk", Kind: boot.KindLocal}}}}}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	h.Inventory = func() *boot.Inventory { return inv }
	sightings := boot.NewSightingTable()
	h.Sightings = sightings
	res := h.handle(request{pkt: discover(t, pxeMods(7)...), iface: "br0", ifAddrs: ifAddrs,
		src: netip.MustParseAddrPort("0.0.0.0:68"), port: 67})
	if res.Reply == nil || res.Plan.Profile != "lab" || res.Plan.Reason == "" || res.Client.Firmware != boot.FirmwareEFIx64 {
		t.Fatalf("result: reply %v, plan %+v, firmware %q", res.Reply != nil, res.Plan, res.Client.Firmware)
	}
	if c, ok := sightings.ByMAC(mac); !ok || c.VendorClass != "PXEClient:Arch:00007:UNDI:003016" {
		t.Fatalf("sighting %+v, %v", c, ok)
	}
	res = h.handle(request{pkt: discover(t), iface: "br0", ifAddrs: ifAddrs, src: netip.MustParseAddrPort("0.0.0.0:68"), port: 67})
	if res.Reply != nil || res.Silent == "" {
		t.Fatalf("non-PXE client in proxy mode: reply %v, silent %q", res.Reply != nil, res.Silent)
	}
}

// With boot_server_discovery, the proxy offer to PXE firmware names no boot
// file; its option 43 sends the firmware to the boot server on udp/4011 by
// unicast, with a menu EDK2 takes at once. The 4011 ACK then names the
// file and answers for the boot item the client chose. iPXE and UEFI HTTP
// boot still get their file in the offer.
func TestBootServerDiscoveryOffer(t *testing.T) {
	h := newHandler(t, ModeProxy)
	h.BootServerDiscovery = true
	res := h.handle(request{pkt: discover(t, pxeMods(7)...), iface: "br0", ifAddrs: ifAddrs,
		src: netip.MustParseAddrPort("0.0.0.0:68"), port: 67})
	offer := res.Reply
	if offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer || !res.Discovery || res.Port != 67 {
		t.Fatalf("reply %v, discovery %v, port %d, silent %q", offer, res.Discovery, res.Port, res.Silent)
	}
	if offer.BootFileName != "" || offer.Options.Has(dhcpv4.OptionBootfileName) || offer.Options.Has(dhcpv4.OptionTFTPServerName) {
		t.Fatalf("the discovery offer names a boot file: %q, options 66/67 %q %q",
			offer.BootFileName, offer.Options.Get(dhcpv4.OptionTFTPServerName), offer.Options.Get(dhcpv4.OptionBootfileName))
	}
	if !offer.YourIPAddr.IsUnspecified() || offer.ClassIdentifier() != "PXEClient" || !offer.ServerIdentifier().Equal(serverIP.AsSlice()) {
		t.Fatalf("yiaddr %s, option 60 %q, server id %s", offer.YourIPAddr, offer.ClassIdentifier(), offer.ServerIdentifier())
	}
	if u := offer.Options.Get(dhcpv4.OptionClientMachineIdentifier); len(u) != 17 {
		t.Fatalf("option 97 not echoed: %x", u)
	}
	sub := pxeSubOptions(t, offer.Options.Get(dhcpv4.OptionVendorSpecificInformation))
	// Discovery control: no broadcast, no multicast, listed servers only;
	// bit 3 ("boot file given, skip discovery") clear.
	if !bytes.Equal(sub[6], []byte{7}) {
		t.Errorf("PXE_DISCOVERY_CONTROL = %x, want 07", sub[6])
	}
	// One boot server of type 0x8000 at this server's address.
	if want := []byte{0x80, 0, 1, 192, 0, 2, 1}; !bytes.Equal(sub[8], want) {
		t.Errorf("PXE_BOOT_SERVERS = %x, want %x", sub[8], want)
	}
	// A menu whose first item is that type (type 0 means local boot to
	// EDK2), and a prompt with timeout 0: take the first item at once.
	if m := sub[9]; len(m) < 4 || m[0] != 0x80 || m[1] != 0 || int(m[2]) != len(m)-3 {
		t.Errorf("PXE_BOOT_MENU = %x", m)
	}
	if p := sub[10]; len(p) < 2 || p[0] != 0 {
		t.Errorf("PXE_MENU_PROMPT = %x, want timeout 0 and a prompt", p)
	}

	// The boot server's ACK on 4011: the boot file, and the boot item echoed.
	req := discover(t, append(pxeMods(7), dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionVendorSpecificInformation,
		[]byte{71, 4, 0x80, 0, 0, 0, 255})))...)
	req.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeRequest))
	req.ClientIPAddr = net.IPv4(192, 0, 2, 77).To4()
	sent := req.ToBytes()
	res = h.handle(request{pkt: req, iface: "br0", ifAddrs: ifAddrs, src: netip.MustParseAddrPort("192.0.2.77:4011"), port: pxePort})
	ack := res.Reply
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || res.Port != pxePort || res.Discovery {
		t.Fatalf("4011: reply %v, port %d, discovery %v, silent %q", ack, res.Port, res.Discovery, res.Silent)
	}
	if ack.BootFileName != "snponly.efi" || !ack.ServerIPAddr.Equal(serverIP.AsSlice()) {
		t.Fatalf("4011 ACK: file %q, siaddr %s", ack.BootFileName, ack.ServerIPAddr)
	}
	if got, want := ack.Options.Get(dhcpv4.OptionVendorSpecificInformation), []byte{71, 4, 0x80, 0, 0, 0, 255}; !bytes.Equal(got, want) {
		t.Errorf("4011 ACK option 43 = %x, want the boot item echoed %x", got, want)
	}
	if !bytes.Equal(req.ToBytes(), sent) {
		t.Error("answering changed the request")
	}

	// iPXE gets the script, UEFI HTTP boot its URL: neither does discovery.
	for name, mods := range map[string][]dhcpv4.Modifier{
		"iPXE": append(pxeMods(7), dhcpv4.WithOption(dhcpv4.OptUserClass("iPXE"))),
		"HTTPClient": {
			dhcpv4.WithOption(dhcpv4.OptClassIdentifier("HTTPClient:Arch:00016:UNDI:003000")),
			dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClientSystemArchitectureType, []byte{0, 16})),
		},
	} {
		res := h.handle(request{pkt: discover(t, mods...), iface: "br0", ifAddrs: ifAddrs, src: netip.MustParseAddrPort("0.0.0.0:68"), port: 67})
		if res.Reply == nil || res.Discovery || res.Reply.BootFileName == "" {
			t.Errorf("%s: reply %v, discovery %v, silent %q", name, res.Reply, res.Discovery, res.Silent)
		}
	}

	// With server_address set, that is the boot server the client asks
	// (EDK2 also loads the file from it).
	h.ServerAddress = netip.MustParseAddr("198.51.100.9")
	res = h.handle(request{pkt: discover(t, pxeMods(0)...), iface: "br0", ifAddrs: ifAddrs, src: netip.MustParseAddrPort("0.0.0.0:68"), port: 67})
	if res.Reply == nil {
		t.Fatalf("BIOS PXE: silent %q", res.Silent)
	}
	if want := []byte{0x80, 0, 1, 198, 51, 100, 9}; !bytes.Equal(pxeSubOptions(t, res.Reply.Options.Get(dhcpv4.OptionVendorSpecificInformation))[8], want) {
		t.Errorf("PXE_BOOT_SERVERS with server_address: want %x", want)
	}

	// The boot log says which exchange it was.
	var got events
	s := &Server{Events: &got}
	s.record(req, res, "ok")
	s.record(req, Result{Plan: res.Plan, Reply: ack, Port: pxePort}, "ok")
	if len(got) != 2 || got[0].Stage != "offer" || !strings.Contains(got[0].Reason, "udp/4011") || got[0].File != "" {
		t.Fatalf("discovery offer event: %+v", got)
	}
	if got[1].Stage != "bootserver-ack" || got[1].File != "snponly.efi" {
		t.Fatalf("4011 ACK event: %+v", got[1])
	}
}

// pxeSubOptions splits option 43 into PXE sub-options, which must end with
// 255.
func pxeSubOptions(t *testing.T, b []byte) map[byte][]byte {
	t.Helper()
	out := map[byte][]byte{}
	for len(b) > 0 {
		switch {
		case b[0] == 255:
			return out
		case len(b) < 2 || len(b) < 2+int(b[1]):
			t.Fatalf("option 43 truncated at %x", b)
		}
		out[b[0]] = b[2 : 2+int(b[1])]
		b = b[2+int(b[1]):]
	}
	t.Fatalf("option 43 does not end with 255")
	return nil
}

// A reply that sends a relayed client to a TFTP boot file that TFTP's
// allow-list will not serve it says so; one to an allowed client does not.
func TestUnreachableBootFile(t *testing.T) {
	h := newHandler(t, ModeAuthoritative)
	h.TFTPAllow = allow.List{Key: "tftp.allow", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
	relayed := discover(t, append(pxeMods(0), dhcpv4.WithGatewayIP(net.IPv4(198, 51, 100, 1)))...)
	relayed.HopCount = 1
	res := h.handle(request{pkt: relayed, iface: "br0", ifAddrs: ifAddrs, src: netip.MustParseAddrPort("198.51.100.1:67"), port: 67})
	if res.Reply == nil || res.Reply.BootFileName != "undionly.kpxe" {
		t.Fatalf("relayed PXE client: %+v", res)
	}
	if want := "boot file undionly.kpxe is unreachable over TFTP: " + res.Reply.YourIPAddr.String() + " is not in tftp.allow"; res.Unreachable != want {
		t.Fatalf("Unreachable = %q, want %q", res.Unreachable, want)
	}
	res = h.handle(request{pkt: discover(t, pxeMods(0)...), iface: "br0", ifAddrs: ifAddrs, src: netip.MustParseAddrPort("0.0.0.0:68"), port: 67})
	if res.Reply == nil || res.Unreachable != "" {
		t.Fatalf("a client on the allowed subnet: %+v", res)
	}
}

// newReply builds the same packet as the library's NewReplyFromRequest,
// byte for byte: for a relayed request with option 82 and a client
// identifier, for a broadcast one, and for one without either option.
func TestNewReplyMatchesLibrary(t *testing.T) {
	mac := net.HardwareAddr{2, 0xbf, 0, 0, 0, 1}
	relayed, _ := dhcpv4.NewDiscovery(mac,
		dhcpv4.WithGatewayIP(net.IPv4(198, 19, 0, 1)),
		dhcpv4.WithOption(dhcpv4.OptClientIdentifier([]byte{1, 2, 0xbf, 0, 0, 0, 1})),
		dhcpv4.WithOption(dhcpv4.OptRelayAgentInfo(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(1), []byte("port7")))))
	broadcast, _ := dhcpv4.NewDiscovery(mac, dhcpv4.WithBroadcast(true))
	bare, _ := dhcpv4.NewDiscovery(mac)
	bare.Options.Del(dhcpv4.OptionParameterRequestList)
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer),
		dhcpv4.WithYourIP(net.IPv4(198, 19, 0, 10)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(198, 18, 0, 1))),
	}
	for name, req := range map[string]*dhcpv4.DHCPv4{"relayed": relayed, "broadcast": broadcast, "bare": bare} {
		want, err := dhcpv4.NewReplyFromRequest(req, mods...)
		if err != nil {
			t.Fatal(err)
		}
		got := newReply(req, dhcpv4.MessageTypeOffer, 1)
		got.YourIPAddr = net.IPv4(198, 19, 0, 10)
		got.setIPs(dhcpv4.OptionServerIdentifier, netip.MustParseAddr("198.18.0.1"))
		if !bytes.Equal(got.ToBytes(), want.ToBytes()) {
			t.Errorf("%s: newReply\n%s\nwant\n%s", name, got.Summary(), want.Summary())
		}
	}
}

// A request from UDP port 0 (forged or broken) is answered as one from a
// client on 68 would be, never to port 0.
func TestRouteFromPortZero(t *testing.T) {
	h := newHandler(t, ModeAuthoritative)
	d := discover(t)
	offer, err := handle(t, h, d, 67)
	if err != nil {
		t.Fatal(err)
	}
	dst := route(d, offer, netip.MustParseAddrPort("192.0.2.9:0"))
	if dst.addr.Port() != dhcpv4.ClientPort {
		t.Fatalf("reply to a request from port 0 goes to %s, want port %d", dst.addr, dhcpv4.ClientPort)
	}
}
