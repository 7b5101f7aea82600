// Package strictjson decodes a JSON request body that must be exactly one
// value, with no object key given twice.
//
// encoding/json takes the last of duplicate keys and stops reading after
// the first value, so `{"macs":[A],"macs":[B]}` and `{...} garbage` are
// accepted as something other than what the client may have meant. Two
// parsers that disagree on such input (a proxy or audit tool keeping the
// first key, the server the last) are a known way to smuggle a request
// past a check (RFC 8259 §4 leaves duplicate names to the implementation;
// RFC 7493 I-JSON forbids them). encoding/json/v2 refuses both, but is
// still behind GOEXPERIMENT=jsonv2 in this Go, so this package walks the
// tokens of encoding/json's Decoder once before the real decode.
//
// Keys count as the same when encoding/json would fill the same field
// with them: it matches names case-insensitively (under Unicode simple
// case folding), so "macs" and "MACS" are duplicates too. None of the
// bodies it serves has a map whose keys differ only in case.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
)

// MaxDepth bounds the nesting of arrays and objects. The API's bodies
// nest two deep; the bound keeps a body of a million '[' cheap.
const MaxDepth = 32

// DuplicateKeyError is an object key given twice.
type DuplicateKeyError struct {
	Key    string // as the second occurrence spells it
	Path   string // where it is, e.g. "macs" or "a[2].b"
	Offset int64  // the byte after the key
}

func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("duplicate key %q at byte %d", e.Key, e.Offset)
}

// TrailingDataError is anything but white space after the value.
type TrailingDataError struct {
	Offset int64 // the byte where the value ended
}

func (e *TrailingDataError) Error() string {
	return fmt.Sprintf("data after the JSON value (at byte %d); send exactly one value", e.Offset)
}

// TooDeepError is nesting past MaxDepth.
type TooDeepError struct {
	Offset int64
}

func (e *TooDeepError) Error() string {
	return fmt.Sprintf("nested deeper than %d at byte %d", MaxDepth, e.Offset)
}

// Decode checks data (see Check) and then decodes it into v with
// encoding/json, refusing fields that v does not have. An empty body is
// io.EOF.
func Decode(data []byte, v any) error {
	if err := Check(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// frame is one open array or object.
type frame struct {
	object bool
	seen   map[string]bool // folded keys so far (objects)
	key    string          // the member being read (objects)
	index  int             // the element being read (arrays)
	inKey  bool            // the next token is a key, or the end (objects)
}

// Check reports whether data is exactly one JSON value (white space
// around it allowed) with no duplicate keys and nesting within MaxDepth.
// Malformed JSON gets encoding/json's *json.SyntaxError; an empty body
// io.EOF.
func Check(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers are not converted, so never out of range
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) && len(stack) > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.inKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
			} else {
				key, _ := tok.(string) // the decoder allows nothing else here
				folded := fold(key)
				if top.seen[folded] {
					return &DuplicateKeyError{Key: key, Path: path(stack, key), Offset: dec.InputOffset()}
				}
				top.seen[folded] = true
				top.key, top.inKey = key, false
				continue
			}
		} else if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if len(stack) == MaxDepth {
					return &TooDeepError{Offset: dec.InputOffset()}
				}
				f := &frame{object: d == '{', inKey: d == '{'}
				if f.object {
					f.seen = map[string]bool{}
				}
				stack = append(stack, f)
				continue
			case ']':
				stack = stack[:len(stack)-1]
			}
		}
		// A value is complete: a scalar, or a closed array or object.
		if len(stack) == 0 {
			end := dec.InputOffset()
			if _, err := dec.Token(); !errors.Is(err, io.EOF) {
				return &TrailingDataError{Offset: end}
			}
			return nil
		}
		parent := stack[len(stack)-1]
		if parent.object {
			parent.inKey = true
		} else {
			parent.index++
		}
	}
}

// path names the member key of the innermost open object, e.g. "a[2].b".
func path(stack []*frame, key string) string {
	var b strings.Builder
	for _, f := range stack[:len(stack)-1] {
		if f.object {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		} else {
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
		}
	}
	if b.Len() > 0 {
		b.WriteByte('.')
	}
	b.WriteString(key)
	return b.String()
}

// fold maps every key encoding/json takes for the same field name to one
// string: each rune becomes the smallest rune of its simple case-folding
// orbit (k, K and the Kelvin sign all become K).
func fold(s string) string {
	return strings.Map(func(r rune) rune {
		smallest := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < smallest {
				smallest = f
			}
		}
		return smallest
	}, s)
}
