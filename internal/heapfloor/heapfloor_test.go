package heapfloor

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, headroom uint64
		want           int
	}{
		{live: 64 * mib, headroom: 32 * mib, want: 100}, // large anyway: GOGC's 100
		{live: 32 * mib, headroom: 32 * mib, want: 100}, // the two goals meet
		{live: 16 * mib, headroom: 32 * mib, want: 200}, // 16 + 32
		{live: 8 * mib, headroom: 32 * mib, want: 400},  // 8 + 32
		{live: 2 * mib, headroom: 32 * mib, want: 850},  // 2 + 32: the runtime's least goal, 4 MiB × 8.5, is the 34 MiB
		{live: 0, headroom: 32 * mib, want: 800},        // before the first cycle: a goal of 32 MiB
		{live: 1, headroom: math.MaxUint32 * mib, want: math.MaxInt32},
	} {
		if got := Percent(c.live, c.headroom); got != c.want {
			t.Errorf("Percent(%d, %d) = %d, want %d", c.live, c.headroom, got, c.want)
		}
	}
}

// goal is the runtime's current heap goal.
func goal() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestStartRaisesTheGoal runs the real collector: after a cycle the goal
// is at least the headroom above the live heap, and after stop the
// collector goes back to GOGC's 100.
func TestStartRaisesTheGoal(t *testing.T) {
	const headroom = 48 << 20
	t.Setenv("GOGC", "")
	stop := Start(headroom)
	runtime.GC()
	deadline := time.Now().Add(10 * time.Second)
	for goal() < headroom {
		if time.Now().After(deadline) {
			t.Fatalf("heap goal %d after a cycle, want at least %d", goal(), headroom)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // the cleanup runs after the cycle, on its own goroutine
	}
	stop()
	if old := debug.SetGCPercent(100); old != 100 {
		t.Errorf("GC percent after stop = %d, want 100", old)
	}
	runtime.GC()
	if g := goal(); g >= headroom {
		t.Errorf("heap goal %d after stop, want GOGC's (under %d)", g, headroom)
	}
}

// TestStartStandsAsideForGOGC: an operator's GOGC wins.
func TestStartStandsAsideForGOGC(t *testing.T) {
	t.Setenv("GOGC", "100")
	defer Start(1 << 30)()
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	runtime.GC()
	if g := goal(); g >= 1<<30 {
		t.Errorf("heap goal %d with GOGC set, want GOGC's", g)
	}
}
