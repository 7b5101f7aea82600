package metrics

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/prometheus/client_golang/prometheus"

	"bootforge/internal/audit"
	"bootforge/internal/dhcp"
	"bootforge/internal/dhcp6"
	"bootforge/internal/httpd"
	"bootforge/internal/tftp"
	"bootforge/internal/turns"
)

// The collectors below read a server's own counters at scrape time: the
// server counts, once; a scrape only reads.

// WatchDHCP exports srv's counters and its pools.
func (m *Metrics) WatchDHCP(srv *dhcp.Server) {
	m.reg.MustRegister(dhcpCollector{srv})
}

// WatchDHCP6 exports the DHCPv6 server's counters.
func (m *Metrics) WatchDHCP6(srv *dhcp6.Server) {
	m.reg.MustRegister(dhcp6Collector{srv})
}

// WatchTFTP exports srv's counters, and the bytes its events carry.
func (m *Metrics) WatchTFTP(srv *tftp.Server) {
	m.reg.MustRegister(tftpCollector{srv}, m.tftpBytes)
}

// WatchHTTP exports the file server's counters, and the bytes its events
// carry.
func (m *Metrics) WatchHTTP(srv *httpd.Server) {
	m.reg.MustRegister(httpCollector{srv}, m.httpBytes)
}

// WatchForeignDHCP exports what the rogue-DHCP watch has seen.
func (m *Metrics) WatchForeignDHCP(w *dhcp.Watch) {
	m.reg.MustRegister(foreignCollector{w})
}

// WatchBootLog exports the boot log's queue.
func (m *Metrics) WatchBootLog(r *audit.Recorder) {
	m.reg.MustRegister(bootLogCollector{r})
}

var (
	dhcpRequests = prometheus.NewDesc("bootforge_dhcp_requests_total",
		"DHCP packets received and parsed, by message type and the server's mode.", []string{"type", "mode"}, nil)
	dhcpReplies = prometheus.NewDesc("bootforge_dhcp_replies_total",
		"DHCP replies sent, by message type and the server's mode.", []string{"type", "mode"}, nil)
	dhcpReceived = prometheus.NewDesc("bootforge_dhcp_received_packets_total",
		"UDP datagrams read from the DHCP sockets, before any check.", nil, nil)
	dhcpDropped = prometheus.NewDesc("bootforge_dhcp_dropped_total",
		"DHCP packets dropped without an answer, by reason: rate_limit (per MAC), not_allowed (outside the served subnets), queue_full, malformed, too_large (the reply is over 1472 bytes, more than EDK2 takes), send_failed (the reply was not sent: no route to the relay or client, interface down).", []string{"reason"}, nil)
	dhcpUnanswered = prometheus.NewDesc("bootforge_dhcp_unanswered_total",
		"Well-formed DHCP packets in scope that needed no answer or could not get one (not a PXE client in proxy mode, pool exhausted, ...).", nil, nil)
	dhcpPoolSize = prometheus.NewDesc("bootforge_dhcp_pool_addresses",
		"Addresses in the pool ranges of a subnet (authoritative mode).", []string{"subnet"}, nil)
	dhcpPoolFree = prometheus.NewDesc("bootforge_dhcp_pool_free_addresses",
		"Addresses of a subnet's pool ranges that a new client could get now: not leased, offered, declined or reserved.", []string{"subnet"}, nil)
)

// Message types that always have a series, even at zero: the ones a boot
// exchanges, so that rate() sees the first packet.
var (
	requestTypes = []dhcpv4.MessageType{dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeInform,
		dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeDecline}
	replyTypes = []dhcpv4.MessageType{dhcpv4.MessageTypeOffer, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak}
)

type dhcpCollector struct{ srv *dhcp.Server }

func (c dhcpCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dhcpRequests, dhcpReplies, dhcpReceived, dhcpDropped, dhcpUnanswered, dhcpPoolSize, dhcpPoolFree} {
		ch <- d
	}
}

func (c dhcpCollector) Collect(ch chan<- prometheus.Metric) {
	st := &c.srv.Stats
	h := c.srv.Handler()
	byType(ch, dhcpRequests, &st.Requests, requestTypes, h.Mode)
	byType(ch, dhcpReplies, &st.Replies, replyTypes, h.Mode)
	counter(ch, dhcpReceived, st.Received.Load())
	counter(ch, dhcpDropped, st.RateLimited.Load(), "rate_limit")
	counter(ch, dhcpDropped, st.Denied.Load(), "not_allowed")
	counter(ch, dhcpDropped, st.Dropped.Load(), "queue_full")
	counter(ch, dhcpDropped, st.Malformed.Load(), "malformed")
	counter(ch, dhcpDropped, st.TooLarge.Load(), "too_large")
	counter(ch, dhcpDropped, st.SendFailed.Load(), "send_failed")
	counter(ch, dhcpUnanswered, st.Ignored.Load())
	for _, sub := range h.Subnets {
		name := sub.Pool.Subnet.String()
		gauge(ch, dhcpPoolSize, float64(sub.Pool.Size()), name)
		gauge(ch, dhcpPoolFree, float64(sub.Pool.Free()), name)
	}
}

// byType sends one series per message type counted, and always those of
// always.
func byType(ch chan<- prometheus.Metric, d *prometheus.Desc, counts *[256]atomic.Int64, always []dhcpv4.MessageType, mode string) {
	for i := range counts {
		mt := dhcpv4.MessageType(i)
		n := counts[i].Load()
		if n == 0 && !contains(always, mt) {
			continue
		}
		counter(ch, d, n, typeName(mt), mode)
	}
}

func contains(types []dhcpv4.MessageType, mt dhcpv4.MessageType) bool {
	for _, t := range types {
		if t == mt {
			return true
		}
	}
	return false
}

// typeName is a message type as the boot log writes it: "discover".
func typeName(mt dhcpv4.MessageType) string {
	s := mt.String()
	if strings.HasPrefix(s, "unknown") {
		return strconv.Itoa(int(mt))
	}
	return strings.ToLower(strings.TrimPrefix(s, "DHCP"))
}

var (
	dhcp6Received = prometheus.NewDesc("bootforge_dhcp6_received_packets_total",
		"UDP datagrams read from the DHCPv6 sockets, before any check.", nil, nil)
	dhcp6Replied = prometheus.NewDesc("bootforge_dhcp6_replies_total",
		"DHCPv6 replies sent (Advertise, Reply, Relay-reply).", nil, nil)
	dhcp6Dropped = prometheus.NewDesc("bootforge_dhcp6_dropped_total",
		"DHCPv6 packets dropped without an answer, by reason: not_allowed (outside the allow-list), queue_full, malformed, too_large (the reply is over 1232 bytes, the IPv6 minimum MTU less headers), send_failed (the reply was not sent).", []string{"reason"}, nil)
	dhcp6Unanswered = prometheus.NewDesc("bootforge_dhcp6_unanswered_total",
		"DHCPv6 packets that needed no answer or could not get one (another interface, not a network boot in proxy mode, pool exhausted, ...).", nil, nil)
)

type dhcp6Collector struct{ srv *dhcp6.Server }

func (c dhcp6Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dhcp6Received, dhcp6Replied, dhcp6Dropped, dhcp6Unanswered} {
		ch <- d
	}
}

func (c dhcp6Collector) Collect(ch chan<- prometheus.Metric) {
	st := &c.srv.Stats
	counter(ch, dhcp6Received, st.Received.Load())
	counter(ch, dhcp6Replied, st.Replied.Load())
	counter(ch, dhcp6Dropped, st.Denied.Load(), "not_allowed")
	counter(ch, dhcp6Dropped, st.Dropped.Load(), "queue_full")
	counter(ch, dhcp6Dropped, st.Malformed.Load(), "malformed")
	counter(ch, dhcp6Dropped, st.TooLarge.Load(), "too_large")
	counter(ch, dhcp6Dropped, st.SendFailed.Load(), "send_failed")
	counter(ch, dhcp6Unanswered, st.Ignored.Load())
}

var dhcpForeign = prometheus.NewDesc("bootforge_dhcp_foreign_servers",
	"Other DHCP servers the watch has seen answering on a served interface since the start, by kind (authoritative: gives addresses; proxy) and whether they conflict with bootforge (a second authoritative server).",
	[]string{"interface", "kind", "conflict"}, nil)

type foreignCollector struct{ w *dhcp.Watch }

func (c foreignCollector) Describe(ch chan<- *prometheus.Desc) { ch <- dhcpForeign }

func (c foreignCollector) Collect(ch chan<- prometheus.Metric) {
	type key struct{ iface, kind, conflict string }
	counts := map[key]int{}
	for _, f := range c.w.Servers() {
		counts[key{f.Interface, f.Kind, strconv.FormatBool(c.w.Conflict(f))}]++
	}
	for k, n := range counts {
		gauge(ch, dhcpForeign, float64(n), k.iface, k.kind, k.conflict)
	}
}

var (
	tftpTransfers = prometheus.NewDesc("bootforge_tftp_transfers_total",
		"TFTP transfers ended, by result: ok, sent (every block sent, the final one never acknowledged: the client most likely has the file and left without the last ACK), not_found, aborted (by the client before any data, as EDK2's size probe does), failed.", []string{"result"}, nil)
	tftpRefused = prometheus.NewDesc("bootforge_tftp_refused_total",
		"TFTP requests refused, by reason: busy (max_transfers or shutting down), per_client (max_per_client), denied (path rules or serving guard), request (write request or unsupported mode), unreadable, each with an ERROR packet; not_allowed (outside the allow-list), without an answer.", []string{"reason"}, nil)
	tftpRetransmits = prometheus.NewDesc("bootforge_tftp_retransmits_total",
		"TFTP OACKs and windows sent again after a timeout.", nil, nil)
	tftpMalformed = prometheus.NewDesc("bootforge_tftp_malformed_total",
		"Packets on the TFTP port dropped without an answer because they are not a well-formed request.", nil, nil)
	tftpActive = prometheus.NewDesc("bootforge_tftp_active_transfers",
		"TFTP transfers in flight.", nil, nil)
	tftpTurnWaits = prometheus.NewDesc("bootforge_tftp_turn_waits_total",
		fmt.Sprintf("TFTP transfers that waited for their turn to go at full speed (at most %d at once, the oldest first), sending a window now and then meanwhile.", tftp.TurnCount), nil, nil)
	tftpTurnWaiting = prometheus.NewDesc("bootforge_tftp_turn_waiting_transfers",
		"TFTP transfers waiting for their turn now.", nil, nil)
	tftpTurnTimeouts = prometheus.NewDesc("bootforge_tftp_turn_wait_timeouts_total",
		fmt.Sprintf("TFTP transfers that waited %s for a turn and then went on without one.", tftp.TurnWait), nil, nil)
	tftpTurnWaitSeconds = prometheus.NewDesc("bootforge_tftp_turn_wait_seconds_total",
		"Time TFTP transfers spent waiting for their turn, in total.", nil, nil)
)

type tftpCollector struct{ srv *tftp.Server }

func (c tftpCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{tftpTransfers, tftpRefused, tftpRetransmits, tftpMalformed, tftpActive,
		tftpTurnWaits, tftpTurnWaiting, tftpTurnTimeouts, tftpTurnWaitSeconds} {
		ch <- d
	}
}

func (c tftpCollector) Collect(ch chan<- prometheus.Metric) {
	st := &c.srv.Stats
	counter(ch, tftpTransfers, st.Transfers.Load(), "ok")
	counter(ch, tftpTransfers, st.Sent.Load(), "sent")
	counter(ch, tftpTransfers, st.NotFound.Load(), "not_found")
	counter(ch, tftpTransfers, st.Aborted.Load(), "aborted")
	counter(ch, tftpTransfers, st.Failed.Load(), "failed")
	r := &st.Refusals
	counter(ch, tftpRefused, r.Busy.Load(), "busy")
	counter(ch, tftpRefused, r.PerClient.Load(), "per_client")
	counter(ch, tftpRefused, r.Denied.Load(), "denied")
	counter(ch, tftpRefused, r.Request.Load(), "request")
	counter(ch, tftpRefused, r.Unreadable.Load(), "unreadable")
	// Not answered, so a client outside the list cannot tell a server is
	// here, but counted like any refusal: an allow-list that drops a real
	// client shows here, as a 403 does for HTTP.
	counter(ch, tftpRefused, r.NotAllowed.Load(), "not_allowed")
	counter(ch, tftpRetransmits, st.Retransmits.Load())
	counter(ch, tftpMalformed, st.Malformed.Load())
	gauge(ch, tftpActive, float64(c.srv.Active()))
	turnStats(ch, c.srv.Turns(), tftpTurnWaits, tftpTurnWaiting, tftpTurnTimeouts, tftpTurnWaitSeconds)
}

var (
	httpRequests = prometheus.NewDesc("bootforge_http_requests_total",
		"HTTP and HTTPS file requests answered, by status class (1xx to 5xx; other for a status outside them).", []string{"class"}, nil)
	httpInFlight = prometheus.NewDesc("bootforge_http_in_flight_requests",
		"HTTP and HTTPS file requests being answered now.", nil, nil)
	httpBusy = prometheus.NewDesc("bootforge_http_busy_total",
		"HTTP and HTTPS requests answered 503 at once because http.max_requests were in flight, or http.max_per_client from that client (also counted in class 5xx).", nil, nil)
	httpTurnWaits = prometheus.NewDesc("bootforge_http_turn_waits_total",
		fmt.Sprintf("Bodies over %d MiB that waited for their turn to stream (at most %d stream at once, the oldest connection's first).",
			httpd.TurnAbove>>20, httpd.TurnCount), nil, nil)
	httpTurnWaiting = prometheus.NewDesc("bootforge_http_turn_waiting_bodies",
		fmt.Sprintf("Bodies over %d MiB waiting for their turn now.", httpd.TurnAbove>>20), nil, nil)
	httpTurnTimeouts = prometheus.NewDesc("bootforge_http_turn_wait_timeouts_total",
		fmt.Sprintf("Bodies that waited %s for a turn and then streamed without one.", httpd.TurnWait), nil, nil)
	httpTurnWaitSeconds = prometheus.NewDesc("bootforge_http_turn_wait_seconds_total",
		"Time bodies spent waiting for their turn, in total.", nil, nil)
)

type httpCollector struct{ srv *httpd.Server }

func (c httpCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{httpRequests, httpInFlight, httpBusy, httpTurnWaits, httpTurnWaiting, httpTurnTimeouts, httpTurnWaitSeconds} {
		ch <- d
	}
}

func (c httpCollector) Collect(ch chan<- prometheus.Metric) {
	for i := range c.srv.Responses {
		class := "other"
		if i > 0 {
			class = strconv.Itoa(i) + "xx"
		}
		counter(ch, httpRequests, c.srv.Responses[i].Load(), class)
	}
	gauge(ch, httpInFlight, float64(c.srv.InFlight()))
	counter(ch, httpBusy, c.srv.Busy.Load())
	turnStats(ch, c.srv.Turns(), httpTurnWaits, httpTurnWaiting, httpTurnTimeouts, httpTurnWaitSeconds)
}

// turnStats exports a turn queue's counters as the four metrics given.
func turnStats(ch chan<- prometheus.Metric, t *turns.Stats, waits, waiting, timeouts, seconds *prometheus.Desc) {
	counter(ch, waits, t.Waited.Load())
	gauge(ch, waiting, float64(t.Waiting.Load()))
	counter(ch, timeouts, t.TimedOut.Load())
	ch <- prometheus.MustNewConstMetric(seconds, prometheus.CounterValue, float64(t.WaitNano.Load())/1e9)
}

var (
	bootLogQueued = prometheus.NewDesc("bootforge_bootlog_queued_events",
		"Boot-log events waiting to be written to the store.", nil, nil)
	bootLogCapacity = prometheus.NewDesc("bootforge_bootlog_queue_capacity_events",
		"How many events the boot-log queue holds; past it, events are dropped.", nil, nil)
	bootLogDropped = prometheus.NewDesc("bootforge_bootlog_dropped_events_total",
		"Boot-log events lost to a full queue or a failing store.", nil, nil)
	bootLogWritten = prometheus.NewDesc("bootforge_bootlog_written_events_total",
		"Boot-log events written to the store.", nil, nil)
)

type bootLogCollector struct{ r *audit.Recorder }

func (c bootLogCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{bootLogQueued, bootLogCapacity, bootLogDropped, bootLogWritten} {
		ch <- d
	}
}

func (c bootLogCollector) Collect(ch chan<- prometheus.Metric) {
	gauge(ch, bootLogQueued, float64(c.r.Queued()))
	gauge(ch, bootLogCapacity, audit.QueueSize)
	counter(ch, bootLogDropped, c.r.Dropped())
	counter(ch, bootLogWritten, c.r.Written())
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v int64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}
