package relayclient

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

func TestMix24IsBijective(t *testing.T) {
	seen := make([]bool, 1<<24)
	for i := uint64(0); i < 1<<24; i++ {
		v := mix24(i)
		if v >= 1<<24 || seen[v] {
			t.Fatalf("mix24(%d) = %d: out of range or repeated", i, v)
		}
		seen[v] = true
	}
}

func TestMACsUniqueAndKeepPrefix(t *testing.T) {
	for _, seq := range []bool{false, true} {
		p := MACs{Base: 0x02bf03fffff0, Seq: seq}
		seen := map[uint64]bool{}
		for i := 0; i < 100000; i++ {
			m := p.Num(i)
			if seen[m] {
				t.Fatalf("seq=%v: client %d repeats MAC %012x", seq, i, m)
			}
			seen[m] = true
			if !seq && m>>24 != 0x02bf03 {
				t.Fatalf("scatter: client %d MAC %012x lost the base prefix", i, m)
			}
		}
	}
	if a := (MACs{Base: 0x02bf00000000, Seq: true}).Addr(0x0102); a.String() != "02:bf:00:00:01:02" {
		t.Errorf("Addr = %s", a)
	}
}

func TestParseMAC(t *testing.T) {
	if m, err := ParseMAC("02:bf:50:00:00:01"); err != nil || m != 0x02bf50000001 {
		t.Errorf("ParseMAC = %x, %v", m, err)
	}
	for _, bad := range []string{"", "02:bf:50:00:00", "00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01"} {
		if _, err := ParseMAC(bad); err == nil {
			t.Errorf("ParseMAC(%q): no error", bad)
		}
	}
}

// testRelay is a Relay without a socket: enough to build packets.
func testRelay(cfg Config) *Relay {
	return &Relay{cfg: cfg, waiting: map[uint32]chan Reply{}}
}

var testCfg = Config{
	Relay:        net.IPv4(198, 19, 0, 1).To4(),
	Server:       net.IPv4(198, 19, 0, 2).To4(),
	Port:         67,
	Archs:        []iana.Arch{iana.INTEL_X86PC, iana.EFI_X86_64},
	ParamRequest: EDK2ParamRequest,
	RemoteID:     "test",
}

// The DISCOVER on the wire is a relayed PXE request.
func TestDiscoverWire(t *testing.T) {
	r := testRelay(testCfg)
	mac := net.HardwareAddr{2, 0xbf, 0, 0, 0, 1}
	c := r.Client(1, mac)
	defer c.Close()
	d, err := c.Discover()
	if err != nil {
		t.Fatal(err)
	}
	raw := d.ToBytes()
	p, err := dhcpv4.FromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	if p.HopCount != 1 || !p.GatewayIPAddr.Equal(testCfg.Relay) || p.MessageType() != dhcpv4.MessageTypeDiscover {
		t.Errorf("hops %d giaddr %v type %v", p.HopCount, p.GatewayIPAddr, p.MessageType())
	}
	if p.TransactionID != c.xid || string(p.ClientHWAddr) != string(mac) {
		t.Errorf("xid %v chaddr %v", p.TransactionID, p.ClientHWAddr)
	}
	if a := p.ClientArch(); len(a) != 1 || a[0] != iana.EFI_X86_64 {
		t.Errorf("arch %v", a)
	}
	if p.ClassIdentifier() != "PXEClient:Arch:00007:UNDI:003016" {
		t.Errorf("option 60 %q", p.ClassIdentifier())
	}
	if u := p.GetOneOption(dhcpv4.OptionClientMachineIdentifier); len(u) != 17 || u[0] != 0 {
		t.Errorf("option 97 %x", u)
	}
	rai := p.RelayAgentInfo()
	if rai == nil || string(rai.Get(dhcpv4.AgentCircuitIDSubOption)) != "sw1/0/2" ||
		string(rai.Get(dhcpv4.AgentRemoteIDSubOption)) != "test" {
		t.Errorf("option 82 %v", rai)
	}
	if !EchoesRelayInfo(p) {
		t.Error("EchoesRelayInfo of our own DISCOVER: false")
	}
	// Option 82 is the last option before End (RFC 3046 2.1).
	opts := raw[240:]
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
		t.Errorf("last option is %d, want 82", last)
	}
}

// Client i has architecture Archs[i%len(Archs)] and option 60 to match.
func TestArchAlternates(t *testing.T) {
	r := testRelay(testCfg)
	for i, want := range []string{"PXEClient:Arch:00000:UNDI:002001", "PXEClient:Arch:00007:UNDI:003016", "PXEClient:Arch:00000:UNDI:002001"} {
		c := r.Client(i, MACs{Base: 0x02bf00000000}.Addr(i))
		d, err := c.Discover()
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if d.ClassIdentifier() != want {
			t.Errorf("client %d: option 60 %q, want %q", i, d.ClassIdentifier(), want)
		}
	}
}

func TestRequest(t *testing.T) {
	r := testRelay(testCfg)
	mac := net.HardwareAddr{2, 0xbf, 0, 0, 0, 1}
	c := r.Client(0, mac)
	defer c.Close()
	yi := net.IPv4(10, 0, 0, 9).To4()
	offer, err := dhcpv4.New(dhcpv4.WithReply(mustDiscover(t, c)), dhcpv4.WithYourIP(yi),
		dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer))
	if err != nil {
		t.Fatal(err)
	}
	req, got, err := c.Request(offer)
	if err != nil || !got.Equal(yi) {
		t.Fatalf("Request = %v, %v", got, err)
	}
	if req.MessageType() != dhcpv4.MessageTypeRequest || !req.RequestedIPAddress().Equal(yi) ||
		!req.ServerIdentifier().Equal(testCfg.Server) || req.TransactionID != c.xid || !req.GatewayIPAddr.Equal(testCfg.Relay) {
		t.Errorf("REQUEST: %s", req.Summary())
	}
	offer.UpdateOption(dhcpv4.OptServerIdentifier(net.IPv4(198, 19, 0, 3)))
	if req, _, _ = c.Request(offer); !req.ServerIdentifier().Equal(net.IPv4(198, 19, 0, 3)) {
		t.Errorf("option 54 %v, want the offer's", req.ServerIdentifier())
	}

	for name, bad := range map[string]func(*dhcpv4.DHCPv4){
		"no yiaddr":     func(m *dhcpv4.DHCPv4) { m.YourIPAddr = net.IPv4zero },
		"other chaddr":  func(m *dhcpv4.DHCPv4) { m.ClientHWAddr = net.HardwareAddr{2, 0xbf, 0, 0, 0, 2} },
		"IPv6 yiaddr":   func(m *dhcpv4.DHCPv4) { m.YourIPAddr = net.ParseIP("fe80::1") },
		"nil yiaddr":    func(m *dhcpv4.DHCPv4) { m.YourIPAddr = nil },
		"short chaddr":  func(m *dhcpv4.DHCPv4) { m.ClientHWAddr = mac[:5] },
		"unspec yiaddr": func(m *dhcpv4.DHCPv4) { m.YourIPAddr = net.IPv4(0, 0, 0, 0) },
	} {
		o := *offer
		bad(&o)
		if _, _, err := c.Request(&o); !errors.Is(err, ErrBadOffer) {
			t.Errorf("%s: err %v, want ErrBadOffer", name, err)
		}
	}
}

func mustDiscover(t *testing.T, c *Client) *dhcpv4.DHCPv4 {
	t.Helper()
	d, err := c.Discover()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// fakeServer answers relayed DISCOVERs on 127.0.0.2 with an OFFER sent to
// giaddr, after dropping the first drop of them. Before each OFFER it sends
// an unparsable datagram, a reply for an unknown transaction and a NAK.
func fakeServer(t *testing.T, drop int) (port int, got chan *dhcpv4.DHCPv4) {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Skipf("no 127.0.0.2: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	got = make(chan *dhcpv4.DHCPv4, 16)
	go func() {
		buf := make([]byte, 4096)
		for n := 0; ; n++ {
			k, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			m, err := dhcpv4.FromBytes(buf[:k])
			if err != nil {
				continue
			}
			got <- m
			if n < drop {
				continue
			}
			to := &net.UDPAddr{IP: m.GatewayIPAddr, Port: conn.LocalAddr().(*net.UDPAddr).Port}
			_, _ = conn.WriteToUDP([]byte("junk"), to)
			other, _ := dhcpv4.NewReplyFromRequest(m, dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer))
			other.TransactionID[0] ^= 0xff
			_, _ = conn.WriteToUDP(other.ToBytes(), to)
			nak, _ := dhcpv4.NewReplyFromRequest(m, dhcpv4.WithMessageType(dhcpv4.MessageTypeNak))
			_, _ = conn.WriteToUDP(nak.ToBytes(), to)
			offer, _ := dhcpv4.NewReplyFromRequest(m, dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer),
				dhcpv4.WithYourIP(net.IPv4(10, 0, 0, 5)))
			_, _ = conn.WriteToUDP(offer.ToBytes(), to)
		}
	}()
	return conn.LocalAddr().(*net.UDPAddr).Port, got
}

func listenTest(t *testing.T, port int) *Relay {
	t.Helper()
	cfg := testCfg
	cfg.Relay, cfg.Server, cfg.Port = net.IPv4(127, 0, 0, 1).To4(), net.IPv4(127, 0, 0, 2).To4(), port
	r, err := Listen(cfg)
	if err != nil {
		t.Skipf("Listen: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestExchangeRetransmits(t *testing.T) {
	port, got := fakeServer(t, 2)
	r := listenTest(t, port)
	c := r.Client(7, MACs{Base: 0x02bf00000000}.Addr(7))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := Schedule{Waits: []time.Duration{20 * time.Millisecond, 40 * time.Millisecond}, Forever: true}
	t0 := time.Now()
	rep, err := c.Exchange(ctx, mustDiscover(t, c), s, dhcpv4.MessageTypeOffer)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Msg.MessageType() != dhcpv4.MessageTypeOffer || !rep.Msg.YourIPAddr.Equal(net.IPv4(10, 0, 0, 5)) || rep.At.Before(t0) {
		t.Errorf("reply %s at %v", rep.Msg.Summary(), rep.At)
	}
	if n := len(got); n != 3 {
		t.Errorf("server got %d DISCOVERs, want 3", n)
	}
	// The reader hands out the OFFER after counting the junk and the reply
	// for another xid; the NAK was dropped by Exchange as unwanted.
	if st := r.Stats(); st.Retransmits != 2 || st.Bad != 1 || st.Stray != 2 {
		t.Errorf("stats %+v, want 2 retransmits, 1 bad, 2 stray", st)
	}
}

func TestExchangeGivesUp(t *testing.T) {
	port, _ := fakeServer(t, 1<<30)
	r := listenTest(t, port)
	c := r.Client(0, MACs{Base: 0x02bf00000000}.Addr(0))
	defer c.Close()
	d := mustDiscover(t, c)

	t0 := time.Now()
	_, err := c.Exchange(context.Background(), d, Once(30*time.Millisecond), dhcpv4.MessageTypeOffer)
	if !errors.Is(err, ErrNoAnswer) || time.Since(t0) < 30*time.Millisecond {
		t.Errorf("Once: err %v after %v", err, time.Since(t0))
	}
	if st := r.Stats(); st.Retransmits != 0 {
		t.Errorf("Once retransmitted: %+v", st)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c.Exchange(ctx, d, Schedule{Waits: []time.Duration{10 * time.Millisecond}, Forever: true}, dhcpv4.MessageTypeOffer)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrNoAnswer) {
		t.Errorf("Forever: err %v, want the context's", err)
	}
	if st := r.Stats(); st.Retransmits < 2 {
		t.Errorf("Forever: %d retransmits in 50 ms at 10 ms", st.Retransmits)
	}
}
