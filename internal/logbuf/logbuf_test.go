package logbuf

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is an output that keeps each write apart.
type recorder struct {
	mu     sync.Mutex
	writes []string
	gate   chan struct{} // if set, each write waits for a token
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func (r *recorder) all() (string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.writes, ""), len(r.writes)
}

func TestLinesGoOutInOrderAndTogether(t *testing.T) {
	out := &recorder{}
	w := New(out, time.Hour)
	var want bytes.Buffer
	for i := range 100 {
		line := fmt.Sprintf("line %d\n", i)
		want.WriteString(line)
		if n, err := w.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	// The first line found the log quiet and went out at once; the rest
	// came within the delay and wait for it.
	if got, _ := out.all(); got != "line 0\n" {
		t.Fatalf("written before the delay: %q, want the first line", got)
	}
	w.Close()
	got, writes := out.all()
	if got != want.String() {
		t.Fatalf("got %q, want %q", got, want.String())
	}
	if writes != 2 {
		t.Errorf("100 lines within the delay took %d writes, want 2", writes)
	}
}

func TestLinesWithinTheDelayGoOutAfterIt(t *testing.T) {
	out := &recorder{}
	w := New(out, 20*time.Millisecond)
	defer w.Close()
	w.Write([]byte("quiet\n"))
	start := time.Now()
	w.Write([]byte("soon\n"))
	w.Write([]byte("after\n"))
	deadline := start.Add(5 * time.Second)
	for {
		got, n := out.all()
		if got == "quiet\nsoon\nafter\n" {
			if n != 2 {
				t.Errorf("%d writes, want 2", n)
			}
			if waited := time.Since(start); waited < 20*time.Millisecond {
				t.Errorf("the lines within the delay went out after %s, before it ended", waited)
			}
			break
		}
		if got != "quiet\n" {
			t.Fatalf("got %q", got)
		}
		if time.Now().After(deadline) {
			t.Fatal("the lines within the delay were never written")
		}
		time.Sleep(time.Millisecond)
	}
	// Once the delay has passed, a line goes out at once again.
	time.Sleep(25 * time.Millisecond)
	w.Write([]byte("quiet again\n"))
	if got, _ := out.all(); !strings.HasSuffix(got, "after\nquiet again\n") {
		t.Errorf("a line after a quiet spell waited: %q", got)
	}
}

func TestConcurrentWritersKeepTheirLinesWhole(t *testing.T) {
	out := &recorder{}
	w := New(out, 100*time.Microsecond)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				w.Write([]byte(fmt.Sprintf("g%d %d\n", g, i)))
			}
		}()
	}
	wg.Wait()
	w.Close()
	got, _ := out.all()
	next := make([]int, 8)
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 8*2000 {
		t.Fatalf("%d lines, want %d", len(lines), 8*2000)
	}
	for _, l := range lines {
		var g, i int
		if _, err := fmt.Sscanf(l, "g%d %d", &g, &i); err != nil || g < 0 || g >= 8 {
			t.Fatalf("mangled line %q", l)
		}
		if i != next[g] {
			t.Fatalf("goroutine %d: line %d after %d: order lost", g, i, next[g]-1)
		}
		next[g]++
	}
}

func TestAStalledOutputHoldsWritersBack(t *testing.T) {
	out := &recorder{gate: make(chan struct{})}
	w := New(out, time.Millisecond)
	line := bytes.Repeat([]byte("x"), 1023)
	line = append(line, '\n')
	var taken atomic.Int64
	total := 4 * maxPending / len(line)
	done := make(chan struct{})
	go func() {
		for range total {
			w.Write(line)
			taken.Add(1)
		}
		close(done)
	}()
	// The first write is stuck in the output; the lines behind it wait in
	// memory, at most maxPending of them, or in their writers.
	time.Sleep(200 * time.Millisecond)
	if n := taken.Load(); n == int64(total) {
		t.Fatalf("all %d lines taken while the output was stalled", n)
	} else if held := n * int64(len(line)); held > maxPending+2*int64(len(line)) {
		t.Errorf("%d bytes taken while the output was stalled, more than the bound %d", held, maxPending)
	}
	close(out.gate) // the output moves again
	<-done
	w.Close()
	if got, _ := out.all(); len(got) != total*len(line) {
		t.Errorf("%d bytes written, want %d", len(got), total*len(line))
	}
}

func TestWritesAfterCloseGoStraightOut(t *testing.T) {
	out := &recorder{}
	w := New(out, time.Hour)
	w.Write([]byte("a\n"))
	w.Close()
	w.Write([]byte("b\n"))
	if got, _ := out.all(); got != "a\nb\n" {
		t.Fatalf("got %q", got)
	}
	w.Close() // twice is harmless
}
