package stall

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// blockingBody delivers data, then blocks until its context ends, as a
// server that stops sending does.
type blockingBody struct {
	ctx  context.Context
	data []byte
}

func (b *blockingBody) Read(p []byte) (int, error) {
	if len(b.data) > 0 {
		n := copy(p, b.data)
		b.data = b.data[n:]
		return n, nil
	}
	<-b.ctx.Done()
	return 0, b.ctx.Err()
}

func (b *blockingBody) Close() error { return nil }

func TestReader(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	r := NewReader(ctx, cancel, &blockingBody{ctx: ctx, data: []byte("some bytes")}, 50*time.Millisecond)
	defer r.Close()
	start := time.Now()
	b, err := io.ReadAll(r)
	if string(b) != "some bytes" || !errors.Is(err, ErrStalled) || !strings.Contains(err.Error(), "no data for 50ms") {
		t.Fatalf("read %q, err %v; want the bytes, then ErrStalled naming the period", b, err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("took %s to notice the stall", time.Since(start))
	}

	// A body that keeps delivering never stalls, though it takes longer
	// than the idle time in all.
	ctx2, cancel2 := context.WithCancelCause(context.Background())
	slow := NewReader(ctx2, cancel2, io.NopCloser(&tricklingReader{n: 20, every: 100 * time.Millisecond}), time.Second)
	defer slow.Close()
	if b, err := io.ReadAll(slow); err != nil || len(b) != 20 {
		t.Fatalf("read %d bytes, err %v", len(b), err)
	}
}

// tricklingReader yields one byte every so often.
type tricklingReader struct {
	n     int
	every time.Duration
}

func (r *tricklingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(r.every)
	r.n--
	p[0] = 'x'
	return 1, nil
}
