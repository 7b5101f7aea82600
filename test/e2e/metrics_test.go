package e2e

// /metrics on the management listener, scraped with curl and checked with
// promtool (Debian's prometheus package), while real clients move the
// counters: curl over HTTP, tftp-hpa over TFTP, udhcpc for DHCP, and one
// QEMU boot through DHCP, HTTP and TFTP with a one-shot. After each, the
// counters have moved by exactly what the clients did.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape is one /metrics answer: the text, and each series' value by its
// name{labels} as the text writes it.
type scrape struct {
	text   string
	series map[string]float64
}

func parseScrape(t testing.TB, text string) scrape {
	t.Helper()
	s := scrape{text: text, series: map[string]float64{}}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndex(line, " ")
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("/metrics line %q is not a sample", line)
		}
		s.series[line[:i]] = v
	}
	if len(s.series) == 0 {
		t.Fatalf("/metrics has no samples:\n%s", text)
	}
	return s
}

// value returns a series that must exist.
func (s scrape) value(t testing.TB, series string) float64 {
	t.Helper()
	v, ok := s.series[series]
	if !ok {
		t.Fatalf("/metrics has no series %s", series)
	}
	return v
}

// promtoolCheck runs `promtool check metrics` on a scrape.
func promtoolCheck(t testing.TB, text string) {
	t.Helper()
	need(t, "promtool")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out.String())
	}
}

// checkDeltas compares after-before for each series with want.
func checkDeltas(t testing.TB, before, after scrape, want map[string]float64) {
	t.Helper()
	for series, w := range want {
		b := before.series[series] // absent before: 0
		if got := after.value(t, series) - b; got != w {
			t.Errorf("%s moved by %g, want %g", series, got, w)
		}
	}
}

// curlStatus fetches url with curl (the body goes to /dev/null) and
// returns the status; netns is the namespace to run in, "" for this one.
func curlStatus(t testing.TB, netns string, url string, header ...string) int {
	t.Helper()
	need(t, "curl")
	args := []string{"-s", "-o", "/dev/null", "-w", "%{http_code}"}
	for _, h := range header {
		args = append(args, "-H", h)
	}
	args = append(args, url)
	var out string
	var err error
	if netns == "" {
		out, err = run(t, 30*time.Second, "curl", args...)
	} else {
		out, err = netnsRun(netns, 30*time.Second, "curl", args...)
	}
	if err != nil {
		t.Fatalf("curl %s: %v\n%s", url, err, out)
	}
	code, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("curl %s: status %q", url, out)
	}
	return code
}

// scrapeMetrics fetches /metrics from s with curl (inside netns, if not
// ""), checks it with promtool, and parses it.
func scrapeMetrics(t testing.TB, s *Server, netns string) scrape {
	t.Helper()
	url := "http://" + s.APIAddr + "/metrics"
	var out string
	var err error
	if netns == "" {
		out, err = run(t, 30*time.Second, "curl", "-sSf", url)
	} else {
		out, err = netnsRun(netns, 30*time.Second, "curl", "-sSf", url)
	}
	if err != nil {
		t.Fatalf("curl %s: %v\n%s", url, err, out)
	}
	promtoolCheck(t, out)
	return parseScrape(t, out)
}

// TestMetricsHTTPAndTFTP: /metrics needs no token and passes promtool;
// curl's requests and tftp-hpa's transfers move the HTTP and TFTP
// counters by exactly what they did; with api.metrics_auth a read token is
// needed.
func TestMetricsHTTPAndTFTP(t *testing.T) {
	need(t, "curl", "tftp", "promtool")
	root := t.TempDir()
	blob := bytes.Repeat([]byte("bootforge metrics "), 5000) // 90000 bytes
	if err := os.WriteFile(filepath.Join(root, "blob.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	s := StartServer(t, ServerOptions{Root: root})
	before := scrapeMetrics(t, s, "")
	for _, fam := range []string{"bootforge_build_info", "go_goroutines", "process_resident_memory_bytes",
		"bootforge_tls_cert_expiry_timestamp_seconds", "bootforge_bootlog_queued_events"} {
		if !strings.Contains(before.text, "\n"+fam) {
			t.Errorf("/metrics has no %s", fam)
		}
	}
	// bootforge_build_info says what `bootforge version` says.
	vout, err := run(t, 10*time.Second, binary, "version")
	if err != nil {
		t.Fatalf("bootforge version: %v\n%s", err, vout)
	}
	ver, _, _ := strings.Cut(strings.TrimPrefix(vout, "bootforge "), "\n")
	if !strings.Contains(before.text, `bootforge_build_info{goversion="go`) || !strings.Contains(before.text, `version="`+strings.TrimSpace(ver)+`"} 1`) {
		t.Errorf("bootforge_build_info does not name version %q:\n%s", ver, grepLines(before.text, "bootforge_build_info"))
	}
	if exp := before.value(t, "bootforge_tls_cert_expiry_timestamp_seconds"); exp < float64(time.Now().Unix()) {
		t.Errorf("the TLS certificate expires at %g, before now", exp)
	}

	if code := curlStatus(t, "", "http://"+s.HTTPAddr+"/blob.bin"); code != 200 {
		t.Fatalf("GET /blob.bin: %d", code)
	}
	if code := curlStatus(t, "", "http://"+s.HTTPAddr+"/missing.bin"); code != 404 {
		t.Fatalf("GET /missing.bin: %d", code)
	}
	host, port := Host(s.TFTPAddr), strings.TrimPrefix(s.TFTPAddr, Host(s.TFTPAddr)+":")
	out := filepath.Join(t.TempDir(), "blob.bin")
	if o, err := run(t, 60*time.Second, "tftp", host, port, "-m", "binary", "-c", "get", "blob.bin", out); err != nil {
		t.Fatalf("tftp-hpa get blob.bin: %v\n%s", err, o)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, blob) {
		t.Fatalf("tftp-hpa got %d bytes, want %d", len(got), len(blob))
	}
	run(t, 60*time.Second, "tftp", host, port, "-m", "binary", "-c", "get", "missing.bin", filepath.Join(t.TempDir(), "m"))
	// Refused: a path out of the root (access violation), and a write.
	run(t, 60*time.Second, "tftp", host, port, "-m", "binary", "-c", "get", "../../etc/passwd", filepath.Join(t.TempDir(), "p"))
	run(t, 60*time.Second, "tftp", host, port, "-m", "binary", "-c", "put", out, "upload.bin")

	// Events reach the metrics when a transfer ends, after the client has
	// its last byte: wait for the log lines of the last TFTP requests.
	waitUntil(t, 10*time.Second, "the log lines of the last TFTP requests", func() bool {
		return s.CountLog(`msg="tftp: not found"`) >= 1 && s.CountLog(`msg="tftp: refused"`) >= 2
	})
	after := scrapeMetrics(t, s, "")
	n := float64(len(blob))
	checkDeltas(t, before, after, map[string]float64{
		`bootforge_http_requests_total{class="2xx"}`:         1,
		`bootforge_http_requests_total{class="4xx"}`:         1,
		`bootforge_http_requests_total{class="5xx"}`:         0,
		`bootforge_http_busy_total`:                          0,
		`bootforge_tftp_transfers_total{result="ok"}`:        1,
		`bootforge_tftp_transfers_total{result="not_found"}`: 1,
		`bootforge_tftp_transfers_total{result="failed"}`:    0,
		`bootforge_tftp_refused_total{reason="denied"}`:      1,
		`bootforge_tftp_refused_total{reason="request"}`:     1,
		`bootforge_tftp_refused_total{reason="busy"}`:        0,
		`bootforge_tftp_active_transfers`:                    0,
		`bootforge_bootlog_dropped_events_total`:             0,
	})
	// Bytes: the file, plus the short body of the 404.
	if d := after.value(t, "bootforge_http_sent_bytes_total") - before.value(t, "bootforge_http_sent_bytes_total"); d < n || d > n+100 {
		t.Errorf("bootforge_http_sent_bytes_total moved by %g, want %g and a 404 body", d, n)
	}
	checkDeltas(t, before, after, map[string]float64{"bootforge_tftp_sent_bytes_total": n})

	// api.metrics_auth: a read token is needed.
	g := StartServer(t, ServerOptions{Root: t.TempDir(), Config: "api: {metrics_auth: true}\n"})
	url := "http://" + g.APIAddr + "/metrics"
	if code := curlStatus(t, "", url); code != 401 {
		t.Errorf("GET /metrics with api.metrics_auth and no token: %d, want 401", code)
	}
	cmd := exec.Command(binary, "token", "create", "--role", "read")
	cmd.Env = append(cmd.Environ(), "BOOTFORGE_DATA_DIR="+g.DataDir, "BOOTFORGE_ROOT="+g.Root)
	tok, err := cmd.Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	if code := curlStatus(t, "", url, "Authorization: Bearer "+strings.TrimSpace(string(tok))); code != 200 {
		t.Errorf("GET /metrics with api.metrics_auth and a read token: %d, want 200", code)
	}
}

// grepLines returns the lines of text that contain s.
func grepLines(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// mtAuthConfig is bootforge authoritative on the lab bridge, with a pool
// of 100 addresses.
const mtAuthConfig = `log: {level: debug, format: text}
dhcp:
  mode: authoritative
  interfaces: [br0]
  subnets:
    - subnet: 192.0.2.0/24
      pools: ["192.0.2.100-192.0.2.199"]
      router: 192.0.2.1
      lease_time: 10m
`

// TestMetricsDHCP: one udhcpc lease moves the DHCP counters by one
// DISCOVER, one OFFER, one REQUEST, one ACK and one lease commit, and the
// pool has one address fewer free.
func TestMetricsDHCP(t *testing.T) {
	need(t, "udhcpc", "curl", "promtool")
	lab := NewLab(t)
	s := StartServer(t, ServerOptions{Netns: lab.Netns, Addr: lab.IP(), Config: mtAuthConfig})
	before := scrapeMetrics(t, s, lab.Netns)
	pool := `{subnet="192.0.2.0/24"}`
	if size := before.value(t, "bootforge_dhcp_pool_addresses"+pool); size != 100 {
		t.Errorf("bootforge_dhcp_pool_addresses = %g, want 100", size)
	}
	client := dhAddHost(t, lab, "")
	lease := dhMustUdhcpc(t, client, "-T", "3") // a 3 s wait for answers, so that it sends each message once
	if !dhInPool(lease["ip"], "192.0.2.100", "192.0.2.199") {
		t.Fatalf("udhcpc got %q, outside the pool", lease["ip"])
	}
	after := scrapeMetrics(t, s, lab.Netns)
	checkDeltas(t, before, after, map[string]float64{
		`bootforge_dhcp_requests_total{mode="authoritative",type="discover"}`: 1,
		`bootforge_dhcp_requests_total{mode="authoritative",type="request"}`:  1,
		`bootforge_dhcp_replies_total{mode="authoritative",type="offer"}`:     1,
		`bootforge_dhcp_replies_total{mode="authoritative",type="ack"}`:       1,
		`bootforge_dhcp_replies_total{mode="authoritative",type="nak"}`:       0,
		`bootforge_dhcp_dropped_total{reason="malformed"}`:                    0,
		`bootforge_dhcp_dropped_total{reason="rate_limit"}`:                   0,
		`bootforge_dhcp_dropped_total{reason="not_allowed"}`:                  0,
		`bootforge_dhcp_dropped_total{reason="queue_full"}`:                   0,
		`bootforge_dhcp_lease_commit_seconds_count`:                           1,
		`bootforge_dhcp_pool_free_addresses` + pool:                           -1,
	})
}

// TestMetricsQEMUBoot: one BIOS QEMU boot (QEMU's iPXE ROM) from
// bootforge alone, with a one-shot: DHCP gives iPXE the script URL, the
// generated menu boots the one-shot entry, the kernel comes over HTTP and
// the initrd over TFTP. Every counter moves by exactly what the server's
// own log says happened, and the boot counters by one.
func TestMetricsQEMUBoot(t *testing.T) {
	need(t, "curl", "promtool")
	const mac = "52:54:00:3e:70:01"
	m := newMenuLab(t, menuLabOptions{
		Inventory: `inventory:
  profiles:
    - name: metrics
      match: [{mac: "` + mac + `"}]
      menu:
        default: disk
        entries:
          - {name: disk, kind: local}
          - {name: install, kind: linux, kernel: vmlinuz, initrds: ["tftp://192.0.2.1/initrd.gz"], cmdline: "` + bmCmdline + `"}
`,
	})
	m.cli(t, "host", "next-boot", mac, "install")
	before := scrapeMetrics(t, m.Server, m.Lab.Netns)
	// Every firmware and profile has its boots series from the start, at 0.
	for _, fw := range []string{"bios", "efi-x64", "unknown"} {
		series := `bootforge_boots_total{firmware="` + fw + `",profile="metrics"}`
		if v, ok := before.series[series]; !ok || v != 0 {
			t.Errorf("before any boot, /metrics has %s %g (present: %v), want 0", series, v, ok)
		}
	}

	vm, cmdline := m.boot(t, "bios", mac)
	if got := markers(cmdline); len(got) != 1 || got[0] != "bfmarker=metrics-install" {
		t.Fatalf("booted markers %v, want [bfmarker=metrics-install] (the one-shot)", got)
	}
	if _, st := m.nextBootState(t, mac); st != "booted" {
		t.Errorf("after the boot the one-shot is %q, want booted", st)
	}
	// The initrd's transfer event is recorded when iPXE acknowledges its
	// last block, before the kernel starts: it is in by now.
	after := scrapeMetrics(t, m.Server, m.Lab.Netns)

	// What the server's log says happened.
	replies := map[string]float64{}
	for _, r := range ServerRecords(m.Server, "dhcp: replied") {
		replies[strings.ToLower(r["type"])]++
	}
	var http2xx, httpBytes float64
	for _, r := range ServerRecords(m.Server, "http request") {
		if strings.HasPrefix(r["status"], "2") {
			http2xx++
		}
		b, _ := strconv.ParseFloat(r["bytes"], 64)
		httpBytes += b
	}
	var tftpOK, tftpBytes float64
	for _, r := range ServerRecords(m.Server, "tftp transfer") {
		if r["result"] == "ok" {
			tftpOK++
			b, _ := strconv.ParseFloat(r["bytes"], 64)
			tftpBytes += b
		}
	}
	initrd, err := os.Stat(filepath.Join(m.Root, "initrd.gz"))
	if err != nil {
		t.Fatal(err)
	}
	kernel, err := os.Stat(filepath.Join(m.Root, "vmlinuz"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("log: DHCP replies %v, %g HTTP 2xx (%g bytes), %g TFTP ok (%g bytes)", replies, http2xx, httpBytes, tftpOK, tftpBytes)
	if replies["offer"] < 1 || replies["ack"] < 1 {
		t.Errorf("the log shows DHCP replies %v, want an OFFER and an ACK at least", replies)
	}
	// boot.ipxe, bootforge/ipxe (the menu), vmlinuz; the initrd over TFTP.
	if http2xx != 3 || tftpOK != 1 || tftpBytes != float64(initrd.Size()) || httpBytes < float64(kernel.Size()) {
		t.Errorf("the log shows %g HTTP 2xx and %g TFTP transfers of %g bytes, want 3 and 1 of %d (the initrd)", http2xx, tftpOK, tftpBytes, initrd.Size())
	}
	mode := `{mode="authoritative",type=`
	checkDeltas(t, before, after, map[string]float64{
		`bootforge_dhcp_replies_total` + mode + `"offer"}`:         replies["offer"],
		`bootforge_dhcp_replies_total` + mode + `"ack"}`:           replies["ack"],
		`bootforge_dhcp_replies_total` + mode + `"nak"}`:           0,
		`bootforge_dhcp_lease_commit_seconds_count`:                replies["ack"],
		`bootforge_http_requests_total{class="2xx"}`:               http2xx,
		`bootforge_http_sent_bytes_total`:                          httpBytes,
		`bootforge_tftp_transfers_total{result="ok"}`:              tftpOK,
		`bootforge_tftp_sent_bytes_total`:                          tftpBytes,
		`bootforge_boots_total{firmware="bios",profile="metrics"}`: 1,
		`bootforge_boot_stage_seconds_count{stage="kernel"}`:       1,
		`bootforge_boot_stage_seconds_count{stage="booted"}`:       1,
		`bootforge_bootlog_dropped_events_total`:                   0,
	})
	// Every parsed DHCP packet was answered, or counted as unanswered or
	// dropped.
	in := after.value(t, `bootforge_dhcp_requests_total`+mode+`"discover"}`) + after.value(t, `bootforge_dhcp_requests_total`+mode+`"request"}`)
	out := after.value(t, `bootforge_dhcp_replies_total`+mode+`"offer"}`) + after.value(t, `bootforge_dhcp_replies_total`+mode+`"ack"}`) +
		after.value(t, "bootforge_dhcp_unanswered_total") + after.value(t, `bootforge_dhcp_dropped_total{reason="rate_limit"}`) +
		after.value(t, `bootforge_dhcp_dropped_total{reason="not_allowed"}`)
	if in != out || in < 2 {
		t.Errorf("DHCP: %g DISCOVERs and REQUESTs in, but %g replies, unanswered and dropped", in, out)
	}
	// The stages: from the first DHCP answer to the kernel fetch and to
	// the one-shot's booted state (both at the kernel's first fetch), each
	// within the VM's run.
	for _, stage := range []string{"kernel", "booted"} {
		sum := after.value(t, `bootforge_boot_stage_seconds_sum{stage="`+stage+`"}`)
		if sum <= 0 || sum > vm.Elapsed().Seconds() {
			t.Errorf("stage %s took %gs, want more than 0 and less than the VM's %s", stage, sum, vm.Elapsed())
		}
	}
	t.Logf("first DHCP answer to kernel: %.2fs; VM ran %s", after.value(t, `bootforge_boot_stage_seconds_sum{stage="kernel"}`), vm.Elapsed().Round(time.Millisecond))
	if free := after.value(t, `bootforge_dhcp_pool_free_addresses{subnet="192.0.2.0/24"}`); free != 100-float64(len(leasedIPs(m.Server))) {
		t.Errorf("pool: %g addresses free, want 100 less the %d leased", free, len(leasedIPs(m.Server)))
	}
}

// leasedIPs are the addresses bootforge logged leases of.
func leasedIPs(s *Server) map[string]bool {
	out := map[string]bool{}
	for _, r := range ServerRecords(s, "dhcp: lease") {
		out[r["ip"]] = true
	}
	return out
}

// TestMetricsPrometheusExamples: the example scrape config and alert rules
// in packaging/prometheus pass promtool's checks and the rules' own unit
// tests (rules_test.yml).
func TestMetricsPrometheusExamples(t *testing.T) {
	need(t, "promtool")
	dir := filepath.Join("..", "..", "packaging", "prometheus")
	for _, args := range [][]string{
		{"check", "config", filepath.Join(dir, "prometheus.yml")},
		{"check", "rules", filepath.Join(dir, "rules.yml")},
		{"test", "rules", filepath.Join(dir, "rules_test.yml")},
	} {
		if out, err := run(t, 60*time.Second, "promtool", args...); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestMetricsTFTPRetransmit: a client that lets the first DATA time out
// gets it again, and bootforge_tftp_retransmits_total counts it.
func TestMetricsTFTPRetransmit(t *testing.T) {
	need(t, "curl", "promtool")
	root := t.TempDir()
	payload := tfRandom(t, 3000)
	tfWriteFile(t, root, "pub.bin", payload)
	s := StartServer(t, ServerOptions{Root: root, Config: "tftp:\n  timeout: 200ms\n"})
	before := scrapeMetrics(t, s, "")
	cl := newTFClient(t)
	cl.send(s.TFTPAddr, tfRRQ("pub.bin", "octet"))
	cl.mustRecv(3*time.Second, "DATA 1")
	p := cl.mustRecv(3*time.Second, "DATA 1 again") // not acknowledged: sent again
	if got := cl.lockstep(p); !bytes.Equal(got, payload) {
		t.Fatalf("got %d bytes, want %d", len(got), len(payload))
	}
	waitUntil(t, 10*time.Second, "the TFTP transfer's log line", func() bool { return s.CountLog(`msg="tftp transfer"`) >= 1 })
	after := scrapeMetrics(t, s, "")
	if d := after.value(t, "bootforge_tftp_retransmits_total") - before.value(t, "bootforge_tftp_retransmits_total"); d < 1 {
		t.Errorf("bootforge_tftp_retransmits_total moved by %g after a resent DATA 1", d)
	}
	checkDeltas(t, before, after, map[string]float64{`bootforge_tftp_transfers_total{result="ok"}`: 1})
}

// TestMetricsForeignDHCP: dnsmasq giving addresses on the bridge beside
// bootforge (authoritative) shows in bootforge_dhcp_foreign_servers as a
// conflict within 10 s, found by the watch's probe with no client around.
func TestMetricsForeignDHCP(t *testing.T) {
	need(t, "curl", "promtool", "dnsmasq")
	lab := NewLab(t)
	rogue := dhAddHost(t, lab, "192.0.2.2")
	StartDnsmasq(t, rogue.Netns, rogue.Iface, "--dhcp-range=192.0.2.200,192.0.2.220,1h")
	s := StartServer(t, ServerOptions{Netns: lab.Netns, Addr: lab.IP(), Config: mtAuthConfig + "  watch:\n    probe: 5s\n"})
	start := time.Now()
	series := `bootforge_dhcp_foreign_servers{conflict="true",interface="br0",kind="authoritative"}`
	for {
		sc := scrapeMetrics(t, s, lab.Netns)
		if v, ok := sc.series[series]; ok {
			if v != 1 {
				t.Errorf("%s = %g, want 1 (dnsmasq)", series, v)
			}
			t.Logf("%s after %.1f s", series, time.Since(start).Seconds())
			return
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("no %s within 10 s:\n%s", series, grepLines(sc.text, "foreign"))
		}
		time.Sleep(500 * time.Millisecond)
	}
}
