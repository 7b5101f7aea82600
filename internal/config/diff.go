package config

import (
	"bytes"
	"encoding"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

var textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()

// Changed lists the keys whose values differ between a and b, by dotted
// path in schema order: "tftp.max_window_size", "dhcp.subnets[0].router".
// A list is compared element by element when its length is unchanged and
// is one key ("dhcp.subnets") when it is not; a map names each entry that
// was added, removed or changed. Values are compared as they are written
// in YAML, so 1m and 60s are the same timeout.
func Changed(a, b Config) []string {
	var out []string
	changed(reflect.ValueOf(a), reflect.ValueOf(b), "", &out)
	return out
}

func changed(a, b reflect.Value, path string, out *[]string) {
	t := a.Type()
	if t.Implements(textMarshaler) {
		if !sameText(a, b) {
			*out = append(*out, path)
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			changed(a.Field(i), b.Field(i), join(path, tag), out)
		}
	case reflect.Slice:
		if a.Len() != b.Len() {
			*out = append(*out, path)
			return
		}
		for i := range a.Len() {
			changed(a.Index(i), b.Index(i), path+"["+strconv.Itoa(i)+"]", out)
		}
	case reflect.Map:
		keys := map[string]reflect.Value{}
		for _, k := range append(a.MapKeys(), b.MapKeys()...) {
			keys[fmt.Sprint(k.Interface())] = k
		}
		names := make([]string, 0, len(keys))
		for name := range keys {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			va, vb := a.MapIndex(keys[name]), b.MapIndex(keys[name])
			if !va.IsValid() || !vb.IsValid() {
				*out = append(*out, join(path, name))
				continue
			}
			changed(va, vb, join(path, name), out)
		}
	default:
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*out = append(*out, path)
		}
	}
}

// sameText compares two values as they are written.
func sameText(a, b reflect.Value) bool {
	ta, errA := a.Interface().(encoding.TextMarshaler).MarshalText()
	tb, errB := b.Interface().(encoding.TextMarshaler).MarshalText()
	if errA != nil || errB != nil {
		return reflect.DeepEqual(a.Interface(), b.Interface())
	}
	return bytes.Equal(ta, tb)
}

// CheckReload refuses a reload from the running config old to cfg, valid
// as cfg is, when it would take the files served away by accident: root
// falling back to its default only because the file no longer names it
// (a file cut short), or root moving to a directory that does not exist.
func CheckReload(old, cfg Config) error {
	if cfg.Root == old.Root {
		return nil
	}
	if !cfg.IsSet("root") {
		e := &Error{Key: "root", Msg: fmt.Sprintf("no longer set, so it would fall back to the default %s; "+
			"keeping %s (was the file cut short? name the new root to move it)", cfg.Root, old.Root)}
		e.File = cfg.from.file
		return e
	}
	if st, err := os.Stat(cfg.Root); err != nil || !st.IsDir() {
		e := &Error{Key: "root", Msg: fmt.Sprintf("%s is not a directory; keeping %s (make the new root first)", cfg.Root, old.Root)}
		cfg.place(e)
		return e
	}
	return nil
}
