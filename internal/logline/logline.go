// Package logline writes the lines a server logs once per request it
// answers — the HTTP access log's line, the DHCP lease line — into the
// service log, in the service log's format.
//
// slog's Logger makes a Record and hands it to its handler, which walks
// the record's attributes through code that serves every kind of value,
// group and option. For a line written tens of thousands of times a second
// that is most of what logging it costs: the access-log line of a small
// file took 0.95 µs through a slog.Record and slog's text handler, and
// 0.38 µs appended straight into a buffer (BenchmarkLine). Serving an
// 8 KiB file under wrk, the server spent 1.15 µs less CPU a request and
// answered 3.7% more requests a second (paired medians of ten rounds,
// bench/floor.sh with BASE_BIN; bench/README.md, fortieth session).
//
// So a Line appends its text itself when the logger's handler is the
// service's text handler (Text), and otherwise — the JSON format, or a
// test's handler — it becomes a slog.Record for that handler, as every
// other line does. The text it appends is slog's text handler's, byte for
// byte: TestSameAsSlog and FuzzSameAsSlog hold the two to one output.
package logline

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Text is the service log's text handler: slog's TextHandler writing to
// out at level, with neither source lines nor attribute rewriting, which
// is what lets a Line append the same text on its own.
type Text struct {
	slog.Handler // slog.NewTextHandler on out
	out          *lockedWriter
}

// NewText returns the text handler of a service log that writes to out
// the records at level or above.
func NewText(out io.Writer, level slog.Leveler) *Text {
	w := &lockedWriter{w: out}
	return &Text{Handler: slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}), out: w}
}

// lockedWriter writes one line at a time, whichever way it was made:
// slog's handler holds a lock of its own while it writes, which a Line
// cannot share.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// A Line is one line being written: Start it, add its attributes, Write
// it. A nil Line (its level is not logged) takes them and writes nothing.
type Line struct {
	text *Text  // appending into buf; nil: building rec for log
	buf  []byte // the line so far
	log  *slog.Logger
	rec  slog.Record
}

var lines = sync.Pool{New: func() any { return &Line{buf: make([]byte, 0, 256)} }}

// Start begins a line of log at level with msg, timed now. It returns nil
// if log does not write that level.
func Start(log *slog.Logger, level slog.Level, msg string) *Line {
	if !log.Enabled(context.Background(), level) {
		return nil
	}
	return start(log, level, msg, time.Now())
}

// start is Start at a given time, for the tests.
func start(log *slog.Logger, level slog.Level, msg string, now time.Time) *Line {
	l := lines.Get().(*Line)
	if t, ok := log.Handler().(*Text); ok {
		l.text = t
		l.buf = append(l.buf[:0], "time="...)
		l.buf = appendMillis(l.buf, now.Round(0))
		l.buf = append(l.buf, " level="...)
		l.buf = appendString(l.buf, level.String())
		l.buf = append(l.buf, " msg="...)
		l.buf = appendString(l.buf, msg)
		return l
	}
	// The record goes to the handler directly, as slog's docs show for
	// wrappers: Logger.Log would first walk the stack for a source line
	// that the service log does not print.
	l.log, l.rec = log, slog.NewRecord(now, level, msg, 0)
	return l
}

// Str adds a string attribute.
func (l *Line) Str(key, value string) *Line {
	if l == nil {
		return nil
	}
	if l.text == nil {
		l.rec.AddAttrs(slog.String(key, value))
		return l
	}
	l.buf = appendString(l.key(key), value)
	return l
}

// Int adds an integer attribute.
func (l *Line) Int(key string, value int64) *Line {
	if l == nil {
		return nil
	}
	if l.text == nil {
		l.rec.AddAttrs(slog.Int64(key, value))
		return l
	}
	l.buf = strconv.AppendInt(l.key(key), value, 10)
	return l
}

// Duration adds a duration attribute.
func (l *Line) Duration(key string, value time.Duration) *Line {
	if l == nil {
		return nil
	}
	if l.text == nil {
		l.rec.AddAttrs(slog.Duration(key, value))
		return l
	}
	l.buf = append(l.key(key), value.String()...)
	return l
}

// Bool adds a boolean attribute.
func (l *Line) Bool(key string, value bool) *Line {
	if l == nil {
		return nil
	}
	if l.text == nil {
		l.rec.AddAttrs(slog.Bool(key, value))
		return l
	}
	l.buf = strconv.AppendBool(l.key(key), value)
	return l
}

// key appends " key=" to the line.
func (l *Line) key(key string) []byte {
	return append(appendString(append(l.buf, ' '), key), '=')
}

// Write writes the line to the log, which drops a write error as slog's
// Logger does: there is nowhere to report it.
func (l *Line) Write() {
	if l == nil {
		return
	}
	if l.text != nil {
		l.buf = append(l.buf, '\n')
		l.text.out.Write(l.buf)
	} else {
		_ = l.log.Handler().Handle(context.Background(), l.rec)
	}
	l.text, l.log, l.rec = nil, nil, slog.Record{}
	if cap(l.buf) <= 4<<10 { // a line with a huge attribute is not kept
		lines.Put(l)
	}
}

// appendMillis appends t as slog's text handler writes a record's time:
// RFC 3339 with milliseconds, always three digits of them.
func appendMillis(b []byte, t time.Time) []byte {
	const prefix = len("2006-01-02T15:04:05.000")
	n := len(b)
	// RFC3339Nano drops trailing zeros: a tenth of a millisecond added
	// keeps four digits, and the fourth is cut.
	b = t.Truncate(time.Millisecond).Add(time.Millisecond/10).AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefix], b[n+prefix+1:]...)
}

// appendString appends s as slog's text handler writes a string: as it
// is, or quoted (strconv.Quote) if it is empty or holds a space, '=', '"',
// a control character or a rune that is not printable.
func appendString(b []byte, s string) []byte {
	if needsQuoting(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

func needsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == '=' || c == '"' {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}
