package audit

import (
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"
)

type memStore struct {
	mu      sync.Mutex
	events  []Event
	batches int
	fail    bool
	block   chan struct{}
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
