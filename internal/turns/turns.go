// Package turns lets the transfers of a boot storm go in turns, the
// oldest first. In a storm every machine asks for its loader or kernel
// within a few milliseconds; sent all at once they share the link and the
// processors evenly and all finish near the end, so no machine boots until
// the last byte of the storm has nearly gone. Taken in turns, the same
// bytes leave in the same time, but the first machines have their file
// early and move on to the next stage, ahead of machines that have not
// started.
//
// A Queue has a fixed number of turns. A transfer joins it (Join) when it
// starts; it gets a turn at once if one is free and no one waits, else it
// waits in the queue, the oldest first. A turn ends when the transfer
// leaves (Leave), or after the queue's hold even if the transfer goes on,
// so that clients that read slowly, or not at all, hold no one back for
// long. No transfer waits longer than the queue's wait in all: then it
// goes on without a turn.
//
// HTTP bodies wait for their turn in one piece (Take): TCP keeps the
// client waiting. A TFTP transfer waits between its windows (Place.Wait),
// a little at a time, and sends a window now and then while it waits: a
// TFTP client that hears nothing for a few seconds gives up.
package turns

import (
	"container/heap"
	"sync"
	"sync/atomic"
	"time"
)

// Queue hands out turns, the oldest transfer first.
type Queue struct {
	wait, hold time.Duration

	mu      sync.Mutex
	free    int // turns not taken
	waiting waitQueue
	seq     uint64

	Stats Stats
}

// Stats count the transfers that waited for a turn (metrics).
type Stats struct {
	Waited   atomic.Int64 // transfers that waited for a turn
	Waiting  atomic.Int64 // transfers waiting now
	TimedOut atomic.Int64 // of those that waited, ones that went on without a turn
	WaitNano atomic.Int64 // time they waited, in total
}

// New returns a queue of n turns. A transfer waits at most wait for its
// turn, and a turn lasts at most hold.
func New(n int, wait, hold time.Duration) *Queue {
	return &Queue{free: n, wait: wait, hold: hold}
}

// Place is a transfer's place in a queue: a turn, a wait for one, or,
// once the wait has run out, neither.
type Place struct {
	q      *Queue
	w      *waiter   // while it waits; nil once it has left the queue
	joined time.Time // when it began to wait
	end    func()    // ends its turn, once it has one
}

// Join puts a transfer that started at since into the queue. It gets a
// turn at once if one is free and no one waits.
func (q *Queue) Join(since time.Time) *Place {
	p := &Place{q: q}
	q.mu.Lock()
	if q.free > 0 && len(q.waiting) == 0 {
		q.free--
		q.mu.Unlock()
		p.end = q.turn()
		return p
	}
	q.seq++
	p.w = &waiter{since: since, seq: q.seq, ready: make(chan struct{})}
	heap.Push(&q.waiting, p.w)
	q.mu.Unlock()
	p.joined = time.Now()
	q.Stats.Waited.Add(1)
	q.Stats.Waiting.Add(1)
	return p
}

// Take returns once a transfer that started at since has its turn, or
// after the queue's wait, and the func that ends the turn.
func (q *Queue) Take(since time.Time) (done func()) {
	p := q.Join(since)
	p.Wait(q.wait)
	return p.Leave
}

// Wait waits at most d for the transfer's turn. It reports whether the
// transfer may go on at full speed: it has its turn, or has waited the
// queue's wait in all and goes on without one. With d zero or less it
// only looks.
func (p *Place) Wait(d time.Duration) bool {
	if p.w == nil {
		return true
	}
	left := p.q.wait - time.Since(p.joined)
	if d > left {
		d = left
	}
	if d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-p.w.ready:
		case <-timer.C:
		}
	}
	select {
	case <-p.w.ready:
		p.stopWaiting()
		p.end = p.q.turn()
		return true
	default:
	}
	if time.Since(p.joined) < p.q.wait {
		return false
	}
	if p.leaveQueue() { // given a turn while the wait ran out
		p.end = p.q.turn()
		return true
	}
	p.q.Stats.TimedOut.Add(1)
	return true
}

// Waiting reports whether the transfer still waits for its turn.
func (p *Place) Waiting() bool { return p.w != nil }

// Leave ends the transfer's turn, or its wait. It may be called more than
// once.
func (p *Place) Leave() {
	if p.w != nil && p.leaveQueue() { // given a turn it never used
		p.q.give()
	}
	if p.end != nil {
		p.end()
	}
}

// leaveQueue takes the waiting transfer out of the queue. It reports
// whether it had been given a turn meanwhile, which is then its own.
func (p *Place) leaveQueue() (given bool) {
	q := p.q
	q.mu.Lock()
	given = p.w.index < 0
	if !given {
		heap.Remove(&q.waiting, p.w.index)
	}
	q.mu.Unlock()
	p.stopWaiting()
	return given
}

// stopWaiting counts the end of a wait.
func (p *Place) stopWaiting() {
	p.q.Stats.Waiting.Add(-1)
	p.q.Stats.WaitNano.Add(int64(time.Since(p.joined)))
	p.w = nil
}

// turn starts a turn that was taken: it ends when the returned func is
// called or after q.hold, whichever comes first.
func (q *Queue) turn() (end func()) {
	var once sync.Once
	give := func() { once.Do(q.give) }
	timer := time.AfterFunc(q.hold, give)
	return func() {
		timer.Stop()
		give()
	}
}

// give ends a turn: the oldest waiter gets it.
func (q *Queue) give() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiting) == 0 {
		q.free++
		return
	}
	w := heap.Pop(&q.waiting).(*waiter)
	close(w.ready)
}

// waiter is a transfer waiting for its turn; index is its place in the
// queue, -1 once it has left it.
type waiter struct {
	since time.Time
	seq   uint64 // arrival, among waiters that started at the same time
	ready chan struct{}
	index int
}

// waitQueue orders waiters oldest first (container/heap).
type waitQueue []*waiter

func (q waitQueue) Len() int { return len(q) }
func (q waitQueue) Less(i, j int) bool {
	if !q[i].since.Equal(q[j].since) {
		return q[i].since.Before(q[j].since)
	}
	return q[i].seq < q[j].seq
}
func (q waitQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *waitQueue) Push(x any) {
	w := x.(*waiter)
	w.index = len(*q)
	*q = append(*q, w)
}
func (q *waitQueue) Pop() any {
	old := *q
	w := old[len(old)-1]
	old[len(old)-1] = nil
	w.index = -1
	*q = old[:len(old)-1]
	return w
}
