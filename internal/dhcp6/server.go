// Package dhcp6 is bootforge's DHCPv6 server (RFC 8415): boot options to
// boot clients beside the network's own DHCPv6 server or SLAAC (proxy),
// IA_NA addresses from /64 pools with leases in the store (authoritative),
// and answers through relay agents. Packets are encoded and decoded by
// github.com/insomniacslk/dhcp/dhcpv6; what to boot comes from
// boot.Resolver, and the boot file URL from boot.URL6.
//
// It is a package of its own, beside internal/dhcp, because the two
// protocols share nothing on the wire: no BOOTP header, no broadcast, no
// giaddr, clients named by DUID and IAID instead of a MAC. Its allocator
// (Pool) is its own too: lease.Pool counts addresses in 32 bits and cannot
// hold a /64, while the leases themselves are lease.Lease values in the
// same lease.Store as the IPv4 ones (ClientID holds DUID+IAID).
//
// The server is a thin UDP adapter rather than the library's server6:
// one socket on [::]:547 joined to ff02::1:2 on the served interfaces
// only, which reports the receiving interface and the destination address
// of each packet (a relay's unicast and a client's multicast need
// different server addresses in the boot URL), and, in proxy mode, one on
// [::]:4011 for EDK2's boot-server request.
package dhcp6

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"golang.org/x/net/ipv6"

	"bootforge/internal/allow"
	"bootforge/internal/audit"
	"bootforge/internal/quiet"
)

const (
	workers    = 16
	queueDepth = 1024
	// maxReply is the largest reply sent: the IPv6 minimum MTU less the
	// IPv6 and UDP headers (1280 - 40 - 8), which no link drops.
	maxReply = 1232
)

// bootServerDelay holds back the answer on udp/4011. EDK2 sends its
// request there and only then opens the socket it reads the answer from
// (PxeBcRequestBootService); under a slow firmware an answer sent at once
// arrives before that socket exists, and is lost.
const bootServerDelay = 200 * time.Millisecond

// AllServers is the All_DHCP_Relay_Agents_and_Servers address.
var AllServers = netip.MustParseAddr("ff02::1:2")

// Stats counts what the server did with packets.
type Stats struct {
	Received   atomic.Int64
	Replied    atomic.Int64
	Ignored    atomic.Int64
	Malformed  atomic.Int64
	Dropped    atomic.Int64
	Denied     atomic.Int64 // outside the allow-list
	TooLarge   atomic.Int64 // replies over maxReply, not sent
	SendFailed atomic.Int64 // replies the kernel refused to send
}

// Server reads DHCPv6 packets and answers them.
type Server struct {
	log        *slog.Logger
	handler    *Handler
	interfaces []string
	bootServer bool
	conns      []*ipv6.PacketConn
	ports      []int
	ifaces     map[int]string // served interfaces by index
	queue      chan packet
	wg         sync.WaitGroup
	closed     atomic.Bool
	allow      atomic.Pointer[allow.List]
	tooLarge   quiet.Log[netip.Addr] // keeps a retrying client to a line per interval
	sendFailed quiet.Log[netip.Addr] // the same for replies not sent
	Stats      Stats
	// Events, if set, gets a boot-log event per answer and per boot client
	// left unanswered.
	Events audit.Sink
}

type packet struct {
	conn  *ipv6.PacketConn
	port  int
	data  []byte
	src   netip.AddrPort
	dst   netip.Addr
	index int
}

// NewServer makes a server for h on interfaces; Start opens its sockets.
func NewServer(h *Handler, interfaces []string, log *slog.Logger) *Server {
	s := &Server{log: log, handler: h, interfaces: interfaces, bootServer: h.Mode == ModeProxy,
		ifaces: map[int]string{}, queue: make(chan packet, queueDepth)}
	s.allow.Store(&allow.List{})
	h.Allow = func() allow.List { return *s.allow.Load() }
	return s
}

// SetAllow replaces the allow-list (a reload); an empty one means the
// defaults, as in Handler.Allow.
func (s *Server) SetAllow(l allow.List) { s.allow.Store(&l) }

// Start binds [::]:547, joins ff02::1:2 on each interface, and in proxy
// mode binds [::]:4011.
func (s *Server) Start() error {
	var ifis []*net.Interface
	for _, name := range s.interfaces {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return fmt.Errorf("dhcpv6 interface %q: %w", name, err)
		}
		ifis = append(ifis, ifi)
		s.ifaces[ifi.Index] = name
	}
	ports := []int{dhcpv6.DefaultServerPort}
	if s.bootServer {
		ports = append(ports, BootServerPort)
	}
	for _, port := range ports {
		c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6unspecified, Port: port})
		if err != nil {
			s.Close()
			return fmt.Errorf("dhcpv6 on port %d: %w", port, err)
		}
		pc := ipv6.NewPacketConn(c)
		if err := pc.SetControlMessage(ipv6.FlagInterface|ipv6.FlagDst, true); err != nil {
			c.Close()
			s.Close()
			return fmt.Errorf("dhcpv6 on port %d: %w", port, err)
		}
		if port == dhcpv6.DefaultServerPort {
			for _, ifi := range ifis {
				if err := pc.JoinGroup(ifi, &net.UDPAddr{IP: AllServers.AsSlice()}); err != nil {
					c.Close()
					s.Close()
					return fmt.Errorf("dhcpv6: joining %s on %s: %w", AllServers, ifi.Name, err)
				}
			}
		}
		s.conns, s.ports = append(s.conns, pc), append(s.ports, port)
	}
	for range workers {
		s.wg.Add(1)
		go s.work()
	}
	for i, pc := range s.conns {
		s.wg.Add(1)
		go s.read(pc, s.ports[i])
	}
	return nil
}

// Addrs lists what the server listens on, for the startup log.
func (s *Server) Addrs() []string {
	var out []string
	for _, port := range s.ports {
		out = append(out, fmt.Sprintf("[::]:%d on %s", port, strings.Join(s.interfaces, ",")))
	}
	return out
}

// Close stops reading and waits for the workers.
func (s *Server) Close() {
	if s.closed.Swap(true) {
		return
	}
	for _, c := range s.conns {
		c.Close()
	}
	close(s.queue)
	s.wg.Wait()
}

func (s *Server) read(pc *ipv6.PacketConn, port int) {
	defer s.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, cm, src, err := pc.ReadFrom(buf)
		if err != nil {
			if s.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Error("dhcp6: read", "port", port, "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		s.Stats.Received.Add(1)
		if cm == nil {
			continue
		}
		if _, served := s.ifaces[cm.IfIndex]; !served {
			s.Stats.Ignored.Add(1) // an interface nobody asked us to serve
			continue
		}
		ua, ok := src.(*net.UDPAddr)
		if !ok {
			continue
		}
		p := packet{conn: pc, port: port, data: append([]byte(nil), buf[:n]...), src: ua.AddrPort(), index: cm.IfIndex}
		if d, ok := netip.AddrFromSlice(cm.Dst); ok {
			p.dst = d.Unmap()
		}
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

// serve handles one packet: answer, send, record.
func (s *Server) serve(p packet) {
	name := s.ifaces[p.index]
	res := s.handler.Handle(Request{Data: p.data, Iface: name, IfAddrs: globalAddrs(name), Dst: p.dst, Src: p.src, Port: p.port})
	switch {
	case res.Malformed:
		s.Stats.Malformed.Add(1)
		if res.Err != nil {
			s.log.Error("dhcp6: packet made the handler panic", "iface", name, "src", p.src, "len", len(p.data), "err", res.Err)
			return
		}
		s.log.Debug("dhcp6: malformed packet", "iface", name, "src", p.src, "len", len(p.data), "reason", res.Silent)
		return
	case res.Denied:
		s.Stats.Denied.Add(1)
		s.log.Debug("dhcp6: outside the allowed subnets", "iface", name, "src", p.src, "reason", res.Silent)
		s.record(res, "denied")
		return
	case res.Err != nil:
		s.Stats.Ignored.Add(1)
		s.log.Error("dhcp6: handling request", "src", p.src, "err", res.Err)
		s.record(res, "failed")
		return
	case res.Packet == nil:
		s.Stats.Ignored.Add(1)
		s.log.Debug("dhcp6: not answered", "src", p.src, "type", res.Type, "port", p.port, "reason", res.Silent)
		if res.Client.BootClient6() && !res.Plan.Boot {
			s.record(res, "not answered")
		}
		return
	case len(res.Packet) > maxReply:
		s.Stats.TooLarge.Add(1)
		if ok, since := s.tooLarge.Admit(p.src.Addr(), time.Now()); ok {
			s.log.Error("dhcp6: reply too large, not sent", "src", p.src, "bytes", len(res.Packet), "max", maxReply,
				"type", res.Type, "too_large_since_last", since)
		}
		return
	}
	if p.port == BootServerPort {
		time.Sleep(bootServerDelay)
	}
	dst := p.src
	if dst.Addr().IsLinkLocalUnicast() && dst.Addr().Zone() == "" {
		dst = netip.AddrPortFrom(dst.Addr().WithZone(name), dst.Port())
	}
	if _, err := p.conn.WriteTo(res.Packet, &ipv6.ControlMessage{IfIndex: p.index}, net.UDPAddrFromAddrPort(dst)); err != nil {
		if s.closed.Load() {
			return
		}
		s.Stats.SendFailed.Add(1)
		if ok, since := s.sendFailed.Admit(p.src.Addr(), time.Now()); ok {
			s.log.Warn("dhcp6: reply not sent", "to", dst, "type", res.Reply.MessageType, "err", err, "not_sent_since_last", since)
			if res.Client.BootClient6() {
				s.record(res, "not sent")
			}
		}
		return
	}
	s.Stats.Replied.Add(1)
	s.log.Debug("dhcp6: replied", "type", res.Reply.MessageType, "request", res.Type, "to", dst, "addrs", res.Addrs, "url", res.URL,
		"class", res.Client.VendorClass, "reason", res.Plan.Reason)
	s.record(res, "ok")
}

// StageBootServer prefixes the boot-log stage of an exchange with the boot
// server on udp/4011, as in internal/dhcp.
const StageBootServer = "bootserver-"

// record writes the boot-log event of res: the stage is the reply's
// message type ("advertise", "reply"), or the request's when silent.
func (s *Server) record(res Result, result string) {
	if s.Events == nil {
		return
	}
	c, plan := res.Client, res.Plan
	e := audit.Event{Protocol: "dhcp", Result: result, Profile: plan.Profile, Reason: plan.Reason,
		Stage: strings.ToLower(res.Type.String()), File: res.URL}
	if c.MAC != nil {
		e.MAC = c.MAC.String()
	}
	if res.Silent != "" {
		e.Reason = res.Silent
	}
	if res.Reply != nil {
		e.Stage = strings.ToLower(res.Reply.MessageType.String())
	}
	if c.HasArch {
		e.Arch = c.Arch.String()
	}
	if c.IP.IsValid() {
		e.IP = c.IP.String()
	}
	if res.Relayed && c.Relay.IsValid() { // a Lightweight Relay on our link names none
		e.Reason += "; relayed via " + c.Relay.String()
	}
	if res.Port == BootServerPort {
		e.Stage = StageBootServer + e.Stage
	}
	s.Events.Record(e)
}

// globalAddrs lists the interface's global IPv6 addresses.
func globalAddrs(name string) []netip.Prefix {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.To4() != nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok || !ip.IsGlobalUnicast() || ip.IsLinkLocalUnicast() {
			continue
		}
		ones, _ := ipn.Mask.Size()
		out = append(out, netip.PrefixFrom(ip, ones))
	}
	return out
}
