package httpd

// The file listeners run on fasthttp, not net/http. net/http spends about
// 100 µs of CPU on each request before a byte of the file moves: a bare
// net/http server answering an 8 KiB file from memory made 0.67× nginx's
// requests per second here, a bare fasthttp one 1.45×, and menus, loaders
// and small EFI files are small. fasthttp answers the requests that make
// up a boot: GET or HEAD of a path of plain characters, with no condition
// and at most one byte range (a resumed download). The rest — several
// ranges, If-Range, conditional requests, other methods, escaped or
// unusual paths, a client outside the allow-list or past a limit, a
// mirror redirect — goes to the net/http Handler through fasthttpadaptor,
// so that net/http's ServeContent keeps deciding them. Both paths share
// the limits, the counters, the access log and the boot log (done).
//
// The adaptor streams a body over 64 KiB (streamed says why it must) and
// drops its Content-Length, which would make it chunked; FastHandler puts
// the length back (streamLength), so that a file whose name is escaped,
// several ranges or a full body after a failed condition go out framed as
// on the fast path. Firmware sizes its buffer from the Content-Length.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"bootforge/internal/bootfs"
	"bootforge/internal/sockopt"
)

// FastHandler returns the handler of the file listeners: plain requests
// are served here, the rest by Handler.
func (s *Server) FastHandler() fasthttp.RequestHandler {
	slow := fasthttpadaptor.NewFastHTTPHandler(streamed(s.Handler()))
	return func(ctx *fasthttp.RequestCtx) {
		if s.serveFast(ctx) {
			return
		}
		slow(ctx)
		if n, ok := streamedLength(&ctx.Response); ok {
			ctx.Response.Header.SetContentLength(n)
		}
	}
}

// streamLength carries a response's Content-Length from the net/http
// handler through fasthttpadaptor, which drops that header from a
// streamed body. It never leaves the server.
const streamLength = "X-Bootforge-Stream-Length"

// streamedLength removes streamLength from r and returns the length it
// held, if r is a streamed body without trailers: the adaptor kept a
// buffered body's Content-Length itself, and trailers need chunks.
func streamedLength(r *fasthttp.Response) (int, bool) {
	v := r.Header.Peek(streamLength)
	if v == nil {
		return 0, false
	}
	n, err := strconv.Atoi(string(v))
	r.Header.Del(streamLength)
	if err != nil || n < 0 || !r.IsBodyStream() || r.Header.Peek(fasthttp.HeaderTrailer) != nil {
		return 0, false
	}
	return n, true
}

// streamed makes fasthttpadaptor stream a large body as it is written:
// without a Flush it holds the whole response in memory, which for a
// range of an ISO could be gigabytes.
func streamed(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&flushing{ResponseWriter: w}, r)
	})
}

// flushing flushes once before the first write of a body over 64 KiB or
// of unknown length. The header it commits carries the Content-Length
// again as streamLength.
type flushing struct {
	http.ResponseWriter
	wrote, flushed bool
}

func (f *flushing) WriteHeader(code int) {
	if !f.wrote {
		f.wrote = true
		if cl := f.Header().Get("Content-Length"); cl != "" {
			f.Header().Set(streamLength, cl)
		}
	}
	f.ResponseWriter.WriteHeader(code)
}

func (f *flushing) Write(p []byte) (int, error) {
	if !f.wrote {
		f.WriteHeader(http.StatusOK)
	}
	if !f.flushed {
		f.flushed = true
		if n, err := strconv.ParseInt(f.Header().Get("Content-Length"), 10, 64); err != nil || n > 64<<10 {
			http.NewResponseController(f.ResponseWriter).Flush()
		}
	}
	return f.ResponseWriter.Write(p)
}

func (f *flushing) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// conditional are the request headers that only net/http's ServeContent
// answers.
var conditional = []string{"If-Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"}

// plainRequest returns the path of a GET or HEAD request that the fast
// path may answer: no conditional header, and a path of letters, digits
// and "-._~+/" that neither holds "//" nor starts a name with a dot, so
// that it means the same decoded or not, and cleaned or not.
func plainRequest(ctx *fasthttp.RequestCtx) (string, bool) {
	if !ctx.IsGet() && !ctx.IsHead() {
		return "", false
	}
	for _, h := range conditional {
		if ctx.Request.Header.Peek(h) != nil {
			return "", false
		}
	}
	// The header's target as sent: Request.RequestURI would rebuild it
	// from fasthttp's normalized path, "/a/../b" as "/b".
	p, _, _ := bytes.Cut(ctx.Request.Header.RequestURI(), []byte("?"))
	if len(p) == 0 || p[0] != '/' {
		return "", false // absolute or asterisk form
	}
	for i, c := range p {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '~', c == '+':
		case c == '.':
			if p[i-1] == '/' {
				return "", false
			}
		case c == '/':
			if i > 0 && p[i-1] == '/' {
				return "", false
			}
		default:
			return "", false
		}
	}
	return string(p), true
}

// serveFast answers a plain request from an allowed client with the file,
// or with why not (404, 403, 500). It returns false, having changed
// nothing, for any other request.
func (s *Server) serveFast(ctx *fasthttp.RequestCtx) bool {
	path, ok := plainRequest(ctx)
	if !ok {
		return false
	}
	rangeHdr := string(ctx.Request.Header.Peek("Range"))
	first, last, ranged := int64(0), int64(0), rangeHdr != ""
	if ranged {
		// One satisfiable range is a resumed download: answered here. Any
		// other (several, unsatisfiable, malformed) is ServeContent's.
		if first, last, ok = oneRange(rangeHdr); !ok {
			return false
		}
	}
	start := time.Now()
	remote := addrPort(ctx.RemoteAddr())
	client := remote.Addr().Unmap().WithZone("")
	if l := s.allow.Load(); l != nil && !l.Check(client).Allowed {
		return false
	}
	release, why := s.take(client)
	if why != "" {
		return false // Handler answers 503 and counts it
	}
	if rd := s.redirect.Load(); rd != nil && *rd != nil {
		if name, err := bootfs.Clean(path); err == nil && (*rd)(remote.Addr(), name) != "" {
			release()
			return false
		}
	}

	q := answered{start: start, client: remote.Addr().String(), method: string(ctx.Method()), path: path, status: http.StatusOK,
		rangeHdr: rangeHdr, tls: ctx.TLSConnectionState()}
	proto := "http"
	if q.tls != nil {
		proto = "https"
	}
	var query url.Values // most requests have none: no map for them
	if qs := ctx.URI().QueryString(); len(qs) > 0 {
		query, _ = url.ParseQuery(string(qs))
	}
	files := *s.files.Load()
	f, err := files.Open(bootfs.Request{Path: path, Client: remote, Protocol: proto, Query: query, Host: string(ctx.Host()),
		Peek: ctx.IsHead()})
	var st fs.FileInfo
	if err == nil {
		if st, err = f.Stat(); err != nil {
			f.Close()
		}
	}
	size := int64(0)
	if err == nil {
		size = st.Size()
		if ranged {
			if first < 0 { // a suffix: the last -first bytes
				first = max(size+first, 0)
				last = size - 1
			}
			last = min(last, size-1)
			if first >= size {
				f.Close()
				release()
				return false // unsatisfiable: ServeContent's 416
			}
			if _, err = f.Seek(first, io.SeekStart); err != nil {
				f.Close()
			}
		}
	}
	if err != nil {
		q.status = http.StatusInternalServerError
		msg := "internal error"
		if f == nil {
			q.status, msg = s.openFailed(err, remote.String(), path)
			if q.status == http.StatusForbidden {
				q.reason = err.Error()
			}
		}
		ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetStatusCode(q.status)
		ctx.SetBodyString(msg + "\n")
		q.bytes = int64(len(msg) + 1)
		release()
		s.done(q)
		return true
	}
	q.mac = bootfs.MadeFor(f)

	// The headers net/http's ServeContent sends, set the cheap way: keys
	// already canonical, values appended into buffers.
	h := &ctx.Response.Header
	var tag [40]byte
	h.SetCanonical(headerETag, appendETag(tag[:0], st))
	h.SetCanonical(headerAcceptRanges, bytesUnit)
	h.SetContentType(contentType(st.Name()))
	if mt := st.ModTime(); !mt.IsZero() && !mt.Equal(time.Unix(0, 0)) {
		h.SetLastModified(mt)
	}
	length := size
	if ranged {
		length = last - first + 1
		h.Set("Content-Range", "bytes "+strconv.FormatInt(first, 10)+"-"+strconv.FormatInt(last, 10)+"/"+strconv.FormatInt(size, 10))
		q.status = http.StatusPartialContent
		ctx.SetStatusCode(q.status)
	}
	b := &fastBody{s: s, f: f, body: io.LimitedReader{R: f, N: length}, off: first, answered: q, release: release, conn: ctx.ConnTime()}
	if length > corkAbove && !ctx.IsHead() {
		b.tcp, b.records = connOf(ctx.Conn())
		// sendFile writes to the connection itself, so only a connection
		// fasthttp writes to directly takes it, never one under TLS.
		b.plain = b.tcp != nil && ctx.Conn() == net.Conn(b.tcp)
		if b.tcp != nil && b.records == nil {
			// A plain connection: the header goes out ahead of the body,
			// corked until the body's first segment has joined it (for a
			// body longer than a sendfile call, to its end: sendDisk), so
			// that both leave in full segments. Left in
			// fasthttp's buffer, it would make bufio first read the file
			// into the rest of the buffer (a read and a copy of 16 KiB each
			// way) and only then sendfile what remains.
			b.cork()
			ctx.Response.ImmediateHeaderFlush = true
		}
	}
	ctx.SetBodyStream(b, int(length))
	return true
}

var (
	headerETag         = []byte("ETag")
	headerAcceptRanges = []byte("Accept-Ranges")
	bytesUnit          = []byte("bytes")
)

// oneRange reads a Range header of one byte range: "bytes=first-last",
// "bytes=first-" (last is then MaxInt64) or "bytes=-n" (first is then -n).
// It returns false for anything else, which ServeContent answers.
func oneRange(h string) (first, last int64, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.ContainsAny(spec, ", \t") {
		return 0, 0, false
	}
	a, z, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false
	}
	if a == "" { // suffix
		n, err := strconv.ParseInt(z, 10, 64)
		if err != nil || n <= 0 || z[0] == '+' {
			return 0, 0, false
		}
		return -n, 0, true
	}
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil || first < 0 || a[0] == '+' {
		return 0, 0, false
	}
	if z == "" {
		return first, math.MaxInt64, true
	}
	last, err = strconv.ParseInt(z, 10, 64)
	if err != nil || last < first || z[0] == '+' {
		return 0, 0, false
	}
	return first, last, true
}

// corkAbove is the body size above which the header is written on its own
// ahead of the body (over TLS, sealed with the body's first bytes); the
// fast path then corks the connection (over TLS for the response, on a
// plain connection for the body's first segment or the whole of a long
// one: sendDisk), so both leave in one stream of segments. A smaller body
// goes out with its header in one write.
const corkAbove = 8 << 10

// fastBody is a file's body on the fast path. fasthttp writes it after the
// handler returned, then closes it: the close ends the request, releasing
// its slots in the limits and reporting it with the bytes that went out.
type fastBody struct {
	s *Server
	f bootfs.File
	// body is f from the range's first byte, limited to its length:
	// fasthttp reads a stream that is not an *os.File past the length it
	// was given, and drops the connection if a byte is left.
	body     io.LimitedReader
	off      int64 // the body's first byte in f
	answered answered
	release  func()
	tcp      *net.TCPConn // to cork while writing, if set
	corked   bool         // tcp is corked
	plain    bool         // tcp is the connection itself, not one under TLS: a disk file goes out with sendFile
	records  *recordConn  // to gather TLS records in while writing, if set (records.go)
	conn     time.Time    // when the connection was opened: its place in turns
}

func (b *fastBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.answered.bytes += int64(n)
	return n, err
}

// WriteTo sends a disk file on a plain connection with sendfile(2)
// (sendFile says how), and hands any other body to w (fasthttp's body
// writer): a file that is not on disk (a menu) or is watched for a
// one-shot's proof is copied. Over TLS, while other requests are in
// flight, the records sealed meanwhile leave corked, in writes of several.
func (b *fastBody) WriteTo(w io.Writer) (n int64, err error) {
	if b.body.N > TurnAbove {
		defer b.s.turns.Take(b.conn)()
	}
	tlsAlone := b.records != nil && b.s.inflight.Load() <= 1
	if b.tcp != nil && !tlsAlone {
		b.cork()
		defer b.uncork()
	}
	if b.records != nil && !tlsAlone {
		b.records.gather()
		defer func() {
			if ferr := b.records.release(); err == nil {
				err = ferr
			}
		}()
	}
	if disk, ok := b.body.R.(syscall.Conn); ok && b.plain {
		if fl, ok := w.(interface{ Flush() error }); ok {
			if err := fl.Flush(); err != nil { // whatever fasthttp holds goes out before the file
				return 0, err
			}
		}
		n, err = b.sendDisk(disk)
		b.body.N -= n
	} else if rf, ok := w.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(&b.body) // a disk file (a syscall.Conn) in a LimitedReader still gets sendfile
	} else {
		n, err = io.Copy(w, struct{ io.Reader }{&b.body})
	}
	b.answered.bytes += n
	return n, err
}

// sendDisk sends the body, a disk file on a plain connection, with
// sendFile. The connection was corked for the header, so that it leaves
// in the body's first full segment. A body that one sendfile call sends
// (at most sendfileChunk) has one partial segment, its last, which the
// uncork pushes anyway: the cork is cleared once its first uncorkAfter
// bytes have gone. Held to the end, it cost the server 90–130 µs more CPU
// per MiB on loopback and wrk 10–20% of its requests a second on 1 MiB
// files (bench/README.md, thirty-ninth session). A longer body goes out
// in several calls, each ending in a partial segment that the cork holds
// until the next call fills it, and stays corked to its end: cleared
// early, one 1 GiB download was 4–20% slower and cost curl more CPU.
func (b *fastBody) sendDisk(disk syscall.Conn) (int64, error) {
	if !b.corked || b.body.N > sendfileChunk {
		return sendFile(b.tcp, disk, b.off, b.body.N) // WriteTo uncorks after
	}
	n, err := sendFile(b.tcp, disk, b.off, min(b.body.N, uncorkAfter))
	b.uncork()
	if err != nil || n == b.body.N {
		return n, err
	}
	m, err := sendFile(b.tcp, disk, b.off+n, b.body.N-n)
	return n + m, err
}

// uncorkAfter is how much of a disk body leaves corked behind its header
// (sendDisk): a segment's worth at the most a TCP stack sends at once
// (64 KiB, loopback's or a segmentation offload's).
const uncorkAfter = 64 << 10

func (b *fastBody) cork() {
	if !b.corked {
		sockopt.Cork(b.tcp, true)
		b.corked = true
	}
}

func (b *fastBody) uncork() {
	if b.corked {
		sockopt.Cork(b.tcp, false)
		b.corked = false
	}
}

// CloseWithError is called by fasthttp once the response is written, or
// given up (err: the client went away mid-body, say), which the logs say.
func (b *fastBody) CloseWithError(err error) error {
	b.answered.err = err
	b.uncork() // if the body was never written
	b.f.Close()
	b.release()
	b.s.done(b.answered)
	return nil
}

// addrPort is a client's address as net/http's RemoteAddr reads: an IPv4
// peer of a dual-stack socket as IPv4.
func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// connOf is what lies under c: the TCP connection (a TLS one's too), and
// for TLS the recordConn between them. Either is nil if there is none.
func connOf(c net.Conn) (tcp *net.TCPConn, records *recordConn) {
	switch tc := c.(type) {
	case *handshakeLogged:
		c = tc.Conn
	case tlsConn:
		c = tc.Conn
	}
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if rc, ok := c.(*recordConn); ok {
		records, c = rc, rc.Conn
	}
	tcp, _ = c.(*net.TCPConn)
	return tcp, records
}

// FastServer is a file listener's server.
type FastServer = fasthttp.Server

// NewFastServer returns a file listener's server for h (FastHandler):
// a request must arrive within 10 s (a boot request has no body, so this
// bounds its headers), bodies take as long as they take, and an idle
// keep-alive connection is closed after 2 minutes. Headers are bounded at
// 16 KiB (a boot client's are well under 1 KiB) and bodies at 64 KiB (no
// request needs one); fasthttp answers more with 431 and 413.
func NewFastServer(h fasthttp.RequestHandler, log *slog.Logger) *FastServer {
	return &fasthttp.Server{
		Handler:               h,
		ReadTimeout:           10 * time.Second,
		IdleTimeout:           2 * time.Minute,
		ReadBufferSize:        16 << 10,
		WriteBufferSize:       16 << 10,
		MaxRequestBodySize:    64 << 10,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		CloseOnShutdown:       true,
		Logger:                fastLog{log},
		ErrorHandler:          unreadable(log),
	}
}

// unreadable answers a request the listener could not read as fasthttp
// does (431 for a header past the buffer, 408 for one that did not
// arrive in time, else 400) and logs it: firmware that sends a request
// this server cannot read should leave a line, as every other outcome
// does.
func unreadable(log *slog.Logger) func(*fasthttp.RequestCtx, error) {
	return func(ctx *fasthttp.RequestCtx, err error) {
		var small *fasthttp.ErrSmallBuffer
		var ne *net.OpError
		switch {
		case errors.As(err, &small):
			ctx.Error("Too big request header", fasthttp.StatusRequestHeaderFieldsTooLarge)
		case errors.As(err, &ne) && ne.Timeout():
			ctx.Error("Request timeout", fasthttp.StatusRequestTimeout)
		default:
			ctx.Error("Error when parsing request", fasthttp.StatusBadRequest)
		}
		msg := err.Error() // fasthttp quotes what it read: bound it
		if len(msg) > 256 {
			msg = msg[:256] + "..."
		}
		log.Info("http: bad request", "client", addrPort(ctx.RemoteAddr()).Addr().String(), "status", ctx.Response.StatusCode(), "err", msg)
	}
}

// fastLog sends fasthttp's own messages (connections it gave up) to the
// debug level, as net/http's ErrorLog was.
type fastLog struct{ log *slog.Logger }

func (l fastLog) Printf(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug("http: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
	}
}

// TLSListener returns ln with TLS (cfg). With warn, a failed handshake is
// logged as a warning, as net/http words it ("http: TLS handshake error
// from ..."): on the boot TLS listener it usually means a firmware that
// does not trust bootforge's CA. Either way a plain HTTP request (a slip
// of the scheme) is answered 400 in plain text, as net/http answers it.
func TLSListener(ln net.Listener, cfg *tls.Config, log *slog.Logger, warn bool) net.Listener {
	return &tlsListener{Listener: tls.NewListener(recordListener{ln}, cfg), log: log, warn: warn}
}

// tlsConn is a TLS connection of a listener without warn: fasthttp runs
// its handshake once, through Handshake; reads and writes are the
// tls.Conn's own.
type tlsConn struct{ *tls.Conn }

func (c tlsConn) Handshake() error {
	err := c.Conn.Handshake()
	if err != nil {
		answerPlainHTTP(err)
	}
	return err
}

// answerPlainHTTP answers 400 to a client whose failed handshake (err)
// began with a plain HTTP request, as net/http does, so that
// http://server:8443/ says what is wrong instead of an empty reply.
func answerPlainHTTP(err error) {
	var re tls.RecordHeaderError
	if !errors.As(err, &re) || re.Conn == nil {
		return
	}
	switch string(re.RecordHeader[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		re.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		re.Conn.Close()
	}
}

type tlsListener struct {
	net.Listener
	log  *slog.Logger
	warn bool
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	if !l.warn {
		return tlsConn{c.(*tls.Conn)}, nil
	}
	return &handshakeLogged{Conn: c.(*tls.Conn), log: l.log}, nil
}

// handshakeLogged is a TLS connection that logs its failed handshake once,
// whether the first read or fasthttp's Handshake ran it. It keeps
// Handshake and ConnectionState, by which fasthttp tells a TLS connection.
type handshakeLogged struct {
	*tls.Conn
	log    *slog.Logger
	logged bool
}

func (c *handshakeLogged) Handshake() error {
	err := c.Conn.Handshake() // after the first, it returns the first's result
	if err != nil && !c.logged {
		c.logged = true
		c.log.Warn(fmt.Sprintf("http: TLS handshake error from %s: %v", c.RemoteAddr(), err))
		answerPlainHTTP(err)
	}
	return err
}

func (c *handshakeLogged) Read(p []byte) (int, error) {
	if err := c.Handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}
