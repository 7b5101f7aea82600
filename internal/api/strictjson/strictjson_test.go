package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	ok := []string{
		`{}`, `[]`, `1`, `"s"`, `null`, " {\"a\":1}\n\r\t ",
		`{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`, // the same key in different objects
		`{"a":[1,2,{"b":[]}],"d":1e999}`,            // a number out of float64's range is still JSON
		`{"ä":1,"Ä2":2}`,
	}
	for _, s := range ok {
		if err := Check([]byte(s)); err != nil {
			t.Errorf("Check(%s): %v", s, err)
		}
	}
	dups := []struct{ in, key, path string }{
		{`{"a":1,"a":2}`, "a", "a"},
		{`{"macs":[],"MACS":[]}`, "MACS", "MACS"},
		{`{"k":1,"\u212a":2}`, "\u212a", "\u212a"}, // the Kelvin sign folds to K, as encoding/json matches it
		{`{"x":{"a":1,"b":{},"b":2}}`, "b", "x.b"},
		{`{"x":[1,{"a":1},{"a":1,"a":2}]}`, "a", "x[2].a"},
		{`[[{"q":1,"q":1}]]`, "q", "[0][0].q"},
	}
	for _, d := range dups {
		var e *DuplicateKeyError
		if err := Check([]byte(d.in)); !errors.As(err, &e) || e.Key != d.key || e.Path != d.path {
			t.Errorf("Check(%s): %v, want duplicate %q at %q", d.in, err, d.key, d.path)
		}
	}
	trailing := []string{`{} x`, `{}{}`, `1 2`, `"a""b"`, `{}]`, `[] }`, `null,`}
	for _, s := range trailing {
		var e *TrailingDataError
		if err := Check([]byte(s)); !errors.As(err, &e) {
			t.Errorf("Check(%s): %v, want trailing data", s, err)
		}
	}
	if err := Check([]byte(" \n")); !errors.Is(err, io.EOF) {
		t.Errorf("an empty body: %v, want io.EOF", err)
	}
	for _, s := range []string{`{"a":`, `[1,2`, `{"a"`} {
		if err := Check([]byte(s)); err == nil || errors.Is(err, io.EOF) {
			t.Errorf("Check(%s): %v, want unexpected EOF", s, err)
		}
	}
	var se *json.SyntaxError
	if err := Check([]byte(`{"a" 1}`)); !errors.As(err, &se) {
		t.Errorf("malformed: %v, want a *json.SyntaxError", err)
	}
	var deep *TooDeepError
	if err := Check([]byte(strings.Repeat("[", 1<<20))); !errors.As(err, &deep) {
		t.Errorf("a million '[': %v, want too deep", err)
	}
	if err := Check([]byte(strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth))); err != nil {
		t.Errorf("nesting of exactly MaxDepth: %v", err)
	}
}

func TestDecode(t *testing.T) {
	var v struct {
		Macs []string `json:"macs"`
	}
	if err := Decode([]byte(`{"macs":["a"]}`), &v); err != nil || len(v.Macs) != 1 {
		t.Fatalf("Decode: %v %v", err, v)
	}
	if err := Decode([]byte(`{"macz":[]}`), &v); err == nil || !strings.Contains(err.Error(), "unknown field") {
		t.Errorf("unknown field: %v", err)
	}
	var dup *DuplicateKeyError
	if err := Decode([]byte(`{"macs":["a"],"Macs":["b"]}`), &v); !errors.As(err, &dup) {
		t.Errorf("duplicate: %v", err)
	}
}

// FuzzCheck: never a panic; what Check accepts encoding/json finds valid
// and decodes; what encoding/json finds valid Check refuses only for a
// duplicate key or depth. (A duplicate is reported as soon as it is read,
// so in a body that breaks off later too.)
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		`{"macs":["52:54:00:aa:00:01"],"labels":["lab"],"profile":"p","secure_boot":true}`,
		`{"entry":"rescue","expires":"2h","always":false}`,
		`{"a":1,"A":2}`, `{"x":[{"a":1},{"a":1,"a":2}]}`, `{} x`, `[[[[`, `"\u212a"`, `{"k":1,"\u212a":2}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Check(data)
		valid := json.Valid(data)
		if err == nil {
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.UseNumber() // 1e999 is JSON, if not a float64
			var v any
			if !valid || dec.Decode(&v) != nil {
				t.Fatalf("Check accepted %q, which encoding/json refuses", data)
			}
			return
		}
		var dup *DuplicateKeyError
		var deep *TooDeepError
		switch {
		case errors.As(err, &dup):
			if dup.Offset < 1 || dup.Offset > int64(len(data)) || !strings.HasSuffix(dup.Path, dup.Key) {
				t.Fatalf("duplicate %+v in %q", dup, data)
			}
		case errors.As(err, &deep):
		case valid:
			t.Fatalf("Check refused valid JSON %q: %v", data, err)
		}
	})
}
