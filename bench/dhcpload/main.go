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
// p50/p99/max latency of a full DORA, the same split into the OFFER's wait
// and the ACK's (which is where a server that stores the lease durably
// before answering pays for it), NAKs, timeouts, and duplicates (an
// address ACKed to two different MACs).
//
// The relay socket, the packets and the client MACs come from
// bench/internal/relayclient (shared with bench/pxestorm): one UDP socket
// carries everything; a reader goroutine hands each reply to the client
// waiting for its transaction id.
package main

import (
	"context"
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

	"bootforge/bench/internal/relayclient"
)

type config struct {
	server   net.IP
	relay    net.IP
	port     int
	clients  int
	inflight int
	timeout  time.Duration
	maxTime  time.Duration
	macs     relayclient.MACs
	label    string
	jsonOut  bool
	verbose  bool
	acked    string // file for "ip mac" of every ACK seen
	trace    string // file for each ACKed client's times
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
	OfferP50MS   float64 `json:"offer_p50_ms"` // DISCOVER sent to OFFER received
	OfferP99MS   float64 `json:"offer_p99_ms"`
	AckP50MS     float64 `json:"ack_p50_ms"` // REQUEST sent to ACK received
	AckP99MS     float64 `json:"ack_p99_ms"`
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
	flag.StringVar(&c.trace, "trace", "", "write \"start_us offer_us ack_us\" for every ACKed client to this file: when its DISCOVER went out (from the run's start), its OFFER's and its ACK's wait")
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
	var err error
	if c.macs.Base, err = relayclient.ParseMAC(*macBase); err != nil {
		return c, fmt.Errorf("-mac-base: %q is not a 6-byte MAC", *macBase)
	}
	switch *macOrder {
	case "seq":
		c.macs.Seq = true
		if c.macs.Base+uint64(c.clients) > 1<<48 {
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

type loader struct {
	cfg   config
	relay *relayclient.Relay
	sched relayclient.Schedule

	leaseMu sync.Mutex
	leases  map[[4]byte]uint64 // IP -> MAC of the last ACK
	t0      time.Time          // the run's start
	times   []clientTimes      // of each ACKed client

	completed, naks, offerTO, ackTO, dups, mismatch atomic.Int64
	noEcho, bootfile, sendErr                       atomic.Int64
}

func run(cfg config) (*Result, error) {
	relay, err := relayclient.Listen(relayclient.Config{
		Relay:        cfg.relay,
		Server:       cfg.server,
		Port:         cfg.port,
		InFlight:     cfg.inflight * 2,
		Archs:        []iana.Arch{iana.INTEL_X86PC, iana.EFI_X86_64}, // alternating BIOS and UEFI
		ParamRequest: relayclient.EDK2ParamRequest,
		RemoteID:     "dhcpload",
	})
	if err != nil {
		return nil, err
	}
	defer relay.Close()

	l := &loader{
		cfg:    cfg,
		relay:  relay,
		sched:  relayclient.Once(cfg.timeout),
		leases: make(map[[4]byte]uint64, cfg.clients),
		times:  make([]clientTimes, 0, cfg.clients),
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.maxTime)
	defer cancel()

	load0 := loadavg()
	cpu0, user0 := cpuTime()
	var next atomic.Int64
	var started atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	l.t0 = t0
	for w := 0; w < cfg.inflight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(cfg.clients) || ctx.Err() != nil {
					return
				}
				started.Add(1)
				l.dora(int(i))
			}
		}()
	}
	wg.Wait()
	wall := time.Since(t0)
	relay.Close()
	rs := relay.Stats()
	if cfg.trace != "" {
		var b strings.Builder
		for _, t := range l.times {
			fmt.Fprintf(&b, "%d %d %d\n", t.start.Microseconds(), t.offer.Microseconds(), t.ack.Microseconds())
		}
		if err := os.WriteFile(cfg.trace, []byte(b.String()), 0o644); err != nil {
			return nil, err
		}
	}
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
		Stray:        rs.Stray,
		BadPackets:   rs.Bad,
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
	if len(l.times) > 0 {
		var total, offer, ack []time.Duration
		for _, t := range l.times {
			total, offer, ack = append(total, t.total), append(offer, t.offer), append(ack, t.ack)
		}
		slices.Sort(total)
		slices.Sort(offer)
		slices.Sort(ack)
		res.P50MS, res.P99MS, res.MaxMS = ms(percentile(total, 50)), ms(percentile(total, 99)), ms(total[len(total)-1])
		res.OfferP50MS, res.OfferP99MS = ms(percentile(offer, 50)), ms(percentile(offer, 99))
		res.AckP50MS, res.AckP99MS = ms(percentile(ack, 50)), ms(percentile(ack, 99))
	}
	return res, nil
}

// clientTimes are one ACKed client's.
type clientTimes struct {
	start time.Duration // DISCOVER sent, from the run's start
	offer time.Duration // DISCOVER sent to OFFER received
	ack   time.Duration // REQUEST sent to ACK received
	total time.Duration // DISCOVER sent to ACK received
}

// percentile is the nearest-rank percentile of sorted d.
func percentile(d []time.Duration, p float64) time.Duration {
	rank := int(p/100*float64(len(d))+0.999999999) - 1
	rank = max(0, min(rank, len(d)-1))
	return d[rank]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (l *loader) logf(format string, args ...any) {
	if l.cfg.verbose {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

// dora runs client i's DISCOVER, OFFER, REQUEST, ACK.
func (l *loader) dora(i int) {
	m := l.cfg.macs.Num(i)
	mac := relayclient.HardwareAddr(m)
	c := l.relay.Client(i, mac)
	defer c.Close()

	discover, err := c.Discover()
	if err != nil {
		l.sendErr.Add(1)
		return
	}
	t0 := time.Now()
	offer, err := c.Exchange(context.Background(), discover, l.sched, dhcpv4.MessageTypeOffer, dhcpv4.MessageTypeNak)
	if err != nil {
		l.failed(err, &l.offerTO, "client %d %s: no OFFER", i, mac)
		return
	}
	l.checkEcho(offer.Msg)
	if offer.Msg.MessageType() == dhcpv4.MessageTypeNak {
		l.naks.Add(1)
		l.logf("client %d %s: NAK to DISCOVER: %s", i, mac, offer.Msg.Message())
		return
	}
	request, yi, err := c.Request(offer.Msg)
	if errors.Is(err, relayclient.ErrBadOffer) {
		l.mismatch.Add(1)
		l.logf("client %d %s: bad OFFER yiaddr=%v chaddr=%v", i, mac, offer.Msg.YourIPAddr, offer.Msg.ClientHWAddr)
		return
	}
	if err != nil {
		l.sendErr.Add(1)
		return
	}
	t1 := time.Now()
	ack, err := c.Exchange(context.Background(), request, l.sched, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
	if err != nil {
		l.failed(err, &l.ackTO, "client %d %s: no ACK for %s", i, mac, yi)
		return
	}
	l.checkEcho(ack.Msg)
	if ack.Msg.MessageType() == dhcpv4.MessageTypeNak {
		l.naks.Add(1)
		l.logf("client %d %s: NAK for %s: %s", i, mac, yi, ack.Msg.Message())
		return
	}
	ai := ack.Msg.YourIPAddr.To4()
	if ai == nil || !ai.Equal(yi) || string(ack.Msg.ClientHWAddr) != string(mac) {
		l.mismatch.Add(1)
		l.logf("client %d %s: ACK yiaddr=%v for requested %s", i, mac, ack.Msg.YourIPAddr, yi)
		if ai == nil || ai.IsUnspecified() {
			return
		}
	}
	if ack.Msg.BootFileName != "" || ack.Msg.BootFileNameOption() != "" {
		l.bootfile.Add(1)
	}
	key := [4]byte(ai)
	tm := clientTimes{start: t0.Sub(l.t0), offer: offer.At.Sub(t0), ack: ack.At.Sub(t1), total: ack.At.Sub(t0)}

	l.leaseMu.Lock()
	if prev, seen := l.leases[key]; seen && prev != m {
		l.dups.Add(1)
		l.logf("duplicate: %s ACKed to %012x and %s", ai, prev, mac)
	}
	l.leases[key] = m
	l.times = append(l.times, tm)
	l.leaseMu.Unlock()
	l.completed.Add(1)
}

// failed counts an Exchange error: no answer in time adds to timeouts
// (and is logged), anything else is a send error.
func (l *loader) failed(err error, timeouts *atomic.Int64, format string, args ...any) {
	if !errors.Is(err, relayclient.ErrNoAnswer) {
		l.sendErr.Add(1)
		return
	}
	timeouts.Add(1)
	l.logf(format, args...)
}

// checkEcho counts replies that don't carry back the relay agent
// information we sent.
func (l *loader) checkEcho(m *dhcpv4.DHCPv4) {
	if !relayclient.EchoesRelayInfo(m) {
		l.noEcho.Add(1)
	}
}

func printText(r *Result) {
	if r.Label != "" {
		fmt.Printf("run:          %s\n", r.Label)
	}
	fmt.Printf("server:       %s (relay/giaddr %s)\n", r.Server, r.Relay)
	fmt.Printf("clients:      %d started of %d, %d in flight, timeout %.0f ms, no retries\n", r.Started, r.Clients, r.Inflight, r.TimeoutMS)
	fmt.Printf("completed:    %d DORA in %.2f s = %.0f leases/s\n", r.Completed, r.WallS, r.LeasesPerSec)
	fmt.Printf("latency:      p50 %.2f ms, p99 %.2f ms, max %.2f ms (DISCOVER sent to ACK received)\n", r.P50MS, r.P99MS, r.MaxMS)
	fmt.Printf("              OFFER p50 %.2f ms, p99 %.2f ms; ACK p50 %.2f ms, p99 %.2f ms (each from its request sent)\n",
		r.OfferP50MS, r.OfferP99MS, r.AckP50MS, r.AckP99MS)
	fmt.Printf("failures:     %d timeouts (%d OFFER, %d ACK), %d NAKs, %d mismatches\n", r.Timeouts, r.OfferTO, r.AckTO, r.NAKs, r.Mismatches)
	fmt.Printf("addresses:    %d distinct IPs, %d duplicates\n", r.DistinctIPs, r.Duplicates)
	fmt.Printf("other:        %d with boot file, %d without option 82 echo, %d stray, %d unparsable, %d send errors\n",
		r.WithBootfile, r.NoOpt82Echo, r.Stray, r.BadPackets, r.SendErrors)
	fmt.Printf("generator:    %.2f s CPU (%.2f s user); load average %s at start, %s at end\n", r.CPUS, r.CPUUserS, r.LoadStart, r.LoadEnd)
	if r.Aborted {
		fmt.Println("aborted:      -max-time or a signal stopped the run early")
	}
}
