package tftp

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/bootfs"
	"bootforge/internal/turns"
)

// transfer is one read request, from the first answer to the last ACK.
type transfer struct {
	srv      *Server
	req      request
	in       inbound
	settings Settings
	files    bootfs.FS
	wait     waitMode      // how the socket waits for ACKs (see sock)
	done     chan struct{} // closed when its goroutine ends (a replacing transfer waits for it)

	mu       sync.Mutex
	sock     *sock
	again    []byte // what a repeated RRQ gets (see repeat): the OACK until ACK 0, or DATA 1 until ACK 1 without one
	replaced bool   // the client sent another request from the same port (see replace)

	peer  netip.AddrPort
	rbuf  []byte
	start time.Time // when its goroutine began: its place in the turns
}

// abort makes a running transfer fail at once.
func (t *transfer) abort() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sock != nil {
		t.sock.abort()
	}
}

// replace ends a transfer whose client has sent another request from the
// same port (Server.handle): the client has moved on, so it ends quietly,
// as aborted by the client. Its socket is aborted as Shutdown aborts it:
// a wait for an ACK wakes, and every later send fails in every wait mode,
// so it sends nothing more, not even the ERROR of a failed transfer; one
// not yet started sends nothing at all.
func (t *transfer) replace() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.replaced = true
	if t.sock != nil {
		t.sock.abort()
	}
}

func (t *transfer) wasReplaced() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.replaced
}

// errReplaced ends a transfer whose client asked something else.
var errReplaced = errors.New("replaced by another request from the same client port")

// repeat answers a repeated request (the same one, Server.handle) at
// once, while the transfer has sent its first packet and heard nothing
// since: the OACK, or DATA 1 to a client that asked without options. The
// client has not seen it (lost, or late on a busy machine), and waiting
// for the transfer's own timeout (oackPatience of them for an OACK) would
// hold it up for seconds. It reports whether it sent. A transfer replaced
// sends nothing: sendAside bypasses the netpoller's abort.
func (t *transfer) repeat() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sock == nil || t.again == nil || t.replaced {
		return false
	}
	// Counted before it leaves, as the transfer's own resends are: a
	// client that has the packet again finds it counted.
	t.srv.Stats.Retransmits.Add(1)
	return t.sock.sendAside(t.again) == nil
}

func (t *transfer) setAgain(pkt []byte) {
	t.mu.Lock()
	t.again = pkt
	t.mu.Unlock()
}

// result is what the transfer log records.
type result struct {
	bytes   int64
	blksize int
	window  int
	outcome string
	err     error
	mac     string // the client a generated file was made for, if any
}

func (t *transfer) run() {
	start := time.Now()
	t.start = start
	res := t.serve()
	s := t.srv
	var ce clientError
	switch {
	case res.outcome == "failed" && errors.As(res.err, &ce) && res.bytes == 0 && ce.code == errOptionRefused:
		// EDK2 asks for a file only to learn its size (tsize), then
		// aborts with ERROR 8: not a failure.
		res.outcome = "aborted by client"
	case res.outcome == "failed" && t.wasReplaced():
		// The client abandoned it for its next request (replace);
		// the error is the abort's.
		res.outcome, res.err = "aborted by client", errReplaced
	}
	took := time.Since(start)
	attrs := []any{
		"client", t.in.src, "file", t.req.filename, "mode", t.req.mode,
		"bytes", res.bytes, "blksize", res.blksize, "windowsize", res.window,
		"duration", took.Round(time.Microsecond), "result", res.outcome, "wait", t.wait.String(),
	}
	if s.Events != nil {
		name := t.req.filename
		if c, err := bootfs.Clean(name); err == nil {
			name = c
		}
		e := audit.Event{Time: start, MAC: res.mac, IP: t.in.src.Addr().String(), Stage: audit.StageOf(name), Protocol: "tftp",
			File: name, Bytes: res.bytes, Duration: took, Result: res.outcome}
		if res.err != nil {
			e.Reason = res.err.Error()
		}
		s.Events.Record(e)
	}
	switch res.outcome {
	case "ok":
		s.Stats.Transfers.Add(1)
		s.log.Info("tftp transfer", attrs...)
	case "sent":
		s.Stats.Sent.Add(1)
		s.log.Info("tftp transfer", append(attrs, "reason", res.err.Error())...)
	case "not found":
		s.Stats.NotFound.Add(1)
		s.log.Info("tftp: not found", append(attrs, "reason", res.err.Error())...)
	case "aborted by client":
		s.Stats.Aborted.Add(1)
		s.log.Info("tftp transfer", append(attrs, "reason", res.err.Error())...)
	case "refused":
		s.Stats.Refused.Add(1)
		s.log.Warn("tftp: refused", append(attrs, "reason", res.err.Error())...)
	default:
		s.Stats.Failed.Add(1)
		s.log.Warn("tftp transfer", append(attrs, "err", res.err.Error())...)
	}
}

func (t *transfer) serve() result {
	res := result{blksize: defaultBlockSize, window: 1}
	if err := t.open(); err != nil {
		res.outcome, res.err = "failed", err
		return res
	}
	defer t.closeSock()

	refuse := func(code uint16, msg string, err error) result {
		t.send(appendError(nil, code, msg))
		res.outcome, res.err = "refused", err
		return res
	}
	refusals := &t.srv.Stats.Refusals
	if t.req.op == opWRQ {
		refusals.Request.Add(1)
		return refuse(errAccess, "write requests are not accepted", errors.New("write request"))
	}
	if t.req.mode != "octet" && t.req.mode != "netascii" {
		refusals.Request.Add(1)
		return refuse(errIllegalOp, "mode not supported: use octet or netascii", fmt.Errorf("mode %q", t.req.mode))
	}
	f, err := t.files.Open(bootfs.Request{Path: t.req.filename, Client: t.in.src, Protocol: "tftp"})
	if err != nil {
		code, msg := classify(err)
		res := refuse(code, msg, err)
		switch code {
		case errNotFound:
			res.outcome = "not found"
		case errAccess:
			refusals.Denied.Add(1)
		default:
			refusals.Unreadable.Add(1)
		}
		return res
	}
	defer f.Close()
	res.mac = bootfs.MadeFor(f)
	size := int64(-1)
	if st, err := f.Stat(); err == nil {
		size = st.Size()
	}

	p, oack := negotiate(t.req.options, t.req.mode, size, t.blockLimit(), t.settings.MaxWindowSize)
	res.blksize, res.window = p.blksize, p.window
	var src source = newOctetSource(f, p.blksize, p.window)
	if t.req.mode == "netascii" {
		src = newNetasciiSource(f, p.blksize)
	}
	rto := t.settings.Timeout
	if p.timeout > 0 {
		rto = p.timeout
	}
	place := t.srv.turns.Join(t.start)
	defer place.Leave()
	s := sender{t: t, src: src, p: p, rto: rto, retries: t.settings.Retries, negotiated: len(oack) > 0, place: place}
	if len(oack) > 0 {
		if err := s.handshake(appendOACK(nil, oack)); err != nil {
			res.outcome, res.err = "failed", err
			return res
		}
	}
	res.bytes, res.err = s.run()
	if res.err != nil && t.wasReplaced() && s.finalAckWaiting() {
		res.bytes, res.err = s.ackedBytes(), nil
	}
	res.outcome = "ok"
	switch {
	case errors.Is(res.err, errFinalUnacked):
		res.outcome = "sent"
	case res.err != nil:
		res.outcome = "failed"
		var ce clientError
		if !errors.Is(res.err, errTimeout) && !errors.Is(res.err, errIllegalPacket) && !errors.As(res.err, &ce) {
			t.send(appendError(nil, errUndefined, "transfer failed on the server")) // RFC 1350: say why we stop
		}
	}
	return res
}

// open creates the transfer's socket, bound to the address the client used.
func (t *transfer) open() error {
	// The peer as recv reports it: without a zone. The socket has the
	// zone (link-local clients) as its scope.
	t.peer = netip.AddrPortFrom(t.in.src.Addr().WithZone(""), t.in.src.Port())
	local := t.in.dst
	if local.IsMulticast() || local == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		local = netip.Addr{} // a broadcast request: answer from any address
	}
	sk, err := openSock(local, t.in.src, t.in.ifindex, t.wait)
	if err != nil {
		return err
	}
	t.mu.Lock()
	replaced := t.replaced
	if !replaced {
		t.sock = sk
	}
	t.mu.Unlock()
	if replaced { // before it started: it sends nothing at all
		sk.close()
		return errReplaced
	}
	if t.srv.closing.Load() {
		sk.abort()
	}
	t.rbuf = make([]byte, 1024)
	return nil
}

// closeSock closes the transfer's socket. abort, which Shutdown may call
// until the transfer has left the server's list, then finds none: the
// number of a closed socket may already belong to another file.
func (t *transfer) closeSock() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sock.close()
	t.sock = nil
}

// blockLimit is the largest blksize for the interface the request came in on.
func (t *transfer) blockLimit() int {
	return blockLimit(t.settings.MaxBlockSize, t.srv.mtu(t.in.ifindex), t.peer.Addr().Is6())
}

func (t *transfer) send(pkt []byte) error { return t.sock.send(pkt) }

// errTimeout is returned when the client stops answering.
var errTimeout = errors.New("client stopped answering")

// errFinalUnacked ends a transfer whose last window, the final block in
// it, went out and was sent again until the retries ran out, and whose
// ACK never came, from a client that had answered before (an ACK of the
// OACK or of a block) and acknowledged every block before that window.
// It most likely has the file and has left: its final ACK was lost, or it
// never sends one (some firmware does not), and a client still waiting
// would have answered a resend. Its outcome is "sent", as dnsmasq logs
// it. Before, it was "failed": the boot log of a machine that had booted
// said, a minute later, that its loader failed.
var errFinalUnacked = errors.New("the client did not acknowledge the final block")

// errIllegalPacket is a packet other than ACK or ERROR from the client
// during a transfer. The client has been told with ERROR 4; a second
// ERROR ("failed on the server") would blame the server.
var errIllegalPacket = errors.New("client sent an illegal packet")

// clientError is an ERROR packet from the client: it ended the transfer.
type clientError struct {
	code uint16
	msg  string
}

func (e clientError) Error() string { return fmt.Sprintf("client sent error %d: %q", e.code, e.msg) }

// sender runs the DATA/ACK exchange of one transfer.
type sender struct {
	t       *transfer
	src     source
	p       params
	rto     time.Duration
	retries int

	negotiated bool // the client asked with options and got an OACK

	place *turns.Place // its turn, or its wait for one
	sent  time.Time    // when the last window left, while it waits

	acked uint64 // highest block acknowledged; 0 before any DATA
	oack  bool   // an OACK awaits its ACK 0
	final uint64 // the last block, once known (0 until then)
	last  int    // bytes in the final block

	pkts [][]byte // one buffer per block of a window: 4-byte header, then data
}

// maxIdle bounds how long a transfer waits for a client that makes no
// progress, whatever timeout it negotiated, so that a slot cannot be held
// for hours: in the data phase and before it, for the ACK of the OACK. A
// variable so that tests need not wait minutes.
var maxIdle = 2 * time.Minute

// oackPatience multiplies the first wait for ACK 0 when the client did not
// negotiate a timeout. Nothing is known yet of how fast it answers, and a
// client that is merely slow (starved of CPU in a storm) gets the OACK
// twice, which some abort on rather than acknowledge again: atftp, with
// "unexpected OACK", in one of 2,500 transfers of bench/tftp.sh's
// 500-client rounds. A lost OACK is rare on a boot network, and the
// client's repeated RRQ gets the OACK again at once (transfer.repeat).
const oackPatience = 3

// handshake sends the OACK until the client acknowledges it with ACK 0.
// Like the data phase it gives up after maxIdle without an answer: with
// the timeout a client may negotiate (255 s) and doubling, the retries
// alone would hold the transfer's slot for hours.
func (s *sender) handshake(oack []byte) error {
	s.t.setAgain(oack)
	defer s.t.setAgain(nil)
	start := time.Now()
	for attempt, rto := 0, s.rto; ; attempt, rto = attempt+1, rto*2 {
		if attempt > s.retries || attempt > 0 && time.Since(start) > max(maxIdle, s.rto) {
			return fmt.Errorf("%w (no ACK for the OACK)", errTimeout)
		}
		if attempt > 0 {
			s.t.srv.Stats.Retransmits.Add(1)
		}
		if err := s.t.send(oack); err != nil {
			return err
		}
		s.oack = true
		wait := rto
		if attempt == 0 && s.p.timeout == 0 {
			wait *= oackPatience
		}
		if _, err := s.await(time.Now().Add(wait), 0); err != nil {
			return err
		}
		if !s.oack {
			return nil
		}
	}
}

// run sends windows until the final block is acknowledged. It returns
// the bytes the client acknowledged, also when the transfer fails part-way.
func (s *sender) run() (int64, error) {
	s.pkts = make([][]byte, s.p.window) // negotiate bounds window × blksize
	for i := range s.pkts {
		s.pkts[i] = make([]byte, 4+s.p.blksize)
	}
	defer s.t.setAgain(nil)
	attempt, rto := 0, s.rto
	progress := time.Now()
	for {
		if attempt > 0 {
			s.t.srv.Stats.Retransmits.Add(1)
		}
		if attempt == 0 && s.acked > 0 && s.place.Waiting() {
			// No turn yet: the next window leaves turnPace after the
			// last, or at once if the turn comes first.
			s.place.Wait(time.Until(s.sent.Add(turnPace)))
		}
		from := s.acked + 1
		end, err := s.sendWindow(from)
		if err != nil {
			return s.ackedBytes(), err
		}
		before := s.acked
		if _, err := s.await(time.Now().Add(rto), end); err != nil {
			return s.ackedBytes(), err
		}
		if s.acked > before {
			if before == 0 {
				s.t.setAgain(nil)
			}
			s.src.acked(s.acked)
		}
		if s.final != 0 && s.acked == s.final {
			return s.ackedBytes(), nil
		}
		if s.acked > before {
			attempt, rto, progress = 0, s.rto, time.Now()
			continue
		}
		// Timeout: resend the window from the block after the last ACK.
		attempt++
		rto *= 2
		if attempt > s.retries || time.Since(progress) > max(maxIdle, s.rto) {
			if s.final != 0 && (s.acked > 0 || s.negotiated) {
				return s.ackedBytes(), fmt.Errorf("%w %d (sent %d times)", errFinalUnacked, s.final, attempt)
			}
			return s.ackedBytes(), fmt.Errorf("%w after block %d", errTimeout, s.acked)
		}
	}
}

// finalAckWaiting reports whether the ACK of the final block waits in the
// socket of a transfer replaced (transfer.replace), and takes it. A
// client that fetches its files one after another from one port (the
// tftp-hpa client does) sends the final ACK and at once its next request;
// when the request is read first, the transfer has in fact ended, and is
// not aborted. It reads what is there without waiting: the client's last
// ACKs of a window and a few strays at the most.
func (s *sender) finalAckWaiting() bool {
	if s.final == 0 { // the final block was not sent
		return false
	}
	t := s.t
	for range s.p.window + 8 {
		n, from, err := t.sock.late(t.rbuf)
		if err != nil || n == 0 { // empty (0: the end of a socket shut down)
			return false
		}
		if block, ok := parseAck(t.rbuf[:n]); ok && from == t.peer {
			if ahead := uint64(uint16(block - uint16(s.acked))); ahead != 0 && s.acked+ahead == s.final {
				s.acked = s.final
				return true
			}
		}
	}
	return false
}

// ackedBytes is how many bytes the client has acknowledged: blocks up to
// s.acked, all full but the final one. Acknowledged rather than sent,
// because only those are known to have arrived: with a window, up to
// window-1 blocks beyond the last ACK may be lost, and the counter and
// boot log should tell how far a client really got, as HTTP's do.
func (s *sender) ackedBytes() int64 {
	if s.final != 0 && s.acked == s.final {
		return int64(s.final-1)*int64(s.p.blksize) + int64(s.last)
	}
	return int64(s.acked) * int64(s.p.blksize)
}

// sendWindow sends up to window blocks starting at block from, in one
// sendmmsg, and returns the last block sent.
func (s *sender) sendWindow(from uint64) (uint64, error) {
	bs := s.p.blksize
	count := 0
	for b := from; count < s.p.window && (s.final == 0 || b <= s.final); b++ {
		pkt := s.pkts[count]
		n, err := s.src.read(pkt[4:4+bs], b)
		if err != nil {
			return 0, err
		}
		putDataHeader(pkt, uint16(b)) // wire block numbers roll over past 65535
		s.pkts[count] = pkt[:4+n]
		count++
		if n < bs { // the data ends in this block
			s.final, s.last = b, n
			break
		}
	}
	if from == 1 && !s.negotiated {
		// Ready before it leaves, for a repeated request that may come
		// before this goroutine runs again; a copy, since the buffers
		// serve the next window (transfer.repeat).
		s.t.setAgain(append([]byte(nil), s.pkts[0]...))
	}
	err := s.t.sock.sendBatch(s.pkts[:count])
	if s.place.Waiting() {
		s.sent = time.Now()
	}
	for i := 0; i < count; i++ {
		s.pkts[i] = s.pkts[i][:cap(s.pkts[i])]
	}
	if err != nil {
		return 0, err
	}
	return from + uint64(count) - 1, nil
}

// await reads until the client acknowledges a block in (acked, end], the
// deadline passes, or the client gives up. It reports whether the ACK
// arrived. Packets from other addresses get ERROR 5 and change nothing.
func (s *sender) await(deadline time.Time, end uint64) (bool, error) {
	t := s.t
	for {
		n, from, err := t.sock.recv(t.rbuf, deadline)
		if errors.Is(err, errRecvTimeout) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if from != t.peer {
			t.sock.sendTo(appendError(nil, errUnknownTID, "unknown transfer ID"), from)
			continue
		}
		pkt := t.rbuf[:n]
		if block, ok := parseAck(pkt); ok {
			if s.oack {
				if block == 0 {
					s.oack = false
					return true, nil
				}
				continue
			}
			// Map the 16-bit wire number onto the blocks in flight.
			ahead := uint64(uint16(block - uint16(s.acked)))
			if ahead == 0 || s.acked+ahead > end {
				continue // duplicate or stale: never resend on it
			}
			s.acked += ahead
			return true, nil
		}
		if code, msg, ok := parseError(pkt); ok {
			return false, clientError{code, msg}
		}
		t.send(appendError(nil, errIllegalOp, "expected ACK"))
		return false, fmt.Errorf("%w: opcode %d during transfer", errIllegalPacket, opcode(pkt))
	}
}
