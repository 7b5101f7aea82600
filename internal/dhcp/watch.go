package dhcp

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	packetsock "github.com/mdlayher/packet"
	"golang.org/x/net/bpf"

	"bootforge/internal/audit"
)

// Watch looks for other DHCP servers on the served segments while
// bootforge serves them: a second authoritative server hands clients
// addresses and boot files bootforge never chose, and is the commonest
// reason a PXE boot "sometimes" goes astray.
//
// It is passive: a packet socket per interface sees the replies that
// servers broadcast to clients (udp 67 → 68), its own excepted. Replies
// unicast to a client's MAC never reach it on a switched network, so an
// optional probe sends a DISCOVER of its own every so often.
type Watch struct {
	Log    *slog.Logger
	Events audit.Sink
	// Authoritative is bootforge's mode: then any other server giving
	// addresses is a conflict; in proxy mode one is expected (the
	// network's own), and only a second one is.
	Authoritative bool
	// Probe, if set, broadcasts a DISCOVER on an interface and returns the
	// servers that answered (check.ProbeDHCP), every ProbeEvery.
	Probe      func(iface string) ([]Foreign, error)
	ProbeEvery time.Duration
	// Repeat is how often a server still seen is logged and recorded
	// again (default 5 minutes).
	Repeat time.Duration

	mu    sync.Mutex
	seen  map[string]*Foreign // by interface, server ID and kind
	conns []*packetsock.Conn
	stop  chan struct{}
	wg    sync.WaitGroup
}

// Foreign is a DHCP server other than bootforge seen answering clients.
type Foreign struct {
	Interface string
	ServerID  netip.Addr // option 54, else the IP source
	Source    netip.Addr
	MAC       net.HardwareAddr // Ethernet source; nil from a probe
	// Kind is "authoritative" (it gives addresses) or "proxy" (boot
	// options only).
	Kind      string
	Offered   netip.Addr // yiaddr of the last reply, if any
	Client    net.HardwareAddr
	FirstSeen time.Time
	LastSeen  time.Time
	Replies   int
	reported  time.Time
}

// Start opens a packet socket on each interface (it needs CAP_NET_RAW)
// and, with a Probe, starts probing.
func (w *Watch) Start(ifaces []string) error {
	w.seen = map[string]*Foreign{}
	w.stop = make(chan struct{})
	if w.Repeat == 0 {
		w.Repeat = 5 * time.Minute
	}
	filter, err := bpf.Assemble(serverReplyFilter)
	if err != nil {
		return err
	}
	for _, name := range ifaces {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			w.Close()
			return err
		}
		c, err := packetsock.Listen(ifi, packetsock.Raw, 0x0800, &packetsock.Config{Filter: filter})
		if err != nil {
			w.Close()
			return fmt.Errorf("watching %s for other DHCP servers: %w", name, err)
		}
		w.conns = append(w.conns, c)
		w.wg.Add(1)
		go w.read(ifi, c)
	}
	if w.Probe != nil && w.ProbeEvery > 0 {
		w.wg.Add(1)
		go w.probe(ifaces)
	}
	return nil
}

// Close stops watching.
func (w *Watch) Close() {
	if w.stop != nil {
		select {
		case <-w.stop:
		default:
			close(w.stop)
		}
	}
	for _, c := range w.conns {
		c.Close()
	}
	w.wg.Wait()
}

// Servers lists the other servers seen, in a stable order.
func (w *Watch) Servers() []Foreign {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Foreign, 0, len(w.seen))
	for _, f := range w.seen {
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b Foreign) int {
		if c := a.ServerID.Compare(b.ServerID); c != 0 {
			return c
		}
		return cmpString(a.Interface+a.Kind, b.Interface+b.Kind)
	})
	return out
}

// Conflict reports whether f, one of Servers, conflicts with bootforge:
// the judgement its log line and boot-log event carry.
func (w *Watch) Conflict(f Foreign) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, _ := w.judge(&f)
	return c
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (w *Watch) read(ifi *net.Interface, c *packetsock.Conn) {
	defer w.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		f, ok := ParseServerReply(buf[:n])
		if !ok || slices.Equal(f.MAC, ifi.HardwareAddr) || own(ifi, f.ServerID) {
			continue // not a server reply, or one of ours
		}
		f.Interface = ifi.Name
		w.observe(f, time.Now())
	}
}

func (w *Watch) probe(ifaces []string) {
	defer w.wg.Done()
	t := time.NewTicker(w.ProbeEvery)
	defer t.Stop()
	for {
		for _, name := range ifaces {
			ifi, err := net.InterfaceByName(name)
			if err != nil {
				continue
			}
			servers, err := w.Probe(name)
			if err != nil {
				w.Log.Warn("dhcp watch: probe failed", "interface", name, "err", err)
				continue
			}
			for _, f := range servers {
				if !own(ifi, f.ServerID) && !own(ifi, f.Source) {
					f.Interface = name
					w.observe(f, time.Now())
				}
			}
		}
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
	}
}

// own reports whether a is one of the interface's addresses.
func own(ifi *net.Interface, a netip.Addr) bool {
	addrs, err := ifi.Addrs()
	if err != nil {
		return false
	}
	for _, ad := range addrs {
		if p, err := netip.ParsePrefix(ad.String()); err == nil && p.Addr().Unmap() == a.Unmap() {
			return true
		}
	}
	return false
}

// observe files a reply from another server, and logs and records it
// when it is new or was last reported Repeat ago.
func (w *Watch) observe(f Foreign, now time.Time) {
	w.mu.Lock()
	key := f.Interface + "/" + f.ServerID.String() + "/" + f.Kind
	cur, ok := w.seen[key]
	if !ok {
		f.FirstSeen = now
		cur = &f
		w.seen[key] = cur
	}
	cur.LastSeen, cur.Replies = now, cur.Replies+1
	if f.Offered.IsValid() {
		cur.Offered, cur.Client = f.Offered, f.Client
	}
	report := now.Sub(cur.reported) >= w.Repeat
	if report {
		cur.reported = now
	}
	conflict, why := w.judge(cur)
	snapshot := *cur
	w.mu.Unlock()
	if !report {
		return
	}
	attrs := []any{"interface", snapshot.Interface, "server", snapshot.ServerID.String(), "source", snapshot.Source.String(), "kind", snapshot.Kind}
	if snapshot.MAC != nil {
		attrs = append(attrs, "server_mac", snapshot.MAC.String())
	}
	if snapshot.Offered.IsValid() {
		attrs = append(attrs, "offered", snapshot.Offered.String(), "client", snapshot.Client.String())
	}
	result := "seen"
	if conflict {
		result = "conflict"
		w.Log.Error("dhcp watch: "+why, attrs...)
	} else {
		w.Log.Warn("dhcp watch: "+why, attrs...)
	}
	if w.Events != nil {
		e := audit.Event{Time: now, IP: snapshot.Source.String(), Stage: StageForeignServer, Protocol: "dhcp", Result: result,
			Reason: fmt.Sprintf("%s on %s: %s server %s", why, snapshot.Interface, snapshot.Kind, snapshot.ServerID)}
		if snapshot.MAC != nil {
			e.MAC = snapshot.MAC.String()
		}
		w.Events.Record(e)
	}
}

// StageForeignServer is the boot-log stage of another DHCP server seen.
const StageForeignServer = "foreign-server"

// judge says whether f conflicts with bootforge, and why; w.mu is held.
func (w *Watch) judge(f *Foreign) (bool, string) {
	if f.Kind == "proxy" {
		return false, "another proxyDHCP server answers PXE clients"
	}
	if w.Authoritative {
		return true, "a second authoritative DHCP server gives addresses beside bootforge"
	}
	others := map[netip.Addr]bool{}
	for _, s := range w.seen {
		if s.Kind == "authoritative" && s.Interface == f.Interface {
			others[s.ServerID] = true
		}
	}
	if len(others) > 1 {
		return true, "more than one authoritative DHCP server gives addresses on this segment"
	}
	return false, "the network's DHCP server (bootforge is proxy beside it)"
}

// serverReplyFilter passes IPv4 frames from udp/67 to udp/68 (unfragmented)
// to the socket, and nothing else: the kernel drops the rest of the
// segment's traffic before it costs a copy.
var serverReplyFilter = []bpf.Instruction{
	bpf.LoadAbsolute{Off: 12, Size: 2},                           // ethertype
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0x0800, SkipTrue: 8}, // not IPv4
	bpf.LoadAbsolute{Off: 23, Size: 1},                           // IP protocol
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 17, SkipTrue: 6},     // not UDP
	bpf.LoadAbsolute{Off: 20, Size: 2},                           // flags and fragment offset
	bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: 4},
	bpf.LoadMemShift{Off: 14},          // X = IP header length
	bpf.LoadIndirect{Off: 14, Size: 4}, // UDP source and destination ports
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 67<<16 | 68, SkipTrue: 1},
	bpf.RetConstant{Val: 1 << 16},
	bpf.RetConstant{Val: 0},
}

// ParseServerReply reads an Ethernet frame and returns the server behind
// it if it carries a DHCP OFFER or ACK from udp/67 to udp/68.
func ParseServerReply(frame []byte) (Foreign, bool) {
	var f Foreign
	if len(frame) < 14+20+8 || binary.BigEndian.Uint16(frame[12:14]) != 0x0800 {
		return f, false
	}
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ihl < 20 || len(ip) < ihl+8 || ip[9] != 17 {
		return f, false
	}
	udp := ip[ihl:]
	if binary.BigEndian.Uint16(udp[0:2]) != dhcpv4.ServerPort || binary.BigEndian.Uint16(udp[2:4]) != dhcpv4.ClientPort {
		return f, false
	}
	end := int(binary.BigEndian.Uint16(udp[4:6]))
	if end < 8 || end > len(udp) {
		end = len(udp)
	}
	p, err := dhcpv4.FromBytes(udp[8:end])
	if err != nil || p.OpCode != dhcpv4.OpcodeBootReply {
		return f, false
	}
	switch p.MessageType() {
	case dhcpv4.MessageTypeOffer, dhcpv4.MessageTypeAck:
	default:
		return f, false
	}
	f.MAC = net.HardwareAddr(slices.Clone(frame[6:12]))
	f.Source = netip.AddrFrom4([4]byte(ip[12:16]))
	f.ServerID = f.Source
	if id, ok := addr4(p.ServerIdentifier()); ok {
		f.ServerID = id
	}
	f.Kind = "proxy"
	if yi, ok := addr4(p.YourIPAddr); ok {
		f.Kind, f.Offered = "authoritative", yi
		f.Client = slices.Clone(p.ClientHWAddr)
	}
	return f, true
}
