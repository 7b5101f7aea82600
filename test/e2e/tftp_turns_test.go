package e2e

import (
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestTFTPTurnsRealClients: every one of the 32 TFTP turns is held by a
// transfer whose client never acknowledges its OACK, so real clients
// (atftp, tftp-hpa, busybox) that ask meanwhile wait for a turn: each gets
// its first packet at once and then a window every 0.5 s, and goes at full
// speed once the holders' turns end (2 s). Every client must take that
// pace without giving up, and every file must arrive whole.
func TestTFTPTurnsRealClients(t *testing.T) {
	need(t, "atftp", "tftp", "busybox", "curl")
	root := t.TempDir()
	sum := floodRandomFile(t, root, "pxe/loader.efi", 256<<10)
	srv := StartServer(t, ServerOptions{Root: root, Config: "log: {level: info}\n" +
		"tftp: {max_per_client: 100, timeout: 1s, retries: 1}\n"}) // the holders give up within seconds
	server, err := net.ResolveUDPAddr("udp4", srv.TFTPAddr)
	if err != nil {
		t.Fatal(err)
	}

	const turns = 32
	for i := range turns {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.WriteToUDP(floodRRQ("pxe/loader.efi"), server); err != nil {
			t.Fatalf("holder %d: %v", i+1, err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 1500)
		if n, _, err := c.ReadFromUDP(buf); err != nil || buf[1] != 6 {
			t.Fatalf("holder %d: no OACK (%v, % x)", i+1, err, buf[:min(n, 4)])
		}
	}

	host, port := Host(srv.TFTPAddr), Port(srv.TFTPAddr)
	dir := t.TempDir()
	clients := map[string][]string{}
	for i := range 4 {
		out := filepath.Join(dir, fmt.Sprint("atftp-", i))
		clients[out] = []string{"atftp", "--option", "blksize 1468", "-g", "-r", "pxe/loader.efi", "-l", out, host, port}
		out = filepath.Join(dir, fmt.Sprint("tftp-hpa-", i))
		clients[out] = []string{"tftp", host, port, "-m", "binary", "-c", "get", "pxe/loader.efi", out}
		out = filepath.Join(dir, fmt.Sprint("busybox-", i))
		clients[out] = []string{"busybox", "tftp", "-b", "1468", "-g", "-r", "pxe/loader.efi", "-l", out, host, port}
	}
	type result struct {
		out, said string
		err       error
	}
	results := make(chan result, len(clients))
	for out, argv := range clients {
		go func() {
			said, err := run(t, 60*time.Second, argv[0], argv[1:]...)
			results <- result{out, said, err}
		}()
	}
	for range clients {
		r := <-results
		if r.err != nil {
			t.Errorf("%s: %v\n%s", filepath.Base(r.out), r.err, r.said)
			continue
		}
		floodCheckFile(t, r.out, sum, filepath.Base(r.out)+" while every turn was held", r.said)
	}

	m := scrapeMetrics(t, srv, "")
	// Every client that asked within the holders' 2 s waited; on a
	// loaded machine the last ones may start later and find a turn free.
	if n := m.value(t, "bootforge_tftp_turn_waits_total"); n < 1 {
		t.Errorf("bootforge_tftp_turn_waits_total %v, want the clients that came while every turn was held", n)
	} else {
		t.Logf("%v of %d clients waited for a turn", n, len(clients))
	}
	if n := m.value(t, "bootforge_tftp_turn_wait_seconds_total"); n <= 0 {
		t.Errorf("bootforge_tftp_turn_wait_seconds_total %v, want more than 0", n)
	}
	if n := m.value(t, "bootforge_tftp_turn_waiting_transfers"); n != 0 {
		t.Errorf("bootforge_tftp_turn_waiting_transfers %v after every client ended, want 0", n)
	}
	if n := m.value(t, "bootforge_tftp_turn_wait_timeouts_total"); n != 0 {
		t.Errorf("bootforge_tftp_turn_wait_timeouts_total %v: a client waited 10 s", n)
	}
}
