package metrics

import (
	"net/netip"
	"strings"
	"sync"
	"time"

	"bootforge/internal/audit"
)

// Sink returns a sink that counts each event and passes it on to next (nil:
// to nothing). The servers build one event per decision they acted on
// (DHCP answer, transfer, menu, one-shot change); this is where the
// metrics that only an event carries are counted. macOf, if set, finds the
// MAC of a client known only by its address, as the boot log does.
//
// If next is also audit.Changes (the boot log's recorder), so is the sink
// returned: an event the store commits with its change (a one-shot marked
// booted) is counted when it is shown as committed, and passed on to
// next's Committed; never also through Record, so it counts once.
func (m *Metrics) Sink(next audit.Sink, macOf func(netip.Addr) string) audit.Sink {
	s := &sink{m: m, next: next, macOf: macOf}
	if c, ok := next.(audit.Changes); ok {
		return &changesSink{sink: s, next: c}
	}
	return s
}

type sink struct {
	m     *Metrics
	next  audit.Sink
	macOf func(netip.Addr) string
}

func (s *sink) Record(e audit.Event) {
	s.m.observe(e, s.macOf)
	if s.next != nil {
		s.next.Record(e)
	}
}

// changesSink is a sink in front of a boot log that also takes changes'
// events (audit.Changes).
type changesSink struct {
	*sink
	next audit.Changes
}

// Stamp readies e as the boot log does.
func (s *changesSink) Stamp(e audit.Event) audit.Event { return s.next.Stamp(e) }

// Committed counts events the store has committed with their change,
// and passes them on.
func (s *changesSink) Committed(events []audit.Event) {
	for _, e := range events {
		s.m.observe(e, s.macOf)
	}
	s.next.Committed(events)
}

// observe counts one event.
func (m *Metrics) observe(e audit.Event, macOf func(netip.Addr) string) {
	at := e.Time
	if at.IsZero() {
		at = time.Now()
	}
	switch e.Protocol {
	case "dhcp":
		// A reply to a network-booting firmware (it sent option 93) may
		// start a boot.
		if e.Result == "ok" && e.Arch != "" && e.MAC != "" {
			m.starts.dhcp(e.MAC, at)
		}
	case "tftp", "http", "https":
		if e.Protocol == "tftp" {
			m.tftpBytes.Add(float64(e.Bytes))
		} else {
			m.httpBytes.Add(float64(e.Bytes))
		}
		// A kernel sent whole is reached: "ok", or "sent" over TFTP (the
		// client left without acknowledging the final block).
		if e.Stage != "kernel" || e.Result != "ok" && e.Result != "sent" {
			break
		}
		// A kernel is a file on disk: its event names the client by
		// address only.
		mac := e.MAC
		if mac == "" && macOf != nil {
			if ip, err := netip.ParseAddr(e.IP); err == nil {
				mac = macOf(ip)
			}
		}
		if d, ok := m.starts.reached(mac, stageKernel, at); ok {
			m.stages.WithLabelValues(string(stageKernel)).Observe(d.Seconds())
		}
	case "ipxe", "pxelinux", "grub": // a menu, built from a boot.Decision
		// A menu names the profile it was built for. A pxelinux choice
		// (an entry only iPXE boots: "chose E, chaining iPXE") is a
		// menu-stage event without one: iPXE's loader, not a menu. Its
		// menu was counted when pxelinux fetched it, and the iPXE menu
		// that follows is counted when iPXE fetches it.
		if e.Stage == "menu" && e.Profile != "" {
			fw := e.Arch
			if fw == "" {
				fw = unknownFirmware
			}
			m.boots.WithLabelValues(fw, e.Profile).Inc()
		}
	case "menu":
		if e.Stage == "one-shot" && strings.HasPrefix(e.Result, "booted") {
			if d, ok := m.starts.reached(e.MAC, stageBooted, at); ok {
				m.stages.WithLabelValues(string(stageBooted)).Observe(d.Seconds())
			}
		}
	}
}

// bootStarts remembers, per MAC, when the client's current boot began: its
// first DHCP answer. A boot ends when its kernel has been fetched and a
// later DHCP answer begins another, or after bootWindow. It holds at most
// maxBootStarts clients: a storm of spoofed MACs empties it rather than
// grow it.
type bootStarts struct {
	mu sync.Mutex
	m  map[string]bootStart
}

// bootStart is kept by value, and its stages as flags: one entry per
// DHCP client, so no objects of its own for the collector to mark.
type bootStart struct {
	first          time.Time
	kernel, booted bool // stages observed
}

const (
	bootWindow    = time.Hour
	maxBootStarts = 100000
)

func newBootStarts() *bootStarts { return &bootStarts{m: map[string]bootStart{}} }

// dhcp notes a DHCP answer to mac at t.
func (b *bootStarts) dhcp(mac string, t time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.m[mac]; ok && !s.kernel && t.Sub(s.first) < bootWindow {
		return // the same boot: iPXE's own DHCP after the loader, a retry
	}
	if len(b.m) >= maxBootStarts {
		b.m = map[string]bootStart{}
	}
	b.m[mac] = bootStart{first: t}
}

// reached notes that mac's boot reached stage at t, and returns the time
// since its first DHCP answer the first time it does.
func (b *bootStarts) reached(mac string, stage bootStage, t time.Time) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.m[mac]
	if !ok || t.Sub(s.first) >= bootWindow {
		return 0, false
	}
	seen := &s.kernel
	if stage == stageBooted {
		seen = &s.booted
	}
	if *seen {
		return 0, false
	}
	*seen = true
	b.m[mac] = s
	return max(t.Sub(s.first), 0), true
}

// bootStage is a stage bootStarts times, named as the stage label.
type bootStage string

const (
	stageKernel bootStage = "kernel"
	stageBooted bootStage = "booted"
)
