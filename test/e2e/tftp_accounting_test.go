package e2e

// What TFTP counts reaches /metrics: requests the allow-list drops
// (atftp from outside it).

import (
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestTFTPNotAllowedMetrics: with allow: [10.0.0.0/8], three atftp
// downloads from 127.0.0.1 get no answer, and every RRQ they sent shows in
// bootforge_tftp_refused_total{reason="not_allowed"}, as curl's refusals
// show in the 4xx class; nothing is counted malformed.
func TestTFTPNotAllowedMetrics(t *testing.T) {
	need(t, "atftp", "curl", "promtool")
	root := t.TempDir()
	tfWriteFile(t, root, "ver.txt", []byte("bootforge\n"))
	// The API stays reachable from here, to scrape.
	s := StartServer(t, ServerOptions{Root: root, Config: "allow: [10.0.0.0/8]\napi:\n  allow: [127.0.0.0/8]\n"})
	before := scrapeMetrics(t, s, "")

	// atftp says "timeout: retrying" once for each RRQ that went
	// unanswered, the last one included.
	var mu sync.Mutex
	sent := 0
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := run(t, 60*time.Second, "atftp", "--tftp-timeout", "1", "-g", "-r", "ver.txt",
				"-l", filepath.Join(t.TempDir(), strconv.Itoa(i)), Host(s.TFTPAddr), Port(s.TFTPAddr))
			if err == nil {
				t.Errorf("atftp from outside the allow-list fetched the file:\n%s", out)
			}
			mu.Lock()
			sent += strings.Count(out, "timeout: retrying")
			mu.Unlock()
		}()
	}
	wg.Wait()
	if code := curlStatus(t, "", "http://"+s.HTTPAddr+"/ver.txt"); code != 403 {
		t.Errorf("curl from outside the allow-list: %d, want 403", code)
	}
	after := scrapeMetrics(t, s, "")
	checkDeltas(t, before, after, map[string]float64{
		`bootforge_tftp_refused_total{reason="not_allowed"}`: float64(sent),
		`bootforge_tftp_refused_total{reason="denied"}`:      0,
		`bootforge_tftp_malformed_total`:                     0,
		`bootforge_tftp_transfers_total{result="ok"}`:        0,
		`bootforge_http_requests_total{class="4xx"}`:         1,
	})
	if sent < 3 {
		t.Errorf("atftp sent %d requests, want at least 3", sent)
	}
	if !strings.Contains(after.text, `# HELP bootforge_tftp_refused_total`) || !strings.Contains(grepLines(after.text, "# HELP bootforge_tftp_refused_total"), "not_allowed") {
		t.Errorf("the help of bootforge_tftp_refused_total does not name not_allowed:\n%s", grepLines(after.text, "bootforge_tftp_refused_total"))
	}
}
