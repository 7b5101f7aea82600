package audit

import (
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

type memStore struct {
	mu       sync.Mutex
	events   []Event
	batches  int
	maxBatch int
	fail     bool
	block    chan struct{}
}

func (m *memStore) PutEvents(es []Event) error {
	if m.block != nil {
		<-m.block
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("disk full")
	}
	m.events = append(m.events, es...)
	m.batches++
	m.maxBatch = max(m.maxBatch, len(es))
	return nil
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestRecorderBatchesAndFillsMAC(t *testing.T) {
	st := &memStore{}
	r := NewRecorder(st, "srv1", func(ip netip.Addr) string {
		if ip == netip.MustParseAddr("192.0.2.9") {
			return "52:54:00:00:00:09"
		}
		return ""
	}, quiet())
	for i := 0; i < 5000; i++ {
		r.Record(Event{IP: "192.0.2.9", Protocol: "tftp", Stage: "kernel", Result: "ok"})
	}
	r.Close()
	if len(st.events) != 5000 || r.Written() != 5000 || r.Dropped() != 0 {
		t.Fatalf("stored %d, written %d, dropped %d", len(st.events), r.Written(), r.Dropped())
	}
	if st.batches >= 5000 {
		t.Fatalf("%d batches for 5000 events: not batched", st.batches)
	}
	e := st.events[0]
	if e.MAC != "52:54:00:00:00:09" || e.Server != "srv1" || e.Time.IsZero() {
		t.Fatalf("event %+v", e)
	}
}

func TestRecorderNeverBlocksAndCountsDrops(t *testing.T) {
	st := &memStore{block: make(chan struct{})}
	r := NewRecorder(st, "srv", nil, quiet())
	// The store never returns until st.block closes: a Record that waited
	// for it would never return at all.
	done := make(chan struct{})
	go func() {
		for i := 0; i < QueueSize+5000; i++ {
			r.Record(Event{Stage: "x"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Record blocked while the store was stuck")
	}
	close(st.block)
	r.Close()
	if r.Dropped() == 0 || r.Dropped()+r.Written() != int64(QueueSize+5000) {
		t.Fatalf("dropped %d + written %d != %d", r.Dropped(), r.Written(), QueueSize+5000)
	}
}

// The queue takes memory for the events waiting, not for QueueSize of
// them from the start; a backlog is written in commits of at most
// maxBatch, every event of it in order.
func TestRecorderQueueGrowsWithBacklog(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	st := &memStore{block: make(chan struct{})}
	r := NewRecorder(st, "srv", nil, quiet())
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 1<<20 {
		t.Fatalf("a new recorder took %d bytes", grew)
	}
	const n = 3*maxBatch + 7
	for i := range n {
		r.Record(Event{Stage: "x", Bytes: int64(i)})
	}
	close(st.block)
	r.Close()
	if len(st.events) != n || st.maxBatch > maxBatch {
		t.Fatalf("%d events written, in batches of up to %d", len(st.events), st.maxBatch)
	}
	for i, e := range st.events {
		if e.Bytes != int64(i) {
			t.Fatalf("event %d written as %d", i, e.Bytes)
		}
	}
}

func TestRecorderStoreFailureCountsAsDropped(t *testing.T) {
	st := &memStore{fail: true}
	r := NewRecorder(st, "srv", nil, quiet())
	r.Record(Event{Stage: "x"})
	r.Close()
	if r.Dropped() != 1 {
		t.Fatalf("dropped %d", r.Dropped())
	}
	var nilRec *Recorder
	nilRec.Record(Event{}) // a nil recorder records nothing, without panicking
}

// A transfer can outlive the shutdown's grace and record its event after
// the recorder closed: that event is not written, and the server does
// not panic on it. What was queued before Close is written, all of it.
func TestRecordAfterClose(t *testing.T) {
	st := &memStore{}
	r := NewRecorder(st, "srv", nil, quiet())
	for range 3000 {
		r.Record(Event{Stage: "x"})
	}
	r.Close()
	r.Record(Event{Stage: "late"})
	r.Close() // twice: still no panic
	if len(st.events) != 3000 || r.Written() != 3000 {
		t.Fatalf("stored %d, written %d; want the 3000 recorded before Close", len(st.events), r.Written())
	}
}

func TestStageOf(t *testing.T) {
	for path, want := range map[string]string{
		"undionly.kpxe": "loader", "snponly.efi": "loader", "pxelinux.0": "loader", "menu.c32": "loader",
		"pxelinux.cfg/01-52-54-00-00-00-01": "menu", "grub/grub.cfg": "menu", "boot.ipxe": "menu", "bootforge/ipxe": "menu",
		"images/debian/vmlinuz": "kernel", "wimboot": "kernel", "initrd.gz": "initrd", "debian/initrd.img-6.1": "initrd",
		"win/boot.wim": "image", "iso/live.iso": "image", "notes.txt": "file",
	} {
		if got := StageOf(path); got != want {
			t.Errorf("StageOf(%q) = %q, want %q", path, got, want)
		}
	}
}

// The boot log keeps one spelling of each client address, so that a
// filter by IP finds an IPv6 client however the protocol wrote it, and
// the MAC of an IPv6 client known only by address is filled in.
func TestRecorderCanonicalIP(t *testing.T) {
	for in, want := range map[string]string{
		"2001:db8::5":                "2001:db8::5",
		"2001:DB8:0:0::5":            "2001:db8::5",
		"2001:0db8:0000::0005":       "2001:db8::5",
		"fe80::5%eth0":               "fe80::5",
		"::ffff:192.0.2.7":           "192.0.2.7",
		"192.0.2.7":                  "192.0.2.7",
		"":                           "",
		"not an address":             "not an address",
		"2001:db8:1:2:3:4:5:6":       "2001:db8:1:2:3:4:5:6",
		"2001:db8:0:0:1:0:0:1":       "2001:db8::1:0:0:1",
		"2001:db8::ffff:192.0.2.128": "2001:db8::ffff:c000:280",
	} {
		if got := ClientIP(in); got != want {
			t.Errorf("ClientIP(%q) = %q, want %q", in, got, want)
		}
	}
	st := &memStore{}
	r := NewRecorder(st, "srv1", func(ip netip.Addr) string {
		if ip == netip.MustParseAddr("2001:db8::5") {
			return "52:54:00:00:00:05"
		}
		return ""
	}, quiet())
	r.Record(Event{IP: "2001:DB8::5", Protocol: "http", Stage: "kernel", Result: "ok"})
	r.Record(Event{IP: "fe80::5%br0", Protocol: "tftp", Stage: "loader", Result: "ok"})
	r.Close()
	if len(st.events) != 2 || st.events[0].IP != "2001:db8::5" || st.events[0].MAC != "52:54:00:00:00:05" || st.events[1].IP != "fe80::5" {
		t.Fatalf("events %+v", st.events)
	}
}

// Text keeps valid UTF-8 as it is and writes each byte that is not UTF-8,
// and NUL, as \xNN: what every store keeps, and still what was asked.
func TestText(t *testing.T) {
	for in, want := range map[string]string{
		"":                    "",
		"boot/vmlinuz":        "boot/vmlinuz",
		"Windows 10/Ä/日本.wim": "Windows 10/Ä/日本.wim",
		"\uFFFD":              "\uFFFD", // a real U+FFFD stays
		"a\xffb":              `a\xffb`,
		"nul\x00x":            `nul\x00x`,
		"\xc3":                `\xc3`,         // a cut sequence
		"\xed\xa0\x80":        `\xed\xa0\x80`, // a UTF-16 surrogate
		"\xc0\xaf":            `\xc0\xaf`,     // an over-long '/'
		"ok\x01ctl":           "ok\x01ctl",    // control characters are UTF-8
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
}

// Whatever the input, Text's result is valid UTF-8 without NUL, and input
// that already is comes back unchanged.
func FuzzText(f *testing.F) {
	for _, s := range []string{"", "a\xffb", "nul\x00", "日本", "\xed\xa0\x80", `\x41`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Text(s)
		if !utf8.ValidString(got) || strings.IndexByte(got, 0) >= 0 {
			t.Fatalf("Text(%q) = %q: not valid UTF-8 without NUL", s, got)
		}
		if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 && got != s {
			t.Fatalf("Text(%q) = %q: changed valid text", s, got)
		}
	})
}

// Every event the recorder keeps and shows is stamped: a client's odd
// bytes reach neither a store nor a watcher raw.
func TestRecorderStampsText(t *testing.T) {
	st := &memStore{}
	r := NewRecorder(st, "srv\xff", nil, quiet())
	sub := r.Subscribe(1)
	defer sub.Close()
	r.Record(Event{IP: "192.0.2.9", Protocol: "tftp", Stage: "loader", File: "a\xffb", Reason: "x\x00y", Result: "not found"})
	seen := <-sub.C
	r.Close()
	if len(st.events) != 1 {
		t.Fatalf("stored %d events", len(st.events))
	}
	for _, e := range []Event{st.events[0], seen} {
		if e.File != `a\xffb` || e.Reason != `x\x00y` || e.Server != `srv\xff` {
			t.Errorf("event %+v", e)
		}
	}
}

// FuzzClientIP holds ClientIP to its definition: any address as netip
// writes it, unmapped and without a zone; anything else as it came.
func FuzzClientIP(f *testing.F) {
	for _, s := range []string{"192.0.2.7", "192.0.2.07", "::ffff:192.0.2.7", "fe80::5%eth0", "1.2.3.4%eth0", "2001:DB8::5", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := s
		if a, err := netip.ParseAddr(s); err == nil {
			want = a.Unmap().WithZone("").String()
		}
		if got := ClientIP(s); got != want {
			t.Errorf("ClientIP(%q) = %q, want %q", s, got, want)
		}
	})
}
