// Package httpd serves boot files over HTTP and HTTPS.
//
// Large images (boot.wim, ISOs, kernels, initrds) belong on HTTP, not TFTP:
// iPXE, UEFI HTTP boot and GRUB all speak it, and it resumes. Range,
// If-Range, conditional requests and HEAD come from net/http's ServeContent;
// we add a strong ETag so that If-Range works, never list directories, and
// send every path through bootfs's rules. Disk files are *os.File, so on
// plain HTTP net/http hands them to the kernel with sendfile(2).
//
// A client outside the allow-list (http.allow, else allow) gets 403 before
// anything else is looked at, on every listener: HTTP, HTTPS and the boot
// TLS one share one Handler.
package httpd

import (
	"context"
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
	"bootforge/internal/sockopt"
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
	// Busy counts requests answered 503 because of the limit.
	Busy atomic.Int64
	// Responses counts answered requests by status class: Responses[2]
	// counts 2xx, Responses[0] anything below 100 or above 599.
	Responses [6]atomic.Int64
	// Events, if set, gets one boot-log event per request.
	Events audit.Sink
}

// New returns a server for files with at most maxRequests in flight.
func New(files bootfs.FS, accessLog bool, maxRequests int, log *slog.Logger) *Server {
	s := &Server{log: log}
	s.Update(files, accessLog, maxRequests)
	return s
}

// Update replaces the files, the access-log switch and the request limit.
func (s *Server) Update(files bootfs.FS, accessLog bool, maxRequests int) {
	s.files.Store(&files)
	s.accessLog.Store(accessLog)
	s.limit.Store(int64(maxRequests))
}

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
		if n := s.inflight.Add(1); n > s.limit.Load() {
			s.inflight.Add(-1)
			s.busy(w, r, "server limit (http.max_requests)")
			return
		}
		defer s.inflight.Add(-1)
		client := perClientKey(r.RemoteAddr)
		counted, ok := s.enter(client)
		if !ok {
			s.busy(w, r, "per-client limit (http.max_per_client)")
			return
		}
		if counted {
			defer s.leave(client)
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) busy(w http.ResponseWriter, r *http.Request, why string) {
	s.Busy.Add(1)
	s.log.Debug("http: busy", "client", r.RemoteAddr, "path", r.URL.Path, "limit", why)
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

// NewHTTPServer returns an http.Server with timeouts fit for boot clients:
// headers must arrive promptly, bodies may take as long as they take.
func NewHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnContext:       withConn,
	}
}

// connKey is the context key of a request's connection.
type connKey struct{}

// withConn is an http.Server's ConnContext: it keeps the connection in
// each request's context, where serveFile finds it to cork.
func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// corked sets TCP_CORK on r's connection (its TCP one under TLS) and
// returns the function that writes out what w holds and clears it. Without
// it a file's response leaves as a header-only segment and then the body,
// which costs both ends a segment per request: about a seventh of
// bootforge's CPU per request on small files.
func corked(w http.ResponseWriter, r *http.Request) (uncork func()) {
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	tcp, ok := c.(*net.TCPConn)
	if !ok {
		return func() {}
	}
	sockopt.Cork(tcp, true)
	return func() {
		http.NewResponseController(w).Flush()
		sockopt.Cork(tcp, false)
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
	f, err := files.Open(bootfs.Request{Path: r.URL.Path, Client: client, Protocol: proto, Query: r.URL.Query(), Host: r.Host})
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			http.Error(w, "not found", http.StatusNotFound)
		case errors.Is(err, bootfs.ErrRefused):
			s.log.Warn("http: refused", "client", r.RemoteAddr, "path", r.URL.Path, "reason", err.Error())
			http.Error(w, "forbidden", http.StatusForbidden)
		default:
			s.log.Error("http: open failed", "client", r.RemoteAddr, "path", r.URL.Path, "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
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
	if ct := mime.TypeByExtension(path.Ext(st.Name())); ct != "" {
		h.Set("Content-Type", ct)
	} else {
		h.Set("Content-Type", "application/octet-stream") // kernels, .wim, .efi: never sniff
	}
	defer corked(w, r)()
	http.ServeContent(w, r, st.Name(), st.ModTime(), f)
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
func etag(st fs.FileInfo) string {
	b := make([]byte, 0, 36)
	b = append(b, '"')
	b = strconv.AppendInt(b, st.ModTime().UnixNano(), 16)
	b = append(b, '-')
	b = strconv.AppendInt(b, st.Size(), 16)
	return string(append(b, '"'))
}

// logRequests writes one access-log line per request, with the client IP.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		s.Responses[statusClass(rec.status)].Add(1)
		if s.Events != nil {
			proto := "http"
			if r.TLS != nil {
				proto = "https"
			}
			path := strings.TrimPrefix(r.URL.Path, "/")
			s.Events.Record(audit.Event{Time: start, MAC: rec.mac, IP: host, Stage: audit.StageOf(path), Protocol: proto, File: path,
				Bytes: rec.bytes, Duration: time.Since(start), Result: httpResult(rec.status), Reason: rec.reason})
		}
		if !s.accessLog.Load() || !s.log.Enabled(r.Context(), slog.LevelInfo) {
			return
		}
		// Attrs, not alternating keys and values: one line per request
		// should not box each value on the heap.
		attrs := make([]slog.Attr, 0, 10)
		attrs = append(attrs, slog.String("client", host), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.status), slog.Int64("bytes", rec.bytes), slog.Duration("duration", time.Since(start).Round(time.Microsecond)))
		if rg := r.Header.Get("Range"); rg != "" {
			attrs = append(attrs, slog.String("range", rg))
		}
		if rec.status == http.StatusFound {
			attrs = append(attrs, slog.String("location", rec.Header().Get("Location")))
		}
		if r.TLS != nil {
			attrs = append(attrs, slog.Bool("tls", true), slog.String("tls_suite", tls.CipherSuiteName(r.TLS.CipherSuite)))
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "http request", attrs...)
	})
}

// recorder notes the status and body size. It keeps ReadFrom so that the
// sendfile path survives the wrapping.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	mac    string // set by serveFile for a file made for one client
	reason string // why the request was refused, if it was for a reason of ours
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	n, err := io.Copy(r.ResponseWriter, src) // uses the inner ReadFrom: sendfile
	r.bytes += n
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
