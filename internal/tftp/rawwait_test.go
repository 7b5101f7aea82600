package tftp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// A wait that starts after its deadline has passed (a goroutine that got
// no CPU in time) still returns the packet already in the socket, in
// every wait mode; only an empty socket is a timeout.
func TestLateWaitReadsWhatCame(t *testing.T) {
	for _, w := range []waitMode{waitRaw, waitBlocking, waitPoll} {
		t.Run(w.String(), func(t *testing.T) {
			c := dial(t)
			peer := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(c.LocalAddr().(*net.UDPAddr).Port))
			s, err := openSock(netip.MustParseAddr("127.0.0.1"), peer, 0, w)
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			sa, err := unix.Getsockname(s.fd)
			if err != nil {
				t.Fatal(err)
			}
			tid := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(sa.(*unix.SockaddrInet4).Port))
			buf := make([]byte, 64)
			past := time.Now().Add(-time.Second)
			if _, _, err := s.recv(buf, past); !errors.Is(err, errRecvTimeout) {
				t.Fatalf("empty socket: %v, want a timeout", err)
			}
			c.WriteToUDPAddrPort([]byte{0, opACK, 0, 7}, tid)
			fds := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}}
			if n, err := unix.Poll(fds, 5000); n != 1 || err != nil {
				t.Fatalf("the ACK never reached the socket: %d, %v", n, err)
			}
			n, from, err := s.recv(buf, past)
			if err != nil || from != peer || !bytes.Equal(buf[:n], []byte{0, opACK, 0, 7}) {
				t.Fatalf("late wait: % x from %v, %v; want the ACK from %v", buf[:n], from, err, peer)
			}
		})
	}
}

// The first OACK waits oackPatience timeouts for its ACK when the client
// negotiated none: a client that ACKs it late, but within that, gets DATA 1
// next, not the OACK again (atftp aborts on a second OACK). Without an
// ACK the OACK does come again; a client that negotiated a timeout gets
// exactly that.
func TestOACKWaitsLongerForItsFirstACK(t *testing.T) {
	const rto = 500 * time.Millisecond
	srv, port, _, _ := startDual(t, Settings{MaxWindowSize: 8, Timeout: rto, Retries: 2, MaxTransfers: 8, MaxPerClient: 8},
		map[string][]byte{"f.bin": bytes.Repeat([]byte("x"), 3000)})
	server := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))

	c := dial(t)
	c.WriteToUDPAddrPort([]byte("\x00\x01f.bin\x00octet\x00blksize\x001024\x00"), server)
	oack, tid := c.read(t)
	if oack[1] != opOACK {
		t.Fatalf("want OACK, got % x", oack)
	}
	time.Sleep(3 * rto / 2) // past one timeout, well within oackPatience of them
	c.WriteToUDPAddrPort([]byte{0, opACK, 0, 0}, tid)
	if pkt, _ := c.read(t); pkt[1] != opDATA || pkt[3] != 1 {
		t.Fatalf("after a late ACK 0, got % x, want DATA 1", pkt[:4])
	}
	if n := srv.Stats.Retransmits.Load(); n != 0 {
		t.Errorf("%d retransmits for a client that was late, not lost", n)
	}

	for _, tt := range []struct {
		rrq  string
		want time.Duration
	}{
		{"\x00\x01f.bin\x00octet\x00blksize\x001024\x00", oackPatience * rto},
		{"\x00\x01f.bin\x00octet\x00blksize\x001024\x00timeout\x001\x00", time.Second},
	} {
		c := dial(t)
		c.WriteToUDPAddrPort([]byte(tt.rrq), server)
		start := time.Now()
		if oack, _ := c.read(t); oack[1] != opOACK {
			t.Fatalf("want OACK, got % x", oack)
		}
		again := make([]byte, 2048)
		c.SetReadDeadline(time.Now().Add(10 * time.Second)) // c.read's 2 s is too close to the waits
		n, from, err := c.ReadFromUDPAddrPort(again)
		if err != nil {
			t.Fatalf("RRQ %q: no OACK again: %v", tt.rrq, err)
		}
		again, tid := again[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if took := time.Since(start); again[1] != opOACK || took < tt.want {
			t.Errorf("RRQ %q: % x after %s, want the OACK again after %s at the earliest", tt.rrq, again[:2], took, tt.want)
		}
		c.WriteToUDPAddrPort([]byte{0, opERROR, 0, 0, 0}, tid)
	}
}

// A client that repeats its RRQ before acknowledging the OACK has not
// seen it: it gets the OACK again at once, not after the transfer's own
// timeout (oackPatience of them). Once it has acknowledged, a repeated
// RRQ changes nothing. (Another request from the same port is a new
// transfer: TestChangedRequestStartsNewTransfer.)
func TestRepeatedRequestGetsTheOACKAgain(t *testing.T) {
	const rto = 2 * time.Second // the transfer's own resend comes after 6 s
	srv, port, _, _ := startDual(t, Settings{MaxWindowSize: 8, Timeout: rto, Retries: 2, MaxTransfers: 8, MaxPerClient: 8},
		map[string][]byte{"f.bin": bytes.Repeat([]byte("x"), 3000)})
	server := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	rrq := []byte("\x00\x01f.bin\x00octet\x00blksize\x001024\x00")

	c := dial(t)
	c.WriteToUDPAddrPort(rrq, server)
	first, tid := c.read(t)
	if first[1] != opOACK {
		t.Fatalf("want OACK, got % x", first)
	}
	c.WriteToUDPAddrPort(rrq, server)
	start := time.Now()
	again, from := c.read(t) // c.read waits 2 s, a third of the transfer's own wait
	if again[1] != opOACK || from != tid || !bytes.Equal(again, first) {
		t.Fatalf("after a repeated RRQ: % x from %s, want the OACK % x from %s", again, from, first, tid)
	}
	t.Logf("OACK again %s after the repeated RRQ", time.Since(start).Round(time.Microsecond))
	if n := srv.Stats.Retransmits.Load(); n != 1 {
		t.Errorf("%d retransmits counted, want 1", n)
	}

	c.WriteToUDPAddrPort([]byte{0, opACK, 0, 0}, tid)
	if pkt, _ := c.read(t); pkt[1] != opDATA || pkt[3] != 1 {
		t.Fatalf("after ACK 0, got % x, want DATA 1", pkt[:4])
	}
	c.WriteToUDPAddrPort(rrq, server) // after ACK 0: the transfer answers by its own timeout
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(rto / 2))
	if n, _, err := c.ReadFromUDPAddrPort(buf); err == nil {
		t.Fatalf("a repeated RRQ after ACK 0 got % x", buf[:n])
	}
	for b := byte(1); b <= 3; b++ {
		c.WriteToUDPAddrPort([]byte{0, opACK, 0, b}, tid)
		if b < 3 {
			if pkt, _ := c.read(t); pkt[1] != opDATA || pkt[3] != b+1 {
				t.Fatalf("after ACK %d, got % x", b, pkt[:4])
			}
		}
	}
}

// A client that asked without options learns of its transfer only from
// DATA 1: a repeated RRQ before ACK 1 gets DATA 1 again at once, not
// after the transfer's own timeout. Once it has acknowledged block 1, a
// repeated RRQ changes nothing.
func TestRepeatedPlainRequestGetsDataOneAgain(t *testing.T) {
	const rto = 4 * time.Second // c.read gives up after 2 s
	srv, port, _, _ := startDual(t, Settings{MaxWindowSize: 8, Timeout: rto, Retries: 2, MaxTransfers: 8, MaxPerClient: 8},
		map[string][]byte{"f.bin": bytes.Repeat([]byte("x"), 1000), "one.bin": []byte("one")})
	server := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))

	for _, name := range []string{"f.bin", "one.bin"} {
		rrq := []byte("\x00\x01" + name + "\x00octet\x00")
		c := dial(t)
		c.WriteToUDPAddrPort(rrq, server)
		first, tid := c.read(t)
		if first[1] != opDATA || first[3] != 1 {
			t.Fatalf("%s: want DATA 1, got % x", name, first[:4])
		}
		c.WriteToUDPAddrPort(rrq, server)
		again, from := c.read(t)
		if from != tid || !bytes.Equal(again, first) {
			t.Fatalf("%s: after a repeated RRQ: % x from %s, want DATA 1 (%d bytes) from %s", name, again[:4], from, len(first), tid)
		}
		c.WriteToUDPAddrPort([]byte{0, opACK, 0, 1}, tid)
		if name == "one.bin" {
			continue
		}
		if pkt, _ := c.read(t); pkt[1] != opDATA || pkt[3] != 2 {
			t.Fatalf("after ACK 1, got % x, want DATA 2", pkt[:4])
		}
		c.WriteToUDPAddrPort(rrq, server) // after ACK 1: the transfer answers by its own timeout
		buf := make([]byte, 2048)
		c.SetReadDeadline(time.Now().Add(rto / 2))
		if n, _, err := c.ReadFromUDPAddrPort(buf); err == nil {
			t.Fatalf("a repeated RRQ after ACK 1 got % x", buf[:n])
		}
		c.WriteToUDPAddrPort([]byte{0, opACK, 0, 2}, tid)
	}
	if n := srv.Stats.Retransmits.Load(); n != 2 {
		t.Errorf("%d retransmits counted, want 2", n)
	}
}
