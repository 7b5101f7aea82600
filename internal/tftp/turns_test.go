package tftp

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"bootforge/internal/turns"
)

// With its one turn taken, a second transfer waits for it: its DATA 1
// leaves at once, so that the client knows it is heard, but each window
// after that only every turnPace, until the first transfer ends and the
// turn passes to it. Both end whole.
func TestTransfersTakeTurns(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 32*8+3) // 8 full blocks of 512, then 48 bytes
	st := Settings{Timeout: 5 * time.Second, Retries: 3, MaxTransfers: 10, MaxPerClient: 10, MaxWindowSize: 1}
	srv, port, ev, _ := startDual(t, st, map[string][]byte{"f": data}, func(s *Server) {
		s.turns = turns.New(1, time.Hour, time.Hour)
	})
	server := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	rrq := []byte("\x00\x01f\x00octet\x00")

	first, second := dial(t), dial(t)
	first.WriteToUDPAddrPort(rrq, server)
	firstData, firstTID := first.read(t) // DATA 1; not acknowledged yet: the turn stays taken
	second.WriteToUDPAddrPort(rrq, server)
	pkt, secondTID := second.read(t)
	if pkt[1] != opDATA || pkt[3] != 1 {
		t.Fatalf("the waiting transfer's first packet is % x, want DATA 1 at once", pkt[:4])
	}
	if w := srv.Turns().Waiting.Load(); w != 1 {
		t.Fatalf("%d transfers wait for a turn, want 1", w)
	}
	got := append([]byte(nil), pkt[4:]...)
	second.WriteToUDPAddrPort([]byte{0, opACK, 0, 1}, secondTID)
	expectSilence(t, second) // 200 ms: the next window waits turnPace
	pkt, _ = second.read(t)
	if pkt[1] != opDATA || pkt[3] != 2 {
		t.Fatalf("after the pace, % x, want DATA 2", pkt[:4])
	}
	if w := srv.Turns().Waiting.Load(); w != 1 {
		t.Fatalf("%d transfers wait for a turn after a paced window, want 1", w)
	}

	if whole := lockstep(t, first, firstData, firstTID, defaultBlockSize); !bytes.Equal(whole, data) {
		t.Fatalf("the first transfer got %d bytes, want the file's %d", len(whole), len(data))
	}
	// The turn is the second transfer's now: the rest at full speed.
	for block := byte(2); ; block++ {
		if pkt[1] != opDATA || pkt[3] != block {
			t.Fatalf("want DATA %d, got % x", block, pkt[:4])
		}
		got = append(got, pkt[4:]...)
		second.WriteToUDPAddrPort([]byte{0, opACK, 0, block}, secondTID)
		if len(pkt) < 4+defaultBlockSize {
			break
		}
		pkt, _ = second.read(t)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("the second transfer got %d bytes, want the file's %d", len(got), len(data))
	}
	if s := srv.Turns(); s.Waited.Load() != 1 || s.Waiting.Load() != 0 || s.TimedOut.Load() != 0 {
		t.Errorf("turn stats: %d waited, %d waiting, %d timed out; want 1, 0, 0", s.Waited.Load(), s.Waiting.Load(), s.TimedOut.Load())
	}
	idle(t, srv, ev, map[string]int{"ok": 2}, 0)
}
