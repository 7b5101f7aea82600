package dhcp

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"bootforge/internal/dhcp/lease"
	"bootforge/internal/quiet"
)

// testServer is a server with h, whose log goes to the returned buffer,
// and an interface "br0" with ifAddrs, as serve sees it.
func testServer(h *Handler) (*Server, *events, *bytes.Buffer, *ifaceConn) {
	var logs bytes.Buffer
	s := NewServer(h, Config{RateLimit: 1000}, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ev := &events{}
	s.Events = ev
	ic := &ifaceConn{name: "br0", port: 67, addrs: ifAddrs, fetched: time.Now().Add(time.Hour)}
	return s, ev, &logs, ic
}

func lines(logs *bytes.Buffer, level, msg string) int {
	n := 0
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level="+level) && strings.Contains(l, msg) {
			n++
		}
	}
	return n
}

// A PXE client refused because the pool is full is a refusal an operator
// must see: a boot-log event (result refused, the reason) and a warning,
// both at most once per client per quiet.Every, however often the
// firmware retries.
func TestPoolFullRefusalRecorded(t *testing.T) {
	h := newHandler(t, ModeAuthoritative)
	pool := h.Subnets[0].Pool
	for i := byte(0); i < byte(pool.Size()); i++ {
		if _, err := pool.Offer(net.HardwareAddr{2, 0, 0, 0, 0, i}, nil, netip.Addr{}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	s, ev, logs, ic := testServer(h)
	d := discover(t, pxeMods(7)...)
	for range 3 {
		s.serve(packet{ic: ic, data: d.ToBytes(), src: netip.MustParseAddrPort("0.0.0.0:68")})
	}
	if len(*ev) != 1 {
		t.Fatalf("%d boot-log events for three refused DISCOVERs, want 1: %+v", len(*ev), *ev)
	}
	e := (*ev)[0]
	if e.Result != "refused" || !strings.Contains(e.Reason, "no free address in the pool") || e.MAC != mac.String() ||
		e.Stage != "discover" || e.Protocol != "dhcp" || e.Arch == "" {
		t.Errorf("event %+v", e)
	}
	if n := lines(logs, "WARN", "pool"); n != 1 {
		t.Errorf("%d warnings for three refusals, want 1:\n%s", n, logs)
	}
	if s.Stats.Ignored.Load() != 3 {
		t.Errorf("unanswered %d, want 3", s.Stats.Ignored.Load())
	}
	// Once the quiet log lets the client through again (quiet.Every
	// later; its test counts what was held back), it is recorded again.
	s.refusals = quiet.Log[string]{}
	s.serve(packet{ic: ic, data: d.ToBytes(), src: netip.MustParseAddrPort("0.0.0.0:68")})
	if len(*ev) != 2 || lines(logs, "WARN", "pool") != 2 {
		t.Errorf("after the quiet interval: %d events, log:\n%s", len(*ev), logs)
	}
}

// A reply too large to send (over maxReply) is counted as a drop with its
// reason, and logged once per client per quiet.Every, not per packet.
func TestReplyTooLargeCounted(t *testing.T) {
	h := newHandler(t, ModeAuthoritative)
	h.Subnets[0].Domain = strings.Repeat("d", 255)
	for range 8 {
		h.Subnets[0].DNS = append(h.Subnets[0].DNS, h.Subnets[0].DNS...)
	}
	s, _, logs, ic := testServer(h)
	d := discover(t, pxeMods(7)...)
	res := h.handle(request{pkt: d, iface: "br0", ifAddrs: ifAddrs, port: 67})
	if res.Reply == nil || len(res.Reply.ToBytes()) <= maxReply {
		t.Fatalf("the test's reply is not too large: %+v", res)
	}
	for range 3 {
		s.serve(packet{ic: ic, data: d.ToBytes(), src: netip.MustParseAddrPort("0.0.0.0:68")})
	}
	if got := s.Stats.TooLarge.Load(); got != 3 {
		t.Errorf("too large: %d, want 3", got)
	}
	if s.Stats.Replied.Load() != 0 {
		t.Errorf("replied %d", s.Stats.Replied.Load())
	}
	if n := lines(logs, "ERROR", "reply too large"); n != 1 {
		t.Errorf("%d error lines for three replies too large, want 1:\n%s", n, logs)
	}
}

// downStore is a shared store that cannot be reached.
type downStore struct{ memLeases }

func (downStore) Shared() bool { return true }
func (downStore) LeaseOf(net.HardwareAddr, []byte) (lease.Lease, bool, error) {
	return lease.Lease{}, false, errors.New("dial tcp 192.0.2.9:5432: connection refused")
}
func (downStore) ClaimLease(lease.Lease) (lease.Lease, bool, error) {
	return lease.Lease{}, false, errors.New("dial tcp 192.0.2.9:5432: connection refused")
}

// Every DISCOVER the pool cannot answer turns a client away, whatever the
// reason: with the shared store unreachable, the firmware's DISCOVERs went
// unanswered with a debug line only, and the operator saw nothing.
func TestStoreDownRefusalRecorded(t *testing.T) {
	h := newHandler(t, ModeAuthoritative)
	sub := h.Subnets[0]
	first := sub.Pool.Subnet.Addr().Next().Next()
	sub.Pool = lease.NewPool(sub.Pool.Subnet, []lease.Range{{First: first, Last: first.Next()}}, nil, &downStore{}, nil)
	s, ev, logs, ic := testServer(h)
	d := discover(t, pxeMods(7)...)
	for range 3 {
		s.serve(packet{ic: ic, data: d.ToBytes(), src: netip.MustParseAddrPort("0.0.0.0:68")})
	}
	if len(*ev) != 1 || (*ev)[0].Result != "refused" || !strings.Contains((*ev)[0].Reason, "connection refused") {
		t.Fatalf("boot-log events for three DISCOVERs with the store down: %+v; want one, refused, with the store's error", *ev)
	}
	if n := lines(logs, "WARN", "connection refused"); n != 1 {
		t.Errorf("%d warnings for three refusals, want 1:\n%s", n, logs)
	}
}

// A reply that cannot be sent (here: on a socket already closed, so that
// nothing leaves the machine) leaves the client waiting: it is counted,
// and warned and, for a PXE client, written to the boot log as "not
// sent", both once per client per quiet.Every; it used to be a warning
// per packet and nothing else.
func TestReplyNotSentCounted(t *testing.T) {
	h := newHandler(t, ModeAuthoritative)
	s, ev, logs, ic := testServer(h)
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	ic.conn = conn
	d := discover(t, append(pxeMods(7), dhcpv4.WithGatewayIP(net.IPv4(198, 51, 100, 1)))...)
	for range 3 {
		s.serve(packet{ic: ic, data: d.ToBytes(), src: netip.MustParseAddrPort("198.51.100.1:67")})
	}
	if n := s.Stats.SendFailed.Load(); n != 3 {
		t.Errorf("SendFailed = %d after three unsendable OFFERs, want 3", n)
	}
	if n := s.Stats.Replied.Load(); n != 0 {
		t.Errorf("Replied = %d, want 0", n)
	}
	if n := lines(logs, "WARN", "dhcp: reply not sent"); n != 1 {
		t.Errorf("%d warnings for three unsendable replies to one client, want 1:\n%s", n, logs)
	}
	var notSent int
	for _, e := range *ev {
		if e.Result == "not sent" && e.Stage == "offer" && e.MAC == mac.String() {
			notSent++
		}
	}
	if notSent != 1 || len(*ev) != 1 {
		t.Errorf("%d boot-log events with result \"not sent\" of %d, want 1 of 1: %+v", notSent, len(*ev), *ev)
	}
}
