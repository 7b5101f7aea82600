package audit

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// A subscriber that never reads loses events beyond its buffer, and
// recording neither blocks nor loses anything for the store.
func TestSubscriberThatNeverReadsNeverBlocksRecording(t *testing.T) {
	st := &memStore{}
	r := NewRecorder(st, "srv1", nil, quiet())
	stuck := r.Subscribe(4)
	defer stuck.Close()

	const writers, each = 8, 500
	done := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < each; i++ {
					r.Record(Event{Stage: "ack", Protocol: "dhcp", MAC: fmt.Sprintf("52:54:00:00:%02x:%02x", w, i%256)})
				}
			}(w)
		}
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Record blocked on a subscriber that does not read")
	}
	r.Close()
	if got := len(stuck.C); got != 4 {
		t.Errorf("the stuck subscriber holds %d events, want its buffer of 4", got)
	}
	if got, want := stuck.Dropped(), int64(writers*each-4); got != want {
		t.Errorf("dropped for the stuck subscriber: %d, want %d", got, want)
	}
	if got := len(st.events); got != writers*each {
		t.Errorf("the store got %d events, want all %d", got, writers*each)
	}
}

// A subscriber that keeps up sees every event, in order, as recorded
// (the server named), and only those recorded after it subscribed.
func TestSubscriberSeesEventsInOrder(t *testing.T) {
	r := NewRecorder(&memStore{}, "srv1", nil, quiet())
	defer r.Close()
	r.Record(Event{Stage: "before"})
	s := r.Subscribe(16)
	defer s.Close()
	got := make(chan []string)
	go func() {
		var stages []string
		for e := range s.C {
			if e.Server != "srv1" {
				t.Errorf("event %q without the server name: %+v", e.Stage, e)
			}
			stages = append(stages, e.Stage)
		}
		got <- stages
	}()
	for i := 0; i < 100; i++ {
		r.Record(Event{Stage: fmt.Sprint(i)})
		time.Sleep(100 * time.Microsecond) // a reader that keeps up
	}
	time.Sleep(50 * time.Millisecond)
	s.Close()
	stages := <-got
	if s.Dropped() == 0 && len(stages) != 100 {
		t.Fatalf("got %d events and dropped none, want 100", len(stages))
	}
	last := -1
	for _, st := range stages {
		var n int
		if _, err := fmt.Sscan(st, &n); err != nil {
			t.Fatalf("saw event %q, recorded before subscribing", st)
		}
		if n <= last {
			t.Fatalf("event %d after %d: out of order", n, last)
		}
		last = n
	}
	if int64(len(stages))+s.Dropped() != 100 {
		t.Errorf("received %d + dropped %d, want 100", len(stages), s.Dropped())
	}
}

// Subscribing and closing while events are recorded is safe (run with
// -race), and Close may be called twice.
func TestSubscribeCloseWhileRecording(t *testing.T) {
	r := NewRecorder(&memStore{}, "srv1", nil, quiet())
	defer r.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				r.Record(Event{Stage: "ack"})
			}
		}
	}()
	for i := 0; i < 50; i++ {
		s := r.Subscribe(1)
		if i%2 == 0 {
			<-s.C
		}
		s.Close()
		s.Close()
		if _, open := <-drain(s.C); open {
			t.Fatal("C still open after Close")
		}
	}
	close(stop)
	wg.Wait()
}

// drain empties c and returns it, to read its closed state.
func drain(c <-chan Event) <-chan Event {
	for len(c) > 0 {
		<-c
	}
	return c
}

// Events the store committed with their change (Changes) reach the live
// watchers, stamped as Record stamps, and count as written, but are not
// stored a second time.
func TestCommittedEventsReachWatchersNotStore(t *testing.T) {
	st := &memStore{}
	r := NewRecorder(st, "srv1", nil, quiet())
	sub := r.Subscribe(4)
	defer sub.Close()
	e := r.Stamp(Event{Stage: "host", Protocol: "api", File: "pc1", Result: "host stored by 192.0.2.7", IP: "::ffff:192.0.2.7"})
	if e.Server != "srv1" || e.Time.IsZero() || e.IP != "192.0.2.7" {
		t.Errorf("stamped %+v", e)
	}
	r.Committed([]Event{e})
	r.Close()
	select {
	case got := <-sub.C:
		if got != e {
			t.Errorf("watcher got %+v, want %+v", got, e)
		}
	default:
		t.Error("the watcher did not see the committed event")
	}
	if len(st.events) != 0 || r.Written() != 1 {
		t.Errorf("stored again: %d; written %d, want 1", len(st.events), r.Written())
	}
}
