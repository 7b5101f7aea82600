package metrics

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"bootforge/internal/audit"
	"bootforge/internal/boot"
	"bootforge/internal/dhcp"
	"bootforge/internal/dhcp/lease"
	"bootforge/internal/dhcp6"
	"bootforge/internal/httpd"
	"bootforge/internal/tftp"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestDHCPCollector(t *testing.T) {
	pool := lease.NewPool(netip.MustParsePrefix("192.0.2.0/24"),
		[]lease.Range{{First: netip.MustParseAddr("192.0.2.100"), Last: netip.MustParseAddr("192.0.2.109")}}, nil, nil,
		[]lease.Lease{{IP: netip.MustParseAddr("192.0.2.100"), State: lease.Bound, Expires: time.Now().Add(time.Hour)}})
	h := &dhcp.Handler{Mode: dhcp.ModeAuthoritative, Subnets: []*dhcp.Subnet{{Pool: pool}}}
	srv := dhcp.NewServer(h, dhcp.Config{}, quiet)
	st := &srv.Stats
	st.Received.Add(12)
	st.Requests[dhcpv4.MessageTypeDiscover].Add(3)
	st.Requests[dhcpv4.MessageTypeRequest].Add(2)
	st.Requests[10].Add(1) // DHCPLEASEQUERY, a type without a name here: shown because counted
	st.Replies[dhcpv4.MessageTypeOffer].Add(3)
	st.Replies[dhcpv4.MessageTypeAck].Add(2)
	st.RateLimited.Add(1)
	st.Denied.Add(2)
	st.Dropped.Add(3)
	st.Malformed.Add(4)
	st.TooLarge.Add(6)
	st.SendFailed.Add(7)
	st.Ignored.Add(5)

	m := New(Build{Version: "test"})
	m.WatchDHCP(srv)
	want := `
# HELP bootforge_dhcp_requests_total DHCP packets received and parsed, by message type and the server's mode.
# TYPE bootforge_dhcp_requests_total counter
bootforge_dhcp_requests_total{mode="authoritative",type="decline"} 0
bootforge_dhcp_requests_total{mode="authoritative",type="discover"} 3
bootforge_dhcp_requests_total{mode="authoritative",type="inform"} 0
bootforge_dhcp_requests_total{mode="authoritative",type="10"} 1
bootforge_dhcp_requests_total{mode="authoritative",type="release"} 0
bootforge_dhcp_requests_total{mode="authoritative",type="request"} 2
# HELP bootforge_dhcp_replies_total DHCP replies sent, by message type and the server's mode.
# TYPE bootforge_dhcp_replies_total counter
bootforge_dhcp_replies_total{mode="authoritative",type="ack"} 2
bootforge_dhcp_replies_total{mode="authoritative",type="nak"} 0
bootforge_dhcp_replies_total{mode="authoritative",type="offer"} 3
# HELP bootforge_dhcp_dropped_total DHCP packets dropped without an answer, by reason: rate_limit (per MAC), not_allowed (outside the served subnets), queue_full, malformed, too_large (the reply is over 1472 bytes, more than EDK2 takes), send_failed (the reply was not sent: no route to the relay or client, interface down).
# TYPE bootforge_dhcp_dropped_total counter
bootforge_dhcp_dropped_total{reason="malformed"} 4
bootforge_dhcp_dropped_total{reason="not_allowed"} 2
bootforge_dhcp_dropped_total{reason="queue_full"} 3
bootforge_dhcp_dropped_total{reason="rate_limit"} 1
bootforge_dhcp_dropped_total{reason="send_failed"} 7
bootforge_dhcp_dropped_total{reason="too_large"} 6
# HELP bootforge_dhcp_pool_addresses Addresses in the pool ranges of a subnet (authoritative mode).
# TYPE bootforge_dhcp_pool_addresses gauge
bootforge_dhcp_pool_addresses{subnet="192.0.2.0/24"} 10
# HELP bootforge_dhcp_pool_free_addresses Addresses of a subnet's pool ranges that a new client could get now: not leased, offered, declined or reserved.
# TYPE bootforge_dhcp_pool_free_addresses gauge
bootforge_dhcp_pool_free_addresses{subnet="192.0.2.0/24"} 9
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want),
		"bootforge_dhcp_requests_total", "bootforge_dhcp_replies_total", "bootforge_dhcp_dropped_total",
		"bootforge_dhcp_pool_addresses", "bootforge_dhcp_pool_free_addresses"); err != nil {
		t.Fatal(err)
	}
	checkValue(t, m, "bootforge_dhcp_received_packets_total", 12)
	checkValue(t, m, "bootforge_dhcp_unanswered_total", 5)

	// A scrape reads the counters as they are now: nothing is copied.
	st.Requests[dhcpv4.MessageTypeDiscover].Add(1)
	checkValue(t, m, `bootforge_dhcp_requests_total{mode="authoritative",type="discover"}`, 4)
}

func TestDHCP6Collector(t *testing.T) {
	srv := dhcp6.NewServer(&dhcp6.Handler{Mode: dhcp6.ModeAuthoritative}, nil, quiet)
	st := &srv.Stats
	st.Received.Add(9)
	st.Replied.Add(4)
	st.Denied.Add(1)
	st.Dropped.Add(2)
	st.Malformed.Add(3)
	st.TooLarge.Add(6)
	st.SendFailed.Add(7)
	st.Ignored.Add(5)

	m := New(Build{Version: "test"})
	m.WatchDHCP6(srv)
	want := `
# HELP bootforge_dhcp6_dropped_total DHCPv6 packets dropped without an answer, by reason: not_allowed (outside the allow-list), queue_full, malformed, too_large (the reply is over 1232 bytes, the IPv6 minimum MTU less headers), send_failed (the reply was not sent).
# TYPE bootforge_dhcp6_dropped_total counter
bootforge_dhcp6_dropped_total{reason="malformed"} 3
bootforge_dhcp6_dropped_total{reason="not_allowed"} 1
bootforge_dhcp6_dropped_total{reason="queue_full"} 2
bootforge_dhcp6_dropped_total{reason="send_failed"} 7
bootforge_dhcp6_dropped_total{reason="too_large"} 6
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "bootforge_dhcp6_dropped_total"); err != nil {
		t.Fatal(err)
	}
	checkValue(t, m, "bootforge_dhcp6_received_packets_total", 9)
	checkValue(t, m, "bootforge_dhcp6_replies_total", 4)
	checkValue(t, m, "bootforge_dhcp6_unanswered_total", 5)
	st.Replied.Add(1) // a scrape reads the counters as they are now
	checkValue(t, m, "bootforge_dhcp6_replies_total", 5)
}

func TestTFTPCollector(t *testing.T) {
	srv := tftp.New(nil, tftp.Settings{}, quiet)
	st := &srv.Stats
	st.Transfers.Add(5)
	st.NotFound.Add(4)
	st.Aborted.Add(3)
	st.Failed.Add(2)
	st.Sent.Add(9)
	st.Refusals.Busy.Add(1)
	st.Refusals.PerClient.Add(2)
	st.Refusals.Denied.Add(3)
	st.Refusals.Request.Add(4)
	st.Refusals.Unreadable.Add(5)
	st.Refusals.NotAllowed.Add(6)
	st.Retransmits.Add(7)
	st.Malformed.Add(8)

	m := New(Build{Version: "test"})
	m.WatchTFTP(srv)
	want := `
# HELP bootforge_tftp_transfers_total TFTP transfers ended, by result: ok, sent (every block sent, the final one never acknowledged: the client most likely has the file and left without the last ACK), not_found, aborted (by the client before any data, as EDK2's size probe does), failed.
# TYPE bootforge_tftp_transfers_total counter
bootforge_tftp_transfers_total{result="aborted"} 3
bootforge_tftp_transfers_total{result="failed"} 2
bootforge_tftp_transfers_total{result="not_found"} 4
bootforge_tftp_transfers_total{result="ok"} 5
bootforge_tftp_transfers_total{result="sent"} 9
# HELP bootforge_tftp_refused_total TFTP requests refused, by reason: busy (max_transfers or shutting down), per_client (max_per_client), denied (path rules or serving guard), request (write request or unsupported mode), unreadable, each with an ERROR packet; not_allowed (outside the allow-list), without an answer.
# TYPE bootforge_tftp_refused_total counter
bootforge_tftp_refused_total{reason="busy"} 1
bootforge_tftp_refused_total{reason="denied"} 3
bootforge_tftp_refused_total{reason="not_allowed"} 6
bootforge_tftp_refused_total{reason="per_client"} 2
bootforge_tftp_refused_total{reason="request"} 4
bootforge_tftp_refused_total{reason="unreadable"} 5
# HELP bootforge_tftp_active_transfers TFTP transfers in flight.
# TYPE bootforge_tftp_active_transfers gauge
bootforge_tftp_active_transfers 0
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want),
		"bootforge_tftp_transfers_total", "bootforge_tftp_refused_total", "bootforge_tftp_active_transfers"); err != nil {
		t.Fatal(err)
	}
	checkValue(t, m, "bootforge_tftp_retransmits_total", 7)
	checkValue(t, m, "bootforge_tftp_malformed_total", 8)
	checkValue(t, m, "bootforge_tftp_sent_bytes_total", 0)
}

func TestHTTPCollector(t *testing.T) {
	srv := httpd.New(nil, false, 10, quiet)
	srv.Responses[2].Add(6)
	srv.Responses[4].Add(2)
	srv.Responses[5].Add(3)
	srv.Busy.Add(3)
	m := New(Build{Version: "test"})
	m.WatchHTTP(srv)
	want := `
# HELP bootforge_http_requests_total HTTP and HTTPS file requests answered, by status class (1xx to 5xx; other for a status outside them).
# TYPE bootforge_http_requests_total counter
bootforge_http_requests_total{class="1xx"} 0
bootforge_http_requests_total{class="2xx"} 6
bootforge_http_requests_total{class="3xx"} 0
bootforge_http_requests_total{class="4xx"} 2
bootforge_http_requests_total{class="5xx"} 3
bootforge_http_requests_total{class="other"} 0
# HELP bootforge_http_busy_total HTTP and HTTPS requests answered 503 at once because http.max_requests were in flight, or http.max_per_client from that client (also counted in class 5xx).
# TYPE bootforge_http_busy_total counter
bootforge_http_busy_total 3
# HELP bootforge_http_in_flight_requests HTTP and HTTPS file requests being answered now.
# TYPE bootforge_http_in_flight_requests gauge
bootforge_http_in_flight_requests 0
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want),
		"bootforge_http_requests_total", "bootforge_http_busy_total", "bootforge_http_in_flight_requests"); err != nil {
		t.Fatal(err)
	}
	turns := srv.Turns()
	turns.Waited.Add(5)
	turns.Waiting.Add(2)
	turns.TimedOut.Add(1)
	turns.WaitNano.Add(1500e6)
	checkValue(t, m, "bootforge_http_turn_waits_total", 5)
	checkValue(t, m, "bootforge_http_turn_waiting_bodies", 2)
	checkValue(t, m, "bootforge_http_turn_wait_timeouts_total", 1)
	checkValue(t, m, "bootforge_http_turn_wait_seconds_total", 1.5)
}

// blockedStore holds the boot log's writer until released, so that events
// stay queued.
type blockedStore struct {
	release chan struct{}
	entered chan struct{} // gets a value each time the writer is held
}

func newBlockedStore() *blockedStore {
	return &blockedStore{release: make(chan struct{}), entered: make(chan struct{}, 1)}
}

func (s *blockedStore) PutEvents([]audit.Event) error {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-s.release
	return errors.New("store failing")
}

func TestBootLogCollector(t *testing.T) {
	st := newBlockedStore()
	r := audit.NewRecorder(st, "test", nil, quiet)
	defer r.Close()
	defer close(st.release)
	m := New(Build{Version: "test"})
	m.WatchBootLog(r)
	r.Record(audit.Event{Protocol: "tftp"}) // taken by the writer, which blocks on the store
	<-st.entered
	for range 3 {
		r.Record(audit.Event{Protocol: "tftp"})
	}
	checkValue(t, m, "bootforge_bootlog_queued_events", 3)
	checkValue(t, m, "bootforge_bootlog_queue_capacity_events", audit.QueueSize)
	checkValue(t, m, "bootforge_bootlog_dropped_events_total", 0)
}

// TestEvents follows one boot through the events the servers build: the
// DHCP answers, the menu, the kernel fetch by address only, the one-shot
// consumed; then a second boot of the same client.
func TestEvents(t *testing.T) {
	m := New(Build{Version: "test"})
	m.WatchTFTP(tftp.New(nil, tftp.Settings{}, quiet))
	m.WatchHTTP(httpd.New(nil, false, 10, quiet))
	var passed []audit.Event
	next := sinkFunc(func(e audit.Event) { passed = append(passed, e) })
	macOf := func(ip netip.Addr) string {
		if ip == netip.MustParseAddr("192.0.2.100") {
			return "52:54:00:00:00:01"
		}
		return ""
	}
	s := m.Sink(next, macOf)
	t0 := time.Unix(1_000_000, 0)
	mac := "52:54:00:00:00:01"
	s.Record(audit.Event{Time: t0, MAC: mac, Protocol: "dhcp", Stage: "offer", Arch: "bios", Result: "ok"})
	s.Record(audit.Event{Time: t0.Add(time.Second), MAC: mac, Protocol: "dhcp", Stage: "ack", Arch: "bios", Result: "ok"})
	s.Record(audit.Event{Time: t0.Add(2 * time.Second), IP: "192.0.2.100", Protocol: "tftp", Stage: "loader", File: "undionly.kpxe", Bytes: 1000, Result: "ok"})
	// iPXE asks DHCP again: the same boot.
	s.Record(audit.Event{Time: t0.Add(3 * time.Second), MAC: mac, Protocol: "dhcp", Stage: "ack", Arch: "bios", Result: "ok"})
	s.Record(audit.Event{Time: t0.Add(4 * time.Second), MAC: mac, Protocol: "ipxe", Stage: "menu", Arch: "bios", Profile: "lab", Result: "one-shot install"})
	s.Record(audit.Event{Time: t0.Add(4 * time.Second), MAC: mac, Protocol: "http", Stage: "menu", File: "bootforge/ipxe", Bytes: 300, Result: "ok"})
	s.Record(audit.Event{Time: t0.Add(5 * time.Second), MAC: mac, Protocol: "menu", Stage: "one-shot", Result: "booted (fetched vmlinuz)"})
	s.Record(audit.Event{Time: t0.Add(5 * time.Second), IP: "192.0.2.100", Protocol: "http", Stage: "kernel", File: "vmlinuz", Bytes: 5000, Result: "ok"})
	s.Record(audit.Event{Time: t0.Add(6 * time.Second), IP: "192.0.2.100", Protocol: "http", Stage: "kernel", File: "vmlinuz", Bytes: 5000, Result: "ok"})
	s.Record(audit.Event{Time: t0.Add(7 * time.Second), IP: "192.0.2.100", Protocol: "http", Stage: "initrd", File: "initrd", Bytes: 20000, Result: "ok"})
	// A second boot, 100 s later: a menu from pxelinux with no profile
	// known firmware, and a kernel fetch that fails first, then one whose
	// client left without the final ACK: sent, and reached.
	t1 := t0.Add(100 * time.Second)
	s.Record(audit.Event{Time: t1, MAC: mac, Protocol: "dhcp", Stage: "offer", Arch: "bios", Result: "ok"})
	s.Record(audit.Event{Time: t1.Add(time.Second), MAC: mac, Protocol: "pxelinux", Stage: "menu", Profile: "lab", Result: "ok"})
	s.Record(audit.Event{Time: t1.Add(9 * time.Second), IP: "192.0.2.100", Protocol: "tftp", Stage: "kernel", File: "vmlinuz", Result: "failed"})
	s.Record(audit.Event{Time: t1.Add(12 * time.Second), IP: "192.0.2.100", Protocol: "tftp", Stage: "kernel", File: "vmlinuz", Bytes: 5000, Result: "sent"})
	// An OS's own DHCP (no option 93) and a client never seen by DHCP.
	s.Record(audit.Event{Time: t1.Add(20 * time.Second), MAC: mac, Protocol: "dhcp", Stage: "ack", Result: "ok"})
	s.Record(audit.Event{Time: t1, IP: "192.0.2.200", Protocol: "tftp", Stage: "kernel", File: "vmlinuz", Bytes: 5000, Result: "ok"})

	if len(passed) != 16 {
		t.Fatalf("%d events passed on to the boot log, want 16", len(passed))
	}
	if passed[7].MAC != "" {
		t.Fatal("the sink changed an event: the boot log fills in the MAC itself")
	}
	checkValue(t, m, "bootforge_tftp_sent_bytes_total", 1000+5000+5000)
	checkValue(t, m, "bootforge_http_sent_bytes_total", 300+5000+5000+20000)
	checkValue(t, m, `bootforge_boots_total{firmware="bios",profile="lab"}`, 1)
	checkValue(t, m, `bootforge_boots_total{firmware="unknown",profile="lab"}`, 1)
	want := `
# HELP bootforge_boot_stage_seconds Time from a client's first DHCP answer of a boot to the start of its kernel fetch (stage=kernel) and to its one-shot's booted state (stage=booted).
# TYPE bootforge_boot_stage_seconds histogram
bootforge_boot_stage_seconds_bucket{stage="booted",le="1"} 0
bootforge_boot_stage_seconds_bucket{stage="booted",le="2"} 0
bootforge_boot_stage_seconds_bucket{stage="booted",le="5"} 1
bootforge_boot_stage_seconds_bucket{stage="booted",le="10"} 1
bootforge_boot_stage_seconds_bucket{stage="booted",le="20"} 1
bootforge_boot_stage_seconds_bucket{stage="booted",le="30"} 1
bootforge_boot_stage_seconds_bucket{stage="booted",le="60"} 1
bootforge_boot_stage_seconds_bucket{stage="booted",le="120"} 1
bootforge_boot_stage_seconds_bucket{stage="booted",le="300"} 1
bootforge_boot_stage_seconds_bucket{stage="booted",le="600"} 1
bootforge_boot_stage_seconds_bucket{stage="booted",le="1800"} 1
bootforge_boot_stage_seconds_bucket{stage="booted",le="+Inf"} 1
bootforge_boot_stage_seconds_sum{stage="booted"} 5
bootforge_boot_stage_seconds_count{stage="booted"} 1
bootforge_boot_stage_seconds_bucket{stage="kernel",le="1"} 0
bootforge_boot_stage_seconds_bucket{stage="kernel",le="2"} 0
bootforge_boot_stage_seconds_bucket{stage="kernel",le="5"} 1
bootforge_boot_stage_seconds_bucket{stage="kernel",le="10"} 1
bootforge_boot_stage_seconds_bucket{stage="kernel",le="20"} 2
bootforge_boot_stage_seconds_bucket{stage="kernel",le="30"} 2
bootforge_boot_stage_seconds_bucket{stage="kernel",le="60"} 2
bootforge_boot_stage_seconds_bucket{stage="kernel",le="120"} 2
bootforge_boot_stage_seconds_bucket{stage="kernel",le="300"} 2
bootforge_boot_stage_seconds_bucket{stage="kernel",le="600"} 2
bootforge_boot_stage_seconds_bucket{stage="kernel",le="1800"} 2
bootforge_boot_stage_seconds_bucket{stage="kernel",le="+Inf"} 2
bootforge_boot_stage_seconds_sum{stage="kernel"} 17
bootforge_boot_stage_seconds_count{stage="kernel"} 2
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "bootforge_boot_stage_seconds"); err != nil {
		t.Fatal(err)
	}
}

type sinkFunc func(audit.Event)

func (f sinkFunc) Record(e audit.Event) { f(e) }

func TestBootStartsBounded(t *testing.T) {
	b := newBootStarts()
	t0 := time.Unix(1_000_000, 0)
	for i := range maxBootStarts + 10 {
		b.dhcp(string(rune(i)), t0)
	}
	if n := len(b.m); n > maxBootStarts {
		t.Fatalf("%d boots remembered, at most %d", n, maxBootStarts)
	}
	b.dhcp("a", t0)
	if _, ok := b.reached("a", "kernel", t0.Add(bootWindow)); ok {
		t.Fatal("a kernel fetch an hour after the DHCP answer counted as the same boot")
	}
}

type slowLeases struct{ lease.Store }

func (slowLeases) PutLease(lease.Lease) error { time.Sleep(3 * time.Millisecond); return nil }

func TestLeaseCommit(t *testing.T) {
	m := New(Build{Version: "test"})
	st := m.Leases(slowLeases{})
	for range 2 {
		if err := st.PutLease(lease.Lease{}); err != nil {
			t.Fatal(err)
		}
	}
	checkValue(t, m, "bootforge_dhcp_lease_commit_seconds_count", 2)
	if sum := value(t, m, "bootforge_dhcp_lease_commit_seconds_sum"); sum < 0.006 || sum > 1 {
		t.Fatalf("lease commits took %gs in all, want about 0.006", sum)
	}
}

// TestRegistryLint checks every family against Prometheus' naming rules,
// and the build info.
func TestRegistryLint(t *testing.T) {
	m := New(Build{Version: "1.2.3", Revision: "abc", GoVersion: "go1.26"})
	m.WatchDHCP(dhcp.NewServer(&dhcp.Handler{Mode: dhcp.ModeProxy}, dhcp.Config{}, quiet))
	m.WatchTFTP(tftp.New(nil, tftp.Settings{}, quiet))
	m.WatchHTTP(httpd.New(nil, false, 10, quiet))
	m.Leases(nil)
	st := newBlockedStore()
	r := audit.NewRecorder(st, "test", nil, quiet)
	defer r.Close()
	defer close(st.release)
	m.WatchBootLog(r)
	problems, err := testutil.GatherAndLint(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "bootforge_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "bootforge_build_info" {
			continue
		}
		labels := map[string]string{}
		for _, l := range mf.GetMetric()[0].GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["version"] != "1.2.3" || labels["goversion"] != "go1.26" || labels["revision"] != "abc" {
			t.Fatalf("build info labels %v", labels)
		}
		return
	}
	t.Fatal("no bootforge_build_info")
}

// value returns one series' value from a scrape of m: name{labels} as the
// text format writes it, labels sorted.
func value(t *testing.T, m *Metrics, series string) float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&text, mf); err != nil {
			t.Fatal(err)
		}
	}
	for _, line := range strings.Split(text.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no series %s in\n%s", series, text.String())
	return 0
}

func checkValue(t *testing.T, m *Metrics, series string, want float64) {
	t.Helper()
	if got := value(t, m, series); got != want {
		t.Fatalf("%s = %g, want %g", series, got, want)
	}
}

// TestSinkConcurrent: servers record from many goroutines at once.
func TestSinkConcurrent(t *testing.T) {
	m := New(Build{Version: "test"})
	m.WatchTFTP(tftp.New(nil, tftp.Settings{}, quiet))
	s := m.Sink(nil, func(netip.Addr) string { return "52:54:00:00:00:01" })
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 500 {
				mac := fmt.Sprintf("52:54:00:00:%02x:%02x", g, i%50)
				s.Record(audit.Event{MAC: mac, Protocol: "dhcp", Stage: "ack", Arch: "bios", Result: "ok"})
				s.Record(audit.Event{IP: "192.0.2.9", Protocol: "tftp", Stage: "kernel", Bytes: 1, Result: "ok"})
				s.Record(audit.Event{MAC: mac, Protocol: "ipxe", Stage: "menu", Arch: "bios", Profile: "p"})
			}
		}()
	}
	for range 8 {
		<-done
	}
	checkValue(t, m, "bootforge_tftp_sent_bytes_total", 8*500)
	checkValue(t, m, `bootforge_boots_total{firmware="bios",profile="p"}`, 8*500)
}

// DHCPv4 and DHCPv6 both wrap the lease store: the second call must not
// panic on a duplicate registration (bootforge crashed at start with both).
func TestLeasesTwice(t *testing.T) {
	m := New(Build{Version: "test"})
	m.Leases(nil)
	m.Leases(nil)
}

// TestPXELinuxChoiceIsNoBoot: the event menufs records when a client picks,
// in pxelinux's menu, an entry only iPXE can boot (stage menu, protocol
// pxelinux, no profile) is a loader fetch, not a menu served. The menu it
// was chosen from was counted when pxelinux fetched it, and the iPXE menu
// that follows is counted when iPXE fetches it.
func TestPXELinuxChoiceIsNoBoot(t *testing.T) {
	m := New(Build{Version: "test"})
	s := m.Sink(nil, nil)
	mac := "52:54:00:00:00:01"
	s.Record(audit.Event{MAC: mac, IP: "192.0.2.100", Protocol: "pxelinux", Stage: "menu", Arch: "bios", Profile: "lab", Result: "ok"})
	s.Record(audit.Event{MAC: mac, IP: "192.0.2.100", Protocol: "pxelinux", Stage: "menu", Result: "chose install, chaining iPXE"})
	s.Record(audit.Event{MAC: mac, IP: "192.0.2.100", Protocol: "ipxe", Stage: "menu", Arch: "bios", Profile: "lab", Result: "pxelinux choice install"})
	want := `
# HELP bootforge_boots_total Boot menus served (one per boot that reaches its menu), by firmware and profile.
# TYPE bootforge_boots_total counter
bootforge_boots_total{firmware="bios",profile="lab"} 2
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "bootforge_boots_total"); err != nil {
		t.Fatal(err)
	}
}

// TestBootsFromZero: bootforge_boots_total has a series at 0 for every
// firmware and every profile of the inventory in force before the first
// boot. Without them the first menu of each firmware and profile made a
// series from nothing: rate() and increase() missed that boot, and
// absent() could not tell a server that never booted anyone from one that
// exports nothing. A profile a reload adds gets its series at the next
// scrape; one it removes keeps its count.
func TestBootsFromZero(t *testing.T) {
	inventory := func(names ...string) *boot.Inventory {
		var ps []boot.Profile
		for _, n := range names {
			ps = append(ps, boot.Profile{Name: n, Menu: boot.Menu{Default: "disk", Entries: []boot.Entry{{Name: "disk", Kind: boot.KindLocal}}}})
		}
		inv, err := boot.NewInventory(ps, nil, names[0])
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	var inv atomic.Pointer[boot.Inventory]
	inv.Store(inventory("lab"))
	m := New(Build{Version: "test"})
	m.WatchInventory(inv.Load)
	scrape := func() string {
		t.Helper()
		w := httptest.NewRecorder()
		m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		return w.Body.String()
	}
	firmwares := []string{"unknown"}
	for _, fw := range boot.Firmwares() {
		firmwares = append(firmwares, string(fw))
	}
	// want checks that profile has a series for every firmware: 0, but
	// bios, which is at bios.
	want := func(text, profile string, bios int) {
		t.Helper()
		for _, fw := range firmwares {
			n := 0
			if fw == "bios" {
				n = bios
			}
			series := fmt.Sprintf("bootforge_boots_total{firmware=%q,profile=%q} %d", fw, profile, n)
			if !strings.Contains(text, series+"\n") {
				t.Errorf("no %s in /metrics:\n%s", series, grepLines(text, "bootforge_boots_total"))
			}
		}
	}
	want(scrape(), "lab", 0)

	m.Sink(nil, nil).Record(audit.Event{MAC: "52:54:00:00:00:01", Protocol: "ipxe", Stage: "menu", Arch: "bios", Profile: "lab", Result: "ok"})
	want(scrape(), "lab", 1)

	// A reload: "lab" gone, "winpe" new.
	inv.Store(inventory("winpe"))
	text := scrape()
	want(text, "winpe", 0)
	want(text, "lab", 1)
}

// grepLines returns the lines of text that start with prefix.
func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
