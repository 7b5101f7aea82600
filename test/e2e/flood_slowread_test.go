package e2e

import (
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestFloodHTTPSlowRead: one host opens many connections that each ask
// for a large file and then stop reading. Without a per-client bound they
// would hold every slot of http.max_requests and every other client would
// get 503; with http.max_per_client the host holds only its share, and a
// client on another address (127.0.0.2) still fetches the file.
func TestFloodHTTPSlowRead(t *testing.T) {
	need(t, "curl")
	root := t.TempDir()
	sum := floodRandomFile(t, root, "images/big.img", 16<<20)
	srv := StartServer(t, ServerOptions{Root: root, Addr: "0.0.0.0",
		Config: "log: {level: info}\nhttp: {access_log: false, max_requests: 64, max_per_client: 8}\n"})
	addr := "127.0.0.1:" + Port(srv.HTTPAddr)

	const readers = 100
	stopReading(t, addr, "/images/big.img", readers, nil)
	time.Sleep(time.Second) // every request reaches the handler, or its 503

	out := filepath.Join(t.TempDir(), "during")
	o, err := run(t, 60*time.Second, "curl", "-sS", "--fail", "--interface", "127.0.0.2", "-o", out,
		"http://127.0.0.1:"+Port(srv.HTTPAddr)+"/images/big.img")
	if err != nil {
		t.Fatalf("curl from another address while %d connections of one host stop reading: %v\n%s", readers, err, o)
	}
	floodCheckFile(t, out, sum, "curl during the slow read", o)
	floodCheckMemory(t, srv, "HTTP slow read")
}

// TestFloodHTTPSlowReadTurns: large bodies stream in turns, and a turn
// ends after a while even if its client stopped reading. Connections from
// one host that ask for a large file and stop reading take every turn and
// more; curl's downloads from another address, forty at once, still all
// complete, each byte for byte, and /metrics (checked by promtool) counts
// the bodies that waited.
func TestFloodHTTPSlowReadTurns(t *testing.T) {
	need(t, "curl", "promtool")
	root := t.TempDir()
	sum := floodRandomFile(t, root, "images/big.img", 16<<20)
	srv := StartServer(t, ServerOptions{Root: root, Addr: "0.0.0.0",
		Config: "log: {level: info}\nhttp: {access_log: false, max_requests: 256, max_per_client: 64}\n"})
	addr := "127.0.0.1:" + Port(srv.HTTPAddr)

	const readers = 24 // more than the 16 turns
	stopReading(t, addr, "/images/big.img", readers, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)})
	time.Sleep(time.Second) // every request reaches the handler

	const downloads = 40
	dir := t.TempDir()
	errs := make(chan error, downloads)
	outs := make([]string, downloads)
	for i := range downloads {
		outs[i] = filepath.Join(dir, fmt.Sprint(i))
		go func() {
			o, err := run(t, 90*time.Second, "curl", "-sS", "--fail", "-o", outs[i], "http://"+addr+"/images/big.img")
			if err != nil {
				err = fmt.Errorf("curl %d: %v\n%s", i+1, err, o)
			}
			errs <- err
		}()
	}
	for range downloads {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		return
	}
	for i, out := range outs {
		floodCheckFile(t, out, sum, fmt.Sprintf("curl %d while %d connections stop reading", i+1, readers), "")
	}
	m := scrapeMetrics(t, srv, "")
	// At least the readers beyond the 16 turns waited: every turn was
	// taken for 2 s when they asked.
	if n := m.value(t, "bootforge_http_turn_waits_total"); n < readers-16 {
		t.Errorf("bootforge_http_turn_waits_total %v, want at least %d", n, readers-16)
	}
	if n := m.value(t, "bootforge_http_turn_wait_seconds_total"); n <= 0 {
		t.Errorf("bootforge_http_turn_wait_seconds_total %v, want more than 0", n)
	}
	if n := m.value(t, "bootforge_http_turn_waiting_bodies"); n != 0 {
		t.Errorf("bootforge_http_turn_waiting_bodies %v after every download ended, want 0", n)
	}
}

// stopReading opens n connections to addr (from local, if not nil), asks
// for path on each and never reads the answer; they are closed when the
// test ends.
func stopReading(t *testing.T, addr, path string, n int, local *net.TCPAddr) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != nil {
		d.LocalAddr = local
	}
	for i := range n {
		c, err := d.Dial("tcp4", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
		t.Cleanup(func() { c.Close() })
		c.(*net.TCPConn).SetReadBuffer(4096)
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr); err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
	}
}
