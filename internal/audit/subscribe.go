package audit

import (
	"sync"
	"sync/atomic"
)

// Subscription is a live copy of the boot log: every event recorded after
// Subscribe, as Record saw it (MAC filled, server named), for watchers
// such as the dashboard's live feed.
//
// A subscriber never slows recording down: Record hands it an event only
// if its buffer has room, and otherwise drops the event for that
// subscriber alone and counts it. The events still reach the store.
type Subscription struct {
	// C delivers the events; it is closed by Close.
	C <-chan Event

	c       chan Event
	r       *Recorder
	dropped atomic.Int64
}

// subscribers is the fan-out list of a Recorder. Record holds the read
// lock while it offers an event, Close the write lock while it closes a
// channel, so an event is never sent on a closed channel.
type subscribers struct {
	mu   sync.RWMutex
	subs map[*Subscription]struct{}
}

// Subscribe starts a subscription whose channel buffers up to n events
// (at least 1). Close it when done.
func (r *Recorder) Subscribe(n int) *Subscription {
	if n < 1 {
		n = 1
	}
	c := make(chan Event, n)
	s := &Subscription{C: c, c: c, r: r}
	r.fan.mu.Lock()
	if r.fan.subs == nil {
		r.fan.subs = map[*Subscription]struct{}{}
	}
	r.fan.subs[s] = struct{}{}
	r.fan.mu.Unlock()
	return s
}

// Close ends the subscription and closes C. It may be called more than once.
func (s *Subscription) Close() {
	f := &s.r.fan
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.subs[s]; ok {
		delete(f.subs, s)
		close(s.c)
	}
}

// Dropped counts the events this subscriber missed because its buffer
// was full.
func (s *Subscription) Dropped() int64 { return s.dropped.Load() }

// publish offers e to every subscriber without waiting.
func (f *subscribers) publish(e Event) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for s := range f.subs {
		select {
		case s.c <- e:
		default:
			s.dropped.Add(1)
		}
	}
}
