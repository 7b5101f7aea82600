package tftp

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// Transfers past the first few wait through the netpoller: they deliver
// the same bytes, resend a window after a timeout, give up on a silent
// client, and are aborted by Shutdown.
func TestNetpollerTransfers(t *testing.T) {
	want := make([]byte, 300_000)
	for i := range want {
		want[i] = byte(i * 7)
	}
	srv, port, ev, _ := startDual(t, Settings{MaxWindowSize: 8, Timeout: 100 * time.Millisecond, Retries: 2, MaxTransfers: 8, MaxPerClient: 8},
		map[string][]byte{"big.bin": want}, func(s *Server) { s.blocking = 0 }) // every transfer uses the netpoller
	server := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))

	t.Run("lockstep", func(t *testing.T) {
		got, err := fetch(t, "udp4", server, "big.bin")
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%d bytes, %v", len(got), err)
		}
	})

	t.Run("lost-window", func(t *testing.T) {
		c := dial(t)
		c.WriteToUDPAddrPort([]byte("\x00\x01big.bin\x00octet\x00blksize\x001024\x00windowsize\x008\x00"), server)
		oack, tid := c.read(t)
		if oack[1] != opOACK {
			t.Fatalf("want OACK, got % x", oack)
		}
		c.WriteToUDPAddrPort([]byte{0, opACK, 0, 0}, tid)
		// Read the first window, ACK nothing: DATA 1 must come again.
		before := srv.Stats.Retransmits.Load()
		for i := 0; i < 9; i++ {
			pkt, _ := c.read(t)
			if i == 8 && (pkt[1] != opDATA || pkt[3] != 1) {
				t.Fatalf("after a lost window, got % x, want DATA 1 again", pkt[:4])
			}
		}
		if srv.Stats.Retransmits.Load() == before {
			t.Error("no retransmit counted")
		}
	})

	t.Run("two-at-once", func(t *testing.T) {
		// A stranger's packet and the client's ACK arrive together: the
		// stranger gets ERROR 5 and the client DATA 2 at once (a lost ACK
		// would bring DATA 1 again after the timeout). Then a duplicate
		// ACK comes with its original: DATA 3 is sent once.
		c, stranger := dial(t), dial(t)
		c.WriteToUDPAddrPort([]byte("\x00\x01big.bin\x00octet\x00"), server)
		pkt, tid := c.read(t)
		if pkt[1] != opDATA || pkt[3] != 1 {
			t.Fatalf("want DATA 1, got % x", pkt[:4])
		}
		stranger.WriteToUDPAddrPort([]byte{0, opACK, 0, 1}, tid)
		c.WriteToUDPAddrPort([]byte{0, opACK, 0, 1}, tid)
		if e, _ := stranger.read(t); e[1] != opERROR || e[3] != errUnknownTID {
			t.Fatalf("stranger got % x, want ERROR 5", e)
		}
		if pkt, _ := c.read(t); pkt[1] != opDATA || pkt[3] != 2 {
			t.Fatalf("want DATA 2, got % x", pkt[:4])
		}
		c.WriteToUDPAddrPort([]byte{0, opACK, 0, 2}, tid)
		c.WriteToUDPAddrPort([]byte{0, opACK, 0, 2}, tid)
		if pkt, _ := c.read(t); pkt[1] != opDATA || pkt[3] != 3 {
			t.Fatalf("after ACK 2, got % x, want DATA 3", pkt[:4])
		}
		c.WriteToUDPAddrPort([]byte{0, opACK, 0, 3}, tid)
		if pkt, _ := c.read(t); pkt[1] != opDATA || pkt[3] != 4 {
			t.Fatalf("after ACK 3, got % x, want DATA 4 (a duplicate ACK must not bring a resend)", pkt[:4])
		}
		c.WriteToUDPAddrPort([]byte{0, opERROR, 0, 0, 0}, tid)
	})

	t.Run("silent-client", func(t *testing.T) {
		failed := srv.Stats.Failed.Load()
		c := dial(t)
		c.WriteToUDPAddrPort([]byte("\x00\x01big.bin\x00octet\x00"), server)
		c.read(t)
		// 100 + 200 + 400 ms of backoff, then the transfer gives up.
		deadline := time.Now().Add(3 * time.Second)
		for srv.Stats.Failed.Load() == failed && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if srv.Stats.Failed.Load() == failed {
			t.Fatal("a transfer whose client went silent did not fail")
		}
	})

	t.Run("shutdown-aborts", func(t *testing.T) {
		c := dial(t)
		c.WriteToUDPAddrPort([]byte("\x00\x01big.bin\x00octet\x00timeout\x0030\x00"), server)
		c.read(t) // the OACK, waiting 30 s for its ACK
		for srv.Active() == 0 {
			time.Sleep(time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		srv.Shutdown(ctx)
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("Shutdown took %v with a waiting netpoller transfer", took)
		}
		if n := srv.Active(); n != 0 {
			t.Fatalf("%d transfers still active", n)
		}
	})

	for _, e := range ev.all() {
		if e.Protocol != "tftp" {
			t.Errorf("event %+v", e)
		}
	}
}

type client struct{ *net.UDPConn }

func dial(t *testing.T) client {
	t.Helper()
	c, err := net.ListenUDP("udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return client{c}
}

func (c client) read(t *testing.T) ([]byte, netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
}
