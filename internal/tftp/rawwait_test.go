package tftp

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

// A transfer that waits in raw calls (waitRaw) and a client that ACKs each
// block later than rawWait: the wait goes on through the scheduler, and
// every block comes once, none resent by a timeout.
func TestRawWaitOutlastedByAnACK(t *testing.T) {
	want := make([]byte, 6*512+100)
	for i := range want {
		want[i] = byte(i * 13)
	}
	srv, port, _, _ := startDual(t, Settings{MaxWindowSize: 8, Timeout: 500 * time.Millisecond, Retries: 2, MaxTransfers: 8, MaxPerClient: 8},
		map[string][]byte{"f.bin": want}, func(s *Server) { s.blocking = 2 }) // the first transfer waits raw
	server := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))

	c := dial(t)
	c.WriteToUDPAddrPort([]byte("\x00\x01f.bin\x00octet\x00"), server)
	var got []byte
	for block := uint16(1); ; block++ {
		pkt, tid := c.read(t)
		if pkt[1] != opDATA || binary.BigEndian.Uint16(pkt[2:]) != block {
			t.Fatalf("want DATA %d, got % x", block, pkt[:4])
		}
		got = append(got, pkt[4:]...)
		time.Sleep(5 * rawWait) // past the raw wait, well within the timeout
		c.WriteToUDPAddrPort([]byte{0, opACK, byte(block >> 8), byte(block)}, tid)
		if len(pkt) < 4+512 {
			break
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d", len(got), len(want))
	}
	if n := srv.Stats.Retransmits.Load(); n != 0 {
		t.Errorf("%d blocks resent: a wait past rawWait timed out", n)
	}
}
