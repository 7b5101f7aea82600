package dhcp6

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"bootforge/internal/allow"
	"bootforge/internal/boot"
	"bootforge/internal/dhcp/lease"
	"bootforge/internal/store"
)

var (
	mac      = net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}
	serverID = &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{2, 0, 0, 0, 0, 1}}
	ourAddr  = netip.MustParseAddr("2001:db8:1::1")
	ifAddrs  = []netip.Prefix{netip.MustParsePrefix("2001:db8:1::1/64")}
	client   = netip.MustParseAddrPort("[fe80::5054:ff:fe12:3456%br0]:546")
)

func resolver() *boot.Resolver {
	return &boot.Resolver{
		Loaders:     map[boot.Firmware]string{boot.FirmwareEFIx64: "snponly.efi", boot.FirmwareBIOS: "undionly.kpxe"},
		HTTPLoaders: map[boot.Firmware]string{boot.FirmwareEFIx64: "ipxe.efi"},
		Script:      "boot.ipxe",
		HTTPPort:    8080,
	}
}

func newHandler(t testing.TB, mode string) (*Handler, *store.SQLite) {
	h := &Handler{Mode: mode, Resolver: resolver(), ServerID: serverID, OfferHold: time.Minute,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	db, err := store.OpenSQLite(filepath.Join(t.TempDir(), "leases.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if mode == ModeAuthoritative {
		for _, p := range []string{"2001:db8:1::/64", "2001:db8:2::/64"} {
			pfx := netip.MustParsePrefix(p)
			first := pfx.Addr().As16()
			first[14] = 1
			last := first
			last[15] = 0xff
			h.Subnets = append(h.Subnets, &Subnet{
				Pool:      NewPool(pfx, []lease.Range{{First: netip.AddrFrom16(first), Last: netip.AddrFrom16(last)}}, db, nil),
				DNS:       []netip.Addr{pfx.Addr().Next()},
				LeaseTime: time.Hour,
			})
		}
	}
	return h, db
}

// edk2 is a Solicit as OVMF's PXE client sends it: DUID-LLT, IA_NA, ORO
// for options 59 and 60, arch 7, vendor class 343 "PXEClient:...".
func edk2(t testing.TB, arch iana.Arch, class string, mods ...dhcpv6.Modifier) *dhcpv6.Message {
	base := []dhcpv6.Modifier{
		dhcpv6.WithArchType(arch),
		dhcpv6.WithRequestedOptions(dhcpv6.OptionBootfileURL, dhcpv6.OptionBootfileParam),
		dhcpv6.WithOption(&dhcpv6.OptVendorClass{EnterpriseNumber: 343, Data: [][]byte{[]byte(class)}}),
	}
	m, err := dhcpv6.NewSolicit(mac, append(base, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func handle(h *Handler, m dhcpv6.DHCPv6, port int) Result {
	return h.Handle(Request{Data: m.ToBytes(), Iface: "br0", IfAddrs: ifAddrs, Dst: AllServers, Src: client, Port: port})
}

// vendorClass reports the class EDK2 reads from option 16: enterprise 343,
// and the bytes after the first item's length.
func vendorClass(t *testing.T, m *dhcpv6.Message) string {
	t.Helper()
	o := m.GetOneOption(dhcpv6.OptionVendorClass)
	if o == nil {
		return ""
	}
	b := o.ToBytes()
	if len(b) < 6 || !bytes.Equal(b[:4], []byte{0, 0, 1, 0x57}) {
		t.Fatalf("vendor class %x: not enterprise 343", b)
	}
	return string(b[6:])
}

func TestProxyAdvertiseForEDK2(t *testing.T) {
	h, _ := newHandler(t, ModeProxy)
	sol := edk2(t, iana.EFI_X86_64, "PXEClient:Arch:00007:UNDI:003001")
	res := handle(h, sol, 547)
	if res.Reply == nil {
		t.Fatalf("no reply: %s", res.Silent)
	}
	adv, err := dhcpv6.MessageFromBytes(res.Packet)
	if err != nil {
		t.Fatal(err)
	}
	if adv.MessageType != dhcpv6.MessageTypeAdvertise || adv.TransactionID != sol.TransactionID {
		t.Fatalf("got %s xid %v", adv.MessageType, adv.TransactionID)
	}
	if got := adv.Options.BootFileURL(); got != "tftp://[2001:db8:1::1]/snponly.efi" {
		t.Errorf("boot file URL %q", got)
	}
	// EDK2 takes an answer without IA_NA and with class PXEClient as a
	// proxy offer (PxeOfferTypeProxyBinl) and asks udp/4011 for the file.
	if adv.Options.OneIANA() != nil {
		t.Error("a proxy advertise carries an IA_NA")
	}
	if got := vendorClass(t, adv); got != "PXEClient" {
		t.Errorf("vendor class %q", got)
	}
	if !adv.Options.ServerID().Equal(serverID) || !adv.Options.ClientID().Equal(sol.Options.ClientID()) {
		t.Error("server or client id")
	}
	if res.Plan.Firmware != boot.FirmwareEFIx64 || res.Client.MAC.String() != mac.String() {
		t.Errorf("decision %+v client %+v", res.Plan, res.Client)
	}

	// The boot-server request EDK2 sends to udp/4011 next: the client's
	// Request without IA_NA, with our server id.
	req, _ := dhcpv6.NewMessage(dhcpv6.WithClientID(sol.Options.ClientID()), dhcpv6.WithServerID(serverID),
		dhcpv6.WithArchType(iana.EFI_X86_64),
		dhcpv6.WithOption(&dhcpv6.OptVendorClass{EnterpriseNumber: 343, Data: [][]byte{[]byte("PXEClient:Arch:00007:UNDI:003001")}}))
	req.MessageType = dhcpv6.MessageTypeRequest
	req.TransactionID = adv.TransactionID
	res = handle(h, req, BootServerPort)
	if res.Reply == nil || res.Reply.MessageType != dhcpv6.MessageTypeReply || res.URL != "tftp://[2001:db8:1::1]/snponly.efi" {
		t.Fatalf("4011: %+v", res)
	}
}

func TestProxyAnswersBootClientsOnly(t *testing.T) {
	h, _ := newHandler(t, ModeProxy)
	plain, _ := dhcpv6.NewSolicit(mac)
	if res := handle(h, plain, 547); res.Reply != nil || res.Silent != "not a boot client" {
		t.Errorf("plain client: %+v", res)
	}
	httpc := edk2(t, iana.EFI_X86_64_HTTP, "HTTPClient:Arch:00016:UNDI:003001")
	res := handle(h, httpc, 547)
	if res.Reply == nil || res.URL != "http://[2001:db8:1::1]:8080/ipxe.efi" || vendorClass(t, res.Reply) != "HTTPClient" {
		t.Fatalf("HTTP client: %+v", res)
	}
	ipxe := edk2(t, iana.EFI_X86_64, "PXEClient:Arch:00007:UNDI:003010", dhcpv6.WithUserClass([]byte("iPXE")))
	res = handle(h, ipxe, 547)
	if res.URL != "http://[2001:db8:1::1]:8080/boot.ipxe" {
		t.Fatalf("iPXE gets %q, want the script", res.URL)
	}
	if vendorClass(t, res.Reply) != "" {
		t.Error("iPXE got a PXEClient class, which would send EDK2 to udp/4011")
	}
	// Messages a proxy leaves to the network's server.
	renew, _ := dhcpv6.NewMessage(dhcpv6.WithClientID(sol(t).Options.ClientID()), dhcpv6.WithArchType(iana.EFI_X86_64))
	renew.MessageType = dhcpv6.MessageTypeRebind
	if res := handle(h, renew, 547); res.Reply != nil {
		t.Errorf("rebind answered in proxy mode")
	}
}

func sol(t testing.TB) *dhcpv6.Message {
	return edk2(t, iana.EFI_X86_64, "PXEClient:Arch:00007:UNDI:003001")
}

func TestAuthoritativeLeaseStoredBeforeReply(t *testing.T) {
	h, db := newHandler(t, ModeAuthoritative)
	s := sol(t)
	res := handle(h, s, 547)
	if res.Reply == nil || len(res.Addrs) != 1 {
		t.Fatalf("advertise: %+v", res)
	}
	offered := res.Addrs[0]
	if !h.Subnets[0].Pool.Subnet.Contains(offered) {
		t.Fatalf("offered %s", offered)
	}
	if vendorClass(t, res.Reply) != "" || res.URL != "tftp://[2001:db8:1::1]/snponly.efi" {
		t.Errorf("authoritative boot options: class %q url %q", vendorClass(t, res.Reply), res.URL)
	}
	if ls, _ := db.LoadLeases(); len(ls) != 0 {
		t.Fatalf("an advertise stored %v", ls)
	}
	req, err := dhcpv6.NewRequestFromAdvertise(res.Reply)
	if err != nil {
		t.Fatal(err)
	}
	res = handle(h, req, 547)
	if res.Reply == nil || res.Reply.MessageType != dhcpv6.MessageTypeReply || len(res.Addrs) != 1 || res.Addrs[0] != offered {
		t.Fatalf("reply: %+v", res)
	}
	ia := res.Reply.Options.OneIANA()
	if ia == nil || ia.Options.OneAddress() == nil || ia.Options.OneAddress().ValidLifetime != time.Hour {
		t.Fatalf("IA_NA %v", ia)
	}
	ls, err := db.LoadLeases()
	if err != nil || len(ls) != 1 || ls[0].IP != offered || ls[0].State != lease.Bound {
		t.Fatalf("stored %v %v", ls, err)
	}
	iaid := s.Options.OneIANA().IaId
	if !bytes.Equal(ls[0].ClientID, IAKey(s.Options.ClientID().ToBytes(), iaid)) || ls[0].MAC.String() != mac.String() {
		t.Errorf("lease names %x / %v", ls[0].ClientID, ls[0].MAC)
	}

	// A Renew keeps the address; a Release frees it.
	renew := *req
	renew.MessageType = dhcpv6.MessageTypeRenew
	renew.Options = dhcpv6.MessageOptions{}
	renew.AddOption(req.GetOneOption(dhcpv6.OptionClientID))
	renew.AddOption(dhcpv6.OptServerID(serverID))
	renew.AddOption(ia)
	if res := handle(h, &renew, 547); len(res.Addrs) != 1 || res.Addrs[0] != offered {
		t.Fatalf("renew: %+v", res)
	}
	rel := renew
	rel.MessageType = dhcpv6.MessageTypeRelease
	if res := handle(h, &rel, 547); res.Reply == nil || res.Reply.Options.Status() == nil {
		t.Fatalf("release: %+v", res)
	}
	if ls, _ := db.LoadLeases(); len(ls) != 0 {
		t.Errorf("after release: %v", ls)
	}
}

func TestAuthoritativeNoReplyWhenStoreFails(t *testing.T) {
	h, db := newHandler(t, ModeAuthoritative)
	res := handle(h, sol(t), 547)
	req, _ := dhcpv6.NewRequestFromAdvertise(res.Reply)
	db.Close()
	res = handle(h, req, 547)
	if res.Reply != nil || res.Packet != nil || res.Err == nil {
		t.Fatalf("a Reply without a stored lease: %+v", res)
	}
}

func TestRelayReply(t *testing.T) {
	h, _ := newHandler(t, ModeAuthoritative)
	link := net.ParseIP("2001:db8:2::1")
	peer := net.ParseIP("fe80::5054:ff:fe12:3456")
	fwd, err := dhcpv6.EncapsulateRelay(sol(t), dhcpv6.MessageTypeRelayForward, link, peer)
	if err != nil {
		t.Fatal(err)
	}
	fwd.AddOption(dhcpv6.OptInterfaceID([]byte("eth7")))
	res := h.Handle(Request{Data: fwd.ToBytes(), Iface: "br0", IfAddrs: ifAddrs, Dst: ourAddr,
		Src: netip.MustParseAddrPort("[2001:db8:2::1]:547"), Port: 547})
	if res.Packet == nil {
		t.Fatalf("no reply: %s", res.Silent)
	}
	out, err := dhcpv6.RelayMessageFromBytes(res.Packet)
	if err != nil {
		t.Fatal(err)
	}
	if out.MessageType != dhcpv6.MessageTypeRelayReply || !out.LinkAddr.Equal(link) || !out.PeerAddr.Equal(peer) {
		t.Fatalf("relay-reply %s", out)
	}
	if string(out.Options.InterfaceID()) != "eth7" {
		t.Errorf("interface-id %q", out.Options.InterfaceID())
	}
	inner, err := out.GetInnerMessage()
	if err != nil {
		t.Fatal(err)
	}
	a := inner.Options.OneIANA().Options.OneAddress()
	if a == nil || !netip.MustParsePrefix("2001:db8:2::/64").Contains(netip.AddrFrom16([16]byte(a.IPv6Addr.To16()))) {
		t.Fatalf("address %v is not from the relay's link", a)
	}
	// The boot URL names the address the relay reached us at.
	if res.URL != "tftp://[2001:db8:1::1]/snponly.efi" || res.Client.Relay.String() != "2001:db8:2::1" {
		t.Errorf("url %q relay %v", res.URL, res.Client.Relay)
	}
	// A link we do not serve gets nothing.
	fwd2, _ := dhcpv6.EncapsulateRelay(sol(t), dhcpv6.MessageTypeRelayForward, net.ParseIP("2001:db8:9::1"), peer)
	if res := h.Handle(Request{Data: fwd2.ToBytes(), Iface: "br0", IfAddrs: ifAddrs, Dst: ourAddr, Port: 547}); res.Packet != nil {
		t.Error("answered a relay of a link we do not serve")
	}
}

func TestSilentOnOthersAndGarbage(t *testing.T) {
	for _, mode := range []string{ModeProxy, ModeAuthoritative} {
		h, _ := newHandler(t, mode)
		other := &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{2, 0, 0, 0, 0, 9}}
		req, _ := dhcpv6.NewMessage(dhcpv6.WithClientID(sol(t).Options.ClientID()), dhcpv6.WithServerID(other),
			dhcpv6.WithArchType(iana.EFI_X86_64))
		req.MessageType = dhcpv6.MessageTypeRequest
		adv := *sol(t)
		adv.MessageType = dhcpv6.MessageTypeAdvertise
		for name, data := range map[string][]byte{
			"request for another server": req.ToBytes(),
			"an advertise":               adv.ToBytes(),
			"empty":                      nil,
			"truncated option":           {1, 0, 0, 1, 0, 1, 0, 40, 0},
			"relay loop":                 bytes.Repeat([]byte{12, 0}, 40),
		} {
			res := h.Handle(Request{Data: data, Iface: "br0", IfAddrs: ifAddrs, Dst: AllServers, Src: client, Port: 547})
			if res.Packet != nil || res.Err != nil {
				t.Errorf("%s, %s: %+v", mode, name, res)
			}
		}
	}
}

func TestAllowList(t *testing.T) {
	h, db := newHandler(t, ModeAuthoritative)
	list := allow.List{}
	h.Allow = func() allow.List { return list }
	if res := handle(h, sol(t), 547); res.Denied || res.Reply == nil {
		t.Fatalf("empty list: %+v", res)
	}
	list = allow.List{Key: "dhcp.allow", Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:2::/64")}}
	res := handle(h, sol(t), 547)
	if !res.Denied || res.Reply != nil || res.Packet != nil {
		t.Fatalf("a client of 2001:db8:1::/64 outside the list: %+v", res)
	}
	// A relayed client of the allowed link is served, and nothing of the
	// denied one was held or stored.
	fwd, _ := dhcpv6.EncapsulateRelay(sol(t), dhcpv6.MessageTypeRelayForward, net.ParseIP("2001:db8:2::1"), net.ParseIP("fe80::1"))
	if res := h.Handle(Request{Data: fwd.ToBytes(), Iface: "br0", IfAddrs: ifAddrs, Dst: ourAddr, Port: 547}); res.Denied || res.Packet == nil {
		t.Fatalf("relayed client of an allowed link: %+v", res)
	}
	if ls, _ := db.LoadLeases(); len(ls) != 0 {
		t.Errorf("stored %v", ls)
	}
}

// bind runs a Solicit and a Request in authoritative mode and returns the
// client's message with its IA as bound: a template for Renew, Release,
// Confirm.
func bind(t *testing.T, h *Handler) (*dhcpv6.Message, *dhcpv6.OptIANA) {
	t.Helper()
	res := handle(h, sol(t), 547)
	req, err := dhcpv6.NewRequestFromAdvertise(res.Reply)
	if err != nil {
		t.Fatal(err)
	}
	res = handle(h, req, 547)
	ia := res.Reply.Options.OneIANA()
	if ia == nil || len(res.Addrs) != 1 {
		t.Fatalf("reply: %+v", res)
	}
	return req, ia
}

// message is a client message of type mt with the client's id, our server
// id if withSID, and the IAs.
func message(t *testing.T, from *dhcpv6.Message, mt dhcpv6.MessageType, withSID bool, ias ...*dhcpv6.OptIANA) *dhcpv6.Message {
	t.Helper()
	m := *from
	m.MessageType = mt
	m.Options = dhcpv6.MessageOptions{}
	m.AddOption(from.GetOneOption(dhcpv6.OptionClientID))
	if withSID {
		m.AddOption(dhcpv6.OptServerID(serverID))
	}
	for _, ia := range ias {
		m.AddOption(ia)
	}
	return &m
}

// RFC 8415 18.3.3: a Confirm with no addresses in its IAs, or no IAs,
// gets no Reply; one with addresses gets Success or NotOnLink.
func TestConfirmWithoutAddressesUnanswered(t *testing.T) {
	h, _ := newHandler(t, ModeAuthoritative)
	req, ia := bind(t, h)
	empty := &dhcpv6.OptIANA{IaId: ia.IaId}
	for name, m := range map[string]*dhcpv6.Message{
		"no IA":            message(t, req, dhcpv6.MessageTypeConfirm, false),
		"IA without addrs": message(t, req, dhcpv6.MessageTypeConfirm, false, empty),
	} {
		if res := handle(h, m, 547); res.Reply != nil || res.Packet != nil || res.Silent == "" {
			t.Errorf("%s: answered (%+v)", name, res)
		}
	}
	res := handle(h, message(t, req, dhcpv6.MessageTypeConfirm, false, ia), 547)
	if res.Reply == nil || res.Reply.Options.Status() == nil || res.Reply.Options.Status().StatusCode != iana.StatusSuccess {
		t.Fatalf("confirm of the bound address: %+v", res)
	}
	away := iaAddr(ia, netip.MustParseAddr("2001:db8:9::5"), time.Hour)
	res = handle(h, message(t, req, dhcpv6.MessageTypeConfirm, false, away), 547)
	if res.Reply == nil || res.Reply.Options.Status() == nil || res.Reply.Options.Status().StatusCode != iana.StatusNotOnLink {
		t.Fatalf("confirm of an address off the link: %+v", res)
	}
}

// RFC 8415 18.3.7 and 18.3.8: an IA of a Release or Decline for which the
// server has no binding comes back with NoBinding; the message's status
// is still Success.
func TestReleaseWithoutBindingIsNoBinding(t *testing.T) {
	for _, mt := range []dhcpv6.MessageType{dhcpv6.MessageTypeRelease, dhcpv6.MessageTypeDecline} {
		t.Run(mt.String(), func(t *testing.T) {
			h, db := newHandler(t, ModeAuthoritative)
			req, ia := bind(t, h)
			held := ia.Options.OneAddress().IPv6Addr
			// Another address of the pool, which this IA does not hold.
			other := iaAddr(ia, netip.MustParseAddr("2001:db8:1::1fe"), time.Hour)
			if netip.AddrFrom16([16]byte(held.To16())) == netip.MustParseAddr("2001:db8:1::1fe") {
				t.Fatal("the test's other address is the bound one")
			}
			res := handle(h, message(t, req, mt, true, other), 547)
			if res.Reply == nil || res.Reply.Options.Status() == nil || res.Reply.Options.Status().StatusCode != iana.StatusSuccess {
				t.Fatalf("%s of an address not held: %+v", mt, res)
			}
			got := res.Reply.Options.OneIANA()
			if got == nil || got.IaId != ia.IaId || got.Options.Status() == nil || got.Options.Status().StatusCode != iana.StatusNoBinding {
				t.Fatalf("%s of an address not held: IA %v, want NoBinding", mt, got)
			}
			if ls, _ := db.LoadLeases(); len(ls) != 1 || ls[0].State != lease.Bound {
				t.Fatalf("after: %v", ls)
			}
			// The address it holds: no IA in the Reply, the lease gone.
			res = handle(h, message(t, req, mt, true, ia), 547)
			if res.Reply == nil || res.Reply.Options.Status().StatusCode != iana.StatusSuccess || res.Reply.Options.OneIANA() != nil {
				t.Fatalf("%s of the held address: %+v", mt, res)
			}
			if ls, _ := db.LoadLeases(); mt == dhcpv6.MessageTypeRelease && len(ls) != 0 {
				t.Fatalf("after release: %v", ls)
			}
		})
	}
}

// A Lightweight DHCPv6 Relay Agent (RFC 6221, a switch port) leaves the
// link-address unspecified (::) and names the port in an interface-id:
// the client's link is then the next relay's link-address, or, with no
// relay beyond it, the interface the packet came in on. The answer goes
// back through both relays, each with what it sent echoed.
func TestLightweightRelay(t *testing.T) {
	h, _ := newHandler(t, ModeAuthoritative)
	peer := net.ParseIP("fe80::5054:ff:fe12:3456")
	ldra := func() *dhcpv6.RelayMessage {
		fwd, err := dhcpv6.EncapsulateRelay(sol(t), dhcpv6.MessageTypeRelayForward, net.IPv6unspecified, peer)
		if err != nil {
			t.Fatal(err)
		}
		fwd.AddOption(dhcpv6.OptInterfaceID([]byte("port7")))
		return fwd
	}
	addrOf := func(t *testing.T, res Result) netip.Addr {
		t.Helper()
		if res.Packet == nil || len(res.Addrs) != 1 {
			t.Fatalf("no address: %s", res.Silent)
		}
		return res.Addrs[0]
	}

	// Behind a router's relay on 2001:db8:2::/64.
	list := allow.List{Key: "dhcp.allow", Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:2::/64")}}
	h.Allow = func() allow.List { return list }
	outer, err := dhcpv6.EncapsulateRelay(ldra(), dhcpv6.MessageTypeRelayForward, net.ParseIP("2001:db8:2::1"), net.ParseIP("fe80::2"))
	if err != nil {
		t.Fatal(err)
	}
	res := h.Handle(Request{Data: outer.ToBytes(), Iface: "br0", IfAddrs: ifAddrs, Dst: ourAddr,
		Src: netip.MustParseAddrPort("[2001:db8:2::1]:547"), Port: 547})
	if a := addrOf(t, res); !netip.MustParsePrefix("2001:db8:2::/64").Contains(a) {
		t.Errorf("address %s is not from the relay's link 2001:db8:2::/64", a)
	}
	if res.Client.Relay != netip.MustParseAddr("2001:db8:2::1") {
		t.Errorf("client's relay %v, want 2001:db8:2::1", res.Client.Relay)
	}
	out, err := dhcpv6.RelayMessageFromBytes(res.Packet)
	if err != nil {
		t.Fatal(err)
	}
	in, ok := out.Options.RelayMessage().(*dhcpv6.RelayMessage)
	if !ok || !out.LinkAddr.Equal(net.ParseIP("2001:db8:2::1")) || !in.LinkAddr.Equal(net.IPv6unspecified) ||
		!in.PeerAddr.Equal(peer) || string(in.Options.InterfaceID()) != "port7" {
		t.Fatalf("relay-reply %s", out)
	}

	// On our own link, the LDRA's relay-forward straight to us.
	h.Allow = nil
	res = h.Handle(Request{Data: ldra().ToBytes(), Iface: "br0", IfAddrs: ifAddrs, Dst: AllServers,
		Src: netip.MustParseAddrPort("[fe80::9%br0]:547"), Port: 547})
	if a := addrOf(t, res); !netip.MustParsePrefix("2001:db8:1::/64").Contains(a) {
		t.Errorf("address %s is not from the receiving interface's link 2001:db8:1::/64", a)
	}
	if res.URL != "tftp://[2001:db8:1::1]/snponly.efi" {
		t.Errorf("url %q", res.URL)
	}
}

// A Solicit, Confirm or Rebind goes to every server on the link
// (ff02::1:2); one sent to this server's own address is discarded (RFC
// 8415 16), in both modes. A relayed one comes unicast from the relay and
// is answered, and so is a Request sent unicast to the PXE boot server's
// port.
func TestUnicastSolicitDiscarded(t *testing.T) {
	for _, mode := range []string{ModeProxy, ModeAuthoritative} {
		h, _ := newHandler(t, mode)
		sol := edk2(t, iana.EFI_X86_64, "PXEClient:Arch:00007:UNDI:003001", dhcpv6.WithIAID([4]byte{0, 0, 0, 1}))
		res := h.Handle(Request{Data: sol.ToBytes(), Iface: "br0", IfAddrs: ifAddrs, Dst: ourAddr, Src: client, Port: 547})
		if res.Packet != nil || !strings.Contains(res.Silent, "RFC 8415 16") {
			t.Errorf("%s: unicast Solicit answered (%d bytes) or silent for another reason: %q", mode, len(res.Packet), res.Silent)
		}
		if res := handle(h, sol, 547); res.Packet == nil {
			t.Errorf("%s: multicast Solicit not answered: %q", mode, res.Silent)
		}
	}
}

// appendOption appends option code holding data, as on the wire.
func appendOption(b []byte, code dhcpv6.OptionCode, data []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(code))
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	return append(b, data...)
}

// relayForward wraps message inner in a Relay-forward from link with
// hop-count hop, as a relay agent sends it.
func relayForward(inner []byte, hop byte, link netip.Addr) []byte {
	b := append([]byte{byte(dhcpv6.MessageTypeRelayForward), hop}, link.AsSlice()...)
	b = append(b, netip.MustParseAddr("fe80::1").AsSlice()...)
	return appendOption(b, dhcpv6.OptionRelayMsg, inner)
}

// nestedIA appends to b an IA_NA holding an IA_NA, depth of them or as
// many as make b at least size bytes long; the innermost holds a status
// code. Each is 16 bytes of header and IA fields before what it holds.
func nestedIA(b []byte, depth, size int) []byte {
	status := appendOption(nil, dhcpv6.OptionStatusCode, []byte{0, 0})
	depth = max(depth, (size-len(b)-len(status)+15)/16)
	for i := range depth {
		b = binary.BigEndian.AppendUint16(b, uint16(dhcpv6.OptionIANA))
		b = binary.BigEndian.AppendUint16(b, uint16(12+(depth-1-i)*16+len(status)))
		b = append(b, make([]byte, 12)...)
	}
	return append(b, status...)
}

// Relay-forward messages nested past HOP_COUNT_LIMIT, a hop-count over
// it, a Relay-reply, a relay message inside a client's message, and
// options nested deeper than any RFC nests them are dropped as malformed,
// each with its reason, before the decoder recurses into them (it once
// took 1,700 Relay-forwards, and 64 KiB of IA_NA inside IA_NA, which cost
// it 128 MB of copies, as a Solicit). As deep as relays may nest, and the
// options of an IA, are answered.
func TestNestingBounded(t *testing.T) {
	link := netip.MustParseAddr("2001:db8:2::1")
	relayed := func(inner []byte, levels int, hop func(level int) byte) []byte {
		for i := range levels {
			inner = relayForward(inner, hop(i), link)
		}
		return inner
	}
	conforming := func(level int) byte { return byte(level) } // 0 next to the client
	zero := func(int) byte { return 0 }
	s := sol(t).ToBytes()
	for _, mode := range []string{ModeProxy, ModeAuthoritative} {
		h, _ := newHandler(t, mode)
		for name, data := range map[string][]byte{
			"33 relays":                 relayed(s, maxHops+1, conforming),
			"an IA_NA's address status": nestedIA(s, 2, 0),
		} {
			res := h.Handle(Request{Data: data, Iface: "br0", IfAddrs: ifAddrs, Dst: AllServers, Src: client, Port: 547})
			if res.Malformed || res.Packet == nil {
				t.Errorf("%s, %s: not answered: %s", mode, name, res.Silent)
			}
		}
		for name, tt := range map[string]struct {
			data []byte
			why  string
		}{
			"34 relays":             {relayed(s, maxHops+2, zero), "inside more than 33 Relay-forward messages"},
			"1,700 relays":          {relayed(s, 1700, zero), "inside more than 33 Relay-forward messages"},
			"hop-count 33":          {relayForward(s, maxHops+1, link), "hop-count 33, over HOP_COUNT_LIMIT 32"},
			"hop-count 255 deeper":  {relayed(relayForward(s, 255, link), 2, zero), "hop-count 255"},
			"a relay-reply":         {append([]byte{byte(dhcpv6.MessageTypeRelayReply)}, relayForward(s, 0, link)[1:]...), "Relay-reply"},
			"a relayed relay-reply": {relayForward(append([]byte{byte(dhcpv6.MessageTypeRelayReply)}, relayForward(s, 0, link)[1:]...), 1, link), "Relay-reply"},
			"relay message in a solicit": {appendOption(sol(t).ToBytes(), dhcpv6.OptionRelayMsg, s),
				"a relay message option outside a Relay-forward"},
			"IA_NA 5 deep":          {nestedIA(sol(t).ToBytes(), 5, 0), "options nested more than 4 deep"},
			"64 KiB of IA_NA":       {nestedIA(sol(t).ToBytes(), 0, 65000), "options nested more than 4 deep"},
			"IA_NA 5 deep, relayed": {relayed(nestedIA(sol(t).ToBytes(), 5, 0), 3, conforming), "options nested more than 4 deep"},
		} {
			res := h.Handle(Request{Data: tt.data, Iface: "br0", IfAddrs: ifAddrs, Dst: AllServers, Src: client, Port: 547})
			if !res.Malformed || res.Packet != nil || res.Err != nil || !strings.Contains(res.Silent, tt.why) {
				t.Errorf("%s, %s (%d bytes): malformed %v, reason %q, want dropped as malformed: %q",
					mode, name, len(tt.data), res.Malformed, res.Silent, tt.why)
			}
		}
	}

	// The server counts one as malformed and logs why.
	h, _ := newHandler(t, ModeAuthoritative)
	var logs bytes.Buffer
	srv := NewServer(h, nil, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	srv.serve(packet{data: relayed(s, 40, zero), src: netip.MustParseAddrPort("[2001:db8:2::1]:547"), dst: ourAddr, port: 547})
	if n := srv.Stats.Malformed.Load(); n != 1 {
		t.Errorf("%d packets counted malformed, want 1", n)
	}
	if !strings.Contains(logs.String(), "malformed packet") || !strings.Contains(logs.String(), "inside more than 33 Relay-forward messages") {
		t.Errorf("log:\n%s", logs.String())
	}
}
