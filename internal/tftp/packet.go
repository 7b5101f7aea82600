package tftp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"strings"
)

// Opcodes (RFC 1350, RFC 2347).
const (
	opRRQ   = 1
	opWRQ   = 2
	opDATA  = 3
	opACK   = 4
	opERROR = 5
	opOACK  = 6
)

// Error codes (RFC 1350, RFC 2347).
const (
	errUndefined     = 0
	errNotFound      = 1
	errAccess        = 2
	errIllegalOp     = 4
	errUnknownTID    = 5
	errOptionRefused = 8
)

// maxOptions bounds the options in one request. RFC 2347 names five in use;
// a flood of them is an attack on the parser.
const maxOptions = 32

// option is one name/value pair as the client sent it.
type option struct{ name, value string }

// request is a parsed RRQ or WRQ.
type request struct {
	op       uint16
	filename string
	mode     string // lower case
	options  []option
}

// same reports whether r asks exactly what o asks: the same operation,
// file, mode and options. A client that repeats a request it got no
// answer to sends the same one; one that changes anything (a plain RRQ
// after one with options, another blksize, another file) makes a new
// request (see Server.handle).
func (r request) same(o request) bool {
	return r.op == o.op && r.filename == o.filename && r.mode == o.mode && sameOptions(r.options, o.options)
}

// sameOptions reports whether a and b ask the same options. RFC 2347's
// options are a set, in any order, so a repeated request may list them
// in another; of a name given twice, negotiate reads the first.
func sameOptions(a, b []option) bool {
	if slices.Equal(a, b) { // a repeat as sent, the usual case
		return true
	}
	first := func(opts []option) map[string]string {
		m := make(map[string]string, len(opts))
		for _, o := range opts {
			if _, ok := m[o.name]; !ok {
				m[o.name] = o.value
			}
		}
		return m
	}
	return maps.Equal(first(a), first(b))
}

var (
	errShort        = errors.New("packet too short")
	errNoTerminator = errors.New("field without NUL terminator")
	errTooMany      = errors.New("too many options")
)

// parseRequest parses an RRQ or WRQ. It never panics on any input.
func parseRequest(b []byte) (request, error) {
	if len(b) < 2 {
		return request{}, errShort
	}
	req := request{op: binary.BigEndian.Uint16(b)}
	if req.op != opRRQ && req.op != opWRQ {
		return request{}, errors.New("not a request")
	}
	fields, err := splitNUL(b[2:])
	if err != nil {
		return request{}, err
	}
	if len(fields) < 2 {
		return request{}, errShort
	}
	req.filename, req.mode = fields[0], strings.ToLower(fields[1])
	rest := fields[2:]
	if len(rest)%2 != 0 {
		// An option name without a value at the end (or a NUL byte of
		// padding, an empty name) is ignored and the rest served, as
		// tftpd-hpa and dnsmasq do: dropping the whole request left the
		// client retrying into silence, for an option RFC 2347 lets the
		// server ignore anyway.
		rest = rest[:len(rest)-1]
	}
	if len(rest)/2 > maxOptions {
		return request{}, errTooMany
	}
	for i := 0; i < len(rest); i += 2 {
		req.options = append(req.options, option{strings.ToLower(rest[i]), rest[i+1]})
	}
	return req, nil
}

// splitNUL splits NUL-terminated strings. The last one must be terminated.
func splitNUL(b []byte) ([]string, error) {
	var out []string
	for len(b) > 0 {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			return nil, errNoTerminator
		}
		out = append(out, string(b[:i]))
		b = b[i+1:]
		if len(out) > 2*maxOptions+2 {
			return nil, errTooMany
		}
	}
	return out, nil
}

// parseAck returns the block number of an ACK.
func parseAck(b []byte) (uint16, bool) {
	if len(b) < 4 || binary.BigEndian.Uint16(b) != opACK {
		return 0, false
	}
	return binary.BigEndian.Uint16(b[2:]), true
}

// parseError returns the code and message of an ERROR packet.
func parseError(b []byte) (uint16, string, bool) {
	if len(b) < 4 || binary.BigEndian.Uint16(b) != opERROR {
		return 0, "", false
	}
	msg := b[4:]
	if i := bytes.IndexByte(msg, 0); i >= 0 {
		msg = msg[:i]
	}
	return binary.BigEndian.Uint16(b[2:]), string(msg), true
}

func opcode(b []byte) uint16 {
	if len(b) < 2 {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

func appendError(b []byte, code uint16, msg string) []byte {
	b = binary.BigEndian.AppendUint16(b, opERROR)
	b = binary.BigEndian.AppendUint16(b, code)
	b = append(b, msg...)
	return append(b, 0)
}

func appendOACK(b []byte, opts []option) []byte {
	b = binary.BigEndian.AppendUint16(b, opOACK)
	for _, o := range opts {
		b = append(b, o.name...)
		b = append(b, 0)
		b = append(b, o.value...)
		b = append(b, 0)
	}
	return b
}

func putDataHeader(b []byte, block uint16) {
	binary.BigEndian.PutUint16(b, opDATA)
	binary.BigEndian.PutUint16(b[2:], block)
}
