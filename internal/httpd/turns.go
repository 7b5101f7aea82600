package httpd

import (
	"container/heap"
	"sync"
	"sync/atomic"
	"time"
)

// turns lets at most n large bodies stream at once, the oldest
// connection's first. In a boot storm every machine asks for its kernel
// within a few milliseconds; streamed all at once they share the link
// evenly and all finish near the end, so no machine boots until the last
// byte of the storm has nearly gone. Taken in turns, the same bytes leave
// in the same time, but the first machines have their kernel early, and a
// machine that has its kernel gets its initrd next, on the same
// connection, ahead of machines that have not started. A body waits at
// most wait for its turn and then streams anyway, and a turn ends after
// hold even if its body is still streaming, so that clients that read
// slowly, or not at all, hold no one back for long.
//
// Measured with bench/pxestorm.sh (500 clients, an 8 MiB kernel then a
// 4 MiB initrd each): the initrd's p50 fell from 0.74× nginx's to 0.06×,
// the kernel's stayed within the runs' spread of nginx's.
type turns struct {
	wait, hold time.Duration

	mu      sync.Mutex
	free    int // turns not taken
	waiting turnQueue
	seq     uint64

	stats TurnStats
}

// TurnStats count the large bodies that waited for a turn (metrics).
type TurnStats struct {
	Waited   atomic.Int64 // bodies that waited for a turn
	Waiting  atomic.Int64 // bodies waiting now
	TimedOut atomic.Int64 // of those that waited, ones that streamed without a turn
	WaitNano atomic.Int64 // time they waited, in total
}

// The turns of the file listeners: bodies above TurnAbove bytes (kernels,
// initrds, WIM and ISO images; not loaders and menus) take turns, at most
// TurnCount at once, enough streams to fill a link from a LAN. A body waits
// at most TurnWait, and a turn lasts at most turnHold. (Exported for the
// metrics' help text.)
const (
	TurnAbove = 2 << 20
	TurnCount = 16
	TurnWait  = 10 * time.Second
	turnHold  = 2 * time.Second
)

func newTurns(n int, wait, hold time.Duration) *turns {
	return &turns{free: n, wait: wait, hold: hold}
}

// take returns once a body of the connection opened at since may stream,
// and the func that ends its turn. After t.wait it returns anyway, with a
// func that does nothing.
func (t *turns) take(since time.Time) (done func()) {
	t.mu.Lock()
	if t.free > 0 && len(t.waiting) == 0 {
		t.free--
		t.mu.Unlock()
		return t.turn()
	}
	t.seq++
	w := &turnWaiter{since: since, seq: t.seq, ready: make(chan struct{})}
	heap.Push(&t.waiting, w)
	t.mu.Unlock()

	start := time.Now()
	t.stats.Waited.Add(1)
	t.stats.Waiting.Add(1)
	defer func() {
		t.stats.Waiting.Add(-1)
		t.stats.WaitNano.Add(int64(time.Since(start)))
	}()
	timer := time.NewTimer(t.wait)
	defer timer.Stop()
	select {
	case <-w.ready:
		return t.turn()
	case <-timer.C:
	}
	t.mu.Lock()
	given := w.index < 0 // given a turn while the timer fired
	if !given {
		heap.Remove(&t.waiting, w.index)
	}
	t.mu.Unlock()
	if given {
		return t.turn()
	}
	t.stats.TimedOut.Add(1)
	return func() {}
}

// turn starts a turn that was taken: it ends when done is called or
// after t.hold, whichever comes first.
func (t *turns) turn() (done func()) {
	var once sync.Once
	end := func() { once.Do(t.give) }
	timer := time.AfterFunc(t.hold, end)
	return func() {
		timer.Stop()
		end()
	}
}

// give ends a turn: the oldest waiter gets it.
func (t *turns) give() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.waiting) == 0 {
		t.free++
		return
	}
	w := heap.Pop(&t.waiting).(*turnWaiter)
	close(w.ready)
}

// turnWaiter is a body waiting for its turn; index is its place in the
// queue, -1 once it has left it.
type turnWaiter struct {
	since time.Time
	seq   uint64 // arrival, among waiters of the same connection time
	ready chan struct{}
	index int
}

// turnQueue orders waiters oldest connection first (container/heap).
type turnQueue []*turnWaiter

func (q turnQueue) Len() int { return len(q) }
func (q turnQueue) Less(i, j int) bool {
	if !q[i].since.Equal(q[j].since) {
		return q[i].since.Before(q[j].since)
	}
	return q[i].seq < q[j].seq
}
func (q turnQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *turnQueue) Push(x any) {
	w := x.(*turnWaiter)
	w.index = len(*q)
	*q = append(*q, w)
}
func (q *turnQueue) Pop() any {
	old := *q
	w := old[len(old)-1]
	old[len(old)-1] = nil
	w.index = -1
	*q = old[:len(old)-1]
	return w
}
