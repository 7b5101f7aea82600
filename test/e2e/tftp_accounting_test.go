package e2e

// What TFTP counts reaches /metrics, the log and the boot log: requests
// the allow-list drops (atftp from outside it), and the bytes of a
// transfer that fails part-way (a raw client that gives up with ERROR 0,
// tftp-hpa killed mid-download).

import (
	"encoding/json"
	"os"
	"os/exec"
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

// TestTFTPPartialBytes: a transfer that fails part-way reports the bytes
// the client acknowledged in the log line, the boot-log event and
// bootforge_tftp_sent_bytes_total, not 0.
func TestTFTPPartialBytes(t *testing.T) {
	need(t, "tftp", "curl", "promtool")
	root := t.TempDir()
	tfWriteFile(t, root, "big.bin", tfRandom(t, 1_024_000)) // 2000 full blocks, then an empty one
	tfWriteFile(t, root, "huge.bin", tfRandom(t, 64<<20))
	s := StartServer(t, ServerOptions{Root: root, Config: "tftp:\n  timeout: 100ms\n  retries: 2\n"})

	t.Run("error after 2000 blocks", func(t *testing.T) {
		before := scrapeMetrics(t, s, "")
		cl := newTFClient(t)
		cl.send(s.TFTPAddr, tfRRQ("big.bin", "octet"))
		for want := uint16(1); ; want++ {
			p := cl.mustRecv(3*time.Second, "DATA "+strconv.Itoa(int(want)))
			if p.op != tfOpDATA || p.block != want {
				t.Fatalf("want DATA %d, got %s", want, p)
			}
			if want == 2000 {
				cl.sendAddr(p.from, tfACK(want))
				cl.mustRecv(3*time.Second, "DATA 2001") // the empty final block
				cl.sendAddr(p.from, tfError(0, "cancelled"))
				break
			}
			cl.sendAddr(p.from, tfACK(want))
		}
		line := waitTransferLine(t, s, cl.port())
		if !strings.Contains(line, " bytes=1024000 ") || !strings.Contains(line, "result=failed") {
			t.Errorf("log line: want bytes=1024000 and result=failed:\n%s", line)
		}
		after := scrapeMetrics(t, s, "")
		checkDeltas(t, before, after, map[string]float64{
			"bootforge_tftp_sent_bytes_total":                 1_024_000,
			`bootforge_tftp_transfers_total{result="failed"}`: 1,
		})
		if b := bootLogTFTP(t, s, "big.bin").Bytes; b != 1_024_000 {
			t.Errorf("boot-log event: %d bytes, want 1024000", b)
		}
	})

	t.Run("tftp-hpa killed", func(t *testing.T) {
		before := scrapeMetrics(t, s, "")
		out := filepath.Join(t.TempDir(), "huge.bin")
		cmd := exec.Command("tftp", "-m", "binary", Host(s.TFTPAddr), Port(s.TFTPAddr), "-c", "get", "huge.bin", out)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 30*time.Second, "tftp-hpa to receive 1 MiB of huge.bin", func() bool { st, err := os.Stat(out); return err == nil && st.Size() >= 1<<20 })
		cmd.Process.Kill() // it stops ACKing part-way
		cmd.Wait()
		var rec LogRecord
		waitUntil(t, 10*time.Second, "the log line of huge.bin's transfer", func() bool {
			for _, r := range ServerRecords(s, "tftp transfer") {
				if r["file"] == "huge.bin" {
					rec = r
					return true
				}
			}
			return false
		})
		got, err := strconv.ParseInt(rec["bytes"], 10, 64)
		if err != nil || got < 1<<20 || got >= 64<<20 || got%512 != 0 || rec["result"] != "failed" {
			t.Fatalf("log line %v: want failed with the whole blocks acknowledged, between 1 MiB and the file's size", rec)
		}
		after := scrapeMetrics(t, s, "")
		checkDeltas(t, before, after, map[string]float64{"bootforge_tftp_sent_bytes_total": float64(got)})
		if b := bootLogTFTP(t, s, "huge.bin").Bytes; b != got {
			t.Errorf("boot-log event: %d bytes, want %d as logged", b, got)
		}
	})
}

// waitTransferLine waits for the transfer log line of the client on port.
func waitTransferLine(t *testing.T, s *Server, port int) string {
	t.Helper()
	var line string
	waitUntil(t, 10*time.Second, "the transfer log line of the client on port "+strconv.Itoa(port), func() bool {
		line = tfTransferLine(s, port)
		return strings.Contains(line, "result=")
	})
	return line
}

// tftpEvent is what the TFTP tests read of a boot-log event.
type tftpEvent struct {
	Result, Reason string
	Bytes          int64
}

// bootLogTFTP waits for the boot log's TFTP event for file, as
// `bootforge log --json` reads it.
func bootLogTFTP(t *testing.T, s *Server, file string) tftpEvent {
	t.Helper()
	var ev tftpEvent
	waitUntil(t, 15*time.Second, "the boot log's TFTP event for "+file, func() bool {
		cmd := exec.Command(binary, "log", "--json")
		cmd.Env = append(cmd.Environ(), "BOOTFORGE_DATA_DIR="+s.DataDir, "BOOTFORGE_ROOT="+s.Root)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("bootforge log: %v", err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var e struct {
				Protocol, File string
				tftpEvent
			}
			if json.Unmarshal([]byte(line), &e) == nil && e.Protocol == "tftp" && e.File == file {
				ev = e.tftpEvent
				return true
			}
		}
		return false
	})
	return ev
}
