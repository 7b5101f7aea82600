// Package dhcp is bootforge's DHCP server: proxyDHCP beside another server,
// authoritative with pools and persistent leases, and answers to relay
// agents. Packets are dhcpv4.DHCPv4 values of
// github.com/insomniacslk/dhcp. A request is read (decode), a reply's
// options set (draft) and its wire form written (appendPacket) here, as
// the library does each, because its decoder made two dozen objects per
// packet, its typed options two or three each, and its encoder three
// buffers per reply. What to boot comes from boot.Resolver. This package only adapts: it reads
// sockets, decides who is in scope, asks the Handler, and routes the reply
// as RFC 2131 4.1 says.
//
// Work is bounded: one reader per socket feeds a fixed pool of workers
// through a bounded queue. When the queue is full the packet is dropped and
// counted — DHCP clients retry, and answering late is worse than not at
// all. A per-MAC token bucket keeps a firmware retry storm from costing
// more than a few packets a second.
package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"

	"bootforge/internal/allow"
	"bootforge/internal/audit"
	"bootforge/internal/quiet"
	"bootforge/internal/sockopt"
)

const (
	pxePort    = 4011 // the PXE boot server (ProxyDHCPREQUEST)
	workers    = 256
	queueDepth = 4096
	// maxReply is the largest reply EDK2 accepts (1500 - 20 IP - 8 UDP).
	maxReply = 1472
	// recvBuffer absorbs a burst of DISCOVERs (see sockopt).
	recvBuffer = 8 << 20
)

// Stats counts what the server did with packets.
type Stats struct {
	Received    atomic.Int64
	Replied     atomic.Int64
	Ignored     atomic.Int64 // well-formed, but nothing to answer
	Malformed   atomic.Int64 // could not be parsed
	Denied      atomic.Int64 // outside the allowed subnets
	RateLimited atomic.Int64
	Dropped     atomic.Int64 // queue full
	TooLarge    atomic.Int64 // replies over maxReply, not sent
	SendFailed  atomic.Int64 // replies the kernel refused to send (no route, interface down, ...)
	// Requests counts parsed packets, Replies sent replies, by DHCP
	// message type (option 53): Requests[dhcpv4.MessageTypeDiscover].
	Requests [256]atomic.Int64
	Replies  [256]atomic.Int64
}

// Config is what the server needs besides the Handler.
type Config struct {
	Interfaces []string
	Allow      allow.List // client subnets served; empty: the handler's subnets and the interfaces' own
	RateLimit  int        // packets per second per MAC
	BootServer bool       // also listen on 4011
}

// Server reads DHCP packets and answers them.
type Server struct {
	log     *slog.Logger
	handler atomic.Pointer[Handler]
	cfg     Config
	allow   atomic.Pointer[allow.List] // cfg.Allow, then SetAllow's
	limiter *limiter
	queue   chan packet
	conns   []*ifaceConn
	wg      sync.WaitGroup
	closed  atomic.Bool
	Stats   Stats
	// Events, if set, gets a boot-log event per answer and per refusal.
	Events audit.Sink
	// refusals, tooLarge and sendFailed keep a client whose firmware
	// retries from writing a line per packet.
	refusals, tooLarge, sendFailed quiet.Log[string]
}

type ifaceConn struct {
	name string
	port int
	conn *net.UDPConn // receives; sends too where out is nil
	out  *sender      // sends (sender.go says why)

	mu      sync.Mutex
	addrs   []netip.Prefix
	fetched time.Time
}

type packet struct {
	ic   *ifaceConn
	data []byte
	src  netip.AddrPort
}

// NewServer makes a server; Start opens its sockets.
func NewServer(h *Handler, cfg Config, log *slog.Logger) *Server {
	s := &Server{log: log, cfg: cfg, limiter: newLimiter(cfg.RateLimit), queue: make(chan packet, queueDepth)}
	s.handler.Store(h)
	s.allow.Store(&cfg.Allow)
	return s
}

// SetAllow replaces the allow-list (a reload); an empty one means the
// defaults, as in Config.
func (s *Server) SetAllow(l allow.List) { s.allow.Store(&l) }

// Start binds port 67 (and 4011 for the boot server) on each interface.
func (s *Server) Start() error {
	ports := []int{dhcpv4.ServerPort}
	if s.cfg.BootServer {
		ports = append(ports, pxePort)
	}
	for _, name := range s.cfg.Interfaces {
		if _, err := net.InterfaceByName(name); err != nil {
			s.Close()
			return fmt.Errorf("dhcp interface %q: %w", name, err)
		}
		for _, port := range ports {
			ic, err := s.listen(name, port)
			if err != nil {
				s.Close()
				return fmt.Errorf("dhcp on %s port %d: %w", name, port, err)
			}
			s.conns = append(s.conns, ic)
		}
	}
	for i := 0; i < workers; i++ {
		s.wg.Add(1)
		go s.work()
	}
	for _, ic := range s.conns {
		s.wg.Add(1)
		go s.read(ic)
	}
	return nil
}

// listen opens the socket that receives on port of interface name and,
// if no other socket was bound there before it, the sender beside it
// (sender.go says why both conditions).
func (s *Server) listen(name string, port int) (*ifaceConn, error) {
	alone := portFree(name, port)
	conn, err := server4.NewIPv4UDPConn(name, &net.UDPAddr{Port: port})
	if err != nil {
		return nil, err
	}
	sockopt.GrowReadBuffer(conn, recvBuffer)
	ic := &ifaceConn{name: name, port: port, conn: conn}
	if !alone {
		s.log.Info("dhcp: the port was already bound by another socket; replies go out through the listening one", "interface", name, "port", port)
		return ic, nil
	}
	if ic.out, err = newSender(conn, name, port); err != nil {
		s.log.Warn("dhcp: replies go out through the listening socket", "interface", name, "port", port, "err", err)
	}
	return ic, nil
}

// Handler returns the handler answering now: its mode and subnets.
func (s *Server) Handler() *Handler { return s.handler.Load() }

// Addrs lists the bound sockets, for the startup log.
func (s *Server) Addrs() []string {
	var out []string
	for _, ic := range s.conns {
		out = append(out, fmt.Sprintf("%s:%d", ic.name, ic.port))
	}
	return out
}

// Close stops reading and waits for the workers.
func (s *Server) Close() {
	if s.closed.Swap(true) {
		return
	}
	for _, ic := range s.conns {
		ic.conn.Close()
	}
	close(s.queue)
	s.wg.Wait()
	for _, ic := range s.conns {
		if ic.out != nil {
			ic.out.close() // no worker is left to send
		}
	}
}

func (s *Server) read(ic *ifaceConn) {
	defer s.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, src, err := ic.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if s.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Error("dhcp: read", "iface", ic.name, "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		s.Stats.Received.Add(1)
		p := packet{ic: ic, data: append([]byte(nil), buf[:n]...), src: netip.AddrPortFrom(src.Addr().Unmap(), src.Port())}
		select {
		case s.queue <- p:
		default:
			s.Stats.Dropped.Add(1)
		}
	}
}

func (s *Server) work() {
	defer s.wg.Done()
	for p := range s.queue {
		s.serve(p)
	}
}

// serve handles one packet: parse, scope, rate limit, answer, send.
func (s *Server) serve(p packet) {
	req, err := parse(p.data)
	if err != nil {
		s.Stats.Malformed.Add(1)
		s.log.Debug("dhcp: malformed packet", "iface", p.ic.name, "src", p.src, "len", len(p.data), "err", err)
		return
	}
	s.Stats.Requests[req.MessageType()].Add(1)
	h := s.handler.Load()
	addrs := p.ic.addresses()
	if ok, why := s.allowed(req, addrs, h); !ok {
		s.Stats.Denied.Add(1)
		s.record(req, Result{Client: clientOf(req, p.ic.name, netip.Addr{}), Silent: why, Port: p.ic.port}, "denied")
		s.log.Debug("dhcp: outside the allowed subnets", "iface", p.ic.name, "mac", req.ClientHWAddr.String(), "giaddr", req.GatewayIPAddr, "reason", why)
		return
	}
	if !s.limiter.allow(string(req.ClientHWAddr), time.Now()) {
		s.Stats.RateLimited.Add(1)
		return
	}
	res := h.handle(request{pkt: req, iface: p.ic.name, ifAddrs: addrs, src: p.src, port: p.ic.port})
	switch {
	case res.Silent != "":
		s.Stats.Ignored.Add(1)
		s.log.Debug("dhcp: not answered", "mac", req.ClientHWAddr.String(), "type", req.MessageType(), "port", res.Port, "reason", res.Silent)
		switch {
		case res.Refused:
			s.refused(req, res)
		case res.Client.PXE() && !res.Plan.Boot:
			s.record(req, res, "not answered") // a network boot we cannot serve: worth a line in the boot log
		}
	case res.Reply == nil:
		s.record(req, res, "ok") // RELEASE, DECLINE
	default:
		if res.Unreachable != "" {
			s.log.Warn("dhcp: reply names a boot file the client cannot fetch", "mac", req.ClientHWAddr.String(),
				"giaddr", req.GatewayIPAddr.String(), "reason", res.Unreachable)
		}
		if s.send(p.ic, req, res, p.src) {
			s.record(req, res, "ok")
		}
	}
}

// refused tells the operator about a client turned away (Result.Refused
// says why): a warning, and for a network boot a boot-log event, at most once
// per client per quiet.Every; the refusals in between are counted only.
func (s *Server) refused(req *dhcpv4.DHCPv4, res Result) {
	ok, since := s.refusals.Admit(req.ClientHWAddr.String(), time.Now())
	if !ok {
		return
	}
	s.log.Warn("dhcp: client refused", "mac", req.ClientHWAddr.String(), "type", req.MessageType(),
		"giaddr", req.GatewayIPAddr.String(), "pxe", res.Client.PXE(), "reason", res.Silent, "refused_since_last", since)
	if res.Client.PXE() {
		s.record(req, res, "refused")
	}
}

// StageBootServer prefixes the boot-log stage of an exchange with the PXE
// boot server on udp/4011: "bootserver-request", "bootserver-ack".
const StageBootServer = "bootserver-"

// record writes the boot-log event for a request from what the handler
// decided: the client's firmware, its profile, the reason, and the reply
// if one was sent.
func (s *Server) record(req *dhcpv4.DHCPv4, res Result, result string) {
	if s.Events == nil {
		return
	}
	c, plan := res.Client, res.Plan
	e := audit.Event{MAC: req.ClientHWAddr.String(), Protocol: "dhcp", Result: result, Profile: plan.Profile,
		Stage: stage(req.MessageType()), Reason: plan.Reason}
	if res.Silent != "" {
		e.Reason = res.Silent
	}
	if res.Unreachable != "" {
		e.Reason += "; " + res.Unreachable
	}
	if c.HasArch {
		e.Arch = c.Arch.String()
	}
	if c.IP.IsValid() {
		e.IP = c.IP.String()
	}
	if reply := res.Reply; reply != nil {
		e.Stage = stage(reply.MessageType())
		if ip, ok := addr4(reply.YourIPAddr); ok {
			e.IP = ip.String()
		}
		e.File = reply.BootFileName
	}
	if res.Discovery {
		e.Reason += "; boot file from the boot server on udp/4011"
	}
	if res.Port == pxePort {
		e.Stage = StageBootServer + e.Stage // the PXE boot server's exchange, not DHCP's
	}
	s.Events.Record(e)
}

// stage is the boot-log stage of a message type: "discover", "offer", ...
func stage(t dhcpv4.MessageType) string { return stages[t] }

// stages holds every message type's stage, made once: each packet's event
// names two, and lower-casing the library's names made a string each time.
var stages = func() (s [256]string) {
	for i := range s {
		s[i] = strings.ToLower(strings.TrimPrefix(dhcpv4.MessageType(i).String(), "DHCP"))
	}
	return s
}()

// replyBuffers hold the replies' wire form while they are sent: a packet
// needs a buffer for no longer than its write.
var replyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, maxReply); return &b }}

func (s *Server) send(ic *ifaceConn, req *dhcpv4.DHCPv4, res Result, src netip.AddrPort) bool {
	reply := res.Reply
	if reply.GatewayIPAddr != nil && !reply.GatewayIPAddr.IsUnspecified() {
		reply.HopCount = 0
	}
	buf := replyBuffers.Get().(*[]byte)
	defer replyBuffers.Put(buf)
	b := appendPacket((*buf)[:0], reply)
	*buf = b
	if len(b) > maxReply {
		s.Stats.TooLarge.Add(1)
		if ok, since := s.tooLarge.Admit(req.ClientHWAddr.String(), time.Now()); ok {
			s.log.Error("dhcp: reply too large for EDK2, not sent", "mac", req.ClientHWAddr.String(), "bytes", len(b), "max", maxReply,
				"type", reply.MessageType(), "too_large_since_last", since)
		}
		return false
	}
	dst := route(req, reply, src)
	if dst.arp {
		if err := setARP(ic.conn, ic.name, dst.addr.Addr(), req.ClientHWAddr); err != nil {
			s.log.Debug("dhcp: no ARP entry, broadcasting", "err", err)
			dst.addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), dhcpv4.ClientPort)
		}
	}
	if err := ic.writeTo(b, dst.addr); err != nil {
		if s.closed.Load() { // after Close, the queue drains into closed sockets: not worth a line each
			return false
		}
		// The client waits for an answer that never leaves: a route to
		// the relay missing, an interface gone down. Counted, and said
		// (the log; the boot log for PXE firmware) once per client per
		// quiet.Every, as the client retries.
		s.Stats.SendFailed.Add(1)
		if ok, since := s.sendFailed.Admit(req.ClientHWAddr.String(), time.Now()); ok {
			s.log.Warn("dhcp: reply not sent", "mac", req.ClientHWAddr.String(), "type", reply.MessageType(), "to", dst.addr,
				"err", err, "not_sent_since_last", since)
			if res.Client.PXE() {
				s.record(req, res, "not sent")
			}
		}
		return false
	}
	s.Stats.Replied.Add(1)
	s.Stats.Replies[reply.MessageType()].Add(1)
	if s.log.Enabled(context.Background(), slog.LevelDebug) { // the arguments alone cost allocations per reply
		s.log.Debug("dhcp: replied", "type", reply.MessageType(), "request", req.MessageType(), "mac", req.ClientHWAddr.String(), "port", res.Port,
			"yiaddr", reply.YourIPAddr, "to", dst.addr, "file", reply.BootFileName, "discovery", res.Discovery)
	}
	return true
}

// allowed reports whether the client's subnet — the relay's, or the
// receiving interface's — is one we serve, and if not, why. Without an
// allow-list, that is the handler's subnets and, for clients on the link,
// the interface's own.
func (s *Server) allowed(req *dhcpv4.DHCPv4, ifAddrs []netip.Prefix, h *Handler) (bool, string) {
	if gi, ok := addr4(req.GatewayIPAddr); ok {
		return s.allows(gi, h, nil)
	}
	why := "no address of the interface is in a served subnet"
	for _, a := range ifAddrs {
		ok, reason := s.allows(a.Addr(), h, ifAddrs)
		if ok {
			return true, ""
		}
		why = reason
	}
	return false, why
}

// allows checks one address against the allow-list, or the defaults.
func (s *Server) allows(a netip.Addr, h *Handler, own []netip.Prefix) (bool, string) {
	if l := s.allow.Load(); !l.Empty() {
		d := l.Check(a)
		return d.Allowed, d.Reason
	}
	for _, sub := range h.Subnets {
		if sub.Pool.Subnet.Contains(a) {
			return true, ""
		}
	}
	if containedIn(a, own) {
		return true, ""
	}
	return false, "outside the allowed subnets"
}

func containedIn(a netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// writeTo sends a reply: through the sender if there is one, else
// through the listening socket.
func (ic *ifaceConn) writeTo(b []byte, dst netip.AddrPort) error {
	if ic.out != nil {
		return ic.out.send(b, dst)
	}
	_, err := ic.conn.WriteToUDPAddrPort(b, dst)
	return err
}

// addresses returns the interface's IPv4 addresses, cached for a few
// seconds: reading them costs a netlink round trip.
func (ic *ifaceConn) addresses() []netip.Prefix {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if time.Since(ic.fetched) < 5*time.Second && ic.addrs != nil {
		return ic.addrs
	}
	ic.fetched = time.Now()
	ic.addrs = ic.addrs[:0:0]
	ifc, err := net.InterfaceByName(ic.name)
	if err != nil {
		return nil
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP.To4()); ok {
				ones, _ := ipn.Mask.Size()
				ic.addrs = append(ic.addrs, netip.PrefixFrom(ip, ones))
			}
		}
	}
	return ic.addrs
}
