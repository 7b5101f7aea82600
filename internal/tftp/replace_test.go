package tftp

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"bootforge/internal/bootfs"
)

// A client that asked with options and got no answer it could use asks
// again from the same port with other options, or none (a PXE ROM or
// U-Boot falling back to a plain RRQ): it gets a new transfer from a new
// TID that answers what it asks now, not the OACK of what it asked
// before, which a client that asked without options must take for an
// error (RFC 2347). The same request repeated still gets the running
// transfer's first packet again. The transfers replaced end quietly as
// aborted by the client, and nothing stays counted: in every wait mode,
// with max_per_client 1.
func TestChangedRequestStartsNewTransfer(t *testing.T) {
	want := make([]byte, 5*512+300)
	for i := range want {
		want[i] = byte(i * 7)
	}
	forEachWait(t, slow, map[string][]byte{"f.bin": want}, func(t *testing.T, srv *Server, server netip.AddrPort, ev *events, w waitMode) {
		c := dial(t)
		rrq := []byte("\x00\x01f.bin\x00octet\x00blksize\x001468\x00tsize\x000\x00")
		c.WriteToUDPAddrPort(rrq, server)
		oack, tid1 := c.read(t)
		if !bytes.Equal(oack, []byte("\x00\x06blksize\x001468\x00tsize\x002860\x00")) {
			t.Fatalf("want the OACK of blksize 1468 and tsize, got %q", oack)
		}
		c.WriteToUDPAddrPort(rrq, server) // the same request: the same OACK again
		if again, from := c.read(t); from != tid1 || !bytes.Equal(again, oack) {
			t.Fatalf("after the same request: %q from %s, want the OACK again from %s", again, from, tid1)
		}
		plain := []byte("\x00\x01f.bin\x00octet\x00")
		c.WriteToUDPAddrPort(plain, server)
		first, tid2 := c.read(t)
		if first[1] != opDATA || first[3] != 1 || len(first) != 4+512 || tid2 == tid1 {
			t.Fatalf("after a plain request: % x (%d bytes) from %s, want DATA 1 of 512 bytes from a TID other than %s",
				first[:4], len(first)-4, tid2, tid1)
		}
		checkWait(t, srv, c, w)
		c.WriteToUDPAddrPort(plain, server) // the same again: DATA 1 again from the same transfer
		if again, from := c.read(t); from != tid2 || !bytes.Equal(again, first) {
			t.Fatalf("after the same plain request: % x from %s, want DATA 1 again from %s", again[:4], from, tid2)
		}
		if got := lockstep(t, c, first, tid2, 512); !bytes.Equal(got, want) {
			t.Fatalf("got %d bytes, want the %d-byte file", len(got), len(want))
		}
		expectSilence(t, c)

		// A smaller blksize, after the OACK of a larger one.
		c = dial(t)
		c.WriteToUDPAddrPort(rrq, server)
		_, tid1 = c.read(t) // the OACK, not acknowledged
		c.WriteToUDPAddrPort([]byte("\x00\x01f.bin\x00octet\x00blksize\x001024\x00"), server)
		oack, tid2 = c.read(t)
		if tid2 == tid1 || !bytes.Equal(oack, []byte("\x00\x06blksize\x001024\x00")) {
			t.Fatalf("after a request with a smaller blksize: %q from %s, want the OACK of blksize 1024 from a TID other than %s", oack, tid2, tid1)
		}
		c.WriteToUDPAddrPort([]byte{0, opACK, 0, 0}, tid2)
		first, _ = c.read(t)
		if got := lockstep(t, c, first, tid2, 1024); !bytes.Equal(got, want) {
			t.Fatalf("got %d bytes, want the %d-byte file", len(got), len(want))
		}
		expectSilence(t, c)
		idle(t, srv, ev, map[string]int{"ok": 2, "aborted by client": 2}, 2)
	})
}

// A repeated request that lists its options in another order (RFC 2347:
// they are a set) is the same request: it gets the running transfer's
// OACK again from the same TID, not a new transfer.
func TestRepeatedRequestInAnotherOrder(t *testing.T) {
	want := bytes.Repeat([]byte("o"), 3000)
	forEachWait(t, slow, map[string][]byte{"f.bin": want}, func(t *testing.T, srv *Server, server netip.AddrPort, ev *events, _ waitMode) {
		c := dial(t)
		c.WriteToUDPAddrPort([]byte("\x00\x01f.bin\x00octet\x00blksize\x001024\x00tsize\x000\x00"), server)
		oack, tid := c.read(t)
		if oack[1] != opOACK {
			t.Fatalf("want OACK, got % x", oack)
		}
		c.WriteToUDPAddrPort([]byte("\x00\x01f.bin\x00octet\x00tsize\x000\x00blksize\x001024\x00"), server)
		if again, from := c.read(t); from != tid || !bytes.Equal(again, oack) {
			t.Fatalf("after the request in another order: %q from %s, want the OACK %q again from %s", again, from, oack, tid)
		}
		c.WriteToUDPAddrPort([]byte{0, opACK, 0, 0}, tid)
		first, _ := c.read(t)
		if got := lockstep(t, c, first, tid, 1024); !bytes.Equal(got, want) {
			t.Fatalf("got %d bytes, want the %d-byte file", len(got), len(want))
		}
		expectSilence(t, c)
		idle(t, srv, ev, map[string]int{"ok": 1}, 1)
	})
}

// A request for another file from the port of a running transfer is
// served, before the client has acknowledged the OACK and in the data
// phase; it was dropped.
func TestOtherFileFromSamePortIsServed(t *testing.T) {
	a, b := bytes.Repeat([]byte("a"), 3000), bytes.Repeat([]byte("b"), 1300)
	forEachWait(t, slow, map[string][]byte{"a.bin": a, "b.bin": b}, func(t *testing.T, srv *Server, server netip.AddrPort, ev *events, w waitMode) {
		c := dial(t)
		c.WriteToUDPAddrPort([]byte("\x00\x01a.bin\x00octet\x00blksize\x001468\x00"), server)
		oack, tid1 := c.read(t)
		if oack[1] != opOACK {
			t.Fatalf("want OACK, got % x", oack)
		}
		c.WriteToUDPAddrPort([]byte("\x00\x01b.bin\x00octet\x00"), server)
		first, tid2 := c.read(t)
		if first[1] != opDATA || first[3] != 1 || tid2 == tid1 {
			t.Fatalf("after a request for b.bin: % x from %s, want DATA 1 from a TID other than %s", first[:4], tid2, tid1)
		}
		checkWait(t, srv, c, w)
		if got := lockstep(t, c, first, tid2, 512); !bytes.Equal(got, b) {
			t.Fatalf("got %q, want b.bin", got)
		}
		expectSilence(t, c)

		// The same in the data phase: the transfer replaced waits for
		// the ACK of DATA 3.
		c = dial(t)
		c.WriteToUDPAddrPort([]byte("\x00\x01a.bin\x00octet\x00"), server)
		for block := byte(1); block <= 3; block++ {
			pkt, from := c.read(t)
			if pkt[1] != opDATA || pkt[3] != block {
				t.Fatalf("want DATA %d, got % x", block, pkt[:4])
			}
			if tid1 = from; block < 3 {
				c.WriteToUDPAddrPort([]byte{0, opACK, 0, block}, tid1)
			}
		}
		c.WriteToUDPAddrPort([]byte("\x00\x01b.bin\x00octet\x00"), server)
		first, tid2 = c.read(t)
		if first[1] != opDATA || first[3] != 1 || tid2 == tid1 {
			t.Fatalf("after a request for b.bin: % x from %s, want DATA 1 from a TID other than %s", first[:4], tid2, tid1)
		}
		if got := lockstep(t, c, first, tid2, 512); !bytes.Equal(got, b) {
			t.Fatalf("got %q, want b.bin", got)
		}
		expectSilence(t, c)
		idle(t, srv, ev, map[string]int{"ok": 2, "aborted by client": 2}, 0)
		var acked []int64 // by the two transfers of a.bin replaced
		for _, e := range ev.all() {
			if e.File == "a.bin" {
				acked = append(acked, e.Bytes)
			}
		}
		slices.Sort(acked)
		if !slices.Equal(acked, []int64{0, 2 * 512}) {
			t.Errorf("bytes recorded for a.bin %v, want 0 (before the OACK's ACK) and %d (after ACK 2)", acked, 2*512)
		}
	})
}

// A burst of requests from one port, each asking something else, each
// replacing the one before, some before their transfer has started:
// each is either recorded once or refused for the client's cap (while a
// transfer replaced is still ending, see TestChangedRequestsCapped), at
// most the last one admitted fails by its timeout (it is never
// acknowledged), and nothing stays counted or running.
func TestBurstOfChangedRequests(t *testing.T) {
	st := Settings{MaxWindowSize: 8, Timeout: 100 * time.Millisecond, Retries: 0, MaxTransfers: 8, MaxPerClient: 1}
	forEachWait(t, st, map[string][]byte{"f.bin": bytes.Repeat([]byte("f"), 3000)}, func(t *testing.T, srv *Server, server netip.AddrPort, ev *events, _ waitMode) {
		c := dial(t)
		const n = 50
		for i := range n {
			c.WriteToUDPAddrPort(fmt.Appendf(nil, "\x00\x01f.bin\x00octet\x00blksize\x00%d\x00", 512+i), server)
		}
		refused := func() int { return int(srv.Stats.Refusals.PerClient.Load()) }
		for deadline := time.Now().Add(10 * time.Second); len(ev.all())+refused() < n && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		results := map[string]int{}
		for _, e := range ev.all() {
			results[e.Result]++
		}
		if results["failed"] > 1 || results["aborted by client"]+results["failed"]+refused() != n {
			t.Errorf("results %v and %d refused for %d requests; want each request once, at most one failed", results, refused(), n)
		}
		t.Logf("%v, %d refused", results, refused())
		idle(t, srv, ev, results, 0)
	})
}

// gate is a file system whose Open of one file waits until release is
// closed: a transfer that takes its time to end.
type gate struct {
	bootfs.FS
	name    string
	entered chan struct{} // closed when the Open of name has begun
	release chan struct{}
}

func (g gate) Open(r bootfs.Request) (bootfs.File, error) {
	if r.Path == g.name {
		close(g.entered)
		<-g.release
	}
	return g.FS.Open(r)
}

// A transfer replaced counts against its client until it has ended. A
// client that goes on changing its request from one port while the
// transfer it replaced is still ending (here: held in the file system)
// is refused for its cap, as it would be from other ports, instead of
// starting a goroutine and a socket per packet, each waiting for the one
// before. Once that transfer has ended, the port is served again.
func TestChangedRequestsCapped(t *testing.T) {
	g := gate{name: "slow.bin", entered: make(chan struct{}), release: make(chan struct{})}
	want := bytes.Repeat([]byte("f"), 1300)
	srv, port, ev, _ := startDual(t, slow, map[string][]byte{"slow.bin": want, "f.bin": want}, func(s *Server) {
		g.FS = *s.files.Load()
		s.Update(g, *s.settings.Load())
	})
	var once sync.Once
	release := func() { once.Do(func() { close(g.release) }) }
	t.Cleanup(release) // before the server's shutdown, which waits for the transfer held
	server := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	c := dial(t)
	c.WriteToUDPAddrPort([]byte("\x00\x01slow.bin\x00octet\x00"), server)
	<-g.entered
	// The first change takes the place of the transfer held: it waits for
	// that one to end.
	c.WriteToUDPAddrPort([]byte("\x00\x01f.bin\x00octet\x00"), server)
	// The next ones are over the cap while it has not.
	for i := range 4 {
		c.WriteToUDPAddrPort(fmt.Appendf(nil, "\x00\x01f.bin\x00octet\x00blksize\x00%d\x00", 1024+i), server)
		pkt, from := c.read(t)
		if from != server || !bytes.Equal(pkt, appendError(nil, errUndefined, "too many transfers from this client")) {
			t.Fatalf("change %d while the transfer replaced is held: %q from %s, want the per-client refusal from %s", i, pkt, from, server)
		}
	}
	if n := srv.Stats.Refusals.PerClient.Load(); n != 4 {
		t.Errorf("%d refused for the client's cap, want 4", n)
	}
	release()
	expectSilence(t, c) // the transfers replaced end without a word
	c.WriteToUDPAddrPort([]byte("\x00\x01f.bin\x00octet\x00"), server)
	first, tid := c.read(t)
	if got := lockstep(t, c, first, tid, 512); !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want the %d-byte file", len(got), len(want))
	}
	expectSilence(t, c)
	idle(t, srv, ev, map[string]int{"aborted by client": 2, "ok": 1}, 0)
}

// The tftp-hpa client fetches the files of one command from one port:
// it sends the final ACK of a file and at once the request for the next.
// When the server reads that request before the transfer reads the ACK,
// the transfer has ended all the same, and is recorded as complete, not
// as aborted by the client. The order is forced here: on one processor,
// with the transfer waiting through the netpoller, the final ACK leaves
// in a raw system call, which lets nothing else run, and the next request
// is handled before the transfer can run.
func TestFinalACKBeforeNextRequest(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	a, b := bytes.Repeat([]byte("a"), 1300), bytes.Repeat([]byte("b"), 700)
	srv, port, ev, _ := startDual(t, slow, map[string][]byte{"a.bin": a, "b.bin": b}, func(s *Server) { s.blocking = 0 })
	server := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	c := dial(t)
	c.WriteToUDPAddrPort([]byte("\x00\x01a.bin\x00octet\x00"), server)
	var tid netip.AddrPort
	for block := byte(1); block <= 3; block++ {
		var pkt []byte
		if pkt, tid = c.read(t); pkt[1] != opDATA || pkt[3] != block {
			t.Fatalf("want DATA %d, got % x", block, pkt[:4])
		}
		if block < 3 {
			c.WriteToUDPAddrPort([]byte{0, opACK, 0, block}, tid)
		}
	}
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	ack, to := []byte{0, opACK, 0, 3}, rawSockaddr(tid, 0)
	rc.Control(func(fd uintptr) {
		_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&ack[0])), uintptr(len(ack)),
			0, uintptr(unsafe.Pointer(&to[0])), uintptr(len(to)))
		if errno != 0 {
			t.Fatalf("sending ACK 3: %v", errno)
		}
	})
	src := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(c.LocalAddr().(*net.UDPAddr).Port))
	srv.handle(nil, []byte("\x00\x01b.bin\x00octet\x00"), inbound{src: src, dst: netip.MustParseAddr("127.0.0.1")})

	first, tid2 := c.read(t)
	if got := lockstep(t, c, first, tid2, 512); !bytes.Equal(got, b) {
		t.Fatalf("got %q, want b.bin", got)
	}
	expectSilence(t, c)
	idle(t, srv, ev, map[string]int{"ok": 2}, 0)
	for _, e := range ev.all() {
		if e.File == "a.bin" && e.Bytes != int64(len(a)) {
			t.Errorf("a.bin recorded with %d bytes, want %d", e.Bytes, len(a))
		}
	}
}

// The tftp-hpa client itself, fetching three files in one command from
// one port, in each wait mode: every transfer is recorded as complete.
// Before, some were recorded as aborted by the client (4 to 14 of 120
// with the netpoller, where the next request most often comes before the
// transfer has read the final ACK).
func TestTFTPHPAFilesFromOnePort(t *testing.T) {
	files := map[string][]byte{}
	for _, name := range []string{"a.bin", "b.bin", "c.bin"} {
		files[name] = bytes.Repeat([]byte(name[:1]), 3000)
	}
	forEachWait(t, slow, files, func(t *testing.T, srv *Server, server netip.AddrPort, ev *events, _ waitMode) {
		const runs = 40
		for range runs {
			// Each run is a new client port, but the same client IP,
			// which may have one transfer at a time: the last run's
			// final ACK must have been read before this run asks.
			waitIdle(srv)
			cmd := exec.Command("tftp", server.Addr().String(), strconv.Itoa(int(server.Port())), "-m", "binary", "-c", "get", "a.bin", "b.bin", "c.bin")
			cmd.Dir = t.TempDir()
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("tftp: %v\n%s", err, out)
			}
			for name, want := range files {
				if got, err := os.ReadFile(filepath.Join(cmd.Dir, name)); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s: %d bytes (%v), want %d; tftp said:\n%s", name, len(got), err, len(want), out)
				}
			}
		}
		idle(t, srv, ev, map[string]int{"ok": 3 * runs}, 0)
	})
}

// forEachWait runs f on a server of files with settings st whose first
// transfer waits in each wait mode in turn (Server.blocking sets which).
func forEachWait(t *testing.T, st Settings, files map[string][]byte, f func(*testing.T, *Server, netip.AddrPort, *events, waitMode)) {
	for _, w := range []waitMode{waitRaw, waitBlocking, waitPoll} {
		t.Run(w.String(), func(t *testing.T) {
			blocking := map[waitMode]int{waitRaw: 2, waitBlocking: 1, waitPoll: 0}[w]
			srv, port, ev, _ := startDual(t, st, files, func(s *Server) { s.blocking = blocking })
			f(t, srv, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), ev, w)
		})
	}
}

// slow are the settings of tests whose every packet answers a request: the
// timeout is far beyond the test's reads, so none is a resend. Each
// client may have one transfer at a time.
var slow = Settings{MaxWindowSize: 8, Timeout: 5 * time.Second, Retries: 2, MaxTransfers: 8, MaxPerClient: 1}

// checkWait checks that c's transfer waits in mode w.
func checkWait(t *testing.T, srv *Server, c client, w waitMode) {
	t.Helper()
	src := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(c.LocalAddr().(*net.UDPAddr).Port))
	srv.mu.Lock()
	tr := srv.active[src]
	srv.mu.Unlock()
	if tr == nil || tr.wait != w {
		t.Fatalf("transfer %+v, want one waiting in mode %s", tr, w)
	}
}

// lockstep acknowledges DATA packets of blksize bytes from tid, from
// first on, until the last, and returns the data.
func lockstep(t *testing.T, c client, first []byte, tid netip.AddrPort, blksize int) []byte {
	t.Helper()
	pkt, data := first, []byte(nil)
	for block := uint16(1); ; block++ {
		if pkt[1] != opDATA || uint16(pkt[2])<<8|uint16(pkt[3]) != block {
			t.Fatalf("want DATA %d, got % x", block, pkt[:4])
		}
		data = append(data, pkt[4:]...)
		c.WriteToUDPAddrPort([]byte{0, opACK, byte(block >> 8), byte(block)}, tid)
		if len(pkt) < 4+blksize {
			return data
		}
		var from netip.AddrPort
		if pkt, from = c.read(t); from != tid {
			t.Fatalf("% x from %s during the transfer from %s", pkt[:4], from, tid)
		}
	}
}

// expectSilence checks that nothing more comes to c: no ERROR nor any
// late packet from a transfer replaced.
func expectSilence(t *testing.T, c client) {
	t.Helper()
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, from, err := c.ReadFromUDPAddrPort(buf); err == nil {
		t.Fatalf("after the transfer, % x from %s", buf[:min(n, 4)], from)
	}
}

// waitIdle waits up to 5 s for srv to have no transfer in flight.
func waitIdle(srv *Server) {
	for deadline := time.Now().Add(5 * time.Second); srv.Active() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
}

// idle waits until srv has no transfer left, then checks that nothing
// stays counted for any client, that the transfers were recorded with
// the results given, that the counters agree (with retransmits first
// packets sent again), and that no goroutine of a transfer is left.
func idle(t *testing.T, srv *Server, ev *events, results map[string]int, retransmits int64) {
	t.Helper()
	waitIdle(srv)
	srv.mu.Lock()
	active, perClient := len(srv.active), len(srv.perClient)
	srv.mu.Unlock()
	if active != 0 || perClient != 0 {
		t.Errorf("%d transfers active, %d clients counted; want none", active, perClient)
	}
	got := map[string]int{}
	for _, e := range ev.all() {
		got[e.Result]++
	}
	if !maps.Equal(got, results) {
		t.Errorf("events by result %v, want %v", got, results)
	}
	st := &srv.Stats
	if ok, ab, failed := st.Transfers.Load(), st.Aborted.Load(), st.Failed.Load(); ok != int64(results["ok"]) || ab != int64(results["aborted by client"]) || failed != int64(results["failed"]) {
		t.Errorf("counted %d ok, %d aborted, %d failed; want %d, %d, %d", ok, ab, failed, results["ok"], results["aborted by client"], results["failed"])
	}
	if r := st.Retransmits.Load(); r != retransmits {
		t.Errorf("%d retransmits counted, want %d", r, retransmits)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("a transfer's goroutine is left: %v", err)
	}
}
