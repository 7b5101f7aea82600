package httpd

import (
	"net"
	"sync"
	"sync/atomic"
)

// A body sent over TLS while other requests are in flight leaves in
// writes of eight records, corked; a body sent alone leaves as crypto/tls
// writes it, a record a write, uncorked (fastBody.WriteTo decides, from
// the limits' count of requests in flight).
//
// The gathering is for the server's CPU. crypto/tls writes each record it
// seals, 16 KiB of a body at most, with a write(2) of its own, and each
// write costs a system call, a pass through the TCP stack and, on a fast
// network, a wakeup of the client: an HTTPS download took 1.39× nginx's
// server CPU, gathered 1.10×; under 64 connections on a 1 MiB file,
// gathered bodies went at 1,185–1,235 requests a second, bodies a record
// a write at 921–1,056, nginx's at 1,003–1,161 (bench/README.md).
//
// A body sent alone waits on its client instead, and a client reading
// records that came corked, eight to a write, spent 6–8% more CPU than
// reading them as nginx sends them: curl took 1,157–1,187 ms per GiB over
// loopback against 1,105 (1,054–1,108 from nginx), and the download went
// at 0.94× nginx's speed against 0.99× (medians of 9 to 11 downloads,
// bench/README.md, thirty-fifth session).
//
// Only bodies are gathered (fastBody.WriteTo brackets them): the
// handshake and the headers of a small answer go out as crypto/tls writes
// them, so that nothing waits in a buffer for a write that may not come.

// recordListener hands out its connections as recordConns, for TLS.
type recordListener struct{ net.Listener }

func (l recordListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordConn{Conn: c}, nil
}

// recordConn is the connection under a TLS one: it writes through, except
// between gather and release, when it writes in pieces of gatherSize.
type recordConn struct {
	net.Conn
	mu  sync.Mutex // Write runs under crypto/tls's lock; gather and release do not
	buf []byte     // gathered, not yet written; nil when not gathering
}

// gatherSize holds eight full TLS records (16 KiB of data each, with
// header, content type and tag). Four records a write took 11% less CPU
// than one, eight 24% less, sixteen 21% less.
const gatherSize = 8 * (16<<10 + 64)

var gatherBufs = sync.Pool{New: func() any { b := make([]byte, 0, gatherSize); return &b }}

func (c *recordConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf == nil {
		return c.Conn.Write(p)
	}
	if len(c.buf)+len(p) > cap(c.buf) {
		if err := c.flush(); err != nil {
			return 0, err
		}
		if len(p) > cap(c.buf) {
			return c.Conn.Write(p)
		}
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

// gathers counts the bodies gathered, for the tests.
var gathers atomic.Int64

// gather starts gathering writes.
func (c *recordConn) gather() {
	gathers.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf == nil {
		c.buf = (*gatherBufs.Get().(*[]byte))[:0]
	}
}

// release writes what was gathered and stops gathering.
func (c *recordConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf == nil {
		return nil
	}
	err := c.flush()
	b := c.buf
	c.buf = nil
	gatherBufs.Put(&b)
	return err
}

// flush writes the gathered bytes; it runs under mu.
func (c *recordConn) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}
