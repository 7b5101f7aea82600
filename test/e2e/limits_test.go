package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHTTPBusyAnswersEarly: with http.max_requests 1, a second request while
// a slow download runs gets 503 with Retry-After at once, not a hang; once
// the slow client goes, requests are served again.
func TestHTTPBusyAnswersEarly(t *testing.T) {
	need(t, "curl")
	root := t.TempDir()
	big := make([]byte, 64<<20) // more than loopback socket buffers absorb: the handler stays busy
	if err := os.WriteFile(filepath.Join(root, "big.img"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "small.txt"), []byte("hello\n"), 0o644)
	s := StartServer(t, ServerOptions{Root: root, Config: "http:\n  max_requests: 1\n"})
	base := "http://" + s.HTTPAddr

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	slow := exec.CommandContext(ctx, "curl", "-s", "-o", "/dev/null", "--limit-rate", "1M", base+"/big.img")
	if err := slow.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the download is under way
	start := time.Now()
	out, err := run(t, 10*time.Second, "curl", "-s", "-D", "-", "-o", "/dev/null", base+"/small.txt")
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	if !strings.HasPrefix(out, "HTTP/1.1 503") || !strings.Contains(out, "Retry-After: 1") {
		t.Fatalf("second request while one is in flight: want 503 with Retry-After, got:\n%s", out)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the busy answer took %s", took)
	}
	// The slow client goes away; its slot comes back.
	slow.Process.Kill()
	slow.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err = run(t, 10*time.Second, "curl", "-s", "-f", base+"/small.txt")
		if err == nil && out == "hello\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slot never came back: %v %q", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
