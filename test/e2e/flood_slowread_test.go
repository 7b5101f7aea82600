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
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := 0; i < readers; i++ {
		c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
		c.(*net.TCPConn).SetReadBuffer(4096)
		conns = append(conns, c)
		if _, err := fmt.Fprintf(c, "GET /images/big.img HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
	}
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
