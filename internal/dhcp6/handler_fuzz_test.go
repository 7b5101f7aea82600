package dhcp6

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// FuzzHandle sends whole packets, direct and relayed, on udp/547 and
// udp/4011, to the proxy and the authoritative handler: nothing panics,
// and every reply parses back, is an Advertise or Reply to the client's
// transaction (inside Relay-reply messages when relayed), names our
// server id, and fits the IPv6 minimum MTU.
func FuzzHandle(f *testing.F) {
	s := sol(f)
	f.Add(s.ToBytes(), false)
	f.Add(edk2(f, iana.EFI_X86_64_HTTP, "HTTPClient:Arch:00016:UNDI:003001").ToBytes(), false)
	f.Add(edk2(f, iana.EFI_X86_64, "PXEClient", dhcpv6.WithUserClass([]byte("iPXE"))).ToBytes(), false)
	req, _ := dhcpv6.NewMessage(dhcpv6.WithClientID(s.Options.ClientID()), dhcpv6.WithServerID(serverID),
		dhcpv6.WithArchType(iana.EFI_X86_64), dhcpv6.WithIAID([4]byte{1, 2, 3, 4}))
	for _, mt := range []dhcpv6.MessageType{dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRelease,
		dhcpv6.MessageTypeDecline, dhcpv6.MessageTypeInformationRequest, dhcpv6.MessageTypeConfirm} {
		req.MessageType = mt
		f.Add(req.ToBytes(), false)
		f.Add(req.ToBytes(), true)
	}
	fwd, _ := dhcpv6.EncapsulateRelay(s, dhcpv6.MessageTypeRelayForward, net.ParseIP("2001:db8:2::1"), net.ParseIP("fe80::1"))
	fwd.AddOption(dhcpv6.OptInterfaceID([]byte("eth0")))
	f.Add(fwd.ToBytes(), false)
	fwd2, _ := dhcpv6.EncapsulateRelay(fwd, dhcpv6.MessageTypeRelayForward, net.ParseIP("2001:db8:1::1"), net.ParseIP("2001:db8:2::1"))
	f.Add(fwd2.ToBytes(), false)
	f.Add([]byte{1, 0, 0, 1}, false)
	// Nested past the bounds (TestNestingBounded): relays past
	// HOP_COUNT_LIMIT, a hop-count over it, options inside options.
	deep, link := s.ToBytes(), netip.MustParseAddr("2001:db8:2::1")
	for range maxHops + 2 {
		deep = relayForward(deep, 0, link)
	}
	f.Add(deep, false)
	f.Add(relayForward(s.ToBytes(), maxHops+1, link), false)
	f.Add(nestedIA(s.ToBytes(), maxOptionDepth+1, 0), false)

	hs := map[string]*Handler{}
	for _, mode := range []string{ModeProxy, ModeAuthoritative} {
		hs[mode], _ = newHandler(f, mode)
	}
	f.Fuzz(func(t *testing.T, b []byte, bootServer bool) {
		port := 547
		if bootServer {
			port = BootServerPort
		}
		for _, mode := range []string{ModeProxy, ModeAuthoritative} {
			res := hs[mode].Handle(Request{Data: b, Iface: "br0", IfAddrs: ifAddrs, Dst: AllServers,
				Src: netip.MustParseAddrPort("[fe80::1%br0]:546"), Port: port})
			if errors.Is(res.Err, ErrPanic) {
				t.Fatalf("%s: %v", mode, res.Err)
			}
			if res.Packet == nil {
				continue
			}
			if len(res.Packet) > maxReply {
				t.Fatalf("%s: reply of %d bytes", mode, len(res.Packet))
			}
			back, err := dhcpv6.FromBytes(res.Packet)
			if err != nil {
				t.Fatalf("%s: reply does not parse: %v\n%x", mode, err, res.Packet)
			}
			in, _ := dhcpv6.FromBytes(b)
			if in.IsRelay() != back.IsRelay() {
				t.Fatalf("%s: relayed %v, reply relayed %v", mode, in.IsRelay(), back.IsRelay())
			}
			m, err := back.GetInnerMessage()
			if err != nil {
				t.Fatalf("%s: %v", mode, err)
			}
			q, _ := in.GetInnerMessage()
			if m.TransactionID != q.TransactionID {
				t.Fatalf("%s: xid %v for %v", mode, m.TransactionID, q.TransactionID)
			}
			if m.MessageType != dhcpv6.MessageTypeAdvertise && m.MessageType != dhcpv6.MessageTypeReply {
				t.Fatalf("%s: a %s to a %s", mode, m.MessageType, q.MessageType)
			}
			if sid := m.Options.ServerID(); sid == nil || !sid.Equal(serverID) {
				t.Fatalf("%s: server id %v", mode, sid)
			}
		}
	})
}
