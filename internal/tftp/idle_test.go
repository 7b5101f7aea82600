package tftp

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

// A client that never acknowledges the OACK holds its transfer's slot no
// longer than maxIdle, as one that stops in the data phase does, whatever
// retries and timeout apply: with timeout 255 and five retries the OACK's
// doubling waits alone came to four and a half hours.
func TestUnansweredOACKBoundedByMaxIdle(t *testing.T) {
	saved := maxIdle
	maxIdle = 1500 * time.Millisecond
	t.Cleanup(func() { maxIdle = saved })
	srv, port, ev, _ := startDual(t, Settings{MaxWindowSize: 8, Timeout: time.Second, Retries: 10, MaxTransfers: 8, MaxPerClient: 8},
		map[string][]byte{"f.bin": bytes.Repeat([]byte("x"), 3000)})
	server := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))

	c := dial(t)
	start := time.Now()
	c.WriteToUDPAddrPort([]byte("\x00\x01f.bin\x00octet\x00blksize\x001024\x00timeout\x001\x00"), server)
	if oack, _ := c.read(t); oack[1] != opOACK {
		t.Fatalf("want OACK, got % x", oack)
	}
	// Waits of 1 s and 2 s pass maxIdle; ten retries would take 2047 s.
	e := waitEvent(t, ev, "f.bin")
	if e.Result != "failed" {
		t.Errorf("result %q, want failed", e.Result)
	}
	t.Logf("gave up after %s", time.Since(start).Round(time.Millisecond))
	if n := srv.Active(); n != 0 {
		t.Errorf("%d transfers still active", n)
	}
}
