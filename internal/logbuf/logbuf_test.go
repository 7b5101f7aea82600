package logbuf

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
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
	w := New(out, 20*time.Millisecond)
	var want bytes.Buffer
	for i := range 100 {
		line := fmt.Sprintf("line %d\n", i)
		want.WriteString(line)
		if n, err := w.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if got, _ := out.all(); got != "" {
		t.Fatalf("written before the delay: %q", got)
	}
	w.Close()
	got, writes := out.all()
	if got != want.String() {
		t.Fatalf("got %q, want %q", got, want.String())
	}
	if writes != 1 {
		t.Errorf("100 lines within the delay took %d writes, want 1", writes)
	}
}

func TestALoneLineGoesOutAfterTheDelay(t *testing.T) {
	out := &recorder{}
	w := New(out, time.Millisecond)
	defer w.Close()
	w.Write([]byte("ready\n"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, _ := out.all(); got == "ready\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the line was never written")
		}
		time.Sleep(time.Millisecond)
	}
	// The next line starts a new batch.
	w.Write([]byte("more\n"))
	for {
		if got, n := out.all(); got == "ready\nmore\n" && n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second line was never written")
		}
		time.Sleep(time.Millisecond)
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
	w := New(out, 0)
	line := bytes.Repeat([]byte("x"), 1023)
	line = append(line, '\n')
	wrote := make(chan int)
	go func() {
		n := 0
		for range 4 * maxPending / len(line) {
			w.Write(line)
			n++
		}
		wrote <- n
	}()
	// The first batch is stuck in the output; at most maxPending more
	// can wait behind it.
	time.Sleep(200 * time.Millisecond)
	select {
	case n := <-wrote:
		t.Fatalf("all %d lines taken while the output was stalled", n)
	default:
	}
	w.mu.Lock()
	held := len(w.pending)
	w.mu.Unlock()
	if held > maxPending+len(line) {
		t.Errorf("%d bytes held, more than the bound %d", held, maxPending)
	}
	close(out.gate) // the output moves again
	n := <-wrote
	w.Close()
	if got, _ := out.all(); len(got) != n*len(line) {
		t.Errorf("%d bytes written, want %d", len(got), n*len(line))
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
