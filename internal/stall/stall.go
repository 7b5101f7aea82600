// Package stall fails an HTTP transfer that stops delivering data.
//
// A download of an image or an ISO may rightly take hours, so its client
// has no overall timeout; but a server that sends the headers and part of
// the body and then nothing would hold it forever. A Reader over the body
// aborts the request once no byte has come for an idle period, and the
// read that was waiting returns an error that says so (ErrStalled).
// `image import` and `mirror sync` share it.
package stall

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrStalled is in the error of a read whose transfer delivered nothing
// for the idle period.
var ErrStalled = errors.New("the transfer stalled")

// Reader is a response body that fails after an idle period without data.
type Reader struct {
	body   io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	idle   time.Duration
	err    error // what a stalled read returns
}

// NewReader watches body, the body of a request made with ctx, which
// cancel cancels: once idle passes without a byte, it cancels ctx, which
// ends the read waiting on body. Close stops the watch and cancels ctx.
func NewReader(ctx context.Context, cancel context.CancelCauseFunc, body io.ReadCloser, idle time.Duration) *Reader {
	r := &Reader{body: body, ctx: ctx, cancel: cancel, idle: idle,
		err: fmt.Errorf("%w: no data for %s", ErrStalled, idle)}
	r.timer = time.AfterFunc(idle, func() { cancel(r.err) })
	return r
}

func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	if n > 0 {
		r.timer.Reset(r.idle)
	}
	// The transport reports the cancellation as its own error (context
	// canceled, or a closed body); the cause is the stall.
	if err != nil && err != io.EOF && errors.Is(context.Cause(r.ctx), ErrStalled) {
		err = r.err
	}
	return n, err
}

// Close closes the body and releases the request's context.
func (r *Reader) Close() error {
	r.timer.Stop()
	err := r.body.Close()
	r.cancel(nil)
	return err
}
