package dhcp6

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"golang.org/x/net/ipv6"

	"bootforge/internal/audit"
)

type events []audit.Event

func (e *events) Record(ev audit.Event) { *e = append(*e, ev) }

// The boot-log event is built from the Result the handler acted on: the
// reply's stage, the URL, the firmware and the address given.
func TestRecordFromResult(t *testing.T) {
	h, _ := newHandler(t, ModeAuthoritative)
	var got events
	s := NewServer(h, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.Events = &got
	res := handle(h, sol(t), 547)
	s.record(res, "ok")
	res4011 := res
	res4011.Port = BootServerPort
	s.record(res4011, "ok")
	if len(got) != 2 {
		t.Fatalf("%d events", len(got))
	}
	e := got[0]
	if e.Protocol != "dhcp" || e.Stage != "advertise" || e.File != "tftp://[2001:db8:1::1]/snponly.efi" ||
		e.Arch != "efi-x64" || e.MAC != mac.String() || e.IP != res.Addrs[0].String() || e.Reason != res.Plan.Reason {
		t.Errorf("event %+v", e)
	}
	if got[1].Stage != "bootserver-advertise" {
		t.Errorf("udp/4011 stage %q", got[1].Stage)
	}
}

// A reply over maxReply is not sent: it is counted as too large, and
// logged once per client per quiet.Every, not per packet.
func TestReplyTooLargeCounted(t *testing.T) {
	h, _ := newHandler(t, ModeAuthoritative)
	for i := range 80 { // 16 bytes each: the DNS option alone is over maxReply
		h.Subnets[1].DNS = append(h.Subnets[1].DNS, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}))
	}
	var logs bytes.Buffer
	s := NewServer(h, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	fwd, err := dhcpv6.EncapsulateRelay(sol(t), dhcpv6.MessageTypeRelayForward, net.ParseIP("2001:db8:2::1"), net.ParseIP("fe80::1"))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		s.serve(packet{data: fwd.ToBytes(), src: netip.MustParseAddrPort("[2001:db8:2::1]:547"), dst: ourAddr, port: 547})
	}
	if n := s.Stats.TooLarge.Load(); n != 3 {
		t.Errorf("%d replies counted too large, want 3 (ignored %d)", n, s.Stats.Ignored.Load())
	}
	if n := strings.Count(logs.String(), "reply too large"); n != 1 {
		t.Errorf("%d log lines for three replies too large, want 1:\n%s", n, logs.String())
	}
}

// A reply that cannot be sent (here: on a socket already closed, so that
// nothing leaves the machine) is counted, and warned and written to the
// boot log once per client per quiet.Every; it used to be a warning per
// packet and nothing else.
func TestReplyNotSentCounted(t *testing.T) {
	h, _ := newHandler(t, ModeAuthoritative)
	var logs bytes.Buffer
	s := NewServer(h, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	var got events
	s.Events = &got
	c, err := net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("[::1]:0")))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	fwd, err := dhcpv6.EncapsulateRelay(sol(t), dhcpv6.MessageTypeRelayForward, net.ParseIP("2001:db8:2::1"), net.ParseIP("fe80::1"))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		s.serve(packet{conn: ipv6.NewPacketConn(c), data: fwd.ToBytes(), src: netip.MustParseAddrPort("[2001:db8:2::1]:547"), dst: ourAddr, port: 547})
	}
	if n := s.Stats.SendFailed.Load(); n != 3 {
		t.Errorf("SendFailed = %d after three unsendable replies, want 3 (replied %d)", n, s.Stats.Replied.Load())
	}
	if n := strings.Count(logs.String(), "reply not sent"); n != 1 {
		t.Errorf("%d log lines for three unsendable replies, want 1:\n%s", n, logs.String())
	}
	if len(got) != 1 || got[0].Result != "not sent" || got[0].Stage != "advertise" {
		t.Errorf("boot log %+v, want one \"not sent\" advertise", got)
	}
}
