package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTFTPFinalACKLost: atftp fetches a file whose final ACK a packet
// filter drops on its way to the server, as a lossy link or a firmware
// that never sends it would. atftp has the whole file; bootforge resends
// the final block until its retries run out and then logs the transfer
// "sent" (as dnsmasq does), with why, in its log line, the boot log and
// bootforge_tftp_transfers_total{result="sent"}: not "failed", which is
// what a machine that booted used to show for its loader, a minute later.
func TestTFTPFinalACKLost(t *testing.T) {
	need(t, "atftp", "nft", "curl", "promtool")
	netns := newNetnsName()
	addNetns(t, netns)
	mustRun(t, "ip", "-n", netns, "link", "set", "lo", "up")
	// 2,000 full blocks of 512 bytes and a short one: the final block is
	// 2001 (0x07d1), and its ACK the only packet whose first four bytes
	// are 00 04 07 d1. Dropped on input, so that atftp's send succeeds.
	nft := exec.Command("ip", "netns", "exec", netns, "nft", "-f", "-")
	nft.Stdin = strings.NewReader(`table inet finalack {
	chain in {
		type filter hook input priority 0;
		udp length 12 @th,64,32 0x000407d1 counter drop
	}
}
`)
	if out, err := nft.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}

	root := t.TempDir()
	data := tfRandom(t, 2000*512+100)
	tfWriteFile(t, root, "lockstep.bin", data)
	tfWriteFile(t, root, "window.bin", data)
	s := StartServer(t, ServerOptions{Root: root, Netns: netns, Config: "tftp:\n  timeout: 100ms\n  retries: 2\n"})
	before := scrapeMetrics(t, s, netns)

	for _, tc := range []struct {
		file    string
		options []string
	}{
		{"lockstep.bin", nil},
		{"window.bin", []string{"--option", "windowsize 8"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), tc.file)
			args := append(append([]string{}, tc.options...), "-g", "-r", tc.file, "-l", out, Host(s.TFTPAddr), Port(s.TFTPAddr))
			if o, err := netnsRun(netns, 30*time.Second, "atftp", args...); err != nil {
				t.Fatalf("atftp: %v\n%s", err, o)
			}
			if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
				t.Fatalf("atftp fetched %d bytes, not the file's %d", len(got), len(data))
			}
			var rec LogRecord
			waitUntil(t, 10*time.Second, "the log line of "+tc.file, func() bool {
				for _, r := range ServerRecords(s, "tftp transfer") {
					if r["file"] == tc.file {
						rec = r
						return true
					}
				}
				return false
			})
			// Sent at once and again after 100 and 200 ms, then given up
			// 400 ms later. Acknowledged are the 2,000 blocks before the
			// final one (with windows of 8 too: 2,000 ends a window).
			if rec["result"] != "sent" || !strings.Contains(rec["reason"], "did not acknowledge the final block 2001 (sent 3 times)") {
				t.Errorf("log line %v: want result sent, the final block 2001 sent 3 times", rec)
			}
			e := bootLogTFTP(t, s, tc.file)
			if e.Result != "sent" || e.Reason != rec["reason"] || strconv.FormatInt(e.Bytes, 10) != rec["bytes"] {
				t.Errorf("boot-log event %+v: want result sent with the log line's reason and bytes %s", e, rec["bytes"])
			}
		})
	}
	after := scrapeMetrics(t, s, netns)
	checkDeltas(t, before, after, map[string]float64{
		`bootforge_tftp_transfers_total{result="sent"}`:   2,
		`bootforge_tftp_transfers_total{result="failed"}`: 0,
		`bootforge_tftp_transfers_total{result="ok"}`:     0,
	})
	// The filter dropped each transfer's final ACK: atftp sends it once
	// and leaves, so the resends of the final block go unanswered.
	if out, err := netnsRun(netns, 10*time.Second, "nft", "list", "table", "inet", "finalack"); err != nil || !strings.Contains(out, "counter packets 2 ") {
		t.Errorf("nft counter: want the two final ACKs dropped: %v\n%s", err, out)
	}
}
