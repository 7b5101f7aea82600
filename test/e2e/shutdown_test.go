package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestSigtermStopsEveryListener: on SIGTERM every listener stops taking
// new work at once, while a download in flight finishes. During the drain
// of a slow HTTP download, a DHCP DISCOVER gets no answer, atftp gets no
// file, and neither the file server nor the API accepts a connection.
// Before, the servers were stopped one after another: TFTP served new
// requests while HTTP drained, and DHCP answered until both had.
func TestSigtermStopsEveryListener(t *testing.T) {
	need(t, "curl", "atftp")
	lab := NewLab(t)
	s := dhStart(t, lab, dhAuthConfig("192.0.2.100", "192.0.2.200", ""))
	h := dhAddHost(t, lab, "192.0.2.10")
	c := dhSocket(t, h.Netns, h.Iface, 68)
	if err := os.WriteFile(filepath.Join(s.Root, "small"), []byte("small file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Before SIGTERM, every listener answers.
	if r := dhExchange(t, c, "255.255.255.255:67", dhNewMsg("02:00:00:00:7e:01", dhDiscover), dhReplyWait); r == nil || r.Type() != dhOffer {
		t.Fatalf("DISCOVER before SIGTERM: want an OFFER, got %v", r)
	}
	// A request that gets no answer times out: that is a refusal too.
	tftpGet := func() (string, error) {
		return h.Exec(4*time.Second, "atftp", "-g", "-r", "small", "-l", "/dev/stdout", Host(s.TFTPAddr), Port(s.TFTPAddr))
	}
	if out, err := tftpGet(); err != nil || !bytes.Contains([]byte(out), []byte("small file")) {
		t.Fatalf("atftp before SIGTERM: %v\n%s", err, out)
	}

	// A download slow enough to outlast the checks below.
	const n = 64 << 20
	data := htRandomFile(t, filepath.Join(s.Root, "big.iso"), n, 7)
	out := filepath.Join(t.TempDir(), "big.iso")
	dl := startDownload(t, h.Command("curl", "-sS", "--limit-rate", "4M", "-o", out, "http://"+s.HTTPAddr+"/big.iso"), out)

	start := time.Now()
	s.Signal(syscall.SIGTERM)
	s.WaitLog("shutting down", 5*time.Second)
	// Give the listeners a moment to close: "at once", not "at the same
	// instant as the log line".
	time.Sleep(200 * time.Millisecond)
	if r := dhExchange(t, c, "255.255.255.255:67", dhNewMsg("02:00:00:00:7e:02", dhDiscover), dhSilence); r != nil {
		t.Errorf("DHCP answered a DISCOVER during the drain: %v", r)
	}
	if got, err := tftpGet(); err == nil || bytes.Contains([]byte(got), []byte("small file")) {
		t.Errorf("TFTP served a new request during the drain (%v):\n%s", err, got)
	}
	for _, addr := range []string{s.HTTPAddr, s.APIAddr} {
		out, err := h.Exec(5*time.Second, "curl", "-sS", "--max-time", "2", "-o", "/dev/null", "http://"+addr+"/")
		if err == nil {
			t.Errorf("%s accepted a new request during the drain:\n%s", addr, out)
		}
	}
	t.Logf("checked the listeners in %s of the drain", time.Since(start).Round(time.Millisecond))
	if _, exited := s.Exited(0); exited {
		t.Fatalf("the server exited before the download finished; this test proves nothing (slow the download)")
	}
	dl.stillRunning(t, "the checks did")

	// The download in flight finishes, whole, and then the server exits.
	dl.drained(t, s, htSum(data))
}
