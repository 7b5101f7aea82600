// Command dhcpload is a DHCPv4 load generator that plays a relay agent.
//
// It binds UDP port 67 on its own address (the relay address, used as
// giaddr), sends relayed DISCOVERs that look like PXE firmware (option 93
// client arch alternating 0 and 7, option 60 PXEClient, option 97 UUID,
// option 82 with a circuit id) unicast to the server's port 67, takes the
// OFFER at giaddr:67, sends the REQUEST (requested IP, server id) and takes
// the ACK. Each client runs one full DORA, closed loop, with -inflight
// clients in flight. There are no retries: a message that gets no answer
// within -timeout fails the client and counts as a timeout.
//
// It reports completed leases per second over the run's wall time, the
// p50/p99/max latency of a full DORA, NAKs, timeouts, and duplicates (an
// address ACKed to two different MACs).
//
// Packets are built and parsed with github.com/insomniacslk/dhcp/dhcpv4.
// One UDP socket carries everything; a reader goroutine hands each reply to
// the client waiting for its transaction id.
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

type config struct {
	server   net.IP
	relay    net.IP
	port     int
	clients  int
	inflight int
	timeout  time.Duration
	maxTime  time.Duration
	macBase  uint64
	macSeq   bool
	label    string
	jsonOut  bool
	verbose  bool
	acked    string // file for "ip mac" of every ACK seen
}

// Result is what a run prints (with -json, as one JSON object).
type Result struct {
	Label        string  `json:"label,omitempty"`
	Server       string  `json:"server"`
	Relay        string  `json:"relay"`
	Clients      int     `json:"clients"`
	Inflight     int     `json:"inflight"`
	TimeoutMS    float64 `json:"timeout_ms"`
	Started      int     `json:"started"`   // clients that sent a DISCOVER
	Completed    int64   `json:"completed"` // full DORA ending in an ACK
	WallS        float64 `json:"wall_s"`    // first DISCOVER to last client done
	LeasesPerSec float64 `json:"leases_per_sec"`
	P50MS        float64 `json:"p50_ms"`
	P99MS        float64 `json:"p99_ms"`
	MaxMS        float64 `json:"max_ms"`
	NAKs         int64   `json:"naks"`
	Timeouts     int64   `json:"timeouts"` // offer_timeouts + ack_timeouts
	OfferTO      int64   `json:"offer_timeouts"`
	AckTO        int64   `json:"ack_timeouts"`
	Duplicates   int64   `json:"duplicates"`    // ACKs of an IP already ACKed to another MAC
	DistinctIPs  int     `json:"distinct_ips"`  // distinct yiaddr over all ACKs
	Mismatches   int64   `json:"mismatches"`    // ACK yiaddr != requested, chaddr wrong, no yiaddr
	NoOpt82Echo  int64   `json:"no_opt82_echo"` // replies without our option 82 echoed back
	WithBootfile int64   `json:"with_bootfile"` // ACKs naming a boot file (file field or option 67)
	Stray        int64   `json:"stray"`         // replies for no waiting client (late, duplicate, unknown)
	BadPackets   int64   `json:"bad_packets"`   // datagrams that failed to parse
	SendErrors   int64   `json:"send_errors"`
	Aborted      bool    `json:"aborted"`              // -max-time or a signal cut the run short
	CPUS         float64 `json:"cpu_s"`                // the generator's own user+system CPU time
	CPUUserS     float64 `json:"cpu_user_s"`           // of which user time
	LoadStart    string  `json:"load_start,omitempty"` // /proc/loadavg 1-minute figure at start
	LoadEnd      string  `json:"load_end,omitempty"`
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// cpuTime is the process's user+system and user CPU time so far.
func cpuTime() (total, user time.Duration) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), time.Duration(ru.Utime.Nano())
}

func main() {
	cfg, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dhcpload:", err)
		os.Exit(2)
	}
	res, err := run(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dhcpload:", err)
		os.Exit(1)
	}
	if cfg.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		_ = enc.Encode(res)
	} else {
		printText(res)
	}
	if res.Completed == 0 {
		os.Exit(3)
	}
}

func parseFlags() (config, error) {
	var c config
	server := flag.String("server", "", "DHCP server address (DISCOVER and REQUEST go to its port 67)")
	relay := flag.String("relay", "", "relay address: bound on UDP 67 and sent as giaddr")
	flag.IntVar(&c.port, "port", 67, "UDP port of the server and of the relay")
	flag.IntVar(&c.clients, "clients", 20000, "clients in total, one DORA each")
	flag.IntVar(&c.inflight, "inflight", 16, "clients in flight at once")
	flag.DurationVar(&c.timeout, "timeout", 2*time.Second, "wait per message (OFFER, ACK); no retries, a timeout fails the client")
	flag.DurationVar(&c.maxTime, "max-time", 10*time.Minute, "stop starting clients after this long (bounds the run)")
	macBase := flag.String("mac-base", "02:bf:00:00:00:00", "MAC base: client MACs are unique within one run and keep the first 3 bytes of this (change it per run so runs don't collide)")
	macOrder := flag.String("mac-order", "scatter", "scatter: the low 24 bits are a bijective mix of the client index (a mixed fleet); seq: base plus index")
	flag.StringVar(&c.label, "label", "", "free text copied into the result")
	flag.BoolVar(&c.jsonOut, "json", false, "print the result as one JSON object")
	flag.BoolVar(&c.verbose, "v", false, "log each failure to stderr")
	flag.StringVar(&c.acked, "acked", "", "write \"IP MAC\" for every ACK seen to this file (crash-safety checks)")
	flag.Parse()
	if flag.NArg() != 0 {
		return c, fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if c.server = net.ParseIP(*server).To4(); c.server == nil {
		return c, fmt.Errorf("-server: %q is not an IPv4 address", *server)
	}
	if c.relay = net.ParseIP(*relay).To4(); c.relay == nil {
		return c, fmt.Errorf("-relay: %q is not an IPv4 address", *relay)
	}
	if c.clients < 1 || c.inflight < 1 {
		return c, errors.New("-clients and -inflight must be at least 1")
	}
	if c.timeout <= 0 || c.maxTime <= 0 {
		return c, errors.New("-timeout and -max-time must be positive")
	}
	hw, err := net.ParseMAC(*macBase)
	if err != nil || len(hw) != 6 {
		return c, fmt.Errorf("-mac-base: %q is not a 6-byte MAC", *macBase)
	}
	for _, b := range hw {
		c.macBase = c.macBase<<8 | uint64(b)
	}
	switch *macOrder {
	case "seq":
		c.macSeq = true
		if c.macBase+uint64(c.clients) > 1<<48 {
			return c, errors.New("-mac-base plus -clients overflows 48 bits")
		}
	case "scatter":
		if c.clients > 1<<24 {
			return c, errors.New("-mac-order scatter allows at most 2^24 clients")
		}
	default:
		return c, fmt.Errorf("-mac-order: %q is not scatter or seq", *macOrder)
	}
	return c, nil
}

// reply is one parsed datagram handed to the waiting client.
type reply struct {
	msg *dhcpv4.DHCPv4
	at  time.Time
}

type loader struct {
	cfg  config
	conn *net.UDPConn
	dst  *net.UDPAddr

	mu      sync.Mutex
	waiting map[uint32]chan reply

	leaseMu sync.Mutex
	leases  map[[4]byte]uint64 // IP -> MAC of the last ACK
	lat     []time.Duration

	completed, naks, offerTO, ackTO, dups, mismatch atomic.Int64
	noEcho, bootfile, stray, bad, sendErr           atomic.Int64
}

func run(cfg config) (*Result, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: cfg.relay, Port: cfg.port})
	if err != nil {
		return nil, fmt.Errorf("bind relay %s:%d: %w", cfg.relay, cfg.port, err)
	}
	defer conn.Close()
	_ = conn.SetReadBuffer(8 << 20)
	_ = conn.SetWriteBuffer(8 << 20)

	l := &loader{
		cfg:     cfg,
		conn:    conn,
		dst:     &net.UDPAddr{IP: cfg.server, Port: cfg.port},
		waiting: make(map[uint32]chan reply, cfg.inflight*2),
		leases:  make(map[[4]byte]uint64, cfg.clients),
		lat:     make([]time.Duration, 0, cfg.clients),
	}

	var xidBase [4]byte
	if _, err := rand.Read(xidBase[:]); err != nil {
		return nil, err
	}
	base := binary.BigEndian.Uint32(xidBase[:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.maxTime)
	defer cancel()

	readerDone := make(chan struct{})
	go func() { defer close(readerDone); l.readLoop() }()

	load0 := loadavg()
	cpu0, user0 := cpuTime()
	var next atomic.Int64
	var started atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < cfg.inflight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for {
				i := next.Add(1) - 1
				if i >= int64(cfg.clients) || ctx.Err() != nil {
					return
				}
				started.Add(1)
				l.dora(int(i), base+uint32(i), timer)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(t0)
	conn.Close()
	<-readerDone
	if cfg.acked != "" {
		var b strings.Builder
		for ip, mac := range l.leases {
			fmt.Fprintf(&b, "%d.%d.%d.%d %012x\n", ip[0], ip[1], ip[2], ip[3], mac)
		}
		if err := os.WriteFile(cfg.acked, []byte(b.String()), 0o644); err != nil {
			return nil, err
		}
	}

	res := &Result{
		Label:        cfg.label,
		Server:       cfg.server.String(),
		Relay:        cfg.relay.String(),
		Clients:      cfg.clients,
		Inflight:     cfg.inflight,
		TimeoutMS:    ms(cfg.timeout),
		Started:      int(started.Load()),
		Completed:    l.completed.Load(),
		WallS:        wall.Seconds(),
		NAKs:         l.naks.Load(),
		OfferTO:      l.offerTO.Load(),
		AckTO:        l.ackTO.Load(),
		Duplicates:   l.dups.Load(),
		DistinctIPs:  len(l.leases),
		Mismatches:   l.mismatch.Load(),
		NoOpt82Echo:  l.noEcho.Load(),
		WithBootfile: l.bootfile.Load(),
		Stray:        l.stray.Load(),
		BadPackets:   l.bad.Load(),
		SendErrors:   l.sendErr.Load(),
		Aborted:      ctx.Err() != nil && int(started.Load()) < cfg.clients,
		LoadStart:    load0,
		LoadEnd:      loadavg(),
	}
	res.Timeouts = res.OfferTO + res.AckTO
	cpu1, user1 := cpuTime()
	res.CPUS, res.CPUUserS = (cpu1 - cpu0).Seconds(), (user1 - user0).Seconds()
	if wall > 0 {
		res.LeasesPerSec = float64(res.Completed) / wall.Seconds()
	}
	if n := len(l.lat); n > 0 {
		slices.Sort(l.lat)
		res.P50MS = ms(percentile(l.lat, 50))
		res.P99MS = ms(percentile(l.lat, 99))
		res.MaxMS = ms(l.lat[n-1])
	}
	return res, nil
}

// percentile is the nearest-rank percentile of sorted d.
func percentile(d []time.Duration, p float64) time.Duration {
	rank := int(p/100*float64(len(d))+0.999999999) - 1
	rank = max(0, min(rank, len(d)-1))
	return d[rank]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (l *loader) readLoop() {
	buf := make([]byte, 4096)
	for {
		n, _, err := l.conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		at := time.Now()
		msg, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || msg.OpCode != dhcpv4.OpcodeBootReply {
			l.bad.Add(1)
			continue
		}
		xid := binary.BigEndian.Uint32(msg.TransactionID[:])
		l.mu.Lock()
		ch := l.waiting[xid]
		l.mu.Unlock()
		if ch == nil {
			l.stray.Add(1)
			continue
		}
		select {
		case ch <- reply{msg, at}:
		default:
			l.stray.Add(1)
		}
	}
}

// PXE-style parameter request list (what EDK2's PXE client asks for).
var prl = []dhcpv4.OptionCode{
	dhcpv4.OptionSubnetMask, dhcpv4.OptionTimeOffset, dhcpv4.OptionRouter,
	dhcpv4.OptionTimeServer, dhcpv4.OptionNameServer, dhcpv4.OptionDomainNameServer,
	dhcpv4.OptionHostName, dhcpv4.OptionBootFileSize, dhcpv4.OptionDomainName,
	dhcpv4.OptionRootPath, dhcpv4.OptionExtensionsPath, dhcpv4.OptionMaximumDatagramAssemblySize,
	dhcpv4.OptionDefaultIPTTL, dhcpv4.OptionBroadcastAddress, dhcpv4.OptionNetworkInformationServiceDomain,
	dhcpv4.OptionNetworkInformationServers, dhcpv4.OptionNTPServers, dhcpv4.OptionVendorSpecificInformation,
	dhcpv4.OptionRequestedIPAddress, dhcpv4.OptionIPAddressLeaseTime, dhcpv4.OptionServerIdentifier,
	dhcpv4.OptionRenewTimeValue, dhcpv4.OptionRebindingTimeValue, dhcpv4.OptionClassIdentifier,
	dhcpv4.OptionTFTPServerName, dhcpv4.OptionBootfileName,
	dhcpv4.GenericOptionCode(128), dhcpv4.GenericOptionCode(129), dhcpv4.GenericOptionCode(130),
	dhcpv4.GenericOptionCode(131), dhcpv4.GenericOptionCode(132), dhcpv4.GenericOptionCode(133),
	dhcpv4.GenericOptionCode(134), dhcpv4.GenericOptionCode(135),
}

// clientOpts are the options a PXE client with index i and MAC mac sends,
// plus the relay agent information the relay adds.
func (l *loader) clientOpts(i int, mac net.HardwareAddr) []dhcpv4.Modifier {
	arch, vci := iana.INTEL_X86PC, "PXEClient:Arch:00000:UNDI:002001"
	if i%2 == 1 {
		arch, vci = iana.EFI_X86_64, "PXEClient:Arch:00007:UNDI:003016"
	}
	// Option 97: type 0, then a 16-byte UUID derived from the MAC.
	uuid := make([]byte, 17)
	copy(uuid[1:], []byte{0x4b, 0x46, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x80, 0x00})
	copy(uuid[11:], mac)
	return []dhcpv4.Modifier{
		func(d *dhcpv4.DHCPv4) { d.HopCount = 1 },
		dhcpv4.WithGatewayIP(l.cfg.relay),
		dhcpv4.WithBroadcast(true),
		dhcpv4.WithOption(dhcpv4.OptMaxMessageSize(1472)),
		dhcpv4.WithOption(dhcpv4.OptClientArch(arch)),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClientNetworkInterfaceIdentifier, []byte{1, 3, 16})),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier(vci)),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, uuid)),
		dhcpv4.WithOption(dhcpv4.OptParameterRequestList(prl...)),
		dhcpv4.WithOption(dhcpv4.OptRelayAgentInfo(
			dhcpv4.OptGeneric(dhcpv4.AgentCircuitIDSubOption, []byte(fmt.Sprintf("sw1/0/%d", i%48+1))),
			dhcpv4.OptGeneric(dhcpv4.AgentRemoteIDSubOption, []byte("dhcpload")),
		)),
	}
}

func (l *loader) send(m *dhcpv4.DHCPv4) bool {
	if _, err := l.conn.WriteToUDP(m.ToBytes(), l.dst); err != nil {
		l.sendErr.Add(1)
		return false
	}
	return true
}

// wait returns the next reply of one of the wanted types, or ok=false on
// timeout. Replies of other types are ignored (counted as stray).
func (l *loader) wait(ch chan reply, timer *time.Timer, deadline time.Time, want ...dhcpv4.MessageType) (reply, bool) {
	for {
		d := time.Until(deadline)
		if d <= 0 {
			return reply{}, false
		}
		timer.Reset(d)
		select {
		case r := <-ch:
			// Go 1.23+ timers: Stop (and Reset) discard a pending fire,
			// so there is nothing to drain.
			timer.Stop()
			if slices.Contains(want, r.msg.MessageType()) {
				return r, true
			}
			l.stray.Add(1)
		case <-timer.C:
			return reply{}, false
		}
	}
}

func (l *loader) logf(format string, args ...any) {
	if l.cfg.verbose {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

// mac is client i's MAC as a 48-bit number. In scatter order the low 24
// bits are the base's low 24 bits plus mix24(i), mod 2^24: unique per run,
// but not in sequence, as the MACs of a real fleet are not. Sequential MACs
// are a worst case for servers that pick the address by hashing the MAC
// (dnsmasq): neighbouring clients probe to the same free address.
func (l *loader) mac(i int) uint64 {
	if l.cfg.macSeq {
		return l.cfg.macBase + uint64(i)
	}
	const mask = 1<<24 - 1
	return l.cfg.macBase&^mask | (l.cfg.macBase+mix24(uint64(i)))&mask
}

// mix24 is a bijection on 24-bit numbers (odd multiplies and xor-shifts).
func mix24(x uint64) uint64 {
	const mask = 1<<24 - 1
	x &= mask
	x = x * 0x9e3779 & mask
	x ^= x >> 12
	x = x * 0x5bd1e9 & mask
	x ^= x >> 11
	return x
}

// dora runs one client's DISCOVER, OFFER, REQUEST, ACK.
func (l *loader) dora(i int, xid uint32, timer *time.Timer) {
	m := l.mac(i)
	mac := net.HardwareAddr{byte(m >> 40), byte(m >> 32), byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}
	var txid dhcpv4.TransactionID
	binary.BigEndian.PutUint32(txid[:], xid)
	ch := make(chan reply, 8)
	l.mu.Lock()
	l.waiting[xid] = ch
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.waiting, xid)
		l.mu.Unlock()
	}()

	opts := l.clientOpts(i, mac)
	discover, err := dhcpv4.NewDiscovery(mac, append(opts, dhcpv4.WithTransactionID(txid))...)
	if err != nil {
		l.sendErr.Add(1)
		return
	}
	t0 := time.Now()
	if !l.send(discover) {
		return
	}
	offer, ok := l.wait(ch, timer, t0.Add(l.cfg.timeout), dhcpv4.MessageTypeOffer, dhcpv4.MessageTypeNak)
	if !ok {
		l.offerTO.Add(1)
		l.logf("client %d %s: no OFFER", i, mac)
		return
	}
	l.checkEcho(offer.msg)
	if offer.msg.MessageType() == dhcpv4.MessageTypeNak {
		l.naks.Add(1)
		l.logf("client %d %s: NAK to DISCOVER: %s", i, mac, offer.msg.Message())
		return
	}
	yi := offer.msg.YourIPAddr.To4()
	if yi == nil || yi.IsUnspecified() || !bytesEq(offer.msg.ClientHWAddr, mac) {
		l.mismatch.Add(1)
		l.logf("client %d %s: bad OFFER yiaddr=%v chaddr=%v", i, mac, offer.msg.YourIPAddr, offer.msg.ClientHWAddr)
		return
	}
	sid := offer.msg.ServerIdentifier()
	if sid == nil {
		sid = l.cfg.server
	}

	reqMods := append(opts,
		dhcpv4.WithTransactionID(txid),
		dhcpv4.WithHwAddr(mac),
		dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(yi)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(sid)),
	)
	request, err := dhcpv4.New(reqMods...)
	if err != nil {
		l.sendErr.Add(1)
		return
	}
	t1 := time.Now()
	if !l.send(request) {
		return
	}
	ack, ok := l.wait(ch, timer, t1.Add(l.cfg.timeout), dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
	if !ok {
		l.ackTO.Add(1)
		l.logf("client %d %s: no ACK for %s", i, mac, yi)
		return
	}
	l.checkEcho(ack.msg)
	if ack.msg.MessageType() == dhcpv4.MessageTypeNak {
		l.naks.Add(1)
		l.logf("client %d %s: NAK for %s: %s", i, mac, yi, ack.msg.Message())
		return
	}
	ai := ack.msg.YourIPAddr.To4()
	if ai == nil || !ai.Equal(yi) || !bytesEq(ack.msg.ClientHWAddr, mac) {
		l.mismatch.Add(1)
		l.logf("client %d %s: ACK yiaddr=%v for requested %s", i, mac, ack.msg.YourIPAddr, yi)
		if ai == nil || ai.IsUnspecified() {
			return
		}
	}
	if ack.msg.BootFileName != "" || ack.msg.BootFileNameOption() != "" {
		l.bootfile.Add(1)
	}
	lat := ack.at.Sub(t0)
	key := [4]byte(ai)

	l.leaseMu.Lock()
	if prev, seen := l.leases[key]; seen && prev != m {
		l.dups.Add(1)
		l.logf("duplicate: %s ACKed to %012x and %s", ai, prev, mac)
	}
	l.leases[key] = m
	l.lat = append(l.lat, lat)
	l.leaseMu.Unlock()
	l.completed.Add(1)
}

// checkEcho counts replies that don't carry back the relay agent
// information we sent (RFC 3046 2.2: the server must echo it).
func (l *loader) checkEcho(m *dhcpv4.DHCPv4) {
	rai := m.RelayAgentInfo()
	if rai == nil || !strings.HasPrefix(string(rai.Get(dhcpv4.AgentCircuitIDSubOption)), "sw1/0/") {
		l.noEcho.Add(1)
	}
}

func bytesEq(a, b []byte) bool { return string(a) == string(b) }

func printText(r *Result) {
	if r.Label != "" {
		fmt.Printf("run:          %s\n", r.Label)
	}
	fmt.Printf("server:       %s (relay/giaddr %s)\n", r.Server, r.Relay)
	fmt.Printf("clients:      %d started of %d, %d in flight, timeout %.0f ms, no retries\n", r.Started, r.Clients, r.Inflight, r.TimeoutMS)
	fmt.Printf("completed:    %d DORA in %.2f s = %.0f leases/s\n", r.Completed, r.WallS, r.LeasesPerSec)
	fmt.Printf("latency:      p50 %.2f ms, p99 %.2f ms, max %.2f ms (DISCOVER sent to ACK received)\n", r.P50MS, r.P99MS, r.MaxMS)
	fmt.Printf("failures:     %d timeouts (%d OFFER, %d ACK), %d NAKs, %d mismatches\n", r.Timeouts, r.OfferTO, r.AckTO, r.NAKs, r.Mismatches)
	fmt.Printf("addresses:    %d distinct IPs, %d duplicates\n", r.DistinctIPs, r.Duplicates)
	fmt.Printf("other:        %d with boot file, %d without option 82 echo, %d stray, %d unparsable, %d send errors\n",
		r.WithBootfile, r.NoOpt82Echo, r.Stray, r.BadPackets, r.SendErrors)
	fmt.Printf("generator:    %.2f s CPU (%.2f s user); load average %s at start, %s at end\n", r.CPUS, r.CPUUserS, r.LoadStart, r.LoadEnd)
	if r.Aborted {
		fmt.Println("aborted:      -max-time or a signal stopped the run early")
	}
}
