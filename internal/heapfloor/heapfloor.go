// Package heapfloor keeps the garbage collector from running while the
// heap is small.
//
// Go's collector starts a cycle when the heap has grown by GOGC percent
// (100) of what the last cycle left live. A boot server's live heap is
// small, a few to a few tens of MiB, while it allocates fast: every DHCP
// packet, TFTP request and HTTP request leaves some garbage. At 100% the
// collector runs many times a second, and each cycle marks the whole
// live heap again: 37 cycles in the 5 s of a 20,000-lease DHCP run
// (bench/dhcp.sh), about a tenth of the server's CPU, each cycle also
// taking a processor from the packets waiting for one.
//
// Start lets the heap grow by at least a fixed headroom before the next
// cycle: after each cycle it sets the GC percentage so that the goal is
// the larger of twice the live heap (GOGC's 100) and the live heap plus
// the headroom. A heap that is large anyway is collected as before. The
// runtime has no minimum heap goal to set (GOMEMLIMIT caps the goal, it
// does not raise it), hence this package. It stands aside when the
// operator set GOGC, and a GOMEMLIMIT still caps every goal it sets.
package heapfloor

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// minimumHeap is the runtime's least heap goal at GOGC=100; it scales
// with the percentage (heapMinimum in runtime/mgcpacer.go).
const minimumHeap = 4 << 20

// Percent is the GC percentage that gives a heap of live bytes a goal of
// about live + headroom, or of 2 × live if that is more. The runtime's
// least goal grows with the percentage too (4 MiB at 100), so the
// percentage is held to what keeps that least goal within live +
// headroom as well.
func Percent(live, headroom uint64) int {
	if live == 0 {
		live = 1
	}
	p := min(float64(headroom)*100/float64(live), float64(live+headroom)*100/minimumHeap)
	switch {
	case p <= 100:
		return 100
	case p >= math.MaxInt32:
		return math.MaxInt32
	}
	return int(p)
}

// Start keeps the collector's goal at least headroom bytes above the live
// heap until the returned stop is called, unless GOGC is set in the
// environment, in which case it does nothing. Call it once.
func Start(headroom uint64) (stop func()) {
	if os.Getenv("GOGC") != "" || headroom == 0 {
		return func() {}
	}
	f := &floor{headroom: headroom, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	f.adjust() // before the first cycle the live heap reads 0: the first goal is headroom
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.stopped {
			f.stopped = true
			debug.SetGCPercent(100)
		}
	}
}

type floor struct {
	headroom uint64
	mu       sync.Mutex // an adjust that began before stop cannot set a percentage after it
	sample   []metrics.Sample
	stopped  bool
}

// arm leaves an object that only a collection frees; its cleanup runs
// after that collection, sets the next goal and arms again.
func (f *floor) arm() {
	sentinel := new([16]byte) // not tiny-allocated, so freed on its own
	runtime.AddCleanup(sentinel, (*floor).adjust, f)
}

func (f *floor) adjust() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	metrics.Read(f.sample)
	if f.sample[0].Value.Kind() == metrics.KindUint64 {
		debug.SetGCPercent(Percent(f.sample[0].Value.Uint64(), f.headroom))
	}
	f.arm()
}
