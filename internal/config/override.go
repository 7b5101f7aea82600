package config

import (
	"fmt"
	"maps"
	"os"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Override is one setting given outside the file: by a flag or an
// environment variable. Key is a dotted path such as "tftp.listen".
type Override struct {
	Key    string
	Value  string
	Source string // for errors, e.g. "--tftp-addr" or "BOOTFORGE_TFTP_ADDR"
}

// Apply sets each override, then validates the result. An error names
// the variable or flag that set the value, or the file and line.
func (c *Config) Apply(overrides []Override) error {
	var errs Errors
	by := maps.Clone(c.from.by) // c may share its map with a copy
	if by == nil {
		by = map[string]string{}
	}
	for _, o := range overrides {
		if err := c.Set(o.Key, o.Value); err != nil {
			errs = append(errs, &Error{Key: o.Key, Msg: fmt.Sprintf("from %s: %v", o.Source, err)})
			continue
		}
		by[o.Key] = o.Source
	}
	c.from.by = by
	if len(errs) > 0 {
		return errs
	}
	return c.placed(c.Validate())
}

// Set assigns one setting by its dotted key, parsing value as YAML would.
// A list of single values (dhcp.interfaces, dhcp.allow) is written with
// commas: "eth1,eth2", or in brackets as in the file: "[eth1, eth2]";
// an empty value, or "[]", is the empty list. (A variable set empty is
// left out before it gets here, as if it were not set: "[]" is how the
// environment says the empty list.)
func (c *Config) Set(key, value string) error {
	v, ok := c.setting(key)
	if !ok {
		return fmt.Errorf("unknown key %q", key)
	}
	node := scalarNode(value, v.Type())
	if isList(v.Type()) {
		node = &yaml.Node{Kind: yaml.SequenceNode}
		value = strings.TrimSpace(value)
		if inner, ok := strings.CutPrefix(value, "["); ok && strings.HasSuffix(inner, "]") {
			value = strings.TrimSpace(strings.TrimSuffix(inner, "]"))
		}
		if value != "" {
			for _, item := range strings.Split(value, ",") {
				node.Content = append(node.Content, scalarNode(strings.TrimSpace(item), v.Type().Elem()))
			}
		}
	}
	d := decoder{lines: map[string]int{}}
	d.value(node, v, key)
	if len(d.errs) > 0 {
		return fmt.Errorf("%s", d.errs[0].Msg)
	}
	return nil
}

// setting is the field of c that key names.
func (c *Config) setting(key string) (reflect.Value, bool) {
	v := reflect.ValueOf(c).Elem()
	for _, part := range strings.Split(key, ".") {
		f, ok := field(v, part)
		if !ok {
			return reflect.Value{}, false
		}
		v = f
	}
	return v, true
}

// scalarNode is value as YAML text for a setting of type t.
func scalarNode(value string, t reflect.Type) *yaml.Node {
	node := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
	if t.Kind() != reflect.String {
		node.Tag = "" // let YAML resolve numbers and booleans
	}
	return node
}

// isList reports whether t is a list of single values, which the
// environment and flags can set as "a,b,c".
func isList(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && !reflect.PointerTo(t).Implements(textUnmarshaler) && !isSection(t.Elem())
}

func field(v reflect.Value, tag string) (reflect.Value, bool) {
	if v.Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	for i := 0; i < v.NumField(); i++ {
		if strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0] == tag {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// Keys lists every setting of a single value or a list of them (see Set)
// by dotted path, sorted.
func Keys() []string {
	var keys []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			if f.Type.Kind() == reflect.Struct && !reflect.PointerTo(f.Type).Implements(textUnmarshaler) {
				walk(f.Type, join(prefix, tag))
				continue
			}
			if (f.Type.Kind() == reflect.Slice && !isList(f.Type)) || f.Type.Kind() == reflect.Map {
				continue
			}
			keys = append(keys, join(prefix, tag))
		}
	}
	walk(reflect.TypeFor[Config](), "")
	sort.Strings(keys)
	return keys
}

// EnvName is the environment variable for a key: "tftp.max_window_size"
// becomes BOOTFORGE_TFTP_MAX_WINDOW_SIZE.
func EnvName(key string) string {
	return "BOOTFORGE_" + strings.ToUpper(strings.NewReplacer(".", "_").Replace(key))
}

// envAliases are short names for the settings needed to run without a file;
// they match the flag names.
var envAliases = map[string]string{
	"BOOTFORGE_TFTP_ADDR":  "tftp.listen",
	"BOOTFORGE_HTTP_ADDR":  "http.listen",
	"BOOTFORGE_HTTPS_ADDR": "http.tls.listen",
	"BOOTFORGE_API_ADDR":   "api.listen",
}

// FromEnv returns the overrides set in the environment, in a stable order.
func FromEnv() []Override {
	var out []Override
	for _, key := range Keys() {
		name := EnvName(key)
		if v, ok := os.LookupEnv(name); ok {
			out = append(out, Override{Key: key, Value: v, Source: name})
		}
	}
	aliases := make([]string, 0, len(envAliases))
	for name := range envAliases {
		aliases = append(aliases, name)
	}
	sort.Strings(aliases)
	for _, name := range aliases {
		if v, ok := os.LookupEnv(name); ok {
			out = append(out, Override{Key: envAliases[name], Value: v, Source: name})
		}
	}
	return out
}
