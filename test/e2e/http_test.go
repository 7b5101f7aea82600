package e2e

// HTTP and HTTPS, driven by curl and openssl: ranges, If-Range, resumed
// downloads, HEAD, the self-signed certificate, path escapes and the access
// log.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// htResult is what one curl run gave.
type htResult struct {
	code   int
	header http.Header // of the last response
	body   []byte
	out    string // curl's stdout and stderr
}

var htCodeRE = regexp.MustCompile(`HTCODE=(\d{3})`)

// htCurlTry runs curl with args plus options that capture the status, the
// headers and the body. The URL goes in args.
func htCurlTry(t testing.TB, args ...string) (htResult, error) {
	t.Helper()
	dir := t.TempDir()
	hdr, body := filepath.Join(dir, "headers"), filepath.Join(dir, "body")
	full := append([]string{"-sS", "--max-time", "20", "-D", hdr, "-o", body, "-w", `\nHTCODE=%{http_code}\n`}, args...)
	out, err := run(t, 30*time.Second, "curl", full...)
	res := htResult{out: out, header: http.Header{}}
	if m := htCodeRE.FindAllStringSubmatch(out, -1); len(m) > 0 {
		res.code, _ = strconv.Atoi(m[len(m)-1][1])
	}
	res.body, _ = os.ReadFile(body)
	if raw, rerr := os.ReadFile(hdr); rerr == nil {
		res.header = htParseHeaders(raw)
	}
	return res, err
}

// htCurl is htCurlTry for runs that must succeed as far as curl is concerned
// (any HTTP status).
func htCurl(t testing.TB, args ...string) htResult {
	t.Helper()
	res, err := htCurlTry(t, args...)
	if err != nil {
		t.Fatalf("curl %s: %v\n%s", strings.Join(args, " "), err, res.out)
	}
	return res
}

// htParseHeaders parses the last header block curl dumped with -D.
func htParseHeaders(raw []byte) http.Header {
	blocks := strings.Split(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\n\n")
	last := ""
	for _, b := range blocks {
		if strings.TrimSpace(b) != "" {
			last = b
		}
	}
	r := textproto.NewReader(bufio.NewReader(strings.NewReader(last + "\n\n")))
	if _, err := r.ReadLine(); err != nil { // the status line
		return http.Header{}
	}
	h, _ := r.ReadMIMEHeader()
	return http.Header(h)
}

// htRandomFile writes size pseudo-random bytes to path and returns them.
func htRandomFile(t testing.TB, path string, size int, seed uint64) []byte {
	t.Helper()
	data := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 42})
	rng.Read(data)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

func htSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func htSumFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return htSum(b)
}

// htRecords parses the server's JSON log lines (the others are skipped).
func htRecords(s *Server) []map[string]any {
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s.Log()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			recs = append(recs, m)
		}
	}
	return recs
}

// htWaitRecord waits for a JSON log record for which match is true. The
// access log is written after the response, so it can trail curl's exit.
func htWaitRecord(t testing.TB, s *Server, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, r := range htRecords(s) {
			if match(r) {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log record with %s; log:\n%s", what, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// htAccess matches an "http request" record for path with the given status.
func htAccess(path string, status int) func(map[string]any) bool {
	return func(r map[string]any) bool {
		return r["msg"] == "http request" && r["path"] == path && r["status"] == float64(status)
	}
}

func htStartJSON(t testing.TB, o ServerOptions) *Server {
	t.Helper()
	o.Args = append([]string{"--log-format", "json"}, o.Args...)
	return StartServer(t, o)
}

func TestHTTPRanges(t *testing.T) {
	need(t, "curl")
	s := htStartJSON(t, ServerOptions{})
	const n = 1<<20 + 123
	data := htRandomFile(t, filepath.Join(s.Root, "images", "vmlinuz"), n, 1)
	url := "http://" + s.HTTPAddr + "/images/vmlinuz"

	full := htCurl(t, url)
	if full.code != 200 || !bytes.Equal(full.body, data) {
		t.Fatalf("full GET: status %d, %d bytes (identical: %v)", full.code, len(full.body), bytes.Equal(full.body, data))
	}

	tests := []struct {
		name   string
		args   []string
		code   int
		first  int // for 206: the first byte
		last   int // for 206: the last byte
		crange string
	}{
		{"single", []string{"-r", "100-199"}, 206, 100, 199, fmt.Sprintf("bytes 100-199/%d", n)},
		{"first byte", []string{"-r", "0-0"}, 206, 0, 0, fmt.Sprintf("bytes 0-0/%d", n)},
		{"suffix", []string{"-r", "-500"}, 206, n - 500, n - 1, fmt.Sprintf("bytes %d-%d/%d", n-500, n-1, n)},
		{"open-ended", []string{"-r", "1000-"}, 206, 1000, n - 1, fmt.Sprintf("bytes 1000-%d/%d", n-1, n)},
		{"last byte past the end is clipped", []string{"-r", fmt.Sprintf("%d-%d", n-10, n+1000)}, 206, n - 10, n - 1, fmt.Sprintf("bytes %d-%d/%d", n-10, n-1, n)},
		{"header given directly", []string{"-H", "Range: bytes=4096-8191"}, 206, 4096, 8191, fmt.Sprintf("bytes 4096-8191/%d", n)},
		{"unsatisfiable: starts past the end", []string{"-r", fmt.Sprintf("%d-%d", n, n+100)}, 416, 0, 0, fmt.Sprintf("bytes */%d", n)},
		{"unsatisfiable: far past the end", []string{"-r", "999999999-"}, 416, 0, 0, fmt.Sprintf("bytes */%d", n)},
		{"invalid: last before first", []string{"-r", "500-100"}, 416, 0, 0, ""},
		{"invalid: not numbers", []string{"-H", "Range: bytes=abc-def"}, 416, 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := htCurl(t, append(tt.args, url)...)
			if res.code != tt.code {
				t.Fatalf("status %d, want %d\n%s", res.code, tt.code, res.out)
			}
			if tt.crange != "" && res.header.Get("Content-Range") != tt.crange {
				t.Errorf("Content-Range %q, want %q", res.header.Get("Content-Range"), tt.crange)
			}
			if tt.code == 206 {
				want := data[tt.first : tt.last+1]
				if !bytes.Equal(res.body, want) {
					t.Errorf("got %d bytes, want bytes %d-%d (%d bytes); identical: false", len(res.body), tt.first, tt.last, len(want))
				}
				if cl := res.header.Get("Content-Length"); cl != strconv.Itoa(len(want)) {
					t.Errorf("Content-Length %q, want %d", cl, len(want))
				}
				return
			}
			if len(res.body) > 200 {
				t.Errorf("a %d response carried %d bytes: part of the file?", res.code, len(res.body))
			}
		})
	}

	t.Run("two ranges", func(t *testing.T) {
		res := htCurl(t, "-r", "0-9,20-29", url)
		if res.code != 206 {
			t.Fatalf("status %d, want 206", res.code)
		}
		if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/byteranges; boundary=") {
			t.Errorf("Content-Type %q, want multipart/byteranges", ct)
		}
		for _, part := range [][]byte{data[0:10], data[20:30]} {
			if !bytes.Contains(res.body, part) {
				t.Errorf("multipart body lacks a requested part")
			}
		}
		if !bytes.Contains(res.body, []byte(fmt.Sprintf("Content-Range: bytes 20-29/%d", n))) {
			t.Errorf("multipart body lacks the part's Content-Range:\n%q", res.body)
		}
	})
}

func TestHTTPIfRange(t *testing.T) {
	need(t, "curl")
	s := htStartJSON(t, ServerOptions{})
	const n = 64 << 10
	file := filepath.Join(s.Root, "initrd.img")
	data := htRandomFile(t, file, n, 2)
	url := "http://" + s.HTTPAddr + "/initrd.img"

	head := htCurl(t, "-I", url)
	etag, lastMod := head.header.Get("ETag"), head.header.Get("Last-Modified")
	if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 3 {
		t.Fatalf("ETag %q is not a strong entity tag; If-Range needs one", etag)
	}
	if lastMod == "" {
		t.Fatalf("no Last-Modified")
	}

	partial := func(t *testing.T, ifRange string) htResult {
		t.Helper()
		return htCurl(t, "-r", "100-199", "-H", "If-Range: "+ifRange, url)
	}
	t.Run("current ETag", func(t *testing.T) {
		res := partial(t, etag)
		if res.code != 206 || !bytes.Equal(res.body, data[100:200]) {
			t.Fatalf("status %d, %d bytes; want 206 and bytes 100-199", res.code, len(res.body))
		}
	})
	t.Run("current Last-Modified", func(t *testing.T) {
		res := partial(t, lastMod)
		if res.code != 206 || !bytes.Equal(res.body, data[100:200]) {
			t.Fatalf("status %d, %d bytes; want 206 and bytes 100-199", res.code, len(res.body))
		}
	})
	t.Run("made-up ETag", func(t *testing.T) {
		res := partial(t, `"0-0"`)
		if res.code != 200 || !bytes.Equal(res.body, data) {
			t.Fatalf("status %d, %d bytes; want 200 and the whole file", res.code, len(res.body))
		}
	})
	t.Run("weak ETag never matches", func(t *testing.T) {
		res := partial(t, "W/"+etag)
		if res.code != 200 || !bytes.Equal(res.body, data) {
			t.Fatalf("status %d, %d bytes; want 200 and the whole file", res.code, len(res.body))
		}
	})
	t.Run("file replaced since", func(t *testing.T) {
		// Same size, new content and time: the old ETag is stale.
		fresh := htRandomFile(t, file, n, 3)
		later := time.Now().Add(time.Hour)
		if err := os.Chtimes(file, later, later); err != nil {
			t.Fatal(err)
		}
		newTag := htCurl(t, "-I", url).header.Get("ETag")
		if newTag == etag {
			t.Fatalf("ETag %s did not change when the file did", etag)
		}
		res := partial(t, etag)
		if res.code != 200 || !bytes.Equal(res.body, fresh) {
			t.Fatalf("stale If-Range: status %d, %d bytes, new content: %v; want 200 and the whole new file",
				res.code, len(res.body), bytes.Equal(res.body, fresh))
		}
		res = partial(t, newTag)
		if res.code != 206 || !bytes.Equal(res.body, fresh[100:200]) {
			t.Fatalf("new ETag: status %d; want 206 with bytes 100-199 of the new file", res.code)
		}
	})
}

// A file whose name is escaped in the URL (an operator's "Windows 11
// x64.iso") is answered by net/http's path; curl still gets its
// Content-Length, not a chunked body, as firmware needs to size its
// buffer. So do several ranges.
func TestHTTPEscapedNameHasLength(t *testing.T) {
	need(t, "curl")
	s := htStartJSON(t, ServerOptions{})
	const n = 1 << 20
	data := htRandomFile(t, filepath.Join(s.Root, "Windows 11 x64.iso"), n, 4)
	url := "http://" + s.HTTPAddr + "/Windows%2011%20x64.iso"
	res := htCurl(t, url)
	if res.code != 200 || !bytes.Equal(res.body, data) {
		t.Fatalf("status %d, %d bytes; want 200 and the file", res.code, len(res.body))
	}
	if cl, te := res.header.Get("Content-Length"), res.header.Get("Transfer-Encoding"); cl != strconv.Itoa(n) || te != "" {
		t.Errorf("Content-Length %q, Transfer-Encoding %q; want %d and none", cl, te, n)
	}
	res = htCurl(t, "-r", "0-99,200000-999999", url)
	if cl, te := res.header.Get("Content-Length"), res.header.Get("Transfer-Encoding"); res.code != 206 || cl != strconv.Itoa(len(res.body)) || te != "" {
		t.Errorf("two ranges: status %d, Content-Length %q for %d bytes, Transfer-Encoding %q", res.code, cl, len(res.body), te)
	}
}

func TestHTTPResume(t *testing.T) {
	need(t, "curl")
	s := htStartJSON(t, ServerOptions{})
	// Large enough that curl's --limit-rate, which lets a first burst of a
	// few MiB through at full speed, really holds the download back.
	const n = 48 << 20
	data := htRandomFile(t, filepath.Join(s.Root, "boot.wim"), n, 4)
	url := "http://" + s.HTTPAddr + "/boot.wim"

	// resume finishes the download in out with curl -C - and checks that
	// curl really resumed from have bytes: the server saw a Range request
	// from there and answered 206 with the rest.
	resume := func(t *testing.T, out string, have int64) {
		t.Helper()
		res, err := run(t, 60*time.Second, "curl", "-sS", "-C", "-", "-o", out, "-w", `\nHTCODE=%{http_code}\n`, url)
		if err != nil {
			t.Fatalf("curl -C -: %v\n%s", err, res)
		}
		if code := htCodeRE.FindStringSubmatch(res); code == nil || code[1] != "206" {
			t.Fatalf("resume: want status 206, curl said:\n%s", res)
		}
		if got := htSumFile(t, out); got != htSum(data) {
			st, _ := os.Stat(out)
			t.Fatalf("resumed file differs: sha256 %s, want %s (size %d, want %d)", got, htSum(data), st.Size(), n)
		}
		rng := fmt.Sprintf("bytes=%d-", have)
		rec := htWaitRecord(t, s, "status 206 and range "+rng, func(r map[string]any) bool {
			return htAccess("/boot.wim", 206)(r) && r["range"] == rng
		})
		if rec["bytes"] != float64(int64(n)-have) {
			t.Errorf("the resumed request sent %v bytes, want %d", rec["bytes"], int64(n)-have)
		}
	}

	t.Run("killed download", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "boot.wim")
		cmd := exec.Command("curl", "-sS", "--limit-rate", "256k", "-o", out, url)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var have int64
		deadline := time.Now().Add(15 * time.Second)
		for have < 1<<20 {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				<-done
				t.Fatalf("the throttled download did not reach 1 MiB in 15 s (have %d)", have)
			}
			time.Sleep(10 * time.Millisecond)
			if st, err := os.Stat(out); err == nil {
				have = st.Size()
			}
		}
		cmd.Process.Kill()
		<-done
		st, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		have = st.Size()
		if have <= 0 || have >= n {
			t.Fatalf("the download was not interrupted: %d of %d bytes", have, n)
		}
		if !bytes.Equal(mustRead(t, out), data[:have]) {
			t.Fatalf("the first %d bytes are already wrong", have)
		}
		resume(t, out, have)
	})

	t.Run("first part fetched by range", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "boot.wim")
		const have = 1000001
		res, err := run(t, 30*time.Second, "curl", "-sS", "-r", fmt.Sprintf("0-%d", have-1), "-o", out, "-w", `\nHTCODE=%{http_code}\n`, url)
		if code := htCodeRE.FindStringSubmatch(res); err != nil || code == nil || code[1] != "206" {
			t.Fatalf("first part: want 206: %v\n%s", err, res)
		}
		resume(t, out, have)
	})
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHTTPHead(t *testing.T) {
	need(t, "curl")
	s := htStartJSON(t, ServerOptions{})
	const n = 123457
	htRandomFile(t, filepath.Join(s.Root, "EFI", "BOOT", "BOOTX64.EFI"), n, 5)
	htRandomFile(t, filepath.Join(s.Root, "vmlinuz"), 1000, 6)
	if err := os.WriteFile(filepath.Join(s.Root, "menu.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	res := htCurl(t, "-I", "http://"+s.HTTPAddr+"/EFI/BOOT/BOOTX64.EFI")
	if res.code != 200 {
		t.Fatalf("HEAD status %d, want 200\n%s", res.code, res.out)
	}
	for k, want := range map[string]string{
		"Content-Length": strconv.Itoa(n),
		"Accept-Ranges":  "bytes",
		"Content-Type":   "application/octet-stream",
	} {
		if got := res.header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if res.header.Get("ETag") == "" || res.header.Get("Last-Modified") == "" {
		t.Errorf("HEAD lacks ETag or Last-Modified: %v", res.header)
	}
	rec := htWaitRecord(t, s, "HEAD of BOOTX64.EFI", func(r map[string]any) bool {
		return htAccess("/EFI/BOOT/BOOTX64.EFI", 200)(r) && r["method"] == "HEAD"
	})
	if rec["bytes"] != float64(0) {
		t.Errorf("HEAD sent a body of %v bytes", rec["bytes"])
	}

	// A file without extension is never sniffed; a known one gets its type.
	if ct := htCurl(t, "-I", "http://"+s.HTTPAddr+"/vmlinuz").header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("vmlinuz: Content-Type %q, want application/octet-stream", ct)
	}
	if ct := htCurl(t, "-I", "http://"+s.HTTPAddr+"/menu.txt").header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("menu.txt: Content-Type %q, want text/plain", ct)
	}
	if code := htCurl(t, "-I", "http://"+s.HTTPAddr+"/missing").code; code != 404 {
		t.Errorf("HEAD of a missing file: %d, want 404", code)
	}
}

// htFingerprint reads the SHA-256 fingerprint openssl prints for a PEM file.
func htFingerprint(t testing.TB, pemFile string) string {
	t.Helper()
	out, err := run(t, 10*time.Second, "openssl", "x509", "-in", pemFile, "-noout", "-fingerprint", "-sha256")
	if err != nil {
		t.Fatalf("openssl x509: %v\n%s", err, out)
	}
	_, fp, ok := strings.Cut(strings.TrimSpace(out), "=")
	if !ok || len(fp) != 95 {
		t.Fatalf("cannot read a fingerprint in %q", out)
	}
	return strings.ToUpper(fp)
}

// htReadyFingerprint is the https_sha256 of the server's ready line.
func htReadyFingerprint(t testing.TB, s *Server) string {
	t.Helper()
	rec := htWaitRecord(t, s, "bootforge ready", func(r map[string]any) bool { return r["msg"] == "bootforge ready" })
	fp, _ := rec["https_sha256"].(string)
	if len(fp) != 95 {
		t.Fatalf("ready line has https_sha256=%q", fp)
	}
	return strings.ToUpper(fp)
}

func TestHTTPS(t *testing.T) {
	need(t, "curl", "openssl")
	data := t.TempDir()
	root := t.TempDir()
	content := htRandomFile(t, filepath.Join(root, "ipxe.efi"), 300000, 7)
	s := htStartJSON(t, ServerOptions{Root: root, Args: []string{"--data-dir", data}})
	cert, key := filepath.Join(data, "tls", "cert.pem"), filepath.Join(data, "tls", "key.pem")
	url := "https://" + s.HTTPSAddr + "/ipxe.efi"

	res := htCurl(t, "--cacert", cert, url)
	if res.code != 200 || !bytes.Equal(res.body, content) {
		t.Fatalf("HTTPS GET with --cacert: status %d, %d bytes, identical %v\n%s", res.code, len(res.body), bytes.Equal(res.body, content), res.out)
	}
	res = htCurl(t, "--cacert", cert, "-r", "100-199", url)
	if res.code != 206 || !bytes.Equal(res.body, content[100:200]) {
		t.Fatalf("HTTPS range: status %d, want 206 with bytes 100-199", res.code)
	}
	rec := htWaitRecord(t, s, "an HTTPS access line", htAccess("/ipxe.efi", 206))
	if rec["tls"] != true {
		t.Errorf("the HTTPS access line lacks tls=true: %v", rec)
	}

	// Without the certificate curl must refuse: verification is real.
	if res, err := htCurlTry(t, url); err == nil {
		t.Fatalf("curl trusted the self-signed certificate without --cacert: status %d", res.code)
	} else if !strings.Contains(res.out, "certificate") {
		t.Errorf("curl failed, but not on the certificate: %s", res.out)
	}
	// Plain HTTP on the HTTPS port gets no file.
	if res, err := htCurlTry(t, "http://"+s.HTTPSAddr+"/ipxe.efi"); err == nil && res.code == 200 {
		t.Errorf("plain HTTP on the HTTPS port served the file")
	}

	logged := htReadyFingerprint(t, s)
	if fp := htFingerprint(t, cert); fp != logged {
		t.Errorf("openssl x509 says %s, the log says %s", fp, logged)
	}

	// The certificate the server actually presents, as openssl s_client sees it.
	out, err := run(t, 15*time.Second, "openssl", "s_client", "-connect", s.HTTPSAddr, "-CAfile", cert,
		"-verify_return_error", "-verify_ip", "127.0.0.1", "-showcerts")
	if err != nil {
		t.Fatalf("openssl s_client: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Verify return code: 0 (ok)") {
		t.Errorf("s_client did not verify the server against cert.pem:\n%s", out)
	}
	begin, end := strings.Index(out, "-----BEGIN CERTIFICATE-----"), strings.Index(out, "-----END CERTIFICATE-----")
	if begin < 0 || end < begin {
		t.Fatalf("no certificate in the s_client output:\n%s", out)
	}
	presented := filepath.Join(t.TempDir(), "presented.pem")
	if err := os.WriteFile(presented, []byte(out[begin:end+len("-----END CERTIFICATE-----")]+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fp := htFingerprint(t, presented); fp != logged {
		t.Errorf("the server presents %s, the log says %s", fp, logged)
	}

	st, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		t.Errorf("key.pem mode %v: readable by others", st.Mode().Perm())
	}

	// A restart with the same data dir keeps the certificate.
	before := mustRead(t, cert)
	s.Stop()
	s2 := htStartJSON(t, ServerOptions{Root: root, Args: []string{"--data-dir", data}})
	if fp := htReadyFingerprint(t, s2); fp != logged {
		t.Errorf("after a restart the fingerprint is %s, before it was %s", fp, logged)
	}
	if !bytes.Equal(mustRead(t, cert), before) {
		t.Errorf("cert.pem was rewritten by the restart")
	}
	if res := htCurl(t, "--cacert", cert, "https://"+s2.HTTPSAddr+"/ipxe.efi"); res.code != 200 || !bytes.Equal(res.body, content) {
		t.Errorf("after the restart, HTTPS with the old cert.pem: status %d\n%s", res.code, res.out)
	}

	// Another data dir gets another certificate.
	s3 := htStartJSON(t, ServerOptions{Root: root})
	if fp := htReadyFingerprint(t, s3); fp == logged {
		t.Errorf("a fresh data dir got the same certificate %s", fp)
	}
}

func TestHTTPNoDirectoryListing(t *testing.T) {
	need(t, "curl")
	s := htStartJSON(t, ServerOptions{})
	for _, f := range []string{"boot/grub/grub.cfg", "boot/vmlinuz-marker", "pxelinux.cfg/default", "toplevel-marker.efi"} {
		htRandomFile(t, filepath.Join(s.Root, f), 100, 8)
	}
	for _, p := range []string{"/", "//", "/.", "/./", "/boot", "/boot/", "/boot/grub/", "/boot/.", "/pxelinux.cfg/", "/%2e/", "/boot%2f"} {
		t.Run(p, func(t *testing.T) {
			res := htCurl(t, "--path-as-is", "http://"+s.HTTPAddr+p)
			if res.code != 403 && res.code != 404 {
				t.Errorf("status %d, want 403 or 404\n%s", res.code, res.body)
			}
			low := strings.ToLower(string(res.body))
			for _, leak := range []string{"marker", "grub", "default", "<a href", "index of"} {
				if strings.Contains(low, leak) {
					t.Errorf("the response looks like a listing (has %q):\n%s", leak, res.body)
				}
			}
		})
	}
}

func TestHTTPPathEscape(t *testing.T) {
	need(t, "curl")
	base := t.TempDir()
	root := filepath.Join(base, "root")
	if err := os.MkdirAll(filepath.Join(root, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	secret := fmt.Sprintf("TOPSECRET-%d", time.Now().UnixNano())
	if err := os.WriteFile(filepath.Join(base, "secret.txt"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "ok.txt"), []byte("fine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../secret.txt", filepath.Join(root, "link-out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(root, "sub", "passwd")); err != nil {
		t.Fatal(err)
	}
	s := htStartJSON(t, ServerOptions{Root: root})
	passwd, _ := os.ReadFile("/etc/passwd")

	if res := htCurl(t, "http://"+s.HTTPAddr+"/ok.txt"); res.code != 200 || string(res.body) != "fine" {
		t.Fatalf("the control request failed: %d %q", res.code, res.body)
	}
	for _, tt := range []struct {
		path string
		code int
	}{
		{"/../secret.txt", 403},
		{"/../etc/passwd", 403},
		{"/../../../../../../etc/passwd", 403},
		{"/sub/../../secret.txt", 403},
		{"/ok.txt/../../secret.txt", 403},
		{"/./../secret.txt", 403},
		{"/%2e%2e/secret.txt", 403},
		{"/%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/passwd", 403},
		{"/.%2e/secret.txt", 403},
		{"/..%2fsecret.txt", 403},
		{"/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd", 403},
		{"/..%5csecret.txt", 403},
		{"/..%5c..%5c..%5c..%5cetc%5cpasswd", 403},
		{"/sub%5c..%5c..%5csecret.txt", 403},
		{"/link-out", 403},   // symlink out of the root
		{"/sub/passwd", 403}, // symlink to /etc/passwd
		{"/ok.txt%00.png", 403},
		{"/ok.txt%0a", 403},
	} {
		t.Run(tt.path, func(t *testing.T) {
			res := htCurl(t, "--path-as-is", "http://"+s.HTTPAddr+tt.path)
			if res.code != tt.code {
				t.Errorf("status %d, want %d", res.code, tt.code)
			}
			if bytes.Contains(res.body, []byte(secret)) || bytes.Contains(res.body, []byte("root:x:0:0")) ||
				(len(passwd) > 0 && bytes.Contains(res.body, passwd)) {
				t.Fatalf("SECRET CONTENT RETURNED for %s:\n%s", tt.path, res.body)
			}
		})
	}
	if s.CountLog(`"msg":"http: refused"`) == 0 {
		t.Errorf("no refusal was logged:\n%s", s.Log())
	}
}

func TestHTTPMethods(t *testing.T) {
	need(t, "curl")
	s := htStartJSON(t, ServerOptions{})
	data := htRandomFile(t, filepath.Join(s.Root, "ipxe.pxe"), 5000, 9)
	url := "http://" + s.HTTPAddr + "/ipxe.pxe"
	for _, m := range [][]string{
		{"-X", "POST", "-d", "x=1"},
		{"-X", "PUT", "--data-binary", "overwritten"},
		{"-X", "DELETE"},
		{"-X", "PATCH", "-d", "y"},
		{"-X", "OPTIONS"},
		{"-X", "POST", "-d", "x=1", "http://" + s.HTTPAddr + "/new-file"},
	} {
		t.Run(strings.Join(m, " "), func(t *testing.T) {
			args := m
			if !strings.HasPrefix(m[len(m)-1], "http") {
				args = append(append([]string{}, m...), url)
			}
			res := htCurl(t, args...)
			if res.code != 405 {
				t.Errorf("status %d, want 405", res.code)
			}
			if allow := res.header.Get("Allow"); allow != "GET, HEAD" {
				t.Errorf("Allow %q, want %q", allow, "GET, HEAD")
			}
		})
	}
	if !bytes.Equal(mustRead(t, filepath.Join(s.Root, "ipxe.pxe")), data) {
		t.Errorf("a write method changed the file")
	}
	if _, err := os.Stat(filepath.Join(s.Root, "new-file")); err == nil {
		t.Errorf("POST created a file")
	}
}

func TestHTTPAccessLog(t *testing.T) {
	need(t, "curl")
	s := StartServer(t, ServerOptions{}) // the default text format
	htRandomFile(t, filepath.Join(s.Root, "undionly.kpxe"), 70000, 10)
	url := "http://" + s.HTTPAddr + "/undionly.kpxe"
	if res := htCurl(t, "-r", "100-199", url); res.code != 206 {
		t.Fatalf("status %d, want 206", res.code)
	}
	htCurl(t, "http://"+s.HTTPAddr+"/nope")

	s.WaitLog("status=404", 5*time.Second)
	var rangeLine string
	for _, l := range strings.Split(s.Log(), "\n") {
		if strings.Contains(l, `msg="http request"`) && strings.Contains(l, "path=/undionly.kpxe") {
			rangeLine = l
		}
	}
	for _, want := range []string{"client=127.0.0.1 ", "method=GET", "status=206", "bytes=100 ", `range="bytes=100-199"`} {
		if !strings.Contains(rangeLine+" ", want) {
			t.Errorf("access line lacks %q: %q", want, rangeLine)
		}
	}
	if !strings.Contains(s.Log(), "client=127.0.0.1 method=GET path=/nope status=404") {
		t.Errorf("no access line for the 404:\n%s", s.Log())
	}

	// access_log: false turns it off.
	q := StartServer(t, ServerOptions{Config: "http:\n  access_log: false\n"})
	htRandomFile(t, filepath.Join(q.Root, "f"), 10, 11)
	htCurl(t, "-r", "0-1", "http://"+q.HTTPAddr+"/f")
	time.Sleep(200 * time.Millisecond)
	if n := q.CountLog("http request"); n != 0 {
		t.Errorf("access_log: false still logged %d requests:\n%s", n, q.Log())
	}
}
