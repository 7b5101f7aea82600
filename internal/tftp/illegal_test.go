package tftp

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

// A client that sends something other than an ACK or an ERROR during a
// transfer (here a truncated ACK) gets one ERROR 4 and nothing more: not
// a second ERROR saying the transfer failed on the server.
func TestIllegalPacketGetsOneError(t *testing.T) {
	_, port, ev, _ := startDual(t, Settings{MaxWindowSize: 8, Timeout: time.Second, Retries: 2, MaxTransfers: 8, MaxPerClient: 8},
		map[string][]byte{"f.bin": bytes.Repeat([]byte("x"), 3000)})
	server := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))

	c := dial(t)
	c.WriteToUDPAddrPort([]byte("\x00\x01f.bin\x00octet\x00"), server)
	pkt, tid := c.read(t)
	if pkt[1] != opDATA || pkt[3] != 1 {
		t.Fatalf("want DATA 1, got % x", pkt[:4])
	}
	c.WriteToUDPAddrPort([]byte{0, opACK, 0}, tid)
	if pkt, _ := c.read(t); pkt[1] != opERROR || pkt[3] != errIllegalOp {
		t.Fatalf("want ERROR 4, got % x", pkt)
	}
	if e := waitEvent(t, ev, "f.bin"); e.Result != "failed" {
		t.Errorf("result %q, want failed", e.Result)
	}
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, _, err := c.ReadFromUDPAddrPort(buf); err == nil {
		t.Fatalf("after ERROR 4, also got % x (%q)", buf[:4], buf[4:n])
	}
}
