package tftp

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// A client that acknowledges every block but the final window's and
// then goes silent has, most likely, the whole file and has left without
// its last ACK (lost, or never sent, as some firmware does): the transfer
// ends "sent", counted apart from failures, with the reason in its
// boot-log event. One that never answered at all, or stopped before the
// final block went out, still fails.
func TestFinalACKMissing(t *testing.T) {
	data := make([]byte, 10*512+100) // blocks 1–11, the last one short
	for i := range data {
		data[i] = byte(i * 7)
	}
	files := map[string][]byte{"lockstep.bin": data, "window.bin": data, "mid.bin": data, "one.bin": data[:100]}
	srv, port, ev, _ := startDual(t, Settings{MaxWindowSize: 8, Timeout: 50 * time.Millisecond, Retries: 1, MaxTransfers: 8, MaxPerClient: 8}, files)
	server := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))

	// receive reads DATA until block upTo has come, acknowledging the
	// blocks ackAt picks and no other.
	receive := func(c client, upTo uint16, ackAt func(block uint16) bool) {
		t.Helper()
		for {
			pkt, from := c.read(t)
			if pkt[1] != opDATA {
				t.Fatalf("want DATA, got % x", pkt)
			}
			block := uint16(pkt[2])<<8 | uint16(pkt[3])
			if ackAt(block) {
				c.WriteToUDPAddrPort([]byte{0, opACK, byte(block >> 8), byte(block)}, from)
			}
			if block == upTo {
				return
			}
		}
	}
	for _, tc := range []struct {
		name, file string
		oack       string // the request's options; "" for none
		upTo       uint16 // the last block the client waits for
		ackAt      func(uint16) bool
		result     string
		bytes      int64
	}{
		{"lockstep, all but the final ACK", "lockstep.bin", "", 11, func(b uint16) bool { return b < 11 }, "sent", 10 * 512},
		// Windows of 4: 1–4, 5–8, then 9–11, whose ACK never comes.
		{"window, all but the final window's ACK", "window.bin", "windowsize\x004\x00", 11, func(b uint16) bool { return b == 4 || b == 8 }, "sent", 8 * 512},
		{"silent before the final block", "mid.bin", "", 6, func(b uint16) bool { return b < 6 }, "failed", 5 * 512},
		{"never answered", "one.bin", "", 1, func(uint16) bool { return false }, "failed", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t)
			c.WriteToUDPAddrPort([]byte("\x00\x01"+tc.file+"\x00octet\x00"+tc.oack), server)
			if tc.oack != "" {
				oack, tid := c.read(t)
				if oack[1] != opOACK {
					t.Fatalf("want OACK, got % x", oack)
				}
				c.WriteToUDPAddrPort([]byte{0, opACK, 0, 0}, tid)
			}
			receive(c, tc.upTo, tc.ackAt)
			e := waitEvent(t, ev, tc.file)
			if e.Result != tc.result || e.Bytes != tc.bytes {
				t.Errorf("event: result %q, bytes %d; want %q, %d acknowledged", e.Result, e.Bytes, tc.result, tc.bytes)
			}
			want := "client stopped answering"
			if tc.result == "sent" {
				want = "did not acknowledge the final block 11 (sent 2 times)"
			}
			if !strings.Contains(e.Reason, want) {
				t.Errorf("event reason %q, want it to say %q", e.Reason, want)
			}
		})
	}
	if sent, failed := srv.Stats.Sent.Load(), srv.Stats.Failed.Load(); sent != 2 || failed != 2 {
		t.Errorf("counted %d sent and %d failed, want 2 and 2", sent, failed)
	}
}
