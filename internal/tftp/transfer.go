package tftp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"bootforge/internal/bootfs"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchBytes bounds the DATA bytes a transfer buffers for one sendmmsg, so
// that windowsize 64 at blksize 65464 does not cost 4 MiB per client.
const batchBytes = 256 << 10

// transfer is one read request, from the first answer to the last ACK.
type transfer struct {
	srv      *Server
	req      request
	in       inbound
	settings Settings
	files    bootfs.FS

	mu   sync.Mutex
	conn *net.UDPConn

	peer     netip.AddrPort
	peerAddr *net.UDPAddr
	batch    batchWriter
	rbuf     []byte
}

// abort makes a running transfer fail at its next read.
func (t *transfer) abort() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn != nil {
		t.conn.SetReadDeadline(time.Unix(1, 0))
		t.conn.Close()
	}
}

// result is what the transfer log records.
type result struct {
	bytes   int64
	blksize int
	window  int
	outcome string
	err     error
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
	attrs := []any{
		"client", t.in.src, "file", t.req.filename, "mode", t.req.mode,
		"bytes", res.bytes, "blksize", res.blksize, "windowsize", res.window,
		"duration", time.Since(start).Round(time.Microsecond), "result", res.outcome,
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
	defer t.conn.Close()

	refuse := func(code uint16, msg string, err error) result {
		t.send(appendError(nil, code, msg))
		res.outcome, res.err = "refused", err
		return res
	}
	if t.req.op == opWRQ {
		return refuse(errAccess, "write requests are not accepted", errors.New("write request"))
	}
	if t.req.mode != "octet" && t.req.mode != "netascii" {
		return refuse(errIllegalOp, "mode not supported: use octet or netascii", fmt.Errorf("mode %q", t.req.mode))
	}
	f, err := t.files.Open(bootfs.Request{Path: t.req.filename, Client: t.in.src, Protocol: "tftp"})
	if err != nil {
		code, msg := classify(err)
		res := refuse(code, msg, err)
		if code == errNotFound {
			res.outcome = "not found"
		}
		return res
	}
	defer f.Close()
	size := int64(-1)
	if st, err := f.Stat(); err == nil {
		size = st.Size()
	}

	p, oack := negotiate(t.req.options, t.req.mode, size, t.blockLimit(), t.settings.MaxWindowSize)
	res.blksize, res.window = p.blksize, p.window
	var src source = octetSource{r: f, blksize: p.blksize}
	if t.req.mode == "netascii" {
		src = newNetasciiSource(f, p.blksize)
	}
	rto := t.settings.Timeout
	if p.timeout > 0 {
		rto = p.timeout
	}
	s := sender{t: t, src: src, p: p, rto: rto, retries: t.settings.Retries}
	if len(oack) > 0 {
		if err := s.handshake(appendOACK(nil, oack)); err != nil {
			res.outcome, res.err = "failed", err
			return res
		}
	}
	res.bytes, res.err = s.run()
	res.outcome = "ok"
	if res.err != nil {
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
	t.peer = t.in.src
	t.peerAddr = net.UDPAddrFromAddrPort(t.peer)
	network := "udp4"
	if t.peer.Addr().Is6() {
		network = "udp6"
	}
	var laddr *net.UDPAddr
	if d := t.in.dst; d.IsValid() && !d.IsMulticast() && d != netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(d, 0))
	}
	conn, err := net.ListenUDP(network, laddr)
	if err != nil && laddr != nil {
		conn, err = net.ListenUDP(network, nil)
	}
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.conn = conn
	t.mu.Unlock()
	if network == "udp4" {
		t.batch = ipv4.NewPacketConn(conn)
	} else {
		t.batch = ipv6.NewPacketConn(conn)
	}
	t.rbuf = make([]byte, 1024)
	return nil
}

// blockLimit is the largest blksize for the interface the request came in on.
func (t *transfer) blockLimit() int {
	mtu := 0
	if t.in.ifindex > 0 {
		if ifc, err := net.InterfaceByIndex(t.in.ifindex); err == nil {
			mtu = ifc.MTU
		}
	}
	limit := blockLimit(t.settings.MaxBlockSize, mtu)
	if t.settings.MaxBlockSize == 0 && t.peer.Addr().Is6() && mtu > 0 {
		limit = min(limit, mtu-headerOverhead-20) // IPv6 header is 20 bytes longer
	}
	if mtu == 0 && t.settings.MaxBlockSize == 0 {
		limit = 1468 // unknown interface: one Ethernet frame
	}
	return max(limit, minBlockSize)
}

func (t *transfer) send(pkt []byte) error {
	_, err := t.conn.WriteToUDPAddrPort(pkt, t.peer)
	return err
}

// batchWriter is the sendmmsg half of ipv4.PacketConn and ipv6.PacketConn.
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// errTimeout is returned when the client stops answering.
var errTimeout = errors.New("client stopped answering")

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

	acked uint64 // highest block acknowledged; 0 before any DATA
	oack  bool   // an OACK awaits its ACK 0
	final uint64 // the last block, once known (0 until then)
	last  int    // bytes in the final block

	buf  []byte
	hdrs []byte
	msgs []ipv4.Message
}

// maxIdle bounds how long a transfer waits for a client that makes no
// progress, whatever timeout it negotiated, so that a slot cannot be held
// for hours.
const maxIdle = 2 * time.Minute

// handshake sends the OACK until the client acknowledges it with ACK 0.
func (s *sender) handshake(oack []byte) error {
	for attempt, rto := 0, s.rto; ; attempt, rto = attempt+1, rto*2 {
		if attempt > s.retries {
			return fmt.Errorf("%w (no ACK for the OACK)", errTimeout)
		}
		if err := s.t.send(oack); err != nil {
			return err
		}
		s.oack = true
		if _, err := s.await(time.Now().Add(rto), 0); err != nil {
			return err
		}
		if !s.oack {
			return nil
		}
	}
}

// run sends windows until the final block is acknowledged.
func (s *sender) run() (int64, error) {
	batch := max(1, min(s.p.window, batchBytes/s.p.blksize))
	s.buf = make([]byte, batch*s.p.blksize)
	s.hdrs = make([]byte, 4*batch)
	s.msgs = make([]ipv4.Message, batch)
	for i := range s.msgs {
		s.msgs[i].Addr = s.t.peerAddr
		s.msgs[i].Buffers = make([][]byte, 2)
	}
	attempt, rto := 0, s.rto
	progress := time.Now()
	for {
		from := s.acked + 1
		end, err := s.sendWindow(from)
		if err != nil {
			return 0, err
		}
		before := s.acked
		if _, err := s.await(time.Now().Add(rto), end); err != nil {
			return 0, err
		}
		if s.acked > before {
			s.src.acked(s.acked)
		}
		if s.final != 0 && s.acked == s.final {
			return int64(s.final-1)*int64(s.p.blksize) + int64(s.last), nil
		}
		if s.acked > before {
			attempt, rto, progress = 0, s.rto, time.Now()
			continue
		}
		// Timeout: resend the window from the block after the last ACK.
		attempt++
		rto *= 2
		if attempt > s.retries || time.Since(progress) > max(maxIdle, s.rto) {
			return 0, fmt.Errorf("%w after block %d", errTimeout, s.acked)
		}
	}
}

// sendWindow sends up to window blocks starting at block from and returns the
// last block sent.
func (s *sender) sendWindow(from uint64) (uint64, error) {
	bs := s.p.blksize
	next := from
	for remaining := s.p.window; remaining > 0 && (s.final == 0 || next <= s.final); {
		k := min(remaining, len(s.msgs))
		n, err := s.src.read(s.buf[:k*bs], next)
		if err != nil {
			return 0, err
		}
		count := n / bs
		if n < k*bs { // the data ends in this batch
			count++
			s.final = next + uint64(count) - 1
			s.last = n % bs
		}
		for i := 0; i < count; i++ {
			h := s.hdrs[4*i : 4*i+4]
			putDataHeader(h, uint16(next+uint64(i))) // wire block numbers roll over past 65535
			s.msgs[i].Buffers[0] = h
			s.msgs[i].Buffers[1] = s.buf[i*bs : min((i+1)*bs, n)]
		}
		for sent := 0; sent < count; {
			m, err := s.t.batch.WriteBatch(s.msgs[sent:count], 0)
			if err != nil {
				return 0, err
			}
			sent += m
		}
		next += uint64(count)
		remaining -= count
	}
	return next - 1, nil
}

// await reads until the client acknowledges a block in (acked, end], the
// deadline passes, or the client gives up. It reports whether the ACK
// arrived. Packets from other addresses get ERROR 5 and change nothing.
func (s *sender) await(deadline time.Time, end uint64) (bool, error) {
	t := s.t
	if err := t.conn.SetReadDeadline(deadline); err != nil {
		return false, err
	}
	for {
		n, from, err := t.conn.ReadFromUDPAddrPort(t.rbuf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !t.srv.closing.Load() {
				return false, nil
			}
			return false, err
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if from != t.peer {
			t.conn.WriteToUDPAddrPort(appendError(nil, errUnknownTID, "unknown transfer ID"), from)
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
		return false, fmt.Errorf("client sent opcode %d during transfer", opcode(pkt))
	}
}
