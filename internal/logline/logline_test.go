package logline

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// attr is one attribute of a test line, added to a Line or a Record.
type attr struct {
	key  string
	kind byte // s, i, d, b
	s    string
	i    int64
	b    bool
}

func (a attr) addTo(l *Line) {
	switch a.kind {
	case 's':
		l.Str(a.key, a.s)
	case 'i':
		l.Int(a.key, a.i)
	case 'd':
		l.Duration(a.key, time.Duration(a.i))
	case 'b':
		l.Bool(a.key, a.b)
	}
}

func (a attr) slog() slog.Attr {
	switch a.kind {
	case 's':
		return slog.String(a.key, a.s)
	case 'i':
		return slog.Int64(a.key, a.i)
	case 'd':
		return slog.Duration(a.key, time.Duration(a.i))
	}
	return slog.Bool(a.key, a.b)
}

// both writes one line through Text and through slog's own text handler,
// and returns the two outputs.
func both(t testing.TB, at time.Time, level slog.Level, msg string, attrs []attr) (line, want string) {
	var got, ref bytes.Buffer
	l := start(slog.New(NewText(&got, slog.LevelDebug)), level, msg, at)
	if l.text == nil {
		t.Fatal("a Line on Text went the slow way")
	}
	for _, a := range attrs {
		a.addTo(l)
	}
	l.Write()
	r := slog.NewRecord(at, level, msg, 0)
	for _, a := range attrs {
		r.AddAttrs(a.slog())
	}
	if err := slog.NewTextHandler(&ref, &slog.HandlerOptions{Level: slog.LevelDebug}).Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return got.String(), ref.String()
}

func TestSameAsSlog(t *testing.T) {
	at := time.Date(2026, 12, 8, 1, 2, 3, 40_000_000, time.FixedZone("", 3600))
	for _, tc := range []struct {
		level slog.Level
		msg   string
		attrs []attr
	}{
		{slog.LevelInfo, "http request", []attr{{key: "client", kind: 's', s: "192.0.2.7"}, {key: "method", kind: 's', s: "GET"},
			{key: "path", kind: 's', s: "/boot/vmlinuz"}, {key: "status", kind: 'i', i: 200}, {key: "bytes", kind: 'i', i: 8192},
			{key: "duration", kind: 'd', i: 224_000}, {key: "tls", kind: 'b', b: true}}},
		{slog.LevelWarn, "dhcp: lease", []attr{{key: "ip", kind: 's', s: "2001:db8::7"}, {key: "boot", kind: 's', s: ""}}},
		{slog.LevelInfo + 2, "a message with spaces", []attr{{key: "path", kind: 's', s: "/a b=\"c\"\\d\x00é\u00a0\u2028\xff"},
			{key: "key with space", kind: 'i', i: -1}, {key: "d", kind: 'd', i: -1}}},
		{slog.LevelDebug, "", nil},
	} {
		if line, want := both(t, at, tc.level, tc.msg, tc.attrs); line != want {
			t.Errorf("line\n%q\nslog's text handler\n%q", line, want)
		}
	}
}

func TestTimeHasThreeDigits(t *testing.T) {
	for _, ns := range []int{0, 1, 999_999, 1_000_000, 100_000_000, 999_999_999} {
		at := time.Date(2026, 1, 2, 3, 4, 5, ns, time.UTC)
		if line, want := both(t, at, slog.LevelInfo, "m", nil); line != want {
			t.Errorf("at %v: %q, slog %q", at, line, want)
		}
	}
}

// Another handler than Text (the JSON format, a test's) gets the line as
// a record: what it writes is what slog writes.
func TestOtherHandlersGetARecord(t *testing.T) {
	var got, ref bytes.Buffer
	at := time.Now()
	l := start(slog.New(slog.NewJSONHandler(&got, nil)), slog.LevelInfo, "http request", at)
	l.Str("client", "192.0.2.1").Int("status", 404).Duration("duration", time.Millisecond).Bool("tls", false).Write()
	r := slog.NewRecord(at, slog.LevelInfo, "http request", 0)
	r.AddAttrs(slog.String("client", "192.0.2.1"), slog.Int64("status", 404), slog.Duration("duration", time.Millisecond), slog.Bool("tls", false))
	slog.NewJSONHandler(&ref, nil).Handle(context.Background(), r)
	if got.String() != ref.String() {
		t.Errorf("got %q, want %q", got.String(), ref.String())
	}
	// A logger derived from Text with attributes of its own is not
	// Text: the line keeps them.
	var out bytes.Buffer
	Start(slog.New(NewText(&out, slog.LevelInfo)).With("listener", "boot"), slog.LevelInfo, "m").Str("k", "v").Write()
	if !strings.Contains(out.String(), "listener=boot") {
		t.Errorf("derived logger lost its attribute: %q", out.String())
	}
}

func TestLevelBelowTheLogsIsNotWritten(t *testing.T) {
	var out bytes.Buffer
	level := new(slog.LevelVar)
	level.Set(slog.LevelWarn)
	log := slog.New(NewText(&out, level))
	l := Start(log, slog.LevelInfo, "http request")
	if l != nil {
		t.Fatal("an info line started on a log at warn")
	}
	l.Str("a", "b").Int("c", 1).Duration("d", 1).Bool("e", true).Write() // a nil Line takes them
	level.Set(slog.LevelInfo)
	Start(log, slog.LevelInfo, "now").Write()
	if s := out.String(); !strings.Contains(s, "msg=now") || strings.Contains(s, "http request") {
		t.Errorf("log holds %q", s)
	}
}

func FuzzSameAsSlog(f *testing.F) {
	f.Add("http request", "path", "/w8.bin", int64(200), int64(1_700_000_000_123_456_789), true)
	f.Add("", "", "", int64(-1), int64(0), false)
	f.Add("a=b", "k\"", "é\u00a0\xff\x7f\\", int64(1<<62), int64(-1), true)
	f.Fuzz(func(t *testing.T, msg, key, s string, n, unixNano int64, b bool) {
		at := time.Unix(0, unixNano%(1<<62)).UTC() // years 0 to 9999 are what slog writes as RFC 3339
		if at.Year() < 1 || at.Year() > 9999 {
			at = time.Unix(0, 0)
		}
		attrs := []attr{{key: key, kind: 's', s: s}, {key: key, kind: 'i', i: n}, {key: s, kind: 'd', i: n}, {key: msg, kind: 'b', b: b}}
		if line, want := both(t, at, slog.Level(n%16), msg, attrs); line != want {
			t.Errorf("line\n%q\nslog's text handler\n%q", line, want)
		}
	})
}

func BenchmarkLine(b *testing.B) {
	start := time.Now()
	line := func(b *testing.B, log *slog.Logger) {
		for b.Loop() {
			Start(log, slog.LevelInfo, "http request").Str("client", "192.0.2.7").Str("method", "GET").Str("path", "/w8.bin").
				Int("status", 200).Int("bytes", 8192).Duration("duration", time.Since(start).Round(time.Microsecond)).Write()
		}
	}
	b.Run("text", func(b *testing.B) { line(b, slog.New(NewText(discard{}, slog.LevelInfo))) })
	b.Run("slog", func(b *testing.B) { line(b, slog.New(slog.NewTextHandler(discard{}, nil))) })
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
