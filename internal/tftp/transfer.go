package tftp

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/bootfs"
)

// transfer is one read request, from the first answer to the last ACK.
type transfer struct {
	srv      *Server
	req      request
	in       inbound
	settings Settings
	files    bootfs.FS
	wait     waitMode // how the socket waits for ACKs (see sock)

	mu   sync.Mutex
	sock *sock

	peer netip.AddrPort
	rbuf []byte
}

// abort makes a running transfer fail at once.
func (t *transfer) abort() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sock != nil {
		t.sock.abort()
	}
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
	res := t.serve()
	s := t.srv
	var ce clientError
	if res.outcome == "failed" && errors.As(res.err, &ce) && res.bytes == 0 && ce.code == errOptionRefused {
		// EDK2 asks for a file only to learn its size (tsize), then
		// aborts with ERROR 8: not a failure.
		res.outcome = "aborted by client"
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
		s.Events.Record(audit.Event{Time: start, MAC: res.mac, IP: t.in.src.Addr().String(), Stage: audit.StageOf(name), Protocol: "tftp",
			File: name, Bytes: res.bytes, Duration: took, Result: res.outcome})
	}
	switch res.outcome {
	case "ok":
		s.Stats.Transfers.Add(1)
		s.log.Info("tftp transfer", attrs...)
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
	defer t.sock.close()

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
	s := &sender{t: t, src: src, p: p, rto0: rto, retries: t.settings.Retries}
	if err := s.start(oack); err != nil {
		res.outcome, res.err = "failed", err
		return res
	}
	if t.wait == waitLoop {
		res.err = t.srv.loop().run(s)
	} else {
		res.err = s.drive()
	}
	res.outcome = "ok"
	if res.err == nil {
		res.bytes = s.sent()
	} else {
		res.outcome = "failed"
		var ce clientError
		if !errors.Is(res.err, errTimeout) && !errors.As(res.err, &ce) {
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
	t.sock = sk
	t.mu.Unlock()
	if t.srv.closing.Load() {
		sk.abort()
	}
	t.rbuf = make([]byte, 1024)
	return nil
}

// blockLimit is the largest blksize for the interface the request came in on.
func (t *transfer) blockLimit() int {
	return blockLimit(t.settings.MaxBlockSize, t.srv.mtu(t.in.ifindex), t.peer.Addr().Is6())
}

func (t *transfer) send(pkt []byte) error { return t.sock.send(pkt) }

// errTimeout is returned when the client stops answering.
var errTimeout = errors.New("client stopped answering")

// clientError is an ERROR packet from the client: it ended the transfer.
type clientError struct {
	code uint16
	msg  string
}

func (e clientError) Error() string { return fmt.Sprintf("client sent error %d: %q", e.code, e.msg) }

// sender is the DATA/ACK exchange of one transfer, as a state machine:
// start sends the OACK or the first window, and then each packet from the
// client (packet) and each deadline passed without the ACK awaited
// (timeout) says what to send next, until the last block is acknowledged
// or the transfer fails. A transfer that waits in blocking calls drives it
// itself (drive); the many beyond are driven by the server's loop, which
// waits for the ACKs of all of them at once (loop_linux.go).
type sender struct {
	t       *transfer
	src     source
	p       params
	rto0    time.Duration // the first retransmission timeout
	retries int

	acked uint64 // highest block acknowledged; 0 before any DATA
	oack  []byte // the OACK, while it awaits its ACK 0
	end   uint64 // the last block of the window in flight
	final uint64 // the last block, once known (0 until then)
	last  int    // bytes in the final block

	attempt  int           // resends of the OACK or window in flight
	rto      time.Duration // the timeout of this attempt
	deadline time.Time     // when this attempt times out
	progress time.Time     // the last ACK that moved the transfer on

	pkts [][]byte // one buffer per block of a window: 4-byte header, then data
}

// maxIdle bounds how long a transfer waits for a client that makes no
// progress, whatever timeout it negotiated, so that a slot cannot be held
// for hours.
const maxIdle = 2 * time.Minute

// start sends the OACK, if the request had options the server took, or
// else the first window.
func (s *sender) start(oack []option) error {
	s.pkts = make([][]byte, s.p.window) // negotiate bounds window × blksize
	for i := range s.pkts {
		s.pkts[i] = make([]byte, 4+s.p.blksize)
	}
	s.rto, s.progress = s.rto0, time.Now()
	if len(oack) > 0 {
		s.oack = appendOACK(nil, oack)
	}
	return s.sendNext()
}

// sendNext sends what the client is to acknowledge next: the OACK until
// its ACK 0 came, then the window from the block after the last ACK.
func (s *sender) sendNext() error {
	if s.attempt > 0 {
		s.t.srv.Stats.Retransmits.Add(1)
	}
	if s.oack != nil {
		if err := s.t.send(s.oack); err != nil {
			return err
		}
	} else {
		end, err := s.sendWindow(s.acked + 1)
		if err != nil {
			return err
		}
		s.end = end
	}
	s.deadline = time.Now().Add(s.rto)
	return nil
}

// packet handles a packet from from. done is true once the transfer has
// ended: with err nil when the final block was acknowledged. Packets from
// other addresses get ERROR 5 and change nothing; a duplicate or stale
// ACK changes nothing either (it never causes a resend: RFC 1123
// 4.2.3.1).
func (s *sender) packet(pkt []byte, from netip.AddrPort) (done bool, err error) {
	t := s.t
	if from != t.peer {
		t.sock.sendTo(appendError(nil, errUnknownTID, "unknown transfer ID"), from)
		return false, nil
	}
	if block, ok := parseAck(pkt); ok {
		if s.oack != nil {
			if block != 0 {
				return false, nil
			}
			s.oack = nil
		} else {
			// Map the 16-bit wire number onto the blocks in flight.
			ahead := uint64(uint16(block - uint16(s.acked)))
			if ahead == 0 || s.acked+ahead > s.end {
				return false, nil
			}
			s.acked += ahead
			s.src.acked(s.acked)
			if s.final != 0 && s.acked == s.final {
				return true, nil
			}
		}
		s.attempt, s.rto, s.progress = 0, s.rto0, time.Now()
		return false, s.sendNext()
	}
	if code, msg, ok := parseError(pkt); ok {
		return true, clientError{code, msg}
	}
	t.send(appendError(nil, errIllegalOp, "expected ACK"))
	return true, fmt.Errorf("client sent opcode %d during transfer", opcode(pkt))
}

// timeout handles the deadline passing without the ACK awaited: the
// OACK or the window goes again, with the timeout doubled, until the
// retries are spent or the client has made no progress for maxIdle.
func (s *sender) timeout() error {
	s.attempt++
	s.rto *= 2
	if s.attempt > s.retries || time.Since(s.progress) > max(maxIdle, s.rto0) {
		if s.oack != nil {
			return fmt.Errorf("%w (no ACK for the OACK)", errTimeout)
		}
		return fmt.Errorf("%w after block %d", errTimeout, s.acked)
	}
	return s.sendNext()
}

// drive waits for the client's packets in the transfer's own goroutine
// until the transfer ends.
func (s *sender) drive() error {
	t := s.t
	for {
		n, from, err := t.sock.recv(t.rbuf, s.deadline)
		if errors.Is(err, errRecvTimeout) {
			err = s.timeout()
		} else if err == nil {
			var done bool
			if done, err = s.packet(t.rbuf[:n], from); done {
				return err
			}
		}
		if err != nil {
			return err
		}
	}
}

// sent is the bytes of a transfer whose final block was acknowledged.
func (s *sender) sent() int64 {
	return int64(s.final-1)*int64(s.p.blksize) + int64(s.last)
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
	err := s.t.sock.sendBatch(s.pkts[:count])
	for i := 0; i < count; i++ {
		s.pkts[i] = s.pkts[i][:cap(s.pkts[i])]
	}
	if err != nil {
		return 0, err
	}
	return from + uint64(count) - 1, nil
}
