// Package httpd serves boot files over HTTP and HTTPS.
//
// Large images (boot.wim, ISOs, kernels, initrds) belong on HTTP, not TFTP:
// iPXE, UEFI HTTP boot and GRUB all speak it, and it resumes. The file
// listeners run on fasthttp (fast.go says why): it answers the plain GET
// and HEAD requests that make up a boot, with one byte range at most,
// sending a disk file over 8 KiB with sendfile(2) on plain HTTP, and over
// TLS its records eight to a write (records.go). Several ranges, If-Range,
// conditional requests and everything else go to Handler, where
// net/http's ServeContent decides them. We add a strong
// ETag so that If-Range works, never list directories, and send every
// path through bootfs's rules.
//
// A client outside the allow-list (http.allow, else allow) gets 403 before
// anything else is looked at, on every listener: HTTP, HTTPS and the boot
// TLS one share one Server.
package httpd

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"bootforge/internal/allow"
	"bootforge/internal/audit"
	"bootforge/internal/bootfs"
	"bootforge/internal/logline"
	"bootforge/internal/turns"
)

// Server answers file requests.
type Server struct {
	log       *slog.Logger
	files     atomic.Pointer[bootfs.FS]
	accessLog atomic.Bool
	inflight  atomic.Int64
	limit     atomic.Int64
	perClient atomic.Int64 // 0: no per-client bound
	allow     atomic.Pointer[allow.List]
	redirect  atomic.Pointer[Redirector]

	mu       sync.Mutex
	byClient map[netip.Addr]int // requests in flight per client address
	// Busy counts requests answered 503 because of either limit.
	Busy atomic.Int64
	// Responses counts answered requests by status class: Responses[2]
	// counts 2xx, Responses[0] anything below 100 or above 599.
	Responses [6]atomic.Int64
	// Events, if set, gets one boot-log event per request.
	Events audit.Sink

	turns *turns.Queue // large bodies stream in turns (TurnAbove)
}

// The turns of the file listeners (package turns): bodies above TurnAbove
// bytes (kernels, initrds, WIM and ISO images; not loaders and menus) take
// turns, at most TurnCount at once, enough streams to fill a link from a
// LAN. A body waits at most TurnWait, and a turn lasts at most turnHold.
// (Exported for the metrics' help text.)
//
// Measured with bench/pxestorm.sh (500 clients, an 8 MiB kernel then a
// 4 MiB initrd each): the initrd's p50 fell from 0.74× nginx's to 0.06×,
// the kernel's stayed within the runs' spread of nginx's.
const (
	TurnAbove = 2 << 20
	TurnCount = 16
	TurnWait  = 10 * time.Second
	turnHold  = 2 * time.Second
)

// New returns a server for files with at most maxRequests in flight.
func New(files bootfs.FS, accessLog bool, maxRequests int, log *slog.Logger) *Server {
	s := &Server{log: log, turns: turns.New(TurnCount, TurnWait, turnHold)}
	s.Update(files, accessLog, maxRequests)
	return s
}

// Update replaces the files, the access-log switch and the request limit.
func (s *Server) Update(files bootfs.FS, accessLog bool, maxRequests int) {
	s.files.Store(&files)
	s.accessLog.Store(accessLog)
	s.limit.Store(int64(maxRequests))
}

// Turns counts the large bodies that waited for their turn.
func (s *Server) Turns() *turns.Stats { return &s.turns.Stats }

// SetPerClient bounds the requests in flight from one client address (0:
// no bound). Without it, one host that opens many connections and stops
// reading takes every slot of the limit, and every other client gets 503.
func (s *Server) SetPerClient(n int) { s.perClient.Store(int64(n)) }

// SetAllow replaces the clients answered; others get 403. An empty list
// allows every client.
func (s *Server) SetAllow(l allow.List) { s.allow.Store(&l) }

// Redirector names where a client should fetch a file instead (a
// mirror's URL of the same path), or "" to serve it here.
type Redirector func(client netip.Addr, path string) string

// SetRedirect sets the redirector asked before each file is served; nil
// serves every file here.
func (s *Server) SetRedirect(r Redirector) { s.redirect.Store(&r) }

// Handler returns the HTTP handler: files, behind the allow-list and the
// request limit, wrapped in the access log.
func (s *Server) Handler() http.Handler {
	return s.logRequests(s.allowClients(s.limitRequests(http.HandlerFunc(s.serveFile))))
}

// allowClients answers 403 to a client outside the allow-list, before it
// takes a slot of the limits. A TCP client has shown its address with a
// handshake, so unlike TFTP there is nothing to gain by silence; the
// access log and the boot log get the reason.
func (s *Server) allowClients(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := s.allow.Load().Request(r)
		if d.Allowed {
			next.ServeHTTP(w, r)
			return
		}
		if rec, ok := w.(*recorder); ok {
			rec.reason = d.Reason
		}
		s.log.Warn("http: refused", "client", r.RemoteAddr, "path", r.URL.Path, "reason", d.Reason)
		http.Error(w, "forbidden", http.StatusForbidden)
	})
}

// limitRequests answers 503 at once past the limit: a storm of clients
// should hear "busy, retry" early rather than time out late (iPXE and
// curl retry on 503).
func (s *Server) limitRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		release, why := s.take(perClientKey(r.RemoteAddr))
		if why != "" {
			s.busy(w, r, why)
			return
		}
		defer release()
		next.ServeHTTP(w, r)
	})
}

// take takes a slot of the limits for a request of client (unmapped, no
// zone): both paths, net/http's and the fast one, count here. It returns
// the function that gives the slot back, or which limit refused.
func (s *Server) take(client netip.Addr) (release func(), refused string) {
	if n := s.inflight.Add(1); n > s.limit.Load() {
		s.inflight.Add(-1)
		return nil, "server limit (http.max_requests)"
	}
	counted, ok := s.enter(client)
	if !ok {
		s.inflight.Add(-1)
		return nil, "per-client limit (http.max_per_client)"
	}
	return func() {
		if counted {
			s.leave(client)
		}
		s.inflight.Add(-1)
	}, ""
}

func (s *Server) busy(w http.ResponseWriter, r *http.Request, why string) {
	s.Busy.Add(1)
	s.log.Debug("http: busy", "client", r.RemoteAddr, "path", r.URL.Path, "limit", why)
	if rec, ok := w.(*recorder); ok {
		rec.reason = why // which limit: the boot log and the access log say it
	}
	w.Header().Set("Retry-After", "1")
	http.Error(w, "busy, retry", http.StatusServiceUnavailable)
}

// perClientKey is the client that max_per_client counts: its address,
// unmapped and without a zone. An IPv6 client is one address, not its
// /64: on a provisioning link every machine shares the link's /64, so
// counting by prefix would make the whole link one client. A host that
// uses many addresses is still bounded by http.max_requests.
func perClientKey(remote string) netip.Addr {
	ap, _ := netip.ParseAddrPort(remote)
	return ap.Addr().Unmap().WithZone("")
}

// enter counts a request of client (counted; leave must follow), unless
// the client is at its bound (!ok) or there is none (neither).
func (s *Server) enter(client netip.Addr) (counted, ok bool) {
	max := int(s.perClient.Load())
	if max <= 0 {
		return false, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byClient == nil {
		s.byClient = map[netip.Addr]int{}
	}
	if s.byClient[client] >= max {
		return false, false
	}
	s.byClient[client]++
	return true, true
}

func (s *Server) leave(client netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byClient[client] <= 1 {
		delete(s.byClient, client)
	} else {
		s.byClient[client]--
	}
}

// NewHTTPServer returns an http.Server (the API's; the file listeners run
// on NewFastServer): headers must arrive promptly, bodies may take as long
// as they take.
func NewHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	client, _ := netip.ParseAddrPort(r.RemoteAddr)
	if rd := s.redirect.Load(); rd != nil && *rd != nil {
		if name, err := bootfs.Clean(r.URL.Path); err == nil {
			if to := (*rd)(client.Addr(), name); to != "" {
				if rec, ok := w.(*recorder); ok {
					rec.reason = "redirected to mirror"
				}
				http.Redirect(w, r, to, http.StatusFound)
				return
			}
		}
	}
	files := *s.files.Load()
	f, err := files.Open(bootfs.Request{Path: r.URL.Path, Client: client, Protocol: proto, Query: r.URL.Query(), Host: r.Host,
		Peek: r.Method == http.MethodHead})
	if err != nil {
		status, msg := s.openFailed(err, r.RemoteAddr, r.URL.Path)
		if rec, ok := w.(*recorder); ok && status == http.StatusForbidden {
			rec.reason = err.Error()
		}
		http.Error(w, msg, status)
		return
	}
	defer f.Close()
	if rec, ok := w.(*recorder); ok {
		rec.mac = bootfs.MadeFor(f) // a per-client menu: the boot log credits its MAC
	}
	st, err := f.Stat()
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("ETag", etag(st))
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Type", contentType(st.Name()))
	if rh := r.Header.Get("Range"); rh != "" {
		r.Header.Set("Range", noEmptySuffix(rh, st.Size()))
	}
	http.ServeContent(w, r, st.Name(), st.ModTime(), f)
}

// noEmptySuffix returns the Range header value h with every suffix range
// of zero bytes ("-0") written as "size-", a range that starts past the
// end. RFC 9110 14.1.1 makes both unsatisfiable, but ServeContent takes
// "-0" for an empty range and answers 206 with the invalid Content-Range
// "bytes 100-99/100"; "size-" it skips, or answers 416 if no other range
// is satisfiable, as it should.
func noEmptySuffix(h string, size int64) string {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || !strings.Contains(spec, "-0") {
		return h
	}
	ranges := strings.Split(spec, ",")
	for i, r := range ranges {
		n, isSuffix := strings.CutPrefix(strings.TrimSpace(r), "-")
		if isSuffix && n != "" && strings.Trim(n, "0") == "" {
			ranges[i] = strconv.FormatInt(size, 10) + "-"
		}
	}
	return "bytes=" + strings.Join(ranges, ",")
}

// NotFound is the body, with a newline, of every 404 the file listeners
// answer: `bootforge check` tells a 404 of ours from another server's by it.
const NotFound = "not found"

// openFailed logs why a file could not be opened for client (address and
// port) and returns the status and message to answer with.
func (s *Server) openFailed(err error, client, path string) (int, string) {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return http.StatusNotFound, NotFound
	case errors.Is(err, bootfs.ErrRefused):
		s.log.Warn("http: refused", "client", client, "path", path, "reason", err.Error())
		return http.StatusForbidden, "forbidden"
	default:
		s.log.Error("http: open failed", "client", client, "path", path, "err", err)
		return http.StatusInternalServerError, "internal error"
	}
}

// contentType is the Content-Type of a file named name.
func contentType(name string) string {
	if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
		return ct
	}
	return "application/octet-stream" // kernels, .wim, .efi: never sniff
}

// InFlight is the number of requests being answered now.
func (s *Server) InFlight() int64 { return s.inflight.Load() }

// statusClass is the index of status in Responses.
func statusClass(status int) int {
	if status < 100 || status > 599 {
		return 0
	}
	return status / 100
}

// httpResult words a status for the boot log.
func httpResult(status int) string {
	switch {
	case status == http.StatusOK, status == http.StatusPartialContent, status == http.StatusNotModified:
		return "ok"
	case status == http.StatusNotFound:
		return "not found"
	case status == http.StatusForbidden:
		return "refused"
	case status == http.StatusRequestedRangeNotSatisfiable:
		return "bad range"
	}
	return fmt.Sprintf("status %d", status)
}

// etag is a strong validator from size and modification time, as nginx
// makes them; If-Range needs a strong one.
func etag(st fs.FileInfo) string { return string(appendETag(make([]byte, 0, 36), st)) }

// appendETag appends etag(st) to b.
func appendETag(b []byte, st fs.FileInfo) []byte {
	b = append(b, '"')
	b = strconv.AppendInt(b, st.ModTime().UnixNano(), 16)
	b = append(b, '-')
	b = strconv.AppendInt(b, st.Size(), 16)
	return append(b, '"')
}

// logRequests writes one access-log line per request, with the client IP.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		q := answered{start: start, client: host, method: r.Method, path: r.URL.Path, status: rec.status, bytes: rec.bytes,
			rangeHdr: r.Header.Get("Range"), tls: r.TLS, mac: rec.mac, reason: rec.reason, err: rec.err}
		if rec.status == http.StatusFound {
			q.location = rec.Header().Get("Location")
		}
		s.done(q)
	})
}

// answered is what the access log and the boot log say of one request.
type answered struct {
	start    time.Time
	client   string // IP address, no port
	method   string
	path     string
	status   int
	bytes    int64 // body bytes sent
	rangeHdr string
	location string // of a redirect
	tls      *tls.ConnectionState
	mac      string // of a file made for one client
	reason   string // why it was refused, if for a reason of ours
	err      error  // why the body did not go out whole, if it did not
}

// done counts an answered request and writes its boot-log event and its
// access-log line: the one place both listeners' paths (net/http and
// fasthttp, fast.go) report a request.
func (s *Server) done(q answered) {
	s.Responses[statusClass(q.status)].Add(1)
	proto := "http"
	if q.tls != nil {
		proto = "https"
	}
	if s.Events != nil {
		path := strings.TrimPrefix(q.path, "/")
		result, reason := httpResult(q.status), q.reason
		if q.err != nil {
			// The status went out, the body did not: a kernel the client
			// never got whole is no kernel reached.
			result, reason = "aborted", q.err.Error()
		}
		s.Events.Record(audit.Event{Time: q.start, MAC: q.mac, IP: q.client, Stage: audit.StageOf(path), Protocol: proto, File: path,
			Bytes: q.bytes, Duration: time.Since(q.start), Result: result, Reason: reason})
	}
	if !s.accessLog.Load() {
		return
	}
	l := logline.Start(s.log, slog.LevelInfo, "http request").Str("client", q.client).Str("method", q.method).Str("path", q.path).
		Int("status", int64(q.status)).Int("bytes", q.bytes).Duration("duration", time.Since(q.start).Round(time.Microsecond))
	if q.rangeHdr != "" {
		l.Str("range", q.rangeHdr)
	}
	if q.location != "" {
		l.Str("location", q.location)
	}
	if q.reason != "" {
		l.Str("reason", q.reason)
	}
	if q.err != nil {
		l.Str("error", q.err.Error())
	}
	if q.tls != nil {
		l.Bool("tls", true).Str("tls_suite", suiteName(q.tls.CipherSuite))
	}
	l.Write()
}

// suiteNames are the names of the cipher suites crypto/tls knows, made
// once: tls.CipherSuiteName builds the lists of all suites on every call,
// which was 3% of the server's CPU on small files over HTTPS.
var suiteNames = func() map[uint16]string {
	m := map[uint16]string{}
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		m[s.ID] = s.Name
	}
	return m
}()

// suiteName is tls.CipherSuiteName(id).
func suiteName(id uint16) string {
	if name, ok := suiteNames[id]; ok {
		return name
	}
	return tls.CipherSuiteName(id) // its hex form of an unknown suite
}

// recorder notes the status and body size. Its ReadFrom hands a copy to
// the writer inside, so that one with a faster path of its own (net/http's
// sendfile) keeps it; under fasthttpadaptor (fast.go), the listeners'
// fallback, it is a plain copy into the adaptor's buffer.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	mac    string // set by serveFile for a file made for one client
	reason string // why the request was refused, if it was for a reason of ours
	err    error  // the first write of the body that failed
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	if err != nil && r.err == nil {
		r.err = err
	}
	return n, err
}

func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	n, err := io.Copy(r.ResponseWriter, src) // the inner ReadFrom, if it has one
	r.bytes += n
	if err != nil && r.err == nil {
		r.err = err
	}
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
