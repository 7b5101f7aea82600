package tftp

import (
	"bytes"
	"strings"
	"testing"
)

func rrq(fields ...string) []byte {
	b := []byte{0, opRRQ}
	for _, f := range fields {
		b = append(b, f...)
		b = append(b, 0)
	}
	return b
}

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name    string
		pkt     []byte
		want    request
		wantErr bool
	}{
		{"plain", rrq("pxelinux.0", "octet"), request{op: opRRQ, filename: "pxelinux.0", mode: "octet"}, false},
		{"mode is case-insensitive", rrq("a", "NetASCII"), request{op: opRRQ, filename: "a", mode: "netascii"}, false},
		{"options lower-cased", rrq("a", "octet", "BLKSIZE", "1468", "tsize", "0"),
			request{op: opRRQ, filename: "a", mode: "octet", options: []option{{"blksize", "1468"}, {"tsize", "0"}}}, false},
		{"wrq", append([]byte{0, opWRQ}, "f\x00octet\x00"...), request{op: opWRQ, filename: "f", mode: "octet"}, false},
		{"empty", nil, request{}, true},
		{"one byte", []byte{0}, request{}, true},
		{"opcode only", []byte{0, 1}, request{}, true},
		{"no NUL after name", []byte("\x00\x01pxelinux.0"), request{}, true},
		{"no NUL after mode", []byte("\x00\x01a\x00octet"), request{}, true},
		{"no mode", rrq("a"), request{}, true},
		{"last option without value ignored", rrq("a", "octet", "tsize", "0", "blksize"),
			request{op: opRRQ, filename: "a", mode: "octet", options: []option{{"tsize", "0"}}}, false},
		{"one NUL of padding ignored", []byte("\x00\x01a\x00octet\x00\x00"), request{op: opRRQ, filename: "a", mode: "octet"}, false},
		{"data opcode", []byte{0, opDATA, 0, 1}, request{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRequest(tt.pkt)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && !equalRequest(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseRequestOptionFlood(t *testing.T) {
	fields := []string{"a", "octet"}
	for i := 0; i < 300; i++ {
		fields = append(fields, "x", "1")
	}
	if _, err := parseRequest(rrq(fields...)); err == nil {
		t.Fatal("300 options accepted")
	}
	fields = fields[:2+2*maxOptions]
	if _, err := parseRequest(rrq(fields...)); err != nil {
		t.Fatalf("%d options refused: %v", maxOptions, err)
	}
}

func TestParseAckAndError(t *testing.T) {
	if n, ok := parseAck([]byte{0, opACK, 0xff, 0xfe}); !ok || n != 65534 {
		t.Fatalf("parseAck = %d, %v", n, ok)
	}
	if _, ok := parseAck([]byte{0, opACK, 1}); ok {
		t.Fatal("3-byte ACK accepted")
	}
	code, msg, ok := parseError(appendError(nil, errUnknownTID, "who?"))
	if !ok || code != errUnknownTID || msg != "who?" {
		t.Fatalf("parseError = %d %q %v", code, msg, ok)
	}
	if _, msg, ok := parseError([]byte{0, opERROR, 0, 1, 'x'}); !ok || msg != "x" {
		t.Fatalf("unterminated error message: %q %v", msg, ok)
	}
}

func TestAppendOACK(t *testing.T) {
	got := appendOACK(nil, []option{{"blksize", "1468"}, {"tsize", "42"}})
	want := []byte("\x00\x06blksize\x001468\x00tsize\x0042\x00")
	if !bytes.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// A repeated request is the same request whatever the order of its
// options (RFC 2347: a set); a changed value, an option more or less, or
// another first value of a name given twice is another request.
func TestSameRequestOptionsAreASet(t *testing.T) {
	parse := func(fields ...string) request {
		t.Helper()
		r, err := parseRequest(rrq(fields...))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	base := parse("f", "octet", "blksize", "1468", "tsize", "0", "windowsize", "8")
	for _, tt := range []struct {
		name string
		r    request
		same bool
	}{
		{"as sent", parse("f", "octet", "blksize", "1468", "tsize", "0", "windowsize", "8"), true},
		{"another order", parse("f", "octet", "windowsize", "8", "blksize", "1468", "tsize", "0"), true},
		{"names in another case", parse("f", "OCTET", "TSIZE", "0", "BlkSize", "1468", "windowsize", "8"), true},
		{"a name repeated after", parse("f", "octet", "tsize", "0", "windowsize", "8", "blksize", "1468", "blksize", "512"), true},
		{"another value", parse("f", "octet", "tsize", "0", "windowsize", "8", "blksize", "1024"), false},
		{"another first value", parse("f", "octet", "blksize", "512", "blksize", "1468", "tsize", "0", "windowsize", "8"), false},
		{"one fewer", parse("f", "octet", "tsize", "0", "blksize", "1468"), false},
		{"none", parse("f", "octet"), false},
		{"another file", parse("g", "octet", "windowsize", "8", "blksize", "1468", "tsize", "0"), false},
	} {
		if got := base.same(tt.r); got != tt.same {
			t.Errorf("%s: same = %v, want %v", tt.name, got, tt.same)
		}
		if got := tt.r.same(base); got != tt.same {
			t.Errorf("%s, the other way: same = %v, want %v", tt.name, got, tt.same)
		}
	}
}

func equalRequest(a, b request) bool {
	if a.op != b.op || a.filename != b.filename || a.mode != b.mode || len(a.options) != len(b.options) {
		return false
	}
	for i := range a.options {
		if a.options[i] != b.options[i] {
			return false
		}
	}
	return true
}

// FuzzParseRequest checks that no input panics the request parser and that
// whatever it accepts is within its bounds.
func FuzzParseRequest(f *testing.F) {
	f.Add(rrq("pxelinux.0", "octet"))
	f.Add(rrq("boot\\bcd", "netascii", "blksize", "1468", "windowsize", "64", "tsize", "0", "timeout", "3"))
	f.Add([]byte{0, 1})
	f.Add([]byte("\x00\x01abc"))
	f.Add(append([]byte{0, 2}, strings.Repeat("a\x00", 100)...))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		req, err := parseRequest(pkt)
		if err != nil {
			return
		}
		if req.op != opRRQ && req.op != opWRQ {
			t.Fatalf("accepted opcode %d", req.op)
		}
		if len(req.options) > maxOptions {
			t.Fatalf("accepted %d options", len(req.options))
		}
		if strings.ToLower(req.mode) != req.mode {
			t.Fatalf("mode not lower-cased: %q", req.mode)
		}
	})
}
