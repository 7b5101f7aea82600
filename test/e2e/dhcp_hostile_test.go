package e2e

// Hostile DHCP input against the real server, from a raw UDP client in a
// lab namespace: truncated packets, options running past the end, option
// overload (RFC 2132 9.3) with real options in the file and sname fields,
// garbage, malformed user class (option 77) as some UEFI firmware sends it,
// option floods, and a retry storm from one MAC. Every malformed packet must
// be logged as such and answered by nothing; every well-formed one, however
// odd, answered; and the server must keep serving real clients.

import (
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// dhDrain returns the BOOTREPLYs that arrive on c within wait, whatever
// their xid.
func dhDrain(c *net.UDPConn, wait time.Duration) []*dhPkt {
	var out []*dhPkt
	deadline := time.Now().Add(wait)
	buf := make([]byte, 65536)
	for {
		c.SetReadDeadline(deadline)
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return out
		}
		if p, err := dhParse(append([]byte(nil), buf[:n]...)); err == nil && p.Op == 2 {
			p.From = from
			out = append(out, p)
		}
	}
}

// dhHeader is the fixed part (236 bytes) and cookie of a DISCOVER from mac.
func dhHeader(mac string) []byte {
	m := dhNewMsg(mac, dhDiscover)
	m.Opts, m.NoEnd = nil, true
	return m.Bytes()
}

func TestDHCPHostilePackets(t *testing.T) {
	t.Parallel()
	lab := NewLab(t)
	s := dhStart(t, lab, dhAuthConfig("192.0.2.100", "192.0.2.200", ""))
	h := dhAddHost(t, lab, "192.0.2.10")
	c := dhSocket(t, h.Netns, h.Iface, 68)
	rng := rand.New(rand.NewPCG(7, 2131))

	valid := dhNewMsg("02:00:00:00:bd:00", dhDiscover, dhOPRL(1, 3, 6)).Bytes()
	garbage := make([]byte, 300)
	for i := range garbage {
		garbage[i] = byte(rng.IntN(256))
	}
	garbage[0] = 1 // a BOOTREQUEST, so only its body is wrong
	// Options that never end: random codes and lengths, no END (255) and
	// no message type (53) among them.
	randomOpts := dhHeader("02:00:00:00:bd:01")
	for i := 0; i < 200; i++ {
		b := byte(1 + rng.IntN(254))
		if b == 53 {
			b = 54
		}
		randomOpts = append(randomOpts, b)
	}
	reply := dhNewMsg("02:00:00:00:bd:02", dhDiscover)
	reply.Op = 2
	overloadBad := dhNewMsg("02:00:00:00:bd:03", dhDiscover, dhO(52, 1))
	overloadBad.File = []byte{12, 200, 'a', 'b', 'c'} // a hostname of 200 bytes in a field of 128

	malformed := []struct {
		name string
		b    []byte
	}{
		{"empty datagram", nil},
		{"10 bytes", valid[:10]},
		{"239 bytes (cookie cut short)", valid[:239]},
		{"header and cookie only", valid[:240]},
		{"option length past the end", append(dhHeader("02:00:00:00:bd:04"), 53, 1, 1, 60, 200, 'P', 'X', 'E', 'C', 'l', 'i', 'e', 'n', 't')},
		{"option code without a length", append(dhHeader("02:00:00:00:bd:05"), 53, 1, 1, 12)},
		{"option 77 past the end (UEFI)", append(dhHeader("02:00:00:00:bd:06"), append(append([]byte{53, 1, 1, 93, 2, 0, 7, 60, 32},
			"PXEClient:Arch:00007:UNDI:003016"...), 77, 50, 'i', 'P', 'X', 'E')...)},
		{"garbage", garbage},
		{"options without END", randomOpts},
		{"BOOTREPLY sent to the server", reply.Bytes()},
		{"overload: option past the end of the file field", overloadBad.Bytes()},
	}
	malformedSeen := 0
	for _, tc := range malformed {
		before := len(dhRecords(s, "dhcp: malformed packet", nil))
		dhSendRaw(t, c, dhServerIP+":67", tc.b)
		deadline := time.Now().Add(dhReplyWait)
		for len(dhRecords(s, "dhcp: malformed packet", nil)) == before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := len(dhRecords(s, "dhcp: malformed packet", nil)); n != before+1 {
			t.Errorf("%s (%d bytes): %d \"malformed packet\" log entries, want 1", tc.name, len(tc.b), n-before)
		} else {
			malformedSeen++
		}
		if r := dhDrain(c, 200*time.Millisecond); len(r) > 0 {
			t.Errorf("%s: answered: %v", tc.name, r)
		}
	}
	t.Logf("%d of %d malformed packets logged as malformed", malformedSeen, len(malformed))

	// Odd but well-formed: each must be answered.
	pxe7 := []dhOpt{dhOS(60, "PXEClient:Arch:00007:UNDI:003016"), dhOArch(7)}
	pxe0 := []dhOpt{dhOS(60, "PXEClient:Arch:00000:UNDI:002001"), dhOArch(0)}
	flood := make([]dhOpt, 0, 401)
	for i := 0; i < 400; i++ {
		flood = append(flood, dhO(224, byte(i)))
	}
	ov1 := dhNewMsg("02:00:00:00:be:01", dhDiscover)
	ov1.Opts = []dhOpt{dhO(52, 1)} // the message type is only in the file field
	ov1.File = dhOptBytes(dhOType(dhDiscover), dhOPRL(1, 3, 6))
	ov3 := dhNewMsg("02:00:00:00:be:02", dhDiscover)
	ov3.Opts = []dhOpt{dhO(52, 3), dhOPRL(1, 3)}
	ov3.File = dhOptBytes(dhOS(12, "overloaded"))
	ov3.SName = dhOptBytes(dhOType(dhDiscover))
	wellFormed := []struct {
		name string
		m    dhMsg
		file string // boot file expected in the OFFER
	}{
		{"overload 1: message type only in the file field", ov1, ""},
		{"overload 3: message type in sname, hostname in file", ov3, ""},
		{"UEFI option 77 with a sub-length past its end", dhNewMsg("02:00:00:00:be:03", dhDiscover, append(pxe7, dhO(77, 12, 'U', 'E', 'F', 'I'))...), "snponly.efi"},
		{"option 77 empty", dhNewMsg("02:00:00:00:be:04", dhDiscover, append(pxe0, dhO(77))...), "undionly.kpxe"},
		{"option 77 with a zero sub-length", dhNewMsg("02:00:00:00:be:05", dhDiscover, append(pxe0, dhO(77, 0))...), "undionly.kpxe"},
		{"option 77 bare \"iPXE\" (no RFC 3004 length)", dhNewMsg("02:00:00:00:be:06", dhDiscover, append(pxe7, dhOS(77, "iPXE"))...),
			"http://" + dhServerIP + ":" + Port(s.HTTPAddr) + "/boot.ipxe"},
		{"400 repeats of one option", dhNewMsg("02:00:00:00:be:07", dhDiscover, flood...), ""},
	}
	for _, tc := range wellFormed {
		r := dhExchange(t, c, "255.255.255.255:67", tc.m, dhReplyWait)
		if r == nil || r.Type() != dhOffer {
			t.Errorf("%s: want an OFFER, got %v", tc.name, r)
			continue
		}
		if !dhInPool(r.YIAddr, "192.0.2.100", "192.0.2.200") || r.CHAddr.String() != net.HardwareAddr(tc.m.CHAddr).String() {
			t.Errorf("%s: OFFER %s", tc.name, r)
		}
		if r.File != tc.file {
			t.Errorf("%s: boot file %q, want %q", tc.name, r.File, tc.file)
		}
	}

	// Still alive, still serving a real client.
	if _, exited := s.Exited(0); exited {
		t.Fatalf("bootforge exited:\n%s", s.Log())
	}
	if l := dhMustUdhcpc(t, dhAddHost(t, lab, "")); !dhInPool(l["ip"], "192.0.2.100", "192.0.2.200") {
		t.Errorf("udhcpc after the hostile packets got %q", l["ip"])
	}
	if strings.Contains(s.Log(), "panic") || strings.Contains(s.Log(), "goroutine ") {
		t.Errorf("server log shows a panic:\n%s", s.Log())
	}
}

// One MAC sending 200 DISCOVERs in a second, with rate_limit 5 (burst 10),
// gets at most burst + rate × duration answers; other clients are served
// meanwhile, and the stormy MAC again once its bucket refills.
func TestDHCPRetryStorm(t *testing.T) {
	lab := NewLab(t)
	s := dhStart(t, lab, dhAuthConfig("192.0.2.100", "192.0.2.200", "  rate_limit: 5\n"))
	h := dhAddHost(t, lab, "192.0.2.10")
	c := dhSocket(t, h.Netns, h.Iface, 68)
	const mac = "02:00:00:00:5e:01"

	var mu sync.Mutex
	replies := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			select {
			case <-stop:
				return
			default:
			}
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				continue
			}
			if p, err := dhParse(append([]byte(nil), buf[:n]...)); err == nil && p.Op == 2 && p.CHAddr.String() == mac {
				mu.Lock()
				replies++
				mu.Unlock()
			}
		}
	}()
	start := time.Now()
	for i := 0; i < 200; i++ {
		dhSendRaw(t, c, "255.255.255.255:67", dhNewMsg(mac, dhDiscover).Bytes())
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * 5 * time.Millisecond)))
	}
	sent := time.Since(start)
	time.Sleep(2500 * time.Millisecond)
	close(stop)
	<-done

	limit := 10 + int(5*sent.Seconds()+0.999)
	logged := len(dhReplies(s, mac, ""))
	t.Logf("200 DISCOVERs in %s: %d replies received, %d logged as sent (limit %d)", sent.Round(time.Millisecond), replies, logged, limit)
	if replies > 20 || replies > limit {
		t.Errorf("retry storm: %d replies, want at most %d (rate_limit 5, burst 10, over %s)", replies, min(20, limit), sent)
	}
	if logged > 20 {
		t.Errorf("retry storm: server sent %d replies, want at most 20", logged)
	}
	if replies < 10 {
		t.Errorf("retry storm: only %d replies, want the burst of 10 at least", replies)
	}

	// Another client is not affected.
	if r := dhExchange(t, c, "255.255.255.255:67", dhNewMsg("02:00:00:00:5e:02", dhDiscover), dhReplyWait); r == nil || r.Type() != dhOffer {
		t.Errorf("another MAC right after the storm: want an OFFER, got %v", r)
	}
	// The stormy MAC's bucket has refilled by now (2.5 s at 5/s).
	if r := dhExchange(t, c, "255.255.255.255:67", dhNewMsg(mac, dhDiscover), dhReplyWait); r == nil || r.Type() != dhOffer {
		t.Errorf("stormy MAC after a pause: want an OFFER, got %v", r)
	}
}
