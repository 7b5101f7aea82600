package dhcp

import (
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/net/bpf"

	"bootforge/internal/audit"
)

// frame wraps a DHCP packet in Ethernet, IPv4 and UDP headers.
func frame(src net.HardwareAddr, from netip.Addr, sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 14+20+8+len(payload))
	copy(b[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	copy(ip[12:16], from.AsSlice())
	copy(ip[16:20], []byte{255, 255, 255, 255})
	udp := ip[20:]
	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	copy(udp[8:], payload)
	return b
}

// offer is a DHCPOFFER from server; a proxy offer when yiaddr is empty.
func offer(t testing.TB, server, yiaddr string) []byte {
	req, err := dhcpv4.NewDiscovery(net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	mods := []dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer),
		dhcpv4.WithServerIP(net.ParseIP(server)), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP(server)))}
	if yiaddr != "" {
		mods = append(mods, dhcpv4.WithYourIP(net.ParseIP(yiaddr)))
	}
	p, err := dhcpv4.NewReplyFromRequest(req, mods...)
	if err != nil {
		t.Fatal(err)
	}
	return p.ToBytes()
}

var serverMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 9}

func TestParseServerReply(t *testing.T) {
	from := netip.MustParseAddr("192.0.2.9")
	f, ok := ParseServerReply(frame(serverMAC, from, 67, 68, offer(t, "192.0.2.9", "192.0.2.150")))
	if !ok || f.Kind != "authoritative" || f.ServerID != from || f.Offered != netip.MustParseAddr("192.0.2.150") || f.MAC.String() != serverMAC.String() {
		t.Fatalf("authoritative offer: %+v %v", f, ok)
	}
	f, ok = ParseServerReply(frame(serverMAC, from, 67, 68, offer(t, "192.0.2.9", "")))
	if !ok || f.Kind != "proxy" || f.Offered.IsValid() {
		t.Fatalf("proxy offer: %+v %v", f, ok)
	}
	for name, b := range map[string][]byte{
		"client to server": frame(serverMAC, from, 68, 67, offer(t, "192.0.2.9", "192.0.2.150")),
		"not DHCP":         frame(serverMAC, from, 67, 68, []byte("hello")),
		"truncated":        frame(serverMAC, from, 67, 68, offer(t, "192.0.2.9", "192.0.2.150"))[:40],
		"empty":            nil,
	} {
		if f, ok := ParseServerReply(b); ok {
			t.Errorf("%s: taken as a server reply: %+v", name, f)
		}
	}
}

// The kernel filter passes server replies and drops what is not one.
func TestServerReplyFilter(t *testing.T) {
	vm, err := bpf.NewVM(serverReplyFilter)
	if err != nil {
		t.Fatal(err)
	}
	from := netip.MustParseAddr("192.0.2.9")
	reply := frame(serverMAC, from, 67, 68, offer(t, "192.0.2.9", "192.0.2.150"))
	if n, err := vm.Run(reply); err != nil || n == 0 {
		t.Errorf("a server reply is dropped: %d %v", n, err)
	}
	changed := func(at int, v byte) []byte {
		b := append([]byte(nil), reply...)
		b[at] = v
		return b
	}
	for name, b := range map[string][]byte{
		"udp 68 to 67": frame(serverMAC, from, 68, 67, nil),
		"udp 67 to 67": frame(serverMAC, from, 67, 67, nil),
		"tcp":          changed(14+9, 6),
		"fragment":     changed(14+7, 1),
		"arp":          changed(13, 0x06),
	} {
		if n, err := vm.Run(b); err != nil || n != 0 {
			t.Errorf("%s passes the filter: %d %v", name, n, err)
		}
	}
}

type events []audit.Event

func (e *events) Record(ev audit.Event) { *e = append(*e, ev) }

func TestWatchJudges(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	now := time.Now()
	auth := func(id string) Foreign {
		a := netip.MustParseAddr(id)
		return Foreign{Interface: "br0", ServerID: a, Source: a, Kind: "authoritative"}
	}
	// Authoritative bootforge: any other server giving addresses conflicts.
	var ev events
	w := &Watch{Log: quiet, Events: &ev, Authoritative: true, Repeat: time.Minute, seen: map[string]*Foreign{}}
	w.observe(auth("192.0.2.9"), now)
	w.observe(auth("192.0.2.9"), now.Add(time.Second)) // again: counted, not reported
	if len(ev) != 1 || ev[0].Result != "conflict" || ev[0].Stage != StageForeignServer {
		t.Fatalf("events: %+v", ev)
	}
	if s := w.Servers(); len(s) != 1 || s[0].Replies != 2 {
		t.Fatalf("servers: %+v", s)
	}
	w.observe(auth("192.0.2.9"), now.Add(2*time.Minute)) // still there after Repeat: reported again
	if len(ev) != 2 {
		t.Fatalf("not reported again after Repeat: %+v", ev)
	}
	// Proxy bootforge: the network's server is expected, a second is not.
	ev = nil
	w = &Watch{Log: quiet, Events: &ev, Repeat: time.Minute, seen: map[string]*Foreign{}}
	w.observe(auth("192.0.2.1"), now)
	w.observe(auth("192.0.2.9"), now)
	if len(ev) != 2 || ev[0].Result != "seen" || ev[1].Result != "conflict" {
		t.Fatalf("proxy mode: %+v", ev)
	}
}

func FuzzParseServerReply(f *testing.F) {
	from := netip.MustParseAddr("192.0.2.9")
	f.Add(frame(serverMAC, from, 67, 68, offer(f, "192.0.2.9", "192.0.2.150")))
	f.Add(frame(serverMAC, from, 67, 68, offer(f, "192.0.2.9", "")))
	f.Add([]byte{})
	vm, err := bpf.NewVM(serverReplyFilter)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, ok := ParseServerReply(b)
		if !ok {
			return
		}
		if fr.Kind != "proxy" && fr.Kind != "authoritative" || !fr.ServerID.IsValid() {
			t.Fatalf("a reply with no kind or server: %+v", fr)
		}
		// What the parser takes, the kernel filter lets through, but for
		// fragments, which the filter drops on purpose.
		if binary.BigEndian.Uint16(b[14+6:])&0x1fff == 0 {
			if n, err := vm.Run(b); err != nil || n == 0 {
				t.Fatalf("parsed, but the filter drops it")
			}
		}
	})
}
