// Package audit keeps the boot log: one Event per step of every boot —
// DHCP exchanges, TFTP and HTTP transfers, menus served, one-shot changes —
// with the client's MAC and IP, for traceability and compliance.
//
// Recording must never slow serving down. Protocol servers hand events to
// a Recorder, which queues them in a bounded channel and writes them to
// the store in batches from one goroutine: at once when the server is
// quiet, at most every 20 ms when it is busy. When the queue is full (a boot
// storm faster than the disk), events are dropped — and the drops are
// counted and reported in the log, never silent.
//
// Changes made through the one write path (internal/catalog: promote,
// rollback, gc; internal/inventory: hosts, one-shots; internal/menufs: a
// one-shot delivered or booted) are not queued: their events are written
// by the store in the transaction of the change (Changes), so that a
// change is never made without its line in the log.
package audit

import (
	"bootforge/internal/image"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Event is one line of the boot log.
type Event struct {
	ID       int64         `json:"id,omitempty"`
	Time     time.Time     `json:"time"`
	MAC      string        `json:"mac,omitempty"`
	IP       string        `json:"ip,omitempty"`
	Arch     string        `json:"arch,omitempty"`     // firmware kind: bios, efi-x64, ...
	Stage    string        `json:"stage"`              // e.g. discover, ack, loader, menu, kernel, one-shot
	Protocol string        `json:"protocol"`           // dhcp, tftp, http, https, menu, cli
	File     string        `json:"file,omitempty"`     // path, boot file or menu
	Bytes    int64         `json:"bytes,omitempty"`    // transferred
	Duration time.Duration `json:"duration,omitempty"` // of the transfer
	Result   string        `json:"result"`             // ok, not found, refused, failed, ...
	Reason   string        `json:"reason,omitempty"`   // why: the decision behind a DHCP answer or a menu
	Profile  string        `json:"profile,omitempty"`
	Image    string        `json:"image,omitempty"` // name@version
	Server   string        `json:"server,omitempty"`
}

// Sink takes events. A nil Sink is valid and drops nothing because it
// records nothing.
type Sink interface {
	Record(Event)
}

// Store persists events in batches.
type Store interface {
	PutEvents([]Event) error
}

// Recorder batches events into a Store.
type Recorder struct {
	store  Store
	log    *slog.Logger
	server string
	macOf  func(netip.Addr) string // fills MACs the protocol did not know

	// pending holds the events waiting for the writer, at most
	// QueueSize. It grows with the backlog rather than being made at
	// its bound: a channel of QueueSize events was 14 MiB from the
	// start, in every server's resident memory and scanned by every
	// garbage collection, for a backlog a busy server never has.
	mu      sync.Mutex
	pending []Event
	wake    chan struct{} // holds a token while events are pending
	stop    chan struct{} // closed by Close; Record still only queues after it, and never panics
	done    chan struct{}
	once    sync.Once
	dropped atomic.Int64
	written atomic.Int64
	fan     subscribers // live watchers (Subscribe)
}

// QueueSize bounds the events waiting for the writer.
const QueueSize = 65536

// NewRecorder starts a recorder. server names this bootforge in every
// event; macOf, if set, finds the MAC of a client known only by its IP.
func NewRecorder(store Store, server string, macOf func(netip.Addr) string, log *slog.Logger) *Recorder {
	r := &Recorder{store: store, log: log, server: server, macOf: macOf,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go r.write()
	return r
}

// Record queues an event without blocking.
func (r *Recorder) Record(e Event) {
	if r == nil {
		return
	}
	e = r.Stamp(e)
	r.fan.publish(e)
	r.mu.Lock()
	full := len(r.pending) >= QueueSize
	if !full {
		r.pending = append(r.pending, e)
	}
	r.mu.Unlock()
	if full {
		r.dropped.Add(1)
		return
	}
	select {
	case r.wake <- struct{}{}:
	default: // a token is there already
	}
}

// Changes is where the one write path (internal/catalog, internal/inventory)
// sends the events of its changes: an image promoted, a host stored. The
// store writes them in the transaction of the change itself, so that the
// change and its boot-log line are committed together or not at all: a
// queue, like the Recorder's, may drop them or lose them to a kill between
// the change and its line, and the log would silently miss a change.
// Stamp readies each event before the write; Committed hears of them once
// the store has committed them. *Recorder (a server's: its live watchers
// see them), the metrics sink in front of it (internal/metrics: it counts
// them too) and Offline (a command's) are Changes.
type Changes interface {
	Stamp(Event) Event
	Committed([]Event)
}

// Stamp readies an event as Record does, for a store that writes it with
// the change it records (Changes).
func (r *Recorder) Stamp(e Event) Event {
	e = Stamp(e, r.server)
	if id, ok := image.OfPath(e.File); ok && e.Image == "" {
		e.Image = id.String()
	}
	e.IP = ClientIP(e.IP)
	if e.MAC == "" && e.IP != "" && r.macOf != nil {
		if ip, err := netip.ParseAddr(e.IP); err == nil {
			e.MAC = r.macOf(ip)
		}
	}
	return e
}

// Committed shows events the store has committed with their change to the
// live watchers (Subscribe), and counts them as written. They are not
// queued: the store has them already.
func (r *Recorder) Committed(events []Event) {
	r.written.Add(int64(len(events)))
	for _, e := range events {
		r.fan.publish(e)
	}
}

// Offline is Changes for a command that changes the store beside the
// server (`bootforge image promote`, `bootforge host add`): events are
// stamped with Server, and no live watcher sees them — the server's feed
// shows its own recorder's events.
type Offline struct {
	Server string
}

// Stamp readies an event: Stamp with o.Server.
func (o Offline) Stamp(e Event) Event { return Stamp(e, o.Server) }

// Committed does nothing: the events are in the store.
func (Offline) Committed([]Event) {}

// Stamp readies an event for the log, whoever records it: its time if it
// has none, the server that records it, and text that every store keeps.
func Stamp(e Event, server string) Event {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Server = server
	for _, f := range []*string{&e.MAC, &e.IP, &e.Arch, &e.Stage, &e.Protocol, &e.File, &e.Result, &e.Reason, &e.Profile, &e.Image, &e.Server} {
		*f = Text(*f)
	}
	return e
}

// Text returns s as the boot log keeps text: valid UTF-8 without NUL, a
// byte that is neither written as \xNN. A client names the file it asks
// for with any bytes it likes, and PostgreSQL refuses text that is not
// UTF-8, or holds NUL, and with it the whole batch of other clients'
// events it came in. Written as \xNN, the log still shows what was asked.
func Text(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == 0 || r == utf8.RuneError && n == 1 {
			b = append(b, '\\', 'x', hexDigits[s[i]>>4], hexDigits[s[i]&0xf])
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return string(b)
}

const hexDigits = "0123456789abcdef"

// ClientIP writes a client address as the boot log keeps it, so that a
// filter finds it however it was written: canonical text (2001:db8::5,
// never 2001:DB8:0::5), an IPv4-mapped IPv6 address (what a dual-stack
// socket reports for an IPv4 peer) as the IPv4 address, and no zone (a
// link-local client's zone names our interface, not the client). Text
// that is not an address is kept as it is.
func ClientIP(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return s
	}
	if a.Is4() {
		return s // ParseAddr takes an IPv4 address only as canonical text
	}
	return a.Unmap().WithZone("").String()
}

// Dropped counts events lost to a full queue; Written those stored.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Queued counts events waiting for the writer.
func (r *Recorder) Queued() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// Written counts events stored.
func (r *Recorder) Written() int64 { return r.written.Load() }

// Close writes what is queued and stops. An event recorded after it (a
// transfer that outlived the shutdown's grace) is not written: it waits
// in the queue, or counts as dropped once the queue is full.
func (r *Recorder) Close() {
	r.once.Do(func() { close(r.stop) })
	<-r.done
}

// linger spaces the recorder's writes: an event that comes when the last
// write is older than linger is written at once; one that comes sooner
// waits, with those that follow, until linger has passed since that write.
// So a quiet server's events reach the store at once (`bootforge check`
// reads them), and a busy one about 50 times a second (more only while
// over maxBatch events wait).
const linger = 20 * time.Millisecond

func (r *Recorder) write() {
	defer close(r.done)
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	var reported int64
	var spare []Event  // the last batch's slice, kept for the next backlog
	var last time.Time // of the last write
	// take swaps the pending events for spare's empty slice.
	take := func() []Event {
		r.mu.Lock()
		defer r.mu.Unlock()
		got := r.pending
		r.pending = spare[:0]
		return got
	}
	// flush stores events, at most maxBatch to a commit: a lease's
	// commit waits for a boot-log commit in progress, never for many.
	flush := func(events []Event) {
		for rest := events; len(rest) > 0; {
			batch := rest[:min(len(rest), maxBatch)]
			rest = rest[len(batch):]
			if err := r.store.PutEvents(batch); err != nil {
				r.dropped.Add(int64(len(batch)))
				r.log.Error("boot log: events not stored", "events", len(batch), "err", err)
			} else {
				r.written.Add(int64(len(batch)))
			}
		}
		clear(events) // the events' text is the garbage collector's again
		spare = nil
		if cap(events) <= keepCapacity {
			spare = events[:0]
		}
	}
	for {
		select {
		case <-r.stop:
			for {
				events := take()
				if len(events) == 0 {
					return
				}
				flush(events)
			}
		case <-r.wake:
			// Gather until linger after the last write: every commit
			// rewrites the events' index pages, and a busy server sends
			// thousands of events a second. It sleeps rather than
			// waits for each event, so that the events recorded
			// meanwhile are appended without waking this goroutine.
			time.Sleep(time.Until(last.Add(linger)))
			flush(take())
			last = time.Now()
		case <-tick.C:
			if d := r.dropped.Load(); d != reported {
				r.log.Warn("boot log: events dropped (queue full or store failing)", "dropped_total", d, "since_last_report", d-reported)
				reported = d
			}
		}
	}
}

// maxBatch bounds the events in one commit; keepCapacity the slice kept
// between backlogs (one of QueueSize stays only while one is that long).
const (
	maxBatch     = 1024
	keepCapacity = 4 * maxBatch
)

// StageOf names the boot stage a fetched file belongs to, from its name,
// so that the log reads as a boot: loader, menu, kernel, initrd, image.
func StageOf(path string) string {
	p := strings.ToLower(path)
	base := p[strings.LastIndex(p, "/")+1:]
	switch {
	case strings.HasPrefix(p, "pxelinux.cfg/"), strings.Contains(base, "grub.cfg"), strings.HasPrefix(p, "bootforge/grub/"),
		strings.HasSuffix(base, ".ipxe"), p == "bootforge/ipxe", strings.HasSuffix(base, ".cfg"):
		return "menu"
	case strings.HasPrefix(base, "vmlinuz"), strings.HasPrefix(base, "bzimage"), base == "linux", strings.HasPrefix(base, "kernel"),
		base == "wimboot":
		return "kernel"
	case strings.HasPrefix(base, "initrd"), strings.HasPrefix(base, "initramfs"), strings.HasSuffix(base, ".cpio"),
		strings.HasSuffix(base, ".cpio.gz"):
		return "initrd"
	case strings.HasSuffix(base, ".efi"), strings.HasSuffix(base, ".kpxe"), strings.HasSuffix(base, ".pxe"),
		strings.HasSuffix(base, ".0"), strings.HasSuffix(base, ".c32"), strings.HasSuffix(base, ".lst"):
		return "loader"
	case strings.HasSuffix(base, ".wim"), strings.HasSuffix(base, ".iso"), strings.HasSuffix(base, ".sdi"), base == "bcd":
		return "image"
	}
	return "file"
}
