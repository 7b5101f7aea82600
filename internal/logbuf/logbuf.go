// Package logbuf batches the service log's writes when they come fast.
//
// Every access-log line, TFTP transfer and DHCP lease is a line of the
// service log, and a write(2) of one line to a file on ext4 cost about
// 18 µs of the server's CPU here: a quarter of what serving an 8 KiB file
// costs in all. nginx buffers its access log for the same reason (its
// buffer= and flush=). A Writer writes a line at once when the last write
// is older than a short delay (a millisecond for the service); a line
// that comes sooner waits that delay, and goes out in one call with the
// lines that came meanwhile. So under load one write carries
// dozens of lines, while on a quiet server a line is in the log when the
// call that logged it returns, as it was without a Writer: a reader
// following the log, or a test that reads it after an action, sees no
// difference.
//
// bufio.Writer flushes only when full or told to, and is not safe for
// concurrent use; the log libraries that flush on a timer (zap's
// BufferedWriteSyncer) come with a whole logging stack. This is the part
// the service needs, on top of slog.
//
// What a crash loses: the lines of its last delay. A panic's trace goes to
// stderr directly, after them.
package logbuf

import (
	"io"
	"sync"
	"time"
)

// maxPending bounds the lines held: when the output stalls (a full pipe
// to a stuck reader), writers wait for it as they would without a Writer,
// rather than the process growing.
const maxPending = 1 << 20

// Writer is an io.Writer that writes to out what it was given, in the same
// order: at once if the last write is older than delay, else at most delay
// later. It is safe for concurrent use.
type Writer struct {
	out   io.Writer
	delay time.Duration

	mu      sync.Mutex
	room    sync.Cond // broadcast when the pending lines were taken
	pending []byte
	last    time.Time // of the last write to out
	closed  bool
	wake    chan struct{} // a flush is due
	stop    chan struct{} // closed by Close

	// outMu orders the writes to out: a flush takes it before it lets go
	// of mu, so batches go out in the order they were taken.
	outMu sync.Mutex
	spare []byte // the last batch's buffer, reused; under outMu
	done  chan struct{}
}

// New returns a Writer to out that holds the lines that come within delay
// of a write, and starts the goroutine that writes them. Close stops it.
func New(out io.Writer, delay time.Duration) *Writer {
	w := &Writer{out: out, delay: delay, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	w.room.L = &w.mu
	go w.run()
	return w
}

// Write writes p, at once if the last write is older than the delay, else
// within the delay. It never fails: an error of the output has nowhere to
// go but the log that failed. After Close, it writes p at once.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	for len(w.pending) >= maxPending && !w.closed {
		w.room.Wait()
	}
	now := time.Now()
	if w.closed || (len(w.pending) == 0 && now.Sub(w.last) >= w.delay) {
		// Quiet, or closed: out now, in the caller, behind what waits.
		var ahead []byte
		if w.closed {
			ahead, w.pending = w.pending, nil
		}
		w.last = now
		w.outMu.Lock()
		w.mu.Unlock()
		if len(ahead) > 0 {
			w.out.Write(ahead)
		}
		w.out.Write(p)
		w.outMu.Unlock()
		return len(p), nil
	}
	if len(w.pending) == 0 {
		select {
		case w.wake <- struct{}{}:
		default: // a flush is already due
		}
	}
	w.pending = append(w.pending, p...)
	w.mu.Unlock()
	return len(p), nil
}

// run writes the pending lines a delay after the first of them came.
func (w *Writer) run() {
	defer close(w.done)
	t := time.NewTimer(w.delay)
	t.Stop()
	for {
		select {
		case <-w.wake:
		case <-w.stop:
			return
		}
		t.Reset(w.delay)
		select {
		case <-t.C:
		case <-w.stop:
			return // Close flushes
		}
		w.flush()
	}
}

// flush writes the pending lines.
func (w *Writer) flush() {
	w.mu.Lock()
	b := w.pending
	w.outMu.Lock()
	w.pending, w.spare = w.spare[:0], nil
	if len(b) > 0 {
		w.last = time.Now()
	}
	w.room.Broadcast()
	w.mu.Unlock()
	defer w.outMu.Unlock()
	if len(b) > 0 {
		w.out.Write(b)
	}
	if cap(b) <= maxPending {
		w.spare = b
	}
}

// Close writes the pending lines and stops the goroutine; later writes go
// straight to out.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	close(w.stop)
	w.room.Broadcast()
	w.mu.Unlock()
	<-w.done
	w.flush()
	return nil
}
