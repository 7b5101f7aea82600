package e2e

// What the file listeners answer, and log, when a client errs: curl
// speaking plain HTTP to the HTTPS port, and curl giving up on a large
// body halfway.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// http://server:8443/ is answered 400 with a text that says HTTPS is
// needed, as net/http answers it; the port still speaks TLS to openssl
// and curl. Before, curl got "Empty reply from server".
func TestHTTPPlainToHTTPSPort(t *testing.T) {
	need(t, "curl", "openssl")
	data := t.TempDir()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "boot.ipxe"), []byte("#!ipxe\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := htStartJSON(t, ServerOptions{Root: root, Args: []string{"--data-dir", data}})

	res, err := htCurlTry(t, "http://"+s.HTTPSAddr+"/boot.ipxe")
	if err != nil || res.code != 400 || !strings.Contains(string(res.body), "HTTPS") {
		t.Fatalf("plain HTTP to the HTTPS port: %v, status %d, body %q; want 400 naming HTTPS\n%s", err, res.code, res.body, res.out)
	}
	out, err := run(t, 10*time.Second, "openssl", "s_client", "-connect", s.HTTPSAddr, "-servername", "localhost", "-brief")
	if !strings.Contains(out, "Protocol version") {
		t.Errorf("openssl s_client after the plain request: %v\n%s", err, out)
	}
	res = htCurl(t, "--cacert", filepath.Join(data, "tls", "cert.pem"), "https://localhost:"+Port(s.HTTPSAddr)+"/boot.ipxe",
		"--resolve", "localhost:"+Port(s.HTTPSAddr)+":"+Host(s.HTTPSAddr))
	if res.code != 200 || string(res.body) != "#!ipxe\n" {
		t.Errorf("HTTPS after the plain request: status %d, body %q\n%s", res.code, res.body, res.out)
	}
}

// A body curl gives up on halfway (--max-time) is logged with the error,
// and is no "ok" transfer. Before, the line read like a finished one but
// for its byte count.
func TestHTTPAbortedLogged(t *testing.T) {
	need(t, "curl")
	root := t.TempDir()
	htRandomFile(t, filepath.Join(root, "vmlinuz"), 64<<20, 3)
	s := htStartJSON(t, ServerOptions{Root: root})
	for _, target := range []string{"/vmlinuz", "/vm%6cinuz"} { // the fast path, and net/http's
		if res, err := htCurlTry(t, "--limit-rate", "2M", "--max-time", "1", "http://"+s.HTTPAddr+target); err == nil {
			t.Fatalf("curl %s finished within its --max-time: status %d", target, res.code)
		}
	}
	var lines []map[string]any
	for deadline := time.Now().Add(10 * time.Second); len(lines) < 2 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		lines = lines[:0]
		for _, r := range htRecords(s) {
			if r["msg"] == "http request" && r["path"] == "/vmlinuz" {
				lines = append(lines, r)
			}
		}
	}
	if len(lines) != 2 {
		t.Fatalf("%d access lines for /vmlinuz, want 2; log:\n%s", len(lines), s.Log())
	}
	for _, r := range lines {
		if e, _ := r["error"].(string); e == "" || r["bytes"].(float64) >= 64<<20 {
			t.Errorf("access line of a body curl gave up on: %v; want error= and fewer bytes than the file", r)
		}
	}
}

// A request target that is not a path (curl --request-target) gets 400
// and a log line with the client and why. Before, no line at all.
func TestHTTPBadRequestLogged(t *testing.T) {
	need(t, "curl")
	s := htStartJSON(t, ServerOptions{})
	res := htCurl(t, "--request-target", "boot.ipxe", "http://"+s.HTTPAddr)
	if res.code != 400 {
		t.Fatalf("status %d, want 400\n%s", res.code, res.out)
	}
	rec := htWaitRecord(t, s, "an http: bad request line", func(r map[string]any) bool { return r["msg"] == "http: bad request" })
	if rec["client"] != "127.0.0.1" || rec["status"] != float64(400) || !strings.Contains(rec["err"].(string), "boot.ipxe") {
		t.Errorf("bad request line: %v; want the client, 400 and the target", rec)
	}
}
