package turns

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitQueued waits until n bodies wait for a turn.
func waitQueued(t *testing.T, tr *Queue, n int) {
	t.Helper()
	for range 2000 {
		tr.mu.Lock()
		got := len(tr.waiting)
		tr.mu.Unlock()
		if got == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%d bodies never came to wait", n)
}

func TestTurnsOldestConnectionFirst(t *testing.T) {
	tr := New(1, time.Hour, time.Hour)
	first := tr.Take(time.Now())

	// Three bodies wait, the newest connection's arriving first.
	base := time.Now()
	got := takeInTurn(t, tr, first, base, base.Add(-2*time.Second), base.Add(-time.Second))
	if want := []int{1, 2, 0}; !slices.Equal(got, want) {
		t.Errorf("turns went to %v, want %v (oldest connection first)", got, want)
	}
}

// takeInTurn queues a body for each connection time, in that order, while
// the only turn is taken, then ends that turn (first); it returns the
// order, by index, in which the bodies got their turns.
func takeInTurn(t *testing.T, tr *Queue, first func(), conns ...time.Time) []int {
	t.Helper()
	order := make(chan int, len(conns))
	var wg sync.WaitGroup
	for i, since := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := tr.Take(since)
			order <- i
			done()
		}()
		waitQueued(t, tr, i+1)
	}
	first()
	wg.Wait()
	close(order)
	var got []int
	for i := range order {
		got = append(got, i)
	}
	return got
}

func TestTurnsSameConnectionInArrivalOrder(t *testing.T) {
	tr := New(1, time.Hour, time.Hour)
	first := tr.Take(time.Now())
	conn := time.Now()
	if got, want := takeInTurn(t, tr, first, conn, conn, conn), []int{0, 1, 2}; !slices.Equal(got, want) {
		t.Errorf("turns went to %v, want %v (in arrival order)", got, want)
	}
}

// A body that waits longer than wait streams anyway, without a turn: the
// turns stay as they were.
func TestTurnsWaitIsBounded(t *testing.T) {
	tr := New(1, 20*time.Millisecond, time.Hour)
	held := tr.Take(time.Now())
	done := tr.Take(time.Now()) // returns after 20 ms
	tr.mu.Lock()
	free, waiting := tr.free, len(tr.waiting)
	tr.mu.Unlock()
	if free != 0 || waiting != 0 {
		t.Fatalf("after a wait ran out: %d free, %d waiting; want 0, 0", free, waiting)
	}
	done() // nothing to give back
	held()
	held() // a second call gives nothing back either
	if tr.free != 1 {
		t.Errorf("%d turns free, want 1", tr.free)
	}
	st := &tr.Stats
	if st.Waited.Load() != 1 || st.TimedOut.Load() != 1 || st.Waiting.Load() != 0 || st.WaitNano.Load() < int64(20*time.Millisecond) {
		t.Errorf("stats: %d waited, %d timed out, %d waiting, %v waited in all; want 1, 1, 0, at least 20ms",
			st.Waited.Load(), st.TimedOut.Load(), st.Waiting.Load(), time.Duration(st.WaitNano.Load()))
	}
}

// A turn ends after hold even if its body is still streaming, and the
// body's own end then gives nothing back.
func TestTurnsHoldIsBounded(t *testing.T) {
	tr := New(1, time.Hour, 20*time.Millisecond)
	stuck := tr.Take(time.Now())
	got := make(chan func(), 1)
	go func() { got <- tr.Take(time.Now()) }() // gets the turn after 20 ms
	var next func()
	select {
	case next = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the turn was never handed on")
	}
	stuck()
	tr.mu.Lock()
	free := tr.free
	tr.mu.Unlock()
	if free != 0 {
		t.Fatalf("%d turns free while one is taken", free)
	}
	next()
	if tr.free != 1 {
		t.Errorf("%d turns free, want 1", tr.free)
	}
}

// Many bodies at once: never more than n stream in turns, and every turn
// comes back.
func TestTurnsConcurrent(t *testing.T) {
	const n = 4
	tr := New(n, time.Hour, time.Hour)
	var streaming, most atomic.Int32
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := tr.Take(time.Unix(int64(i%7), 0))
			now := streaming.Add(1)
			for {
				m := most.Load()
				if now <= m || most.CompareAndSwap(m, now) {
					break
				}
			}
			time.Sleep(100 * time.Microsecond)
			streaming.Add(-1)
			done()
		}()
	}
	wg.Wait()
	if m := most.Load(); m > n {
		t.Errorf("%d bodies streamed at once, turns allow %d", m, n)
	}
	if tr.free != n || len(tr.waiting) != 0 {
		t.Errorf("at the end %d turns free and %d waiting, want %d and 0", tr.free, len(tr.waiting), n)
	}
	if st := &tr.Stats; st.TimedOut.Load() != 0 || st.Waiting.Load() != 0 || st.Waited.Load() < 1 {
		t.Errorf("stats: %d waited, %d timed out, %d waiting; want some, 0, 0", st.Waited.Load(), st.TimedOut.Load(), st.Waiting.Load())
	}
}

// Timers firing while turns are handed over: no turn is lost or made.
func TestTurnsTimeoutsRace(t *testing.T) {
	tr := New(2, time.Millisecond, time.Millisecond)
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := tr.Take(time.Unix(int64(i%5), 0))
			time.Sleep(time.Duration(i%3) * time.Millisecond)
			done()
		}()
	}
	wg.Wait()
	time.Sleep(10 * time.Millisecond) // the holds' timers that already fired have run
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.free != 2 || len(tr.waiting) != 0 {
		t.Errorf("at the end %d turns free and %d waiting, want 2 and 0", tr.free, len(tr.waiting))
	}
}

// A transfer that waits a little at a time (a TFTP transfer between its
// windows) is told to go on at full speed only once it has its turn.
func TestPlaceWaitsInSteps(t *testing.T) {
	tr := New(1, time.Hour, time.Hour)
	first := tr.Join(time.Now())
	if !first.Wait(0) {
		t.Fatal("the first transfer was not given the free turn")
	}
	p := tr.Join(time.Now())
	if p.Wait(0) || p.Wait(5*time.Millisecond) {
		t.Fatal("a waiting transfer was told to go on while the only turn is taken")
	}
	first.Leave()
	if !p.Wait(time.Hour) {
		t.Fatal("the turn left free was not handed on")
	}
	if st := &tr.Stats; st.Waited.Load() != 1 || st.Waiting.Load() != 0 || st.TimedOut.Load() != 0 {
		t.Errorf("stats: %d waited, %d waiting, %d timed out; want 1, 0, 0", st.Waited.Load(), st.Waiting.Load(), st.TimedOut.Load())
	}
	p.Leave()
	p.Leave() // a second call gives nothing back
	if tr.free != 1 {
		t.Errorf("%d turns free, want 1", tr.free)
	}
}

// The queue's wait bounds the steps' sum: then the transfer goes on
// without a turn, and the turns stay as they were.
func TestPlaceWaitIsBounded(t *testing.T) {
	tr := New(1, 30*time.Millisecond, time.Hour)
	held := tr.Join(time.Now())
	p := tr.Join(time.Now())
	steps := 0
	for !p.Wait(5 * time.Millisecond) {
		steps++
	}
	if steps < 3 {
		t.Errorf("went on after %d steps of 5 ms, before the wait of 30 ms ran out", steps)
	}
	if tr.free != 0 || len(tr.waiting) != 0 || tr.Stats.TimedOut.Load() != 1 {
		t.Errorf("after the wait ran out: %d free, %d waiting, %d timed out; want 0, 0, 1", tr.free, len(tr.waiting), tr.Stats.TimedOut.Load())
	}
	p.Leave() // had no turn: gives nothing back
	held.Leave()
	if tr.free != 1 {
		t.Errorf("%d turns free, want 1", tr.free)
	}
}

// A transfer that ends while it waits leaves the queue; one that was
// given a turn it never used hands it on.
func TestPlaceLeavesWhileWaiting(t *testing.T) {
	tr := New(1, time.Hour, time.Hour)
	held := tr.Join(time.Now())
	gone := tr.Join(time.Now())
	gone.Leave()
	if len(tr.waiting) != 0 {
		t.Fatalf("%d waiting after the only waiter left, want 0", len(tr.waiting))
	}
	given := tr.Join(time.Now())
	next := tr.Join(time.Now())
	held.Leave() // the turn goes to given, which never looks
	given.Leave()
	if !next.Wait(time.Second) {
		t.Fatal("a turn given to a transfer that left was not handed on")
	}
	next.Leave()
	if tr.free != 1 || tr.Stats.Waiting.Load() != 0 {
		t.Errorf("%d turns free and %d waiting, want 1 and 0", tr.free, tr.Stats.Waiting.Load())
	}
}

// Transfers waiting in steps, some ending before their turn comes, with
// waits and holds running out meanwhile: no turn is lost or made.
func TestPlaceStepsRace(t *testing.T) {
	tr := New(3, 5*time.Millisecond, 2*time.Millisecond)
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Go(func() {
			p := tr.Join(time.Unix(int64(i%11), 0))
			defer p.Leave()
			for step := range i % 4 { // i%4 == 0: it ends while it waits, at once
				if p.Wait(time.Duration(step) * time.Millisecond) {
					break
				}
			}
			time.Sleep(time.Duration(i%2) * time.Millisecond)
		})
	}
	wg.Wait()
	time.Sleep(10 * time.Millisecond) // the holds' timers that already fired have run
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.free != 3 || len(tr.waiting) != 0 || tr.Stats.Waiting.Load() != 0 {
		t.Errorf("at the end %d turns free, %d in the queue, %d counted waiting; want 3, 0, 0", tr.free, len(tr.waiting), tr.Stats.Waiting.Load())
	}
}
