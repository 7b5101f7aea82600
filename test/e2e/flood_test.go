package e2e

// Floods against the real server while a real client boots or fetches: a
// relayed DHCP flood from 10,000 MACs, a TFTP flood of read requests for
// files that do not exist, and an HTTP slowloris of 1,000 connections that
// never finish their headers. In each, the real client must still succeed,
// bootforge's peak RSS (VmHWM) stays under floodMaxRSS, and after the flood
// stops a fresh client succeeds within floodRecovery. Sized for 2 cores:
// the three take well under a minute together.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	binenc "encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	floodMaxRSS   = 512 << 20       // a generous bound: bootforge idles near 30 MiB
	floodRecovery = 5 * time.Second // a fresh client succeeds this soon after a flood
)

// floodPeakRSS returns the server's peak resident set size (VmHWM), after
// checking that the PID is bootforge's (ip netns exec execs it in place).
func floodPeakRSS(t testing.TB, s *Server) int64 {
	t.Helper()
	pid := s.cmd.Process.Pid
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "bootforge" {
		t.Fatalf("PID %d is %q, not bootforge (%v)", pid, comm, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil || len(f) != 2 || f[1] != "kB" {
				t.Fatalf("VmHWM line %q", line)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// floodCheckMemory logs the peak RSS and fails above floodMaxRSS.
func floodCheckMemory(t testing.TB, s *Server, attack string) {
	t.Helper()
	peak := floodPeakRSS(t, s)
	t.Logf("%s: bootforge peak RSS (VmHWM) %.1f MiB", attack, float64(peak)/(1<<20))
	if peak > floodMaxRSS {
		t.Errorf("%s: peak RSS %d MiB, over the bound of %d MiB", attack, peak>>20, floodMaxRSS>>20)
	}
}

// floodRandomFile writes size random bytes at root/name and returns their SHA-256.
func floodRandomFile(t testing.TB, root, name string, size int) [32]byte {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// floodCheckFile fails unless the file at path has the SHA-256 want.
func floodCheckFile(t testing.TB, path string, want [32]byte, what, peerOutput string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: no download: %v; the client said:\n%s", what, err, peerOutput)
	}
	if sha256.Sum256(b) != want {
		t.Fatalf("%s: download of %d bytes differs from the file; the client said:\n%s", what, len(b), peerOutput)
	}
}

// TestFloodDHCP: PXE DISCOVERs from 10,000 random MACs, relayed, sprayed
// at about 10,000 a second without waiting for anything (open loop), while
// busybox udhcpc on the served link asks for its lease. Beside the flood,
// bench/dhcpload plays a second relay whose clients lease closed loop (64
// in flight, 4 s per message as PXE firmware waits, no retries): it must
// still get leases.
func TestFloodDHCP(t *testing.T) {
	need(t, "udhcpc")
	load := filepath.Join(t.TempDir(), "dhcpload")
	if out, err := exec.Command("go", "build", "-o", load, "bootforge/bench/dhcpload").CombinedOutput(); err != nil {
		t.Fatalf("building dhcpload: %v\n%s", err, out)
	}
	lab := NewLab(t)
	relay := dhAddHost(t, lab, "192.0.2.2")
	relay.MustExec("ip", "addr", "add", "198.18.0.1/16", "dev", "lo")
	relay.MustExec("ip", "addr", "add", "198.18.0.2/16", "dev", "lo")
	lab.MustExec("ip", "route", "add", "198.18.0.0/16", "via", "192.0.2.2")
	srv := dhStart(t, lab, `dhcp:
  mode: authoritative
  interfaces: [br0]
  subnets:
    - subnet: 192.0.2.0/24
      pools: ["192.0.2.100-192.0.2.200"]
      router: 192.0.2.1
    - subnet: 198.18.0.0/16
      pools: ["198.18.1.0-198.18.255.250"]
`)
	client := dhAddHost(t, lab, "")

	const macs = 10000
	spray := floodSprayDHCP(t, relay, "198.18.0.2", macs)
	var base [6]byte
	rand.Read(base[:])
	base[0] = base[0]&^1 | 2 // unicast, locally administered
	gen := relay.Command(load, "-server", dhServerIP, "-relay", "198.18.0.1", "-clients", strconv.Itoa(macs),
		"-inflight", "64", "-timeout", "4s", "-max-time", "6s", "-mac-base", net.HardwareAddr(base[:]).String(), "-json")
	var genOut, genErr bytes.Buffer
	gen.Stdout, gen.Stderr = &genOut, &genErr
	if err := gen.Start(); err != nil {
		t.Fatal(err)
	}
	genDone := make(chan error, 1)
	go func() { genDone <- gen.Wait() }()
	t.Cleanup(func() {
		if gen.ProcessState == nil {
			gen.Process.Kill()
			<-genDone
		}
	})

	time.Sleep(500 * time.Millisecond) // the flood is at full speed
	lease := dhMustUdhcpc(t, client)
	// The spray runs until stopped below: udhcpc ran during the flood.
	duringSent := spray.sent.Load()
	t.Logf("during the flood (%d DISCOVERs sprayed so far): udhcpc got %s", duringSent, lease["ip"])
	if err := <-genDone; err != nil {
		t.Fatalf("dhcpload: %v\n%s%s", err, genOut.String(), genErr.String())
	}
	// The flood lasts until every MAC was sprayed twice, however soon
	// dhcpload's clients were all leased: a fast server can lease them
	// before the spray (about 10,000 a second) got that far.
	for deadline := time.Now().Add(10 * time.Second); spray.sent.Load() < 2*macs && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	spray.stop()
	stopped := time.Now()
	var res struct {
		Started   int     `json:"started"`
		Completed int64   `json:"completed"`
		Timeouts  int64   `json:"timeouts"`
		NAKs      int64   `json:"naks"`
		Dups      int64   `json:"duplicates"`
		PerSec    float64 `json:"leases_per_sec"`
		WallS     float64 `json:"wall_s"`
	}
	if err := json.Unmarshal(genOut.Bytes(), &res); err != nil {
		t.Fatalf("dhcpload output: %v\n%s", err, genOut.String())
	}
	t.Logf("flood: %d relayed DISCOVERs sprayed from %d MACs, %d OFFERs back", spray.sent.Load(), macs, spray.offers.Load())
	t.Logf("beside it, dhcpload: %d clients started, %d leased, %d timed out, %d NAKs in %.1f s (%.0f leases/s)",
		res.Started, res.Completed, res.Timeouts, res.NAKs, res.WallS, res.PerSec)
	if spray.sent.Load() < 2*macs {
		t.Errorf("the spray sent only %d DISCOVERs: every MAC not even twice", spray.sent.Load())
	}
	if spray.offers.Load() == 0 {
		t.Error("no OFFER to the sprayed DISCOVERs: the flood never reached the handler")
	}
	if res.Completed == 0 {
		t.Error("dhcpload got no lease at all beside the flood")
	}
	if res.Dups != 0 {
		t.Errorf("%d addresses leased to two MACs under the flood", res.Dups)
	}

	// Recovery: a client the server has never seen gets a lease at once.
	fresh := dhAddHost(t, lab, "")
	start := time.Now()
	l, out, err := dhUdhcpc(t, fresh, 5)
	took := time.Since(start)
	if err != nil || l == nil {
		t.Fatalf("after the flood: udhcpc got no lease (%v):\n%s", err, out)
	}
	t.Logf("after the flood: a fresh udhcpc got %s in %s (flood stopped %s before)", l["ip"], took.Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond))
	if took > floodRecovery {
		t.Errorf("after the flood: the lease took %s, more than %s", took, floodRecovery)
	}
	floodCheckMemory(t, srv, "DHCP flood")
}

// dhcpSpray is an open-loop flood of relayed DISCOVERs.
type dhcpSpray struct {
	sent, offers atomic.Int64
	stop         func()
}

// floodSprayDHCP sends PXE DISCOVERs relayed by giaddr (bound to its port
// 67 in relay's namespace) from n random MACs, round robin, at about
// 10,000 a second, and counts the OFFERs that come back, until stopped.
func floodSprayDHCP(t testing.TB, relay *LabHost, giaddr string, n int) *dhcpSpray {
	t.Helper()
	var c *net.UDPConn
	if err := dhInNetns(relay.Netns, func() (err error) {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(giaddr), Port: 67})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	packets := make([][]byte, n)
	for i := range packets {
		var mac [6]byte
		rand.Read(mac[:])
		mac[0] = mac[0]&^1 | 2
		m := dhNewMsg(net.HardwareAddr(mac[:]).String(), dhDiscover, dhOS(60, "PXEClient:Arch:00007:UNDI:003016"), dhOArch(7))
		m.GIAddr, m.Hops, m.Flags = giaddr, 1, 0
		packets[i] = m.Bytes()
	}
	s := &dhcpSpray{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		server := netip.AddrPortFrom(netip.MustParseAddr(dhServerIP), 67)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			for k := 0; k < 100; k++ { // 100 per 10 ms
				c.WriteToUDPAddrPort(packets[i%n], server)
				s.sent.Add(1)
				i++
			}
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			m, err := c.Read(buf)
			if err != nil {
				return // closed by stop
			}
			if p, err := dhParse(buf[:m]); err == nil && p.Op == 2 && p.Type() == dhOffer {
				s.offers.Add(1)
			}
		}
	}()
	s.stop = sync.OnceFunc(func() {
		close(done)
		time.Sleep(200 * time.Millisecond) // the last OFFERs
		c.Close()
		wg.Wait()
	})
	t.Cleanup(s.stop)
	return s
}

// floodRRQ is a TFTP read request for name, octet, with a blksize option.
func floodRRQ(name string) []byte {
	b := binenc.BigEndian.AppendUint16(nil, 1)
	b = append(b, name...)
	b = append(b, 0)
	b = append(b, "octet\x00blksize\x001468\x00"...)
	return b
}

// TestFloodTFTP: from one host, read requests for missing files from 512
// source ports at about 20,000 a second, while tftp-hpa on another host
// fetches a 1 MiB loader; atftp fetches it again after the flood.
func TestFloodTFTP(t *testing.T) {
	need(t, "atftp", "tftp")
	lab := NewLab(t)
	root := t.TempDir()
	sum := floodRandomFile(t, root, "pxe/loader.efi", 1<<20)
	srv := StartServer(t, ServerOptions{Netns: lab.Netns, Addr: dhServerIP, Root: root, Config: "log: {level: info}\n"})
	flooder := dhAddHost(t, lab, "192.0.2.10")
	client := dhAddHost(t, lab, "192.0.2.11")
	server := netip.MustParseAddrPort(srv.TFTPAddr)

	var conns []*net.UDPConn
	if err := dhInNetns(flooder.Netns, func() error {
		for i := 0; i < 512; i++ {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(flooder.IP())})
			if err != nil {
				return err
			}
			conns = append(conns, c)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	var sent, sendErrs, replies atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const senders, perTick = 4, 50 // 4 x 50 per 10 ms: 20,000 a second
	for g := 0; g < senders; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for n := g; ; {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				for i := 0; i < perTick; i++ {
					c := conns[n%len(conns)]
					if _, err := c.WriteToUDPAddrPort(floodRRQ(fmt.Sprintf("missing/%d.efi", n)), server); err != nil {
						sendErrs.Add(1)
					}
					sent.Add(1)
					n += senders
				}
			}
		}()
	}
	// The replies (ERROR packets) are read, so that the flooder's sockets
	// keep taking them; they are only counted.
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 2048)
			for {
				if _, err := c.Read(buf); err != nil {
					select {
					case <-stop:
						return
					default:
					}
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						continue
					}
					return
				}
				replies.Add(1)
			}
		}()
	}
	stopFlood := sync.OnceFunc(func() {
		close(stop)
		for _, c := range conns {
			c.SetReadDeadline(time.Now())
		}
		wg.Wait()
	})
	t.Cleanup(stopFlood)

	time.Sleep(time.Second) // the flood is at full speed
	out := filepath.Join(t.TempDir(), "during")
	o, err := client.Exec(60*time.Second, "tftp", dhServerIP, Port(srv.TFTPAddr), "-m", "binary", "-c", "get", "pxe/loader.efi", out)
	if err != nil {
		t.Fatalf("tftp-hpa during the flood: %v\n%s", err, o)
	}
	floodCheckFile(t, out, sum, "tftp-hpa during the flood", o)
	during := sent.Load()
	time.Sleep(2 * time.Second) // some flood after the fetch, too
	stopFlood()
	stopped := time.Now()
	t.Logf("flood: %d RRQs for missing files sent (%d by the end of the fetch during it, %d send errors), %d replies",
		sent.Load(), during, sendErrs.Load(), replies.Load())
	if during < 5000 {
		t.Errorf("only %d RRQs sent while tftp-hpa fetched: the flood did not run", during)
	}

	// Recovery: atftp fetches the loader at once. It retransmits after
	// 1 s, as firmware does, not its default 5 s: a request that meets the
	// flood's last requests in a full socket buffer is simply sent again.
	after := filepath.Join(t.TempDir(), "after")
	start := time.Now()
	o, err = client.Exec(30*time.Second, "atftp", "--tftp-timeout", "1", "--option", "blksize 1468", "-g", "-r", "pxe/loader.efi", "-l", after, dhServerIP, Port(srv.TFTPAddr))
	took := time.Since(start)
	if err != nil {
		t.Fatalf("atftp after the flood: %v\n%s", err, o)
	}
	floodCheckFile(t, after, sum, "atftp after the flood", o)
	t.Logf("after the flood: atftp fetched 1 MiB in %s (flood stopped %s before)", took.Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond))
	if took > floodRecovery {
		t.Errorf("after the flood: the fetch took %s, more than %s", took, floodRecovery)
	}
	floodCheckMemory(t, srv, "TFTP RRQ flood")
}

// TestFloodHTTPSlowloris: 1,000 connections, half of them silent, half
// sending the start of a request and then one header line every 2 s, never
// the blank line that ends the headers, while curl fetches a 4 MiB image. The server must keep serving,
// and must drop the slow connections at its header deadline (10 s).
func TestFloodHTTPSlowloris(t *testing.T) {
	need(t, "curl")
	root := t.TempDir()
	sum := floodRandomFile(t, root, "images/live.img", 4<<20)
	srv := StartServer(t, ServerOptions{Root: root, Config: "log: {level: info}\nhttp: {access_log: false}\n"})

	const idle = 1000
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := 0; i < idle; i++ {
		c, err := net.DialTimeout("tcp4", srv.HTTPAddr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d of %d: %v", i+1, idle, err)
		}
		conns = append(conns, c)
		if i%2 == 0 {
			continue // silent
		}
		if _, err := fmt.Fprintf(c, "GET /images/live.img HTTP/1.1\r\nHost: %s\r\n", srv.HTTPAddr); err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
	}
	opened := time.Now()
	// Each connection is watched: it ends when the server closes it.
	var closedAt sync.Map // index -> time the server closed it
	for i, c := range conns {
		go func() {
			buf := make([]byte, 512)
			for {
				if _, err := c.Read(buf); err != nil {
					closedAt.Store(i, time.Now())
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Second):
			}
			for i, c := range conns {
				if _, done := closedAt.Load(i); !done && i%2 == 1 {
					fmt.Fprintf(c, "X-Slow-%d: %d\r\n", n, i)
				}
			}
		}
	}()

	out := filepath.Join(t.TempDir(), "during")
	o, err := run(t, 60*time.Second, "curl", "-sS", "--fail", "-o", out, "http://"+srv.HTTPAddr+"/images/live.img")
	if err != nil {
		t.Fatalf("curl during the slowloris: %v\n%s", err, o)
	}
	floodCheckFile(t, out, sum, "curl during the slowloris", o)
	open := 0
	for i := range conns {
		if _, done := closedAt.Load(i); !done {
			open++
		}
	}
	t.Logf("during: curl fetched 4 MiB with %d of %d slow connections open", open, idle)
	if open < idle*9/10 {
		t.Errorf("only %d of %d slow connections were open while curl fetched: the flood did not hold", open, idle)
	}

	// The header deadline (http.Server.ReadHeaderTimeout, 10 s) ends them.
	deadline := opened.Add(15 * time.Second)
	dropped := 0
	for time.Now().Before(deadline) {
		dropped = 0
		closedAt.Range(func(_, _ any) bool { dropped++; return true })
		if dropped == idle {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the server dropped %d of %d slow connections within %s of their opening", dropped, idle, time.Since(opened).Round(time.Second))
	if dropped < idle {
		t.Errorf("%d of %d connections that never finished their headers still open after 15 s", idle-dropped, idle)
	}
	close(stop)
	<-trickled
	for _, c := range conns {
		c.Close()
	}
	stopped := time.Now()

	after := filepath.Join(t.TempDir(), "after")
	start := time.Now()
	o, err = run(t, 30*time.Second, "curl", "-sS", "--fail", "-o", after, "http://"+srv.HTTPAddr+"/images/live.img")
	took := time.Since(start)
	if err != nil {
		t.Fatalf("curl after the slowloris: %v\n%s", err, o)
	}
	floodCheckFile(t, after, sum, "curl after the slowloris", o)
	t.Logf("after: curl fetched 4 MiB in %s (flood stopped %s before)", took.Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond))
	if took > floodRecovery {
		t.Errorf("after the slowloris: the fetch took %s, more than %s", took, floodRecovery)
	}
	floodCheckMemory(t, srv, "HTTP slowloris")
}
