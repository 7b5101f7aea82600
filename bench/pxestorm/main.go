// Command pxestorm simulates a PXE boot storm: -clients machines, released
// at -dhcp-rate first DISCOVERs per second (0: all at the same instant), each
// one
//
//  1. runs a relayed DHCP DORA (pxestorm plays the relay agent with
//     bench/internal/relayclient, as bench/dhcpload does: one UDP socket
//     bound on giaddr:67, replies handed to the client waiting for their
//     transaction id; DISCOVER and REQUEST are retransmitted on the PXE
//     schedule 4, 8, 16, 32 s within the stage timeout; a NAK restarts the
//     DORA, as RFC 2131 says),
//  2. downloads the loader over TFTP (RRQ with blksize 1468 and tsize 0,
//     OACK then ACK 0, DATA/ACK lockstep, the last packet retransmitted
//     after -tftp-retry of silence) from an ephemeral UDP port on -client-ip,
//  3. fetches the kernel and the initrd over HTTP (net/http, one TCP
//     connection per client, from -client-ip) and checks their lengths.
//
// Every client shares the one source address -client-ip (a relay cannot
// hand out real addresses here), so servers must allow many transfers per
// client address.
//
// With -sync (the default) the stages run behind barriers: every client
// finishes DHCP, then all start TFTP at one instant, then all start HTTP at
// one instant, so each stage is the same storm whatever the server's earlier
// stages did; a client that fails leaves the barriers. -sync=false: each
// client goes on as soon as its previous stage is done (free-running).
//
// A stage fails on an error, a wrong size or its -stage-timeout; a client
// that fails a stage skips the rest. -max-time bounds the whole run.
// pxestorm prints a markdown table (or -json); -table R.json prints an
// earlier -json result as the table; -compare A.json B.json prints
// two earlier -json results side by side with the ratio A/B; -summary
// A1.json A2.json ... -vs B1.json ... prints several runs of each side as
// medians (min–max) over the runs, with <file>.srv (peak RSS kB, server CPU
// s, written by bench/pxestorm.sh) when present.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
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
	server       net.IP
	relay        net.IP
	clientIP     net.IP
	clients      int
	tftpPort     int
	httpPort     int
	loader       string
	loaderSize   int64
	kernel       string
	kernelSize   int64
	initrd       string
	initrdSize   int64
	blksize      int
	stageTimeout time.Duration
	tftpRetry    time.Duration
	maxTime      time.Duration
	macs         relayclient.MACs // scatter order
	dhcpRate     float64          // DISCOVERs released per second; 0: all at once
	sync         bool             // barrier before TFTP and before HTTP
	label        string
	jsonOut      bool
	verbose      bool
	trace        string // file for every client's stage times, if set
}

// Stage names, in order.
const (
	stDHCP = iota
	stTFTP
	stKernel
	stInitrd
	nStages
)

var stageNames = [nStages]string{"DHCP DORA", "TFTP loader", "HTTP kernel", "HTTP initrd"}

// StageResult summarises one stage over all clients that reached it.
type StageResult struct {
	Name     string   `json:"name"`
	Size     int64    `json:"size_bytes,omitempty"`
	Attempts int      `json:"attempts"` // clients that started the stage
	OK       int      `json:"ok"`
	Failed   int      `json:"failed"`
	P50MS    float64  `json:"p50_ms"`
	P99MS    float64  `json:"p99_ms"`
	MaxMS    float64  `json:"max_ms"`
	Retrans  int64    `json:"retransmits"`      // DHCP: DISCOVER/REQUEST resent; TFTP: RRQ/ACK resent
	Errors   []string `json:"errors,omitempty"` // up to 5 distinct failure reasons with counts
	NAKs     int64    `json:"naks,omitempty"`   // DHCP: NAKs to a REQUEST (the client starts over)
	SpanMS   float64  `json:"span_ms"`          // first client's start of the stage to the last one's end
}

// Result is one run.
type Result struct {
	Label        string        `json:"label,omitempty"`
	Server       string        `json:"server"`
	Relay        string        `json:"relay"`
	ClientIP     string        `json:"client_ip"`
	Clients      int           `json:"clients"`
	Booted       int           `json:"booted"` // clients that passed every stage
	WallS        float64       `json:"wall_s"` // start to the last client done
	StageTimeout float64       `json:"stage_timeout_s"`
	DHCPRate     float64       `json:"dhcp_rate"` // DISCOVERs released per second, 0: all at once
	Sync         bool          `json:"sync"`      // barrier before TFTP and before HTTP
	Aborted      bool          `json:"aborted"`   // -max-time or a signal cut the run short
	Stages       []StageResult `json:"stages"`
	Boot         StageResult   `json:"boot"` // whole boot (all stages) of the clients that booted
	CPUS         float64       `json:"cpu_s"`
	LoadStart    string        `json:"load_start,omitempty"`
	LoadEnd      string        `json:"load_end,omitempty"`
	Started      string        `json:"started"`
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "-table" {
		r, err := readResult(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "pxestorm:", err)
			os.Exit(2)
		}
		fmt.Print(table(r))
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "-summary" {
		if err := summary(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "pxestorm:", err)
			os.Exit(2)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "-compare" {
		if err := compare(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "pxestorm:", err)
			os.Exit(2)
		}
		return
	}
	cfg, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pxestorm:", err)
		os.Exit(2)
	}
	res, err := run(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pxestorm:", err)
		os.Exit(1)
	}
	if cfg.jsonOut {
		_ = json.NewEncoder(os.Stdout).Encode(res)
	} else {
		fmt.Print(table(res))
	}
	if res.Booted == 0 {
		os.Exit(3)
	}
}

func parseFlags() (config, error) {
	var c config
	server := flag.String("server", "", "server address (DHCP :67, TFTP and HTTP)")
	relay := flag.String("relay", "", "relay address: bound on UDP 67 and sent as giaddr")
	clientIP := flag.String("client-ip", "", "source address of the TFTP and HTTP clients (default: -relay)")
	flag.IntVar(&c.clients, "clients", 500, "clients")
	rate := flag.String("dhcp-rate", "250/s", "pace of the clients' first DISCOVERs, N/s (or N); 0: all at once (the free-running storm)")
	flag.BoolVar(&c.sync, "sync", true, "barriers: every client finishes DHCP, then all start TFTP at one instant, then all start HTTP at one instant; -sync=false: each client goes on as soon as its previous stage is done")
	flag.IntVar(&c.tftpPort, "tftp-port", 69, "server TFTP port")
	flag.IntVar(&c.httpPort, "http-port", 8080, "server HTTP port")
	flag.StringVar(&c.loader, "loader", "loader.efi", "TFTP file name of the loader")
	flag.Int64Var(&c.loaderSize, "loader-size", 1<<20, "expected loader size in bytes")
	flag.StringVar(&c.kernel, "kernel", "vmlinuz", "HTTP path of the kernel (under /)")
	flag.Int64Var(&c.kernelSize, "kernel-size", 8<<20, "expected kernel size in bytes")
	flag.StringVar(&c.initrd, "initrd", "initrd.img", "HTTP path of the initrd (under /)")
	flag.Int64Var(&c.initrdSize, "initrd-size", 4<<20, "expected initrd size in bytes")
	flag.IntVar(&c.blksize, "blksize", 1468, "TFTP blksize option")
	flag.DurationVar(&c.stageTimeout, "stage-timeout", 60*time.Second, "bound of each stage of each client")
	flag.DurationVar(&c.tftpRetry, "tftp-retry", time.Second, "TFTP: resend the last packet after this long without an answer")
	flag.DurationVar(&c.maxTime, "max-time", 150*time.Second, "bound of the whole run")
	macBase := flag.String("mac-base", "02:bf:50:00:00:00", "MAC base: the low 24 bits of client i's MAC are the base's plus a bijective mix of i")
	flag.StringVar(&c.label, "label", "", "free text copied into the result")
	flag.BoolVar(&c.jsonOut, "json", false, "print the result as one JSON object")
	flag.BoolVar(&c.verbose, "v", false, "log each failure to stderr")
	flag.StringVar(&c.trace, "trace", "", "write every client's stage times to this file: client, stage, start and end (ms since the run's start), ok")
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
	c.clientIP = c.relay
	if *clientIP != "" {
		if c.clientIP = net.ParseIP(*clientIP).To4(); c.clientIP == nil {
			return c, fmt.Errorf("-client-ip: %q is not an IPv4 address", *clientIP)
		}
	}
	if c.clients < 1 || c.clients > 1<<20 {
		return c, errors.New("-clients must be between 1 and 2^20")
	}
	if c.blksize < 8 || c.blksize > 65464 {
		return c, errors.New("-blksize must be between 8 and 65464")
	}
	if c.stageTimeout <= 0 || c.maxTime <= 0 || c.tftpRetry <= 0 {
		return c, errors.New("-stage-timeout, -tftp-retry and -max-time must be positive")
	}
	r, err := strconv.ParseFloat(strings.TrimSuffix(*rate, "/s"), 64)
	if err != nil || r < 0 {
		return c, fmt.Errorf("-dhcp-rate: %q is not N/s with N >= 0", *rate)
	}
	c.dhcpRate = r
	if c.macs.Base, err = relayclient.ParseMAC(*macBase); err != nil {
		return c, fmt.Errorf("-mac-base: %q is not a 6-byte MAC", *macBase)
	}
	return c, nil
}

// outcome of one client.
type outcome struct {
	reached int // stages started
	ok      [nStages]bool
	dur     [nStages]time.Duration
	err     [nStages]string
	total   time.Duration
	start   [nStages]time.Duration // since the run's start
	end     [nStages]time.Duration
}

// barrier releases the clients that arrive at it all at once, when every
// client still running has arrived (a client that drops out leaves it).
type barrier struct {
	mu      sync.Mutex
	n       int // clients still expected (arrived or not)
	arrived int
	open    chan struct{}
	opened  bool
}

func newBarrier(n int) *barrier { return &barrier{n: n, open: make(chan struct{})} }

func (b *barrier) check() {
	if !b.opened && b.arrived >= b.n {
		b.opened = true
		close(b.open)
	}
}

// arrive waits for the others; false if ctx ended first.
func (b *barrier) arrive(ctx context.Context) bool {
	b.mu.Lock()
	b.arrived++
	b.check()
	b.mu.Unlock()
	select {
	case <-b.open:
		return true
	case <-ctx.Done():
		return false
	}
}

// leave: one client fewer to wait for.
func (b *barrier) leave() {
	b.mu.Lock()
	b.n--
	b.check()
	b.mu.Unlock()
}

type storm struct {
	cfg   config
	relay *relayclient.Relay

	retrans [nStages]atomic.Int64 // DHCP's come from the relay's Stats
	naks    atomic.Int64          // DHCP NAKs to a REQUEST (each restarts the DORA)
	t0      time.Time             // start of the run
	bars    [nStages]*barrier     // -sync: before TFTP and before the HTTP kernel
}

// paramRequest is the parameter request list (option 55) of pxestorm's
// clients.
var paramRequest = []dhcpv4.OptionCode{
	dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer,
	dhcpv4.OptionHostName, dhcpv4.OptionDomainName, dhcpv4.OptionVendorSpecificInformation,
	dhcpv4.OptionClassIdentifier, dhcpv4.OptionTFTPServerName, dhcpv4.OptionBootfileName,
}

func run(cfg config) (*Result, error) {
	relay, err := relayclient.Listen(relayclient.Config{
		Relay:        cfg.relay,
		Server:       cfg.server,
		Port:         67,
		InFlight:     cfg.clients,
		Archs:        []iana.Arch{iana.EFI_X86_64},
		ParamRequest: paramRequest,
		RemoteID:     "pxestorm",
	})
	if err != nil {
		return nil, err
	}
	defer relay.Close()
	s := &storm{cfg: cfg, relay: relay}
	if cfg.sync {
		s.bars[stTFTP] = newBarrier(cfg.clients)
		s.bars[stKernel] = newBarrier(cfg.clients)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.maxTime)
	defer cancel()

	load0 := loadavg()
	cpu0 := cpuTime()
	started := time.Now().UTC()
	outs := make([]outcome, cfg.clients)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range cfg.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			if cfg.dhcpRate > 0 { // client i sends its first DISCOVER at i/rate
				at := s.t0.Add(time.Duration(float64(i) / cfg.dhcpRate * float64(time.Second)))
				select {
				case <-time.After(time.Until(at)):
				case <-ctx.Done():
				}
			}
			s.client(ctx, i, &outs[i])
		}()
	}
	time.Sleep(50 * time.Millisecond) // let every goroutine reach the gate
	t0 := time.Now()
	s.t0 = t0
	close(gate)
	wg.Wait()
	wall := time.Since(t0)
	relay.Close()
	s.retrans[stDHCP].Store(relay.Stats().Retransmits)

	res := &Result{
		Label:        cfg.label,
		Server:       cfg.server.String(),
		Relay:        cfg.relay.String(),
		ClientIP:     cfg.clientIP.String(),
		Clients:      cfg.clients,
		WallS:        wall.Seconds(),
		StageTimeout: cfg.stageTimeout.Seconds(),
		DHCPRate:     cfg.dhcpRate,
		Sync:         cfg.sync,
		Aborted:      ctx.Err() != nil,
		LoadStart:    load0,
		LoadEnd:      loadavg(),
		Started:      started.Format(time.RFC3339),
		CPUS:         (cpuTime() - cpu0).Seconds(),
	}
	sizes := [nStages]int64{0, cfg.loaderSize, cfg.kernelSize, cfg.initrdSize}
	var boot []time.Duration
	for st := range nStages {
		sr := StageResult{Name: stageNames[st], Size: sizes[st], Retrans: s.retrans[st].Load()}
		if st == stDHCP {
			sr.NAKs = s.naks.Load()
		}
		var d []time.Duration
		errs := map[string]int{}
		first, last := time.Duration(-1), time.Duration(0)
		for i := range outs {
			o := &outs[i]
			if o.reached <= st {
				continue
			}
			if first < 0 || o.start[st] < first {
				first = o.start[st]
			}
			last = max(last, o.end[st])
			sr.Attempts++
			if o.ok[st] {
				sr.OK++
				d = append(d, o.dur[st])
			} else {
				sr.Failed++
				errs[o.err[st]]++
			}
		}
		sr.P50MS, sr.P99MS, sr.MaxMS = summarize(d)
		if first >= 0 {
			sr.SpanMS = ms(last - first)
		}
		sr.Errors = topErrors(errs, 5)
		res.Stages = append(res.Stages, sr)
	}
	for i := range outs {
		if outs[i].ok[nStages-1] {
			boot = append(boot, outs[i].total)
		}
	}
	res.Booted = len(boot)
	res.Boot = StageResult{Name: "whole boot", Attempts: cfg.clients, OK: len(boot), Failed: cfg.clients - len(boot)}
	res.Boot.P50MS, res.Boot.P99MS, res.Boot.MaxMS = summarize(boot)
	if cfg.trace != "" {
		if err := writeTrace(cfg.trace, outs); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// writeTrace writes a line per client and stage reached: the client's
// number, the stage, its start and end in ms since the run's start, and
// whether it succeeded. The summary's percentiles cannot tell a slow
// tail from a step (a connection retried after a second) or a uniform
// slowdown; these lines can.
func writeTrace(name string, outs []outcome) error {
	var b strings.Builder
	b.WriteString("client\tstage\tstart_ms\tend_ms\tok\n")
	for i := range outs {
		o := &outs[i]
		for st := range min(o.reached, nStages) {
			fmt.Fprintf(&b, "%d\t%s\t%.3f\t%.3f\t%t\n", i, stageNames[st], ms(o.start[st]), ms(o.end[st]), o.ok[st])
		}
	}
	return os.WriteFile(name, []byte(b.String()), 0o644)
}

func summarize(d []time.Duration) (p50, p99, mx float64) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	slices.Sort(d)
	return ms(percentile(d, 50)), ms(percentile(d, 99)), ms(d[len(d)-1])
}

func topErrors(m map[string]int, n int) []string {
	type kv struct {
		k string
		v int
	}
	var l []kv
	for k, v := range m {
		l = append(l, kv{k, v})
	}
	slices.SortFunc(l, func(a, b kv) int {
		if a.v != b.v {
			return b.v - a.v
		}
		return strings.Compare(a.k, b.k)
	})
	var out []string
	for i, e := range l {
		if i == n {
			break
		}
		out = append(out, fmt.Sprintf("%d× %s", e.v, e.k))
	}
	return out
}

// percentile is the nearest-rank percentile of sorted d.
func percentile(d []time.Duration, p float64) time.Duration {
	rank := int(p/100*float64(len(d))+0.999999999) - 1
	rank = max(0, min(rank, len(d)-1))
	return d[rank]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (s *storm) logf(format string, args ...any) {
	if s.cfg.verbose {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

// client runs one machine's boot, recording into o.
func (s *storm) client(ctx context.Context, i int, o *outcome) {
	t0 := time.Now()
	steps := [nStages]func(context.Context) error{
		func(ctx context.Context) error { return s.dora(ctx, i) },
		func(ctx context.Context) error { return s.tftpGet(ctx, s.cfg.loader, s.cfg.loaderSize) },
		nil, nil,
	}
	// One HTTP client per machine: the kernel and the initrd share its
	// connection, as a booting loader's would.
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: s.cfg.clientIP}, Timeout: s.cfg.stageTimeout}
	tr := &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 1, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	steps[stKernel] = func(ctx context.Context) error { return s.httpGet(ctx, hc, s.cfg.kernel, s.cfg.kernelSize) }
	steps[stInitrd] = func(ctx context.Context) error { return s.httpGet(ctx, hc, s.cfg.initrd, s.cfg.initrdSize) }
	var arrived [nStages]bool
	defer func() { // a client that stops early must not hold the others
		for st, b := range s.bars {
			if b != nil && !arrived[st] {
				b.leave()
			}
		}
	}()
	for st, f := range steps {
		if ctx.Err() != nil {
			return
		}
		if b := s.bars[st]; b != nil {
			arrived[st] = true
			if !b.arrive(ctx) {
				return
			}
		}
		o.reached = st + 1
		sctx, cancel := context.WithTimeout(ctx, s.cfg.stageTimeout)
		ts := time.Now()
		o.start[st] = ts.Sub(s.t0)
		err := f(sctx)
		o.dur[st] = time.Since(ts)
		o.end[st] = time.Since(s.t0)
		if err == nil && sctx.Err() != nil {
			err = sctx.Err()
		}
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
				err = fmt.Errorf("timeout: %w", err)
				if ctx.Err() != nil {
					err = errors.New("run stopped at -max-time")
				}
			}
			o.err[st] = shortErr(err)
			s.logf("client %d: %s: %v", i, stageNames[st], err)
			return
		}
		o.ok[st] = true
	}
	o.total = time.Since(t0)
}

// shortErr drops the parts of an error that differ per client (ports) so
// that equal failures group together.
func shortErr(err error) string {
	msg := err.Error()
	var f []string
	for _, w := range strings.Fields(msg) {
		core := strings.TrimRight(w, ":,")
		if h, p, e := net.SplitHostPort(core); e == nil && h != "" && p != "" {
			if _, e := strconv.Atoi(p); e == nil {
				w = h + ":*" + w[len(core):]
			}
		}
		f = append(f, w)
	}
	return strings.Join(f, " ")
}

// ---------------------------------------------------------------- DHCP

func (s *storm) dora(ctx context.Context, i int) error {
	c := s.relay.Client(i, s.cfg.macs.Addr(i))
	defer c.Close()
	var err error
	for {
		err = doraOnce(ctx, c)
		if !errors.Is(err, errNAK) || ctx.Err() != nil {
			return err
		}
		// RFC 2131 3.1: on a NAK the client starts over with a DISCOVER.
		s.naks.Add(1)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

var errNAK = errors.New("NAK")

func doraOnce(ctx context.Context, c *relayclient.Client) error {
	discover, err := c.Discover()
	if err != nil {
		return err
	}
	offer, err := c.Exchange(ctx, discover, relayclient.PXESchedule, dhcpv4.MessageTypeOffer)
	if err != nil {
		return err
	}
	request, yi, err := c.Request(offer.Msg)
	if err != nil {
		return err
	}
	ack, err := c.Exchange(ctx, request, relayclient.PXESchedule, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
	if err != nil {
		return err
	}
	if ack.Msg.MessageType() == dhcpv4.MessageTypeNak {
		return fmt.Errorf("%w: %s", errNAK, ack.Msg.Message())
	}
	if !ack.Msg.YourIPAddr.Equal(yi) {
		return fmt.Errorf("ACK for %v, requested %v", ack.Msg.YourIPAddr, yi)
	}
	return nil
}

// ---------------------------------------------------------------- TFTP

const (
	opRRQ   = 1
	opDATA  = 3
	opACK   = 4
	opERROR = 5
	opOACK  = 6
)

// rrq builds a read request for file with the given options (name, value pairs).
func rrq(file string, opts ...string) []byte {
	b := []byte{0, opRRQ}
	b = append(append(b, file...), 0)
	b = append(append(b, "octet"...), 0)
	for _, o := range opts {
		b = append(append(b, o...), 0)
	}
	return b
}

func ack(block uint16) []byte { return []byte{0, opACK, byte(block >> 8), byte(block)} }

// parseOACK returns the options of an OACK packet (names lower-cased).
func parseOACK(p []byte) (map[string]string, error) {
	if len(p) < 2 || binary.BigEndian.Uint16(p) != opOACK {
		return nil, errors.New("not an OACK")
	}
	f := strings.Split(string(p[2:]), "\x00")
	if len(f) == 0 || f[len(f)-1] != "" {
		return nil, errors.New("OACK not NUL-terminated")
	}
	f = f[:len(f)-1]
	if len(f)%2 != 0 {
		return nil, errors.New("OACK with an odd number of strings")
	}
	m := make(map[string]string, len(f)/2)
	for i := 0; i < len(f); i += 2 {
		m[strings.ToLower(f[i])] = f[i+1]
	}
	return m, nil
}

// tftpError formats an ERROR packet.
func tftpError(p []byte) error {
	code := uint16(0)
	if len(p) >= 4 {
		code = binary.BigEndian.Uint16(p[2:])
	}
	msg := ""
	if len(p) > 4 {
		msg = strings.TrimRight(string(p[4:]), "\x00")
	}
	return fmt.Errorf("TFTP error %d: %s", code, msg)
}

// tftpGet downloads file and checks it is size bytes long.
func (s *storm) tftpGet(ctx context.Context, file string, size int64) error {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: s.cfg.clientIP})
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetReadBuffer(256 << 10)
	dl, _ := ctx.Deadline()
	srv := &net.UDPAddr{IP: s.cfg.server, Port: s.cfg.tftpPort}
	last := rrq(file, "blksize", strconv.Itoa(s.cfg.blksize), "tsize", "0")
	lastTo := srv
	if _, err := c.WriteToUDP(last, lastTo); err != nil {
		return err
	}
	var peer *net.UDPAddr // the server's transfer port, once known
	blksize := 512        // until an OACK says otherwise
	var got int64
	var next uint16 = 1 // next DATA block expected
	buf := make([]byte, 65536)
	for {
		rd := time.Now().Add(s.cfg.tftpRetry)
		if rd.After(dl) {
			rd = dl
		}
		_ = c.SetReadDeadline(rd)
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				if ctx.Err() != nil || !time.Now().Before(dl) {
					return fmt.Errorf("timeout at block %d (%d bytes): %w", next, got, context.DeadlineExceeded)
				}
				s.retrans[stTFTP].Add(1)
				if _, err := c.WriteToUDP(last, lastTo); err != nil {
					return err
				}
				continue
			}
			return err
		}
		if !from.IP.Equal(s.cfg.server) {
			continue
		}
		if peer == nil {
			peer = from
		} else if from.Port != peer.Port {
			continue // another transfer's TID (a duplicate RRQ's answer)
		}
		p := buf[:n]
		if n < 4 {
			return errors.New("short TFTP packet")
		}
		switch binary.BigEndian.Uint16(p) {
		case opERROR:
			return tftpError(p)
		case opOACK:
			if next != 1 {
				continue // duplicate OACK: ACK 0 again happens on timeout
			}
			o, err := parseOACK(p)
			if err != nil {
				return err
			}
			if v, ok := o["blksize"]; ok {
				if blksize, err = strconv.Atoi(v); err != nil || blksize < 8 || blksize > s.cfg.blksize {
					return fmt.Errorf("OACK blksize %q", v)
				}
			}
			if v, ok := o["tsize"]; ok && v != strconv.FormatInt(size, 10) {
				return fmt.Errorf("OACK tsize %s, want %d", v, size)
			}
			last, lastTo = ack(0), peer
			if _, err := c.WriteToUDP(last, lastTo); err != nil {
				return err
			}
		case opDATA:
			blk := binary.BigEndian.Uint16(p[2:])
			data := len(p) - 4
			if blk != next {
				if blk == next-1 { // our ACK was lost: ACK again
					_, _ = c.WriteToUDP(ack(blk), peer)
				}
				continue
			}
			if data > blksize {
				return fmt.Errorf("block %d has %d bytes, blksize %d", blk, data, blksize)
			}
			got += int64(data)
			last, lastTo = ack(blk), peer
			if _, err := c.WriteToUDP(last, lastTo); err != nil {
				return err
			}
			next++
			if data < blksize {
				if got != size {
					return fmt.Errorf("got %d bytes, want %d", got, size)
				}
				return nil
			}
			if got > size {
				return fmt.Errorf("more than %d bytes", size)
			}
		default:
			return fmt.Errorf("unexpected TFTP opcode %d", binary.BigEndian.Uint16(p))
		}
	}
}

// ---------------------------------------------------------------- HTTP

func (s *storm) httpGet(ctx context.Context, hc *http.Client, path string, size int64) error {
	url := fmt.Sprintf("http://%s/%s", net.JoinHostPort(s.cfg.server.String(), strconv.Itoa(s.cfg.httpPort)), strings.TrimPrefix(path, "/"))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /%s: %s", path, resp.Status)
	}
	if resp.ContentLength >= 0 && resp.ContentLength != size {
		return fmt.Errorf("GET /%s: Content-Length %d, want %d", path, resp.ContentLength, size)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return fmt.Errorf("GET /%s after %d bytes: %w", path, n, err)
	}
	if n != size {
		return fmt.Errorf("GET /%s: %d bytes, want %d", path, n, size)
	}
	return nil
}

// ---------------------------------------------------------------- output

func sizeStr(b int64) string {
	switch {
	case b == 0:
		return ""
	case b%(1<<20) == 0:
		return fmt.Sprintf(" %d MiB", b>>20)
	case b%(1<<10) == 0:
		return fmt.Sprintf(" %d KiB", b>>10)
	}
	return fmt.Sprintf(" %d B", b)
}

func table(r *Result) string {
	var b strings.Builder
	if r.Label != "" {
		fmt.Fprintf(&b, "**%s**: ", r.Label)
	}
	fmt.Fprintf(&b, "%d clients, %s, %d booted, wall time %.2f s%s (stage timeout %.0f s; load avg %s → %s)\n\n",
		r.Clients, modeStr(r), r.Booted, r.WallS, map[bool]string{true: ", stopped at -max-time", false: ""}[r.Aborted],
		r.StageTimeout, r.LoadStart, r.LoadEnd)
	b.WriteString("| stage | started | ok | failed | p50 ms | p99 ms | max ms | span ms | retransmits |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range append(slices.Clone(r.Stages), r.Boot) {
		re := strconv.FormatInt(s.Retrans, 10)
		if s.NAKs > 0 {
			re += fmt.Sprintf(" (+%d NAKs, restarted)", s.NAKs)
		}
		if s.Name == "whole boot" || s.Name == stageNames[stKernel] || s.Name == stageNames[stInitrd] {
			re = ""
		}
		span := fmt.Sprintf("%.1f", s.SpanMS)
		if s.Name == "whole boot" {
			span = ""
		}
		fmt.Fprintf(&b, "| %s%s | %d | %d | %d | %.1f | %.1f | %.1f | %s | %s |\n",
			s.Name, sizeStr(s.Size), s.Attempts, s.OK, s.Failed, s.P50MS, s.P99MS, s.MaxMS, span, re)
	}
	for _, s := range r.Stages {
		for _, e := range s.Errors {
			fmt.Fprintf(&b, "\n- %s failure: %s", s.Name, e)
		}
	}
	b.WriteString("\n")
	return b.String()
}

func readResult(f string) (*Result, error) {
	data, err := os.ReadFile(f)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", f, err)
	}
	return &r, nil
}

func ratio(a, b float64) string {
	if b <= 0 || a <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// compare prints two -json results side by side: per stage p50/p99 and
// failures, and the wall time, each with the ratio A/B (below 1: A faster).
func compare(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: pxestorm -compare A.json B.json")
	}
	a, err := readResult(args[0])
	if err != nil {
		return err
	}
	b, err := readResult(args[1])
	if err != nil {
		return err
	}
	na, nb := a.Label, b.Label
	if na == "" {
		na = "A"
	}
	if nb == "" {
		nb = "B"
	}
	fmt.Printf("| stage | %s p50 / p99 ms | %s p50 / p99 ms | p50 ratio | p99 ratio | failed %s / %s |\n", na, nb, na, nb)
	fmt.Println("|---|---:|---:|---:|---:|---:|")
	sa, sb := append(slices.Clone(a.Stages), a.Boot), append(slices.Clone(b.Stages), b.Boot)
	for i := range min(len(sa), len(sb)) {
		x, y := sa[i], sb[i]
		fmt.Printf("| %s%s | %.1f / %.1f | %.1f / %.1f | %s | %s | %d / %d |\n", x.Name, sizeStr(x.Size),
			x.P50MS, x.P99MS, y.P50MS, y.P99MS, ratio(x.P50MS, y.P50MS), ratio(x.P99MS, y.P99MS), x.Failed, y.Failed)
	}
	fmt.Printf("| **wall time** | %.2f s | %.2f s | %s | | %d / %d booted |\n", a.WallS, b.WallS, ratio(a.WallS, b.WallS), a.Booted, b.Booted)
	return nil
}

// modeStr describes how the clients were released.
func modeStr(r *Result) string {
	m := "all DISCOVERs at once"
	if r.DHCPRate > 0 {
		m = fmt.Sprintf("DISCOVERs paced at %g/s", r.DHCPRate)
	}
	if r.Sync {
		return m + ", barriers before TFTP and HTTP (-sync)"
	}
	return m + ", free-running stages"
}

// side is the runs of one server under -summary.
type side struct {
	name string
	runs []*Result
	rss  []float64 // peak RSS, MiB, from <run>.srv when present
	cpu  []float64 // server CPU s, from <run>.srv
}

// readSide reads the -json results files and, next to each, the optional
// <file>.srv written by pxestorm.sh: "peak_rss_kB server_cpu_s".
func readSide(files []string) (*side, error) {
	sd := &side{}
	for _, f := range files {
		r, err := readResult(f)
		if err != nil {
			return nil, err
		}
		sd.runs = append(sd.runs, r)
		if sd.name == "" {
			sd.name = r.Label
		}
		if b, err := os.ReadFile(f + ".srv"); err == nil {
			var kb, cpu float64
			if n, _ := fmt.Sscan(string(b), &kb, &cpu); n == 2 {
				sd.rss = append(sd.rss, kb/1024)
				sd.cpu = append(sd.cpu, cpu)
			}
		}
	}
	if len(sd.runs) == 0 {
		return nil, errors.New("no runs")
	}
	return sd, nil
}

// median of v (the mean of the middle two for an even count), min and max.
func medMinMax(v []float64) (med, lo, hi float64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	med = v[n/2]
	if n%2 == 0 {
		med = (v[n/2-1] + v[n/2]) / 2
	}
	return med, v[0], v[n-1]
}

// mmm formats median (min–max) with the given precision.
func mmm(v []float64, prec int) string {
	if len(v) == 0 {
		return "-"
	}
	m, lo, hi := medMinMax(v)
	if len(v) == 1 {
		return strconv.FormatFloat(m, 'f', prec, 64)
	}
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, m, prec, lo, prec, hi)
}

func medRatio(a, b []float64) string {
	if len(a) == 0 || len(b) == 0 {
		return "-"
	}
	x, _, _ := medMinMax(a)
	y, _, _ := medMinMax(b)
	return ratio(x, y)
}

// stageVals collects, over the runs, field f of stage i (nStages: whole boot).
func (sd *side) stageVals(i int, f func(StageResult) float64) []float64 {
	var v []float64
	for _, r := range sd.runs {
		st := r.Boot
		if i < len(r.Stages) {
			st = r.Stages[i]
		}
		v = append(v, f(st))
	}
	return v
}

func (sd *side) sum(f func(*Result) int64) int64 {
	var n int64
	for _, r := range sd.runs {
		n += f(r)
	}
	return n
}

// summary prints the runs of two servers (-summary A1.json A2.json ... -vs
// B1.json ...): per stage the median over runs of p50 and p99, each with
// min–max, failures summed; then wall time, peak RSS and server CPU.
func summary(args []string) error {
	k := slices.Index(args, "-vs")
	if k < 1 || k == len(args)-1 {
		return errors.New("usage: pxestorm -summary A1.json [A2.json ...] -vs B1.json [B2.json ...]")
	}
	a, err := readSide(args[:k])
	if err != nil {
		return err
	}
	b, err := readSide(args[k+1:])
	if err != nil {
		return err
	}
	for i, sd := range []*side{a, b} {
		if sd.name == "" {
			sd.name = string(rune('A' + i))
		}
	}
	r0 := a.runs[0]
	fmt.Printf("%d clients, %s; runs: %d of %s and %d of %s, taking turns. Each cell: median over the runs (min–max); ratio: median %s / median %s, below 1 means %s is faster; failures: summed over the runs.\n\n",
		r0.Clients, modeStr(r0), len(a.runs), a.name, len(b.runs), b.name, a.name, b.name, a.name)
	fmt.Printf("| stage | %s p50 ms | %s p50 ms | p50 ratio | %s p99 ms | %s p99 ms | p99 ratio | failed %s / %s |\n",
		a.name, b.name, a.name, b.name, a.name, b.name)
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|")
	names := append(slices.Clone(stageNames[:]), "whole boot")
	p50 := func(s StageResult) float64 { return s.P50MS }
	p99 := func(s StageResult) float64 { return s.P99MS }
	var worse []string
	failed := 0
	for i, name := range names {
		var size int64
		if i < len(r0.Stages) {
			size = r0.Stages[i].Size
		}
		fa, fb := 0, 0
		for _, r := range a.runs {
			if i < len(r.Stages) {
				fa += r.Stages[i].Failed
			} else {
				fa += r.Boot.Failed
			}
		}
		for _, r := range b.runs {
			if i < len(r.Stages) {
				fb += r.Stages[i].Failed
			} else {
				fb += r.Boot.Failed
			}
		}
		a50, b50, a99, b99 := a.stageVals(i, p50), b.stageVals(i, p50), a.stageVals(i, p99), b.stageVals(i, p99)
		if i < nStages {
			failed += fa
			for _, c := range []struct {
				what string
				x, y []float64
			}{{"p50", a50, b50}, {"p99", a99, b99}} {
				mx, _, _ := medMinMax(c.x)
				my, _, _ := medMinMax(c.y)
				if mx > my {
					worse = append(worse, name+" "+c.what)
				}
			}
		}
		fmt.Printf("| %s%s | %s | %s | %s | %s | %s | %s | %d / %d |\n", name, sizeStr(size),
			mmm(a50, 1), mmm(b50, 1), medRatio(a50, b50), mmm(a99, 1), mmm(b99, 1), medRatio(a99, b99), fa, fb)
	}
	fmt.Println()
	if len(worse) == 0 && failed == 0 {
		fmt.Printf("%s no worse than %s at every stage (median p50 and p99), 0 failures: **yes**\n\n", a.name, b.name)
	} else {
		w := "none"
		if len(worse) > 0 {
			w = strings.Join(worse, ", ")
		}
		fmt.Printf("%s no worse than %s at every stage (median p50 and p99), 0 failures: **no** (worse: %s; %s failures: %d)\n\n",
			a.name, b.name, w, a.name, failed)
	}
	fmt.Printf("| per run | %s | %s | ratio |\n|---|---:|---:|---:|\n", a.name, b.name)
	wall := func(sd *side) []float64 {
		var v []float64
		for _, r := range sd.runs {
			v = append(v, r.WallS)
		}
		return v
	}
	fmt.Printf("| wall time s | %s | %s | %s |\n", mmm(wall(a), 2), mmm(wall(b), 2), medRatio(wall(a), wall(b)))
	for i := range nStages {
		span := func(s StageResult) float64 { return s.SpanMS / 1000 }
		va, vb := a.stageVals(i, span), b.stageVals(i, span)
		fmt.Printf("| %s span s (first start to last end) | %s | %s | %s |\n", stageNames[i], mmm(va, 2), mmm(vb, 2), medRatio(va, vb))
	}
	fmt.Printf("| peak RSS MiB (VmHWM) | %s | %s | %s |\n", mmm(a.rss, 1), mmm(b.rss, 1), medRatio(a.rss, b.rss))
	fmt.Printf("| server CPU s (user+sys) | %s | %s | %s |\n", mmm(a.cpu, 1), mmm(b.cpu, 1), medRatio(a.cpu, b.cpu))
	booted := func(r *Result) int64 { return int64(r.Booted) }
	clients := func(r *Result) int64 { return int64(r.Clients) }
	fmt.Printf("| booted, all runs | %d / %d | %d / %d | |\n", a.sum(booted), a.sum(clients), b.sum(booted), b.sum(clients))
	dre := func(r *Result) int64 { return r.Stages[stDHCP].Retrans }
	nak := func(r *Result) int64 { return r.Stages[stDHCP].NAKs }
	tre := func(r *Result) int64 { return r.Stages[stTFTP].Retrans }
	fmt.Printf("| DHCP resends (NAKs), all runs | %d (%d) | %d (%d) | |\n", a.sum(dre), a.sum(nak), b.sum(dre), b.sum(nak))
	fmt.Printf("| TFTP resends, all runs | %d | %d | |\n", a.sum(tre), b.sum(tre))
	aborted := func(r *Result) int64 {
		if r.Aborted {
			return 1
		}
		return 0
	}
	if n, m := a.sum(aborted), b.sum(aborted); n+m > 0 {
		fmt.Printf("| runs stopped at -max-time | %d | %d | |\n", n, m)
	}
	for _, sd := range []*side{a, b} {
		errs := map[string]bool{}
		for _, r := range sd.runs {
			for _, s := range r.Stages {
				for _, e := range s.Errors {
					errs[s.Name+" failure: "+e] = true
				}
			}
		}
		for _, e := range slices.Sorted(maps.Keys(errs)) {
			fmt.Printf("\n- %s, %s", sd.name, e)
		}
	}
	fmt.Println()
	return nil
}
