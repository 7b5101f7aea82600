// Package metrics exports what bootforge does as Prometheus metrics, at
// /metrics on the management listener.
//
// It exists so that the protocol servers stay ignorant of Prometheus. They
// already count what they do (dhcp.Server.Stats, tftp.Server.Stats,
// httpd.Server's counters, the boot log's Recorder, the servers the
// rogue-DHCP watch has seen), and they already say what they did in the
// boot-log events they build from their decisions. This package reads
// both and keeps no second count of the same thing:
//
//   - the servers' counters are read at scrape time by one
//     prometheus.Collector per server (dhcpCollector, tftpCollector, ...);
//   - the events pass through Sink on their way to the boot log, which
//     counts what only an event carries: bytes sent, boots by firmware and
//     profile, and the time from a client's first DHCP answer to its kernel
//     fetch and to its one-shot's booted state;
//   - the lease store is wrapped (Leases) to time each lease commit.
//
// Every metric lives in one registry of our own, never the global default,
// so that /metrics shows exactly what is listed here plus the Go runtime
// and process collectors.
package metrics

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"bootforge/internal/boot"
	"bootforge/internal/dhcp/lease"
)

// Metrics is bootforge's registry and the metrics that are not read from a
// server's own counters.
type Metrics struct {
	reg *prometheus.Registry

	tftpBytes   prometheus.Counter
	httpBytes   prometheus.Counter
	boots       *prometheus.CounterVec   // by firmware and profile; bootsCollector exports it
	stages      *prometheus.HistogramVec // by stage: kernel, booted
	leaseCommit prometheus.Histogram
	leasesOnce  sync.Once
	certOnce    sync.Once // WatchCert registers certExpiry once; a reload sets it again
	certExpiry  prometheus.Gauge

	starts *bootStarts

	// inventory, once WatchInventory set it, names the profiles whose
	// boots have a series from zero.
	inventory atomic.Pointer[func() *boot.Inventory]
}

// Build says which bootforge runs, for bootforge_build_info.
type Build struct {
	Version, Revision, GoVersion string
}

// New makes the registry with the Go and process collectors and
// bootforge_build_info.
func New(build Build) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		tftpBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bootforge_tftp_sent_bytes_total",
			Help: "File bytes sent over TFTP, counted when a transfer ends.",
		}),
		httpBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bootforge_http_sent_bytes_total",
			Help: "Body bytes sent over HTTP and HTTPS, counted when a request ends.",
		}),
		boots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bootforge_boots_total",
			Help: "Boot menus served (one per boot that reaches its menu), by firmware and profile.",
		}, []string{"firmware", "profile"}),
		stages: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bootforge_boot_stage_seconds",
			Help:    "Time from a client's first DHCP answer of a boot to the start of its kernel fetch (stage=kernel) and to its one-shot's booted state (stage=booted).",
			Buckets: []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800},
		}, []string{"stage"}),
		leaseCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "bootforge_dhcp_lease_commit_seconds",
			Help:    "Time to store a lease durably, which an ACK waits for.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 100µs to 3.3s
		}),
		certExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bootforge_tls_cert_expiry_timestamp_seconds",
			Help: "When the HTTPS certificate expires (notAfter), in seconds since the epoch.",
		}),
		starts: newBootStarts(),
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "bootforge_build_info",
		Help:        "Always 1; the labels say which bootforge runs.",
		ConstLabels: prometheus.Labels{"version": build.Version, "goversion": build.GoVersion, "revision": build.Revision},
	})
	info.Set(1)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		info, bootsCollector{m}, m.stages,
	)
	for _, stage := range []string{"kernel", "booted"} {
		m.stages.WithLabelValues(stage) // present from the start, so that rate() sees the first boot
	}
	return m
}

// unknownFirmware is the firmware label of a menu served to a client whose
// firmware is not known.
const unknownFirmware = "unknown"

// WatchInventory gives bootforge_boots_total a series at zero for every
// firmware and every profile of the inventory in force (current, read at
// each scrape, so that a reload's new profiles have theirs too). Without
// it, the first boot of each firmware and profile made its series from
// nothing: rate() and increase() missed that boot, and absent() could not
// tell a server that booted nobody from one that exports nothing. A
// profile a reload removes keeps its series: a counter does not vanish.
func (m *Metrics) WatchInventory(current func() *boot.Inventory) {
	m.inventory.Store(&current)
}

// bootsCollector exports m.boots, first adding the series WatchInventory
// asks for.
type bootsCollector struct{ m *Metrics }

func (c bootsCollector) Describe(ch chan<- *prometheus.Desc) { c.m.boots.Describe(ch) }

func (c bootsCollector) Collect(ch chan<- prometheus.Metric) {
	if current := c.m.inventory.Load(); current != nil {
		if inv := (*current)(); inv != nil {
			for _, p := range inv.Profiles() {
				c.m.boots.WithLabelValues(unknownFirmware, p.Name)
				for _, fw := range boot.Firmwares() {
					c.m.boots.WithLabelValues(string(fw), p.Name)
				}
			}
		}
	}
	c.m.boots.Collect(ch)
}

// Handler serves the registry in the Prometheus text (or OpenMetrics)
// format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// WatchCert exports the expiry of cert's leaf certificate; called again
// (a reload replaced the certificate), it exports the new one's.
func (m *Metrics) WatchCert(cert tls.Certificate) error {
	leaf := cert.Leaf
	if leaf == nil {
		if len(cert.Certificate) == 0 {
			return nil
		}
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return err
		}
	}
	m.certExpiry.Set(float64(leaf.NotAfter.Unix()))
	var err error
	m.certOnce.Do(func() { err = m.reg.Register(m.certExpiry) })
	return err
}

// Leases wraps the DHCP server's lease store so that each commit
// (PutLease: the durable write an ACK waits for) is timed.
//
// DHCPv4 and DHCPv6 each wrap the one store: the histogram is registered
// by the first call only, and both observe into it.
func (m *Metrics) Leases(s lease.Store) lease.Store {
	m.leasesOnce.Do(func() { m.reg.MustRegister(m.leaseCommit) })
	return timedLeases{Store: s, commit: m.leaseCommit}
}

type timedLeases struct {
	lease.Store
	commit prometheus.Histogram
}

// ClaimLease is the write a new binding's ACK waits for.
func (t timedLeases) ClaimLease(l lease.Lease) (lease.Lease, bool, error) {
	start := time.Now()
	held, won, err := t.Store.ClaimLease(l)
	t.commit.Observe(time.Since(start).Seconds())
	return held, won, err
}

func (t timedLeases) PutLease(l lease.Lease) error {
	start := time.Now()
	err := t.Store.PutLease(l)
	t.commit.Observe(time.Since(start).Seconds())
	return err
}
