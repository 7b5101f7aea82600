package httpd

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"bootforge/internal/audit"
	"bootforge/internal/bootfs"
)

// acceptedConns is a listener that keeps the connections it accepted, so
// that a test can look at the server's side of them.
type acceptedConns struct {
	net.Listener
	conns chan net.Conn
}

func (l acceptedConns) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		select {
		case l.conns <- c:
		default:
		}
	}
	return c, err
}

// syncBuffer is a log destination that tests read while servers write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}
func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.b.String() }

type fastSite struct {
	srv    *Server
	ev     *events
	log    *syncBuffer
	url    string
	conns  chan net.Conn
	client *http.Client
}

// startFast serves root's files on a loopback file listener (fasthttp).
func startFast(t *testing.T, root string, maxRequests int) *fastSite {
	t.Helper()
	dir, err := bootfs.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	return startFastFS(t, dir, maxRequests)
}

// startFastFS serves files on a loopback file listener (fasthttp).
func startFastFS(t *testing.T, files bootfs.FS, maxRequests int) *fastSite {
	t.Helper()
	out := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(out, nil))
	s := New(files, true, maxRequests, log)
	ev := &events{}
	s.Events = ev
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lc := acceptedConns{ln, make(chan net.Conn, 16)}
	srv := NewFastServer(s.FastHandler(), log)
	go srv.Serve(lc)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	t.Cleanup(func() { client.CloseIdleConnections(); srv.Shutdown() })
	return &fastSite{srv: s, ev: ev, log: out, url: "http://" + ln.Addr().String(), conns: lc.conns, client: client}
}

func (f *fastSite) do(t *testing.T, method, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, f.url+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

func writeFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The fast path answers GET and HEAD with the file and net/http's
// headers, counts each request once in the access log, the boot log and
// the limits, and leaves a range to net/http's ServeContent.
func TestFastPath(t *testing.T) {
	root := t.TempDir()
	small := bytes.Repeat([]byte("0123456789abcdef"), 500) // 8000 bytes
	big := bytes.Repeat([]byte("bootforge-"), 30000)       // 300,000 bytes
	writeFile(t, filepath.Join(root, "boot", "small.efi"), small)
	writeFile(t, filepath.Join(root, "boot", "big.img"), big)
	types := map[string]string{"/boot/small.efi": "application/octet-stream", "/boot/big.img": contentType("big.img")}
	f := startFast(t, root, 8)

	for _, tt := range []struct {
		path string
		want []byte
	}{{"/boot/small.efi", small}, {"/boot/big.img", big}} {
		res, body := f.do(t, "GET", tt.path)
		if res.StatusCode != 200 || !bytes.Equal(body, tt.want) {
			t.Fatalf("GET %s: status %d, %d bytes (identical: %v)", tt.path, res.StatusCode, len(body), bytes.Equal(body, tt.want))
		}
		for _, h := range []string{"ETag", "Last-Modified", "Date"} {
			if res.Header.Get(h) == "" {
				t.Errorf("GET %s: no %s", tt.path, h)
			}
		}
		// As ServeContent writes them.
		st, err := os.Stat(filepath.Join(root, tt.path))
		if err != nil {
			t.Fatal(err)
		}
		if lm := st.ModTime().UTC().Format(http.TimeFormat); res.Header.Get("Last-Modified") != lm || res.Header.Get("ETag") != etag(st) {
			t.Errorf("GET %s: Last-Modified %q, ETag %q; want %q, %q", tt.path, res.Header.Get("Last-Modified"), res.Header.Get("ETag"), lm, etag(st))
		}
		if res.Header.Get("Accept-Ranges") != "bytes" || res.Header.Get("Content-Type") != types[tt.path] ||
			res.Header.Get("Content-Length") != strconv.Itoa(len(tt.want)) || res.Header.Get("Server") != "" {
			t.Errorf("GET %s: headers %v", tt.path, res.Header)
		}
		head, hb := f.do(t, "HEAD", tt.path)
		if head.StatusCode != 200 || len(hb) != 0 || head.Header.Get("Content-Length") != strconv.Itoa(len(tt.want)) ||
			head.Header.Get("ETag") != res.Header.Get("ETag") {
			t.Errorf("HEAD %s: status %d, %d body bytes, headers %v", tt.path, head.StatusCode, len(hb), head.Header)
		}
	}

	// One range is answered here, others by ServeContent: the same
	// statuses, bodies and headers.
	n := len(big)
	for _, tt := range []struct {
		rng         string
		code        int
		first, last int
	}{
		{"bytes=100-199", 206, 100, 199},
		{"bytes=1000-", 206, 1000, n - 1},
		{"bytes=-500", 206, n - 500, n - 1},
		{"bytes=-999999", 206, 0, n - 1},
		{fmt.Sprintf("bytes=%d-%d", n-10, n+1000), 206, n - 10, n - 1},
		{"bytes=0-9,20-29", 206, -1, -1},
		{fmt.Sprintf("bytes=%d-", n), 416, 0, 0},
		{"bytes=500-100", 416, 0, 0},
		{"bytes=abc-def", 416, 0, 0},
		// A suffix of zero bytes is unsatisfiable (RFC 9110 14.1.1):
		// net/http answered 206 with "bytes n-(n-1)/n".
		{"bytes=-0", 416, 0, 0},
		{"bytes=-000", 416, 0, 0},
		{"bytes=-0, 100-199", 206, 100, 199},
	} {
		res, body := f.do(t, "GET", "/boot/big.img", "Range", tt.rng)
		if res.StatusCode != tt.code {
			t.Errorf("Range %s: status %d, want %d", tt.rng, res.StatusCode, tt.code)
			continue
		}
		if tt.code == 416 && strings.HasSuffix(tt.rng, "-0") && res.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", n) {
			t.Errorf("Range %s: Content-Range %q, want bytes */%d", tt.rng, res.Header.Get("Content-Range"), n)
		}
		if tt.code != 206 || tt.first < 0 {
			continue
		}
		want := big[tt.first : tt.last+1]
		if !bytes.Equal(body, want) || res.Header.Get("Content-Length") != strconv.Itoa(len(want)) ||
			res.Header.Get("Content-Range") != fmt.Sprintf("bytes %d-%d/%d", tt.first, tt.last, n) {
			t.Errorf("Range %s: %d bytes (identical %v), headers %v", tt.rng, len(body), bytes.Equal(body, want), res.Header)
		}
	}
	res, _ := f.do(t, "GET", "/boot/small.efi")
	res, _ = f.do(t, "GET", "/boot/small.efi", "If-None-Match", res.Header.Get("ETag"))
	if res.StatusCode != 304 {
		t.Errorf("conditional GET: status %d, want 304", res.StatusCode)
	}

	// Missing, refused, escaped: the same answers as net/http's path.
	for path, want := range map[string]int{"/boot/none": 404, "/boot": 403, "/boot/../boot/small.efi": 403, "/boot/sm%61ll.efi": 200, "/.hidden": 404} {
		if res, _ := f.do(t, "GET", path); res.StatusCode != want {
			t.Errorf("GET %s: status %d, want %d", path, res.StatusCode, want)
		}
	}
	res, _ = f.do(t, "POST", "/boot/small.efi")
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", res.StatusCode)
	}

	f.client.CloseIdleConnections()
	time.Sleep(50 * time.Millisecond)
	if n := f.srv.InFlight(); n != 0 {
		t.Errorf("%d requests still counted in flight", n)
	}
	f.ev.mu.Lock()
	defer f.ev.mu.Unlock()
	lines := strings.Count(f.log.String(), `msg="http request"`)
	if lines != len(f.ev.ev) || lines != 24 {
		t.Errorf("%d access-log lines and %d events for 24 requests:\n%s", lines, len(f.ev.ev), f.log.String())
	}
	if e := f.ev.ev[0]; e.File != "boot/small.efi" || e.Bytes != int64(len(small)) || e.Result != "ok" || e.Protocol != "http" || e.IP != "127.0.0.1" {
		t.Errorf("first event %+v", e)
	}
	if !strings.Contains(f.log.String(), `path=/boot/big.img status=200 bytes=300000`) {
		t.Errorf("no access-log line with the big file's bytes:\n%s", f.log.String())
	}
}

// A file's response leaves the server as one TCP segment, small (header
// and body in one write) or over 8 KiB (header, then sendfile(2), under
// TCP_CORK). Measured with the server socket's own count.
func TestFastResponseIsOneSegment(t *testing.T) {
	root := t.TempDir()
	for name, size := range map[string]int{"small": 8000, "mid": 40000} {
		writeFile(t, filepath.Join(root, name), bytes.Repeat([]byte{'x'}, size))
	}
	for _, name := range []string{"small", "mid"} {
		t.Run(name, func(t *testing.T) {
			f := startFast(t, root, 8)
			const requests = 20
			var server *net.TCPConn
			for i := range requests {
				if res, _ := f.do(t, "GET", "/"+name); res.StatusCode != 200 {
					t.Fatalf("status %d", res.StatusCode)
				}
				if i == 0 {
					server = (<-f.conns).(*net.TCPConn)
				}
			}
			rc, err := server.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var info *unix.TCPInfo
			var infoErr error
			rc.Control(func(fd uintptr) { info, infoErr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
			if infoErr != nil {
				t.Fatal(infoErr)
			}
			// One more is TCP's, not ours: the first response can meet a
			// receive window not yet open to its size. Header and body
			// apart would be two each.
			if info.Data_segs_out > requests+1 {
				t.Errorf("the server sent %d data segments for %d responses, want one each", info.Data_segs_out, requests)
			}
		})
	}
}

// Past the limit, a request gets 503 from the shared limit, whichever
// path it took.
func TestFastPathLimit(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "f"), []byte("file"))
	f := startFast(t, root, 0)
	if res, _ := f.do(t, "GET", "/f"); res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != "1" {
		t.Errorf("status %d, Retry-After %q; want 503 and 1", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if f.srv.Busy.Load() != 1 {
		t.Errorf("busy count %d, want 1", f.srv.Busy.Load())
	}
}

// A client that fails the TLS handshake on a listener with warn is logged
// as net/http logged it; a TLS request is served, its access-log line says
// TLS.
func TestTLSListenerLogsHandshake(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "f"), []byte("file"))
	dir, err := bootfs.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(out, nil))
	s := New(dir, true, 8, log)
	cert, err := LoadOrCreateCert("", "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewFastServer(s.FastHandler(), log)
	go srv.Serve(TLSListener(ln, BootTLSConfig(cert), log.With("listener", "boot-tls"), true))
	defer srv.Shutdown()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("GET /f HTTP/1.1\r\nHost: x\r\n\r\n")) // plain HTTP to a TLS port
	io.Copy(io.Discard, c)
	c.Close()

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer client.CloseIdleConnections()
	res, err := client.Get("https://" + ln.Addr().String() + "/f")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "file" {
		t.Errorf("over TLS: status %d, body %q", res.StatusCode, body)
	}
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(out.String(), "tls=true") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	logged := out.String()
	if !strings.Contains(logged, `level=WARN msg="http: TLS handshake error from 127.0.0.1:`) || !strings.Contains(logged, "listener=boot-tls") {
		t.Errorf("no handshake warning:\n%s", logged)
	}
	if !strings.Contains(logged, "path=/f status=200 bytes=4") || !strings.Contains(logged, "tls=true") {
		t.Errorf("no access-log line for the TLS request:\n%s", logged)
	}
}

// oneRange accepts one well-formed byte range and nothing else; what it
// accepts is ordered (a suffix as a negative first).
func FuzzOneRange(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=100-", "bytes=-5", "bytes=1-2,3-4", "bytes=+1-2", "bytes= 1-2", "bytes=9223372036854775807-", "items=1-2", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		first, last, ok := oneRange(h)
		if !ok {
			return
		}
		if !strings.HasPrefix(h, "bytes=") || strings.Contains(h, ",") {
			t.Fatalf("%q accepted", h)
		}
		if first < 0 && last != 0 || first >= 0 && last < first {
			t.Fatalf("%q read as %d-%d", h, first, last)
		}
	})
}

// noEmptySuffix changes only suffix ranges of zero bytes, each into a
// range past the end, and leaves every other header as it was.
func FuzzNoEmptySuffix(f *testing.F) {
	for _, s := range []string{"bytes=-0", "bytes=-000", "bytes=-0, 1-2", "bytes=-10", "bytes=0-0", "bytes= -0 ,-0", "items=-0", ""} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		got := noEmptySuffix(h, size)
		spec, ok := strings.CutPrefix(h, "bytes=")
		if !ok {
			if got != h {
				t.Fatalf("%q became %q", h, got)
			}
			return
		}
		in, out := strings.Split(spec, ","), strings.Split(strings.TrimPrefix(got, "bytes="), ",")
		if !strings.HasPrefix(got, "bytes=") || len(in) != len(out) {
			t.Fatalf("%q became %q", h, got)
		}
		for i := range in {
			n, suffix := strings.CutPrefix(strings.TrimSpace(in[i]), "-")
			empty := suffix && n != "" && strings.Trim(n, "0") == ""
			if empty && out[i] != strconv.FormatInt(size, 10)+"-" || !empty && out[i] != in[i] {
				t.Fatalf("%q became %q: range %q as %q", h, got, in[i], out[i])
			}
		}
	})
}

// wrapped serves its files as another type than *os.File, as menufs does
// a file whose fetch it watches.
type wrapped struct{ bootfs.FS }

type wrappedFile struct{ bootfs.File }

func (w wrapped) Open(req bootfs.Request) (bootfs.File, error) {
	f, err := w.FS.Open(req)
	if err != nil {
		return nil, err
	}
	return wrappedFile{f}, nil
}

// A file that is not an *os.File is served whole and in ranges: the body
// stops at the range's end (fasthttp drops a connection whose stream
// goes on past the length it was given).
func TestFastPathWrappedFile(t *testing.T) {
	root := t.TempDir()
	data := bytes.Repeat([]byte("0123456789"), 5000)
	writeFile(t, filepath.Join(root, "vmlinuz"), data)
	dir, err := bootfs.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	f := startFastFS(t, wrapped{dir}, 8)
	for _, tt := range []struct {
		rng         string
		first, last int
	}{{"", 0, len(data) - 1}, {"bytes=0-99", 0, 99}, {"bytes=100-20099", 100, 20099}, {"bytes=-10", len(data) - 10, len(data) - 1}} {
		var hdr []string
		if tt.rng != "" {
			hdr = []string{"Range", tt.rng}
		}
		for range 2 { // twice on one connection: it must survive the first
			res, body := f.do(t, "GET", "/vmlinuz", hdr...)
			if !bytes.Equal(body, data[tt.first:tt.last+1]) {
				t.Fatalf("Range %q: status %d, %d bytes", tt.rng, res.StatusCode, len(body))
			}
		}
	}
}

// A response over corkAbove corks the connection before its header and
// uncorks it after its body, whatever the request: left corked, the next
// response's last partial segment would wait for the kernel's 200 ms
// timer.
func TestFastPathUncorksAfterEachResponse(t *testing.T) {
	root := t.TempDir()
	data := bytes.Repeat([]byte("0123456789"), 10000) // 100,000 bytes, past corkAbove
	writeFile(t, filepath.Join(root, "vmlinuz"), data)
	dir, err := bootfs.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	for name, files := range map[string]bootfs.FS{"disk": dir, "wrapped": wrapped{dir}} {
		t.Run(name, func(t *testing.T) {
			f := startFastFS(t, files, 8)
			var server *net.TCPConn
			for i, tt := range []struct {
				method string
				header []string
				want   []byte
			}{
				{"GET", nil, data},
				{"GET", []string{"Range", "bytes=10-50009"}, data[10:50010]},
				{"HEAD", nil, nil},
				{"GET", []string{"If-None-Match", `"other"`}, data}, // net/http's path
				{"GET", nil, data},
			} {
				res, body := f.do(t, tt.method, "/vmlinuz", tt.header...)
				if res.StatusCode/100 != 2 || !bytes.Equal(body, tt.want) {
					t.Fatalf("%s %v: status %d, %d bytes", tt.method, tt.header, res.StatusCode, len(body))
				}
				if i == 0 {
					server = (<-f.conns).(*net.TCPConn)
				}
				rc, err := server.SyscallConn()
				if err != nil {
					t.Fatal(err)
				}
				var cork int
				var corkErr error
				rc.Control(func(fd uintptr) { cork, corkErr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK) })
				if corkErr != nil || cork != 0 {
					t.Errorf("after %s %v: TCP_CORK %d (%v), want 0", tt.method, tt.header, cork, corkErr)
				}
			}
		})
	}
}

// Bodies over 64 KiB that net/http's Handler answers through the adaptor
// (an escaped name, several ranges, a full body after a failed If-Range)
// keep their Content-Length and are not chunked, as on the fast path;
// the header that carries the length through stays inside.
func TestFallbackKeepsContentLength(t *testing.T) {
	root := t.TempDir()
	big := bytes.Repeat([]byte("bootforge-"), 30000) // 300,000 bytes
	writeFile(t, filepath.Join(root, "boot", "big file.img"), big)
	small := []byte("small")
	writeFile(t, filepath.Join(root, "boot", "small file.txt"), small)
	f := startFast(t, root, 8)

	for _, tt := range []struct {
		name, path string
		header     []string
		code       int
		want       []byte // nil: only the length is checked
	}{
		{"escaped name", "/boot/big%20file.img", nil, 200, big},
		{"escaped small", "/boot/small%20file.txt", nil, 200, small},
		{"two ranges", "/boot/big%20file.img", []string{"Range", "bytes=0-9,200000-299999"}, 206, nil},
		{"failed If-Range", "/boot/big%20file.img", []string{"Range", "bytes=0-9", "If-Range", `"stale"`}, 200, big},
	} {
		res, body := f.do(t, "GET", tt.path, tt.header...)
		if res.StatusCode != tt.code || (tt.want != nil && !bytes.Equal(body, tt.want)) {
			t.Errorf("%s: status %d, %d bytes", tt.name, res.StatusCode, len(body))
			continue
		}
		if res.ContentLength != int64(len(body)) || len(res.TransferEncoding) != 0 || res.Header.Get("X-Bootforge-Stream-Length") != "" {
			t.Errorf("%s: Content-Length %d for %d bytes, Transfer-Encoding %v, headers %v",
				tt.name, res.ContentLength, len(body), res.TransferEncoding, res.Header)
		}
	}
}

// A client that goes away in the middle of a body is not a transfer that
// went well: its boot-log event says "aborted" with the error, and its
// access-log line carries the error, so that a kernel a machine never got
// whole is not taken for a boot that reached its kernel. Before, both
// said 200 and "ok", with only the byte count short.
func TestFastPathClientGoneIsAborted(t *testing.T) {
	root := t.TempDir()
	const size = 64 << 20
	writeFile(t, filepath.Join(root, "vmlinuz"), make([]byte, size))
	f := startFast(t, root, 8)
	c, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetReadBuffer(16 << 10)
	if _, err := io.WriteString(c, "GET /vmlinuz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetLinger(0) // a reset, as a firmware that gives up
	c.Close()

	deadline := time.Now().Add(10 * time.Second)
	var ev []audit.Event
	for time.Now().Before(deadline) {
		f.ev.mu.Lock()
		ev = append(ev[:0], f.ev.ev...)
		f.ev.mu.Unlock()
		if len(ev) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(ev) != 1 {
		t.Fatalf("events: %+v, want one", ev)
	}
	if ev[0].Bytes >= size {
		t.Fatalf("the event counts %d bytes of %d: the client did not go away in time", ev[0].Bytes, size)
	}
	if ev[0].Result != "aborted" || ev[0].Reason == "" {
		t.Errorf("event: result %q, reason %q after %d of %d bytes; want aborted with the error", ev[0].Result, ev[0].Reason, ev[0].Bytes, size)
	}
	// The access-log line is written after the event is recorded (and
	// in batches, internal/logbuf): wait for it too.
	log := f.log.String()
	for !strings.Contains(log, "/vmlinuz") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		log = f.log.String()
	}
	if !strings.Contains(log, "error=") {
		t.Errorf("the access-log line does not say the transfer failed:\n%s", log)
	}
}

// A plain HTTP request to a TLS listener (http://server:8443/, a slip
// of the scheme) is answered 400 in plain text that says so, as net/http
// answers it, on the HTTPS listener and the boot TLS one; the listener
// then serves TLS as before. Before, the connection was dropped and curl
// said only "Empty reply from server".
func TestTLSListenerAnswersPlainHTTP(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "f"), []byte("file"))
	dir, err := bootfs.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := New(dir, true, 8, log)
	cert, err := LoadOrCreateCert("", "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, warn := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := NewFastServer(s.FastHandler(), log)
		go srv.Serve(TLSListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, log, warn))
		defer srv.Shutdown()

		res, err := http.Get("http://" + ln.Addr().String() + "/f")
		if err != nil {
			t.Errorf("warn=%v: plain HTTP to the TLS listener: %v; want a 400 that says why", warn, err)
		} else {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTPS") {
				t.Errorf("warn=%v: plain HTTP: %d %q; want 400 naming HTTPS", warn, res.StatusCode, body)
			}
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		res, err = client.Get("https://" + ln.Addr().String() + "/f")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		client.CloseIdleConnections()
		if res.StatusCode != 200 || string(body) != "file" {
			t.Errorf("warn=%v: over TLS: status %d, body %q", warn, res.StatusCode, body)
		}
	}
}

// A 503 says which limit refused it, in the boot log and on the access-log
// line, as a 403 says why: http.max_requests (the server is full) and
// http.max_per_client (this one client holds its share) call for
// different fixes. Before, the reason was logged only at debug level.
func TestBusySaysWhichLimit(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "f"), []byte("file"))
	f := startFast(t, root, 0)
	f.do(t, "GET", "/f")
	f.srv.limit.Store(8)
	f.srv.SetPerClient(1)
	release, why := f.srv.take(perClientKey("127.0.0.1:1"))
	if why != "" {
		t.Fatal(why)
	}
	f.do(t, "GET", "/f")
	release()
	deadline := time.Now().Add(2 * time.Second)
	for {
		f.ev.mu.Lock()
		n := len(f.ev.ev)
		f.ev.mu.Unlock()
		if n == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.ev.mu.Lock()
	ev := append([]audit.Event(nil), f.ev.ev...)
	f.ev.mu.Unlock()
	if len(ev) != 2 {
		t.Fatalf("events: %+v, want 2", ev)
	}
	for i, want := range []string{"http.max_requests", "http.max_per_client"} {
		if ev[i].Result != "status 503" || !strings.Contains(ev[i].Reason, want) {
			t.Errorf("event %d: result %q, reason %q; want 503 naming %s", i, ev[i].Result, ev[i].Reason, want)
		}
	}
	if log := f.log.String(); strings.Count(log, "reason=") < 2 || !strings.Contains(log, "http.max_per_client") {
		t.Errorf("the access-log lines of the 503s do not name the limit:\n%s", log)
	}
}

// A request the listener cannot read (a target that is not a path, a
// header past 16 KiB) is answered as fasthttp answers it and logged with
// the client, the status and why, as every other outcome is. Before,
// firmware that sent such a request left no line at all.
func TestUnreadableRequestLogged(t *testing.T) {
	root := t.TempDir()
	f := startFast(t, root, 8)
	for _, tc := range []struct {
		req    string
		status string
	}{
		{"GET small.txt HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
		{"GET /" + strings.Repeat("a", 20<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", "431"},
	} {
		c, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, tc.req)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, _ := io.ReadAll(c)
		c.Close()
		if !bytes.HasPrefix(got, []byte("HTTP/1.1 "+tc.status+" ")) {
			t.Errorf("answer %q, want %s", got, tc.status)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for strings.Count(f.log.String(), "http: bad request") < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	log := f.log.String()
	for _, want := range []string{"status=400", "status=431"} {
		if !strings.Contains(log, want) || !strings.Contains(log, `msg="http: bad request" client=127.0.0.1`) {
			t.Errorf("no log line for the unreadable request (%s):\n%s", want, log)
		}
	}
}
