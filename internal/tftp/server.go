// Package tftp is bootforge's TFTP server: RFC 1350 read requests with the
// option extensions of RFC 2347 (OACK), 2348 (blksize), 2349 (tsize,
// timeout) and 7440 (windowsize).
//
// It is our own implementation rather than pin/tftp because pin/tftp v3 has
// no RFC 7440 windowsize, and windowsize is what makes TFTP fast: atftpd
// moves 64 MiB in 0.25 s at windowsize 64 against 3.99 s without it, and
// pin/tftp was slower than atftpd at every block size we measured (see
// shared/LAB.md). We also need hard path rules and virtual files, which come
// from package bootfs.
//
// Design:
//   - One goroutine reads the well-known port. It parses and checks each
//     request, applies the concurrency caps, and only then starts a transfer;
//     nothing is sent before a valid RRQ, so the server cannot be used as an
//     amplifier.
//   - IPv4 and IPv6 clients alike: ":69" is one dual-stack socket. Every
//     answer leaves from the address the client asked (a host may have
//     several on a link, and a client may drop a packet from another), a
//     link-local one scoped to the interface the request came in on.
//   - Each transfer has its own socket (its TID) bound to the address the
//     client asked, and its own goroutine. While there are no more
//     transfers than processors, each waits for ACKs in a blocking
//     recvfrom, made raw (hidden from the scheduler) while a processor is
//     left to the rest of the server; the ones beyond wait through the
//     netpoller (see sock_linux.go for why all three). A window of DATA
//     packets goes out in one sendmmsg call. A window holds at most
//     128 KiB, so that it fits a client's socket buffer. File data is
//     read a window, and at least 16 KiB, at a time.
//   - Past TurnCount transfers at once, the newer ones take turns (package
//     turns): they send a window every turnPace until the older ones end.
//   - A client outside the allow-list gets no answer at all, not even an
//     ERROR packet: that would tell a scanner on a user network that a
//     boot server is here. Its refusals are logged and recorded at most
//     once per client per quiet.Every, so that a flood cannot flood the log.
//   - A duplicate ACK never triggers a resend (Sorcerer's Apprentice,
//     RFC 1123 4.2.3.1); only a timeout does, from the block after the last
//     acknowledged one, with exponential backoff and a bounded retry count.
package tftp

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"bootforge/internal/allow"
	"bootforge/internal/audit"
	"bootforge/internal/bootfs"
	"bootforge/internal/quiet"
	"bootforge/internal/sockopt"
	"bootforge/internal/turns"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Settings are the server's tunables. They can change while it runs; each
// transfer keeps the settings it started with.
type Settings struct {
	MaxBlockSize  int           // 0: the receiving interface's MTU - 32 (IPv6: - 52)
	MaxWindowSize int           // RFC 7440 cap
	Timeout       time.Duration // first retransmission timeout
	Retries       int           // retransmissions of one window before giving up
	MaxTransfers  int           // concurrent transfers, in total
	MaxPerClient  int           // concurrent transfers per client IP
	Allow         allow.List    // clients answered; others get nothing
}

// Server serves read requests from an FS.
type Server struct {
	log      *slog.Logger
	settings atomic.Pointer[Settings]
	files    atomic.Pointer[bootfs.FS]

	mu        sync.Mutex
	conns     []net.PacketConn
	active    map[netip.AddrPort]*transfer // by client address
	perClient map[netip.Addr]int           // transfers whose goroutine runs, by client IP
	wg        sync.WaitGroup
	closing   atomic.Bool

	// Stats are counters for tests and metrics.
	Stats Stats
	// Events, if set, gets one boot-log event per transfer.
	Events audit.Sink

	mtus sync.Map // interface index → mtuEntry

	// blocking is how many transfers may wait for ACKs in blocking system
	// calls; the ones beyond wait through the netpoller (see sock).
	blocking int

	quiet quiet.Log[netip.Addr] // refusals of clients not allowed, logged sparingly

	turns *turns.Queue // transfers go at full speed in turns (TurnCount)
}

// The turns of the transfers (package turns): at most TurnCount go at full
// speed at once, the oldest first, enough lockstep transfers to fill a
// link from a LAN. The others send a window every turnPace meanwhile,
// often enough that no client gives up (a client that resends its ACK
// sooner gets nothing more: duplicate ACKs are ignored); a transfer waits
// at most TurnWait in all, and a turn lasts at most turnHold. (Exported
// for the metrics' help text.)
const (
	TurnCount = 32
	TurnWait  = 10 * time.Second
	turnHold  = 2 * time.Second
	turnPace  = 500 * time.Millisecond
)

// mtuEntry is an interface's MTU as last read.
type mtuEntry struct {
	mtu  int
	read time.Time
}

// mtu returns the MTU of interface index (0 if unknown). Reading it costs
// a netlink dump, so a storm of requests shares one reading per interface
// for a few seconds.
func (s *Server) mtu(index int) int {
	if index <= 0 {
		return 0
	}
	if e, ok := s.mtus.Load(index); ok && time.Since(e.(mtuEntry).read) < 5*time.Second {
		return e.(mtuEntry).mtu
	}
	mtu := 0
	if ifc, err := net.InterfaceByIndex(index); err == nil {
		mtu = ifc.MTU
	}
	s.mtus.Store(index, mtuEntry{mtu: mtu, read: time.Now()})
	return mtu
}

// Stats counts what the server did.
type Stats struct {
	Transfers atomic.Int64 // completed successfully
	Sent      atomic.Int64 // every block sent, the final one never acknowledged (errFinalUnacked)
	Failed    atomic.Int64 // started and failed
	Refused   atomic.Int64 // well-formed requests refused (denied, busy, WRQ)
	NotFound  atomic.Int64 // requests for files that do not exist
	Aborted   atomic.Int64 // ended by the client: before any data (EDK2's size probe), or by another request from its port
	Malformed atomic.Int64 // packets dropped without an answer
	// Refusals splits Refused by reason.
	Refusals Refusals
	// Retransmits counts OACKs and windows sent again after a timeout.
	Retransmits atomic.Int64
}

// Refusals counts refused requests by reason.
type Refusals struct {
	Busy       atomic.Int64 // at max_transfers, or shutting down
	PerClient  atomic.Int64 // at max_per_client
	Denied     atomic.Int64 // the path rules or the serving guard said no (access violation)
	Request    atomic.Int64 // a write request, or a mode other than octet and netascii
	Unreadable atomic.Int64 // the file could not be opened
	NotAllowed atomic.Int64 // the client is outside the allow-list; not answered
}

// New returns a server for files with settings s.
func New(files bootfs.FS, s Settings, log *slog.Logger) *Server {
	srv := &Server{
		log:       log,
		active:    map[netip.AddrPort]*transfer{},
		perClient: map[netip.Addr]int{},
		blocking:  runtime.GOMAXPROCS(0),
		turns:     turns.New(TurnCount, TurnWait, turnHold),
	}
	srv.Update(files, s)
	return srv
}

// Turns counts the transfers that waited for their turn.
func (s *Server) Turns() *turns.Stats { return &s.turns.Stats }

// Update replaces the files and settings for transfers that start from now on.
func (s *Server) Update(files bootfs.FS, st Settings) {
	s.files.Store(&files)
	s.settings.Store(&st)
}

// ListenAndServe listens on addr (host:port, UDP) and serves until Shutdown.
func (s *Server) ListenAndServe(addr string) error {
	conn, err := s.Listen(addr)
	if err != nil {
		return err
	}
	return s.Serve(conn)
}

// Listen opens the well-known socket, so that callers can report a bind
// error before serving. Its receive buffer is large: requests come in
// bursts when a room of machines powers on.
func (s *Server) Listen(addr string) (net.PacketConn, error) {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	if sc, ok := conn.(syscall.Conn); ok {
		sockopt.GrowReadBuffer(sc, 8<<20)
	}
	return conn, nil
}

// Serve reads requests from conn until Shutdown or a read error.
func (s *Server) Serve(conn net.PacketConn) error {
	rd, err := newRequestReader(conn)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.conns = append(s.conns, conn)
	s.mu.Unlock()
	buf := make([]byte, 65536)
	for {
		n, in, err := rd.read(buf)
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		s.handle(rd, buf[:n], in)
	}
}

// inbound is where a request came from and to.
type inbound struct {
	src     netip.AddrPort
	dst     netip.Addr // the address the client sent to; invalid if unknown
	ifindex int        // 0 if unknown
}

// handle checks one packet on the well-known port and starts its transfer.
func (s *Server) handle(rd *requestReader, pkt []byte, in inbound) {
	if !in.src.IsValid() || in.src.Port() == 0 {
		s.Stats.Malformed.Add(1)
		return
	}
	op := opcode(pkt)
	if op != opRRQ && op != opWRQ {
		// DATA, ACK, ERROR, OACK or garbage sent to port 69: a stray or a
		// probe. Answering would make us a reflector.
		s.Stats.Malformed.Add(1)
		s.log.Debug("tftp: dropped packet on the request port", "client", in.src, "opcode", op, "len", len(pkt))
		return
	}
	req, err := parseRequest(pkt)
	if err != nil {
		s.Stats.Malformed.Add(1)
		s.log.Debug("tftp: dropped malformed request", "client", in.src, "err", err, "len", len(pkt))
		return
	}
	st := *s.settings.Load()
	if d := st.Allow.Check(in.src.Addr()); !d.Allowed {
		s.notAllowed(in, req, d)
		return
	}
	files := *s.files.Load()

	s.mu.Lock()
	prev := s.active[in.src]
	if prev != nil && prev.req.same(req) {
		// A retransmitted RRQ while its transfer runs. Once the client
		// has acknowledged something, the transfer's own retransmission
		// answers; before, its first packet (OACK or DATA 1) goes again now.
		s.mu.Unlock()
		if prev.repeat() {
			s.log.Debug("tftp: first packet sent again for a repeated request", "client", in.src, "file", req.filename)
		}
		return
	}
	if prev != nil {
		// Another request from the same port: the client has given up
		// on the transfer running, and an answer to the old request
		// would be wrong for the new one. A PXE ROM or U-Boot that got
		// nothing it could use from an RRQ with options asks again
		// without them, or with a smaller blksize, and must not get the
		// OACK of options it no longer asks for (RFC 2347: an error).
		// The old transfer ends, and the new request is served as a new
		// transfer from a new TID, as tftpd-hpa and dnsmasq do.
		prev.replace()
		delete(s.active, in.src)
	}
	// A transfer counts against its client until its goroutine ends (see
	// perClient), a replaced one too: the new request takes its place
	// (replacing), but not while another replaced one from the client is
	// still ending. Else a client alternating two requests from one port
	// started a goroutine, a socket and a file per packet, each waiting
	// for the one before, and never reached its cap.
	replacing := 0
	if prev != nil {
		replacing = 1
	}
	busy, why := "", &s.Stats.Refusals.Busy
	switch {
	case s.closing.Load():
		busy = "server shutting down"
	case len(s.active) >= st.MaxTransfers:
		busy = "server busy, try again later"
	case s.perClient[in.src.Addr()]-replacing >= st.MaxPerClient:
		busy, why = "too many transfers from this client", &s.Stats.Refusals.PerClient
	}
	if busy != "" {
		s.mu.Unlock()
		s.Stats.Refused.Add(1)
		why.Add(1)
		s.log.Warn("tftp: refused", "client", in.src, "file", req.filename, "reason", busy)
		rd.reply(appendError(nil, errUndefined, busy), in)
		return
	}
	// The first few transfers wait in blocking calls, the lowest latency
	// and CPU per ACK: raw ones while a processor is left to the rest of
	// the server, then through the scheduler. Beyond one per processor,
	// threads waiting for ACKs would only fight over the processors, so
	// the rest use the netpoller.
	w := waitPoll
	switch n := len(s.active); {
	case n < s.blocking-1:
		w = waitRaw
	case n < s.blocking:
		w = waitBlocking
	}
	t := &transfer{srv: s, req: req, in: in, settings: st, files: files, wait: w, done: make(chan struct{})}
	s.active[in.src] = t
	s.perClient[in.src.Addr()]++
	s.wg.Add(1)
	s.mu.Unlock()

	go func() {
		defer s.wg.Done()
		defer close(t.done)
		if prev != nil {
			// The transfer replaced may be sending still: its last
			// packet must not reach the client after this one's first.
			<-prev.done
		}
		t.run()
		s.mu.Lock()
		if s.active[in.src] == t { // else it was replaced, and is off the list
			delete(s.active, in.src)
		}
		if s.perClient[in.src.Addr()]--; s.perClient[in.src.Addr()] <= 0 {
			delete(s.perClient, in.src.Addr())
		}
		s.mu.Unlock()
	}()
}

// Active returns the number of transfers in flight.
func (s *Server) Active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.active)
}

// Shutdown stops accepting requests and waits for transfers in flight to
// finish until ctx is done; then it aborts them.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for _, t := range s.active {
		t.abort()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// requestReader reads the well-known socket with the destination address and
// interface of each packet, which pick the reply address and the blksize cap.
type requestReader struct {
	conn *net.UDPConn
	v4   *ipv4.PacketConn
	v6   *ipv6.PacketConn
}

func newRequestReader(conn net.PacketConn) (*requestReader, error) {
	uc, ok := conn.(*net.UDPConn)
	if !ok {
		return nil, fmt.Errorf("tftp: need a UDP socket, got %T", conn)
	}
	la := uc.LocalAddr().(*net.UDPAddr)
	if la.IP.To4() != nil {
		p := ipv4.NewPacketConn(conn)
		if err := p.SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true); err != nil {
			return nil, fmt.Errorf("tftp: IP_PKTINFO: %w", err)
		}
		return &requestReader{conn: uc, v4: p}, nil
	}
	p := ipv6.NewPacketConn(conn)
	if err := p.SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true); err != nil {
		return nil, fmt.Errorf("tftp: IPV6_RECVPKTINFO: %w", err)
	}
	return &requestReader{conn: uc, v6: p}, nil
}

func (r *requestReader) read(b []byte) (int, inbound, error) {
	var in inbound
	var src net.Addr
	var n int
	var err error
	if r.v4 != nil {
		var cm *ipv4.ControlMessage
		n, cm, src, err = r.v4.ReadFrom(b)
		if cm != nil {
			in.dst, _ = netip.AddrFromSlice(cm.Dst)
			in.ifindex = cm.IfIndex
		}
	} else {
		var cm *ipv6.ControlMessage
		n, cm, src, err = r.v6.ReadFrom(b)
		if cm != nil {
			in.dst, _ = netip.AddrFromSlice(cm.Dst)
			in.ifindex = cm.IfIndex
		}
	}
	if err != nil {
		return 0, in, err
	}
	if ua, ok := src.(*net.UDPAddr); ok {
		ap := ua.AddrPort()
		in.src = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	in.dst = in.dst.Unmap()
	return n, in, nil
}

// reply answers a request from the well-known socket, from the address
// the client sent it to (a host may have several on the link, and a
// client may ignore a packet from another), out of the interface it came
// in. An IPv4 client of a dual-stack socket gets the source as an
// IPv4-mapped IPV6_PKTINFO, which Linux honours.
func (r *requestReader) reply(pkt []byte, in inbound) error {
	var oob []byte
	if in.dst.IsValid() && !in.dst.IsMulticast() && in.dst != netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		if r.v4 != nil {
			oob = (&ipv4.ControlMessage{Src: in.dst.AsSlice()}).Marshal()
		} else {
			// Built by hand: x/net's ipv6.ControlMessage leaves out an
			// IPv4-mapped source.
			oob = pktinfo6(netip.AddrFrom16(in.dst.As16()), scopeID(in.src.Addr(), in.ifindex))
		}
	}
	_, _, err := r.conn.WriteMsgUDPAddrPort(pkt, oob, in.src)
	if err != nil && oob != nil {
		// The address asked cannot be a source (a subnet's broadcast
		// address): answer from any.
		_, _, err = r.conn.WriteMsgUDPAddrPort(pkt, nil, in.src)
	}
	return err
}

// classify names the TFTP error for an FS error.
func classify(err error) (uint16, string) {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errNotFound, "file not found"
	case errors.Is(err, bootfs.ErrRefused):
		return errAccess, "access violation"
	default:
		return errUndefined, "cannot read file"
	}
}
