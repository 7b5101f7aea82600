package tftp

import (
	"net/netip"
	"testing"
	"time"

	"bootforge/internal/audit"
)

// A transfer that ends part-way reports the bytes the client acknowledged,
// in its boot-log event (which the byte counter of /metrics reads), not 0:
// whether the client gives up with an ERROR packet or stops answering, and
// with a window, only up to the last ACK, not the blocks sent after it.
func TestPartialTransferBytes(t *testing.T) {
	data := make([]byte, 40*512+100)
	for i := range data {
		data[i] = byte(i * 13)
	}
	srv, port, ev, _ := startDual(t, Settings{MaxWindowSize: 8, Timeout: 50 * time.Millisecond, Retries: 1, MaxTransfers: 8, MaxPerClient: 8},
		map[string][]byte{"a.bin": data, "b.bin": data, "c.bin": data})
	server := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))

	// ack reads DATA packets until block last has come and acknowledges
	// it, in lockstep (window 1) or once per window.
	ack := func(c client, tid netip.AddrPort, last uint16) {
		t.Helper()
		for {
			pkt, _ := c.read(t)
			if pkt[1] != opDATA {
				t.Fatalf("want DATA, got % x", pkt)
			}
			block := uint16(pkt[2])<<8 | uint16(pkt[3])
			if block == last {
				c.WriteToUDPAddrPort([]byte{0, opACK, byte(block >> 8), byte(block)}, tid)
				return
			}
		}
	}
	for _, tc := range []struct {
		name, file string
		window     int
		acked      uint16 // the last block acknowledged
		thenError  bool   // then ERROR 0; else silence
	}{
		{"error after block 9", "a.bin", 1, 9, true},
		{"silent after block 9", "b.bin", 1, 9, false},
		{"error mid-window", "c.bin", 4, 6, true}, // blocks 7 and 8 were sent, not acknowledged
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t)
			var tid netip.AddrPort
			if tc.window > 1 {
				c.WriteToUDPAddrPort([]byte("\x00\x01"+tc.file+"\x00octet\x00windowsize\x004\x00"), server)
				var oack []byte
				oack, tid = c.read(t)
				if oack[1] != opOACK {
					t.Fatalf("want OACK, got % x", oack)
				}
				c.WriteToUDPAddrPort([]byte{0, opACK, 0, 0}, tid)
			} else {
				c.WriteToUDPAddrPort([]byte("\x00\x01"+tc.file+"\x00octet\x00"), server)
				pkt, from := c.read(t)
				if pkt[1] != opDATA || pkt[3] != 1 {
					t.Fatalf("want DATA 1, got % x", pkt[:4])
				}
				tid = from
				c.WriteToUDPAddrPort([]byte{0, opACK, 0, 1}, tid)
			}
			for b := uint16(2); b <= tc.acked; b++ {
				if tc.window > 1 && b%uint16(tc.window) != 0 && b != tc.acked {
					continue
				}
				ack(c, tid, b)
			}
			if tc.thenError {
				c.WriteToUDPAddrPort([]byte("\x00\x05\x00\x00user cancelled\x00"), tid)
			}
			e := waitEvent(t, ev, tc.file)
			if want := int64(tc.acked) * 512; e.Bytes != want || e.Result != "failed" {
				t.Errorf("event: bytes %d, result %q; want %d bytes acknowledged, failed", e.Bytes, e.Result, want)
			}
		})
	}
	if n := srv.Stats.Failed.Load(); n != 3 {
		t.Errorf("failed transfers counted %d, want 3", n)
	}
}

// waitEvent waits for the transfer event of file.
func waitEvent(t *testing.T, ev *events, file string) audit.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range ev.all() {
			if e.File == file {
				return e
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no event for %s", file)
	return audit.Event{}
}
