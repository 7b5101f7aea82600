package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads the YAML file at path on top of the defaults, sets the
// overrides (environment, flags) over it, and validates the result once,
// so that an override can complete a file (BOOTFORGE_DHCP_INTERFACES for a
// file that turns DHCP on). Errors carry the file name and line, or the
// variable or flag that set the value.
//
// Relative paths in the file (pathKeys: root, data_dir, inventory.dir,
// signing.dir, the TLS certificates and keys) are taken from the file's directory, not
// from wherever bootforge was started: the same file means the same
// directories whoever runs it.
func Load(path string, overrides ...Override) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return Config{}, err
	}
	cfg, err := decodeFile(path, dir, data)
	if err != nil {
		return Config{}, err
	}
	if err := cfg.Apply(overrides); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Parse decodes YAML text on top of the defaults and validates it. name
// is used in errors. Relative paths stay relative (to the working
// directory).
func Parse(name string, data []byte) (Config, error) {
	cfg, err := decodeFile(name, "", data)
	if err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, cfg.placed(err)
	}
	return cfg, nil
}

// pathKeys are the settings that name files or directories on the server.
var pathKeys = []string{"root", "data_dir", "inventory.dir", "signing.dir", "http.tls.cert", "http.tls.key", "api.tls.cert", "api.tls.key"}

// decodeFile decodes data on top of the defaults, without validating it;
// relative paths that the file sets are joined to dir, if dir is not empty.
func decodeFile(name, dir string, data []byte) (Config, error) {
	cfg := Default()
	lines, err := decodeInto(&cfg, data)
	if err != nil {
		return Config{}, inFile(err, name, nil)
	}
	cfg.from = origin{file: name, lines: lines}
	if dir != "" {
		for _, key := range pathKeys {
			if _, set := lines[key]; !set {
				continue
			}
			p := cfg.path(key)
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(dir, *p)
			}
		}
		// store.url names a file too when it is sqlite:PATH.
		if _, set := lines["store.url"]; set {
			if p, ok := strings.CutPrefix(cfg.Store.URL, "sqlite:"); ok && p != "" && !filepath.IsAbs(p) {
				cfg.Store.URL = "sqlite:" + filepath.Join(dir, p)
			}
		}
	}
	return cfg, nil
}

// placed stamps each of Validate's errors about a key the file set with
// the file and line. An error about a value from a flag or variable reads
// as it always has ("tftp.listen: ..."), and ends naming the flag or
// variable, which is what the operator typed: "log.level: "loud" is not
// one of ... (from --log-level)".
func (c Config) placed(err error) error {
	var es Errors
	if errors.As(err, &es) {
		for _, e := range es {
			if src, over := c.from.by[e.Key]; over {
				e.Msg += " (from " + src + ")"
			} else {
				c.place(e)
			}
		}
	}
	return err
}

// path points at the string setting of one of pathKeys.
func (c *Config) path(key string) *string {
	switch key {
	case "root":
		return &c.Root
	case "data_dir":
		return &c.DataDir
	case "inventory.dir":
		return &c.Inventory.Dir
	case "signing.dir":
		return &c.Signing.Dir
	case "http.tls.cert":
		return &c.HTTP.TLS.Cert
	case "http.tls.key":
		return &c.HTTP.TLS.Key
	case "api.tls.cert":
		return &c.API.TLS.Cert
	case "api.tls.key":
		return &c.API.TLS.Key
	}
	panic("config: not a path key: " + key)
}

// inFile stamps errors with the file name and, from lines, the line of their key.
func inFile(err error, name string, lines map[string]int) error {
	var es Errors
	if !errors.As(err, &es) {
		var e *Error
		if !errors.As(err, &e) {
			return fmt.Errorf("%s: %w", name, err)
		}
		es = Errors{e}
	}
	for _, e := range es {
		e.File = name
		if e.Line == 0 {
			e.Line = lineOf(e.Key, lines)
		}
	}
	return es
}

// lineOf is the line of key or, when the file does not set it (a required
// value left out), of the nearest enclosing key it sets.
func lineOf(key string, lines map[string]int) int {
	for key != "" {
		if line, ok := lines[key]; ok {
			return line
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

// decodeInto decodes data into the struct pointed to by dst, strictly, and
// returns the line of every key it saw, by dotted path.
func decodeInto(dst any, data []byte) (map[string]int, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errEmpty()
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if err.Error() == "EOF" {
			return nil, errEmpty()
		}
		return nil, yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{Line: extra.Line, Msg: "more than one YAML document"}
	}
	d := decoder{lines: map[string]int{}, sectionsNeedValues: true}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, errEmpty()
	}
	d.value(root, reflect.ValueOf(dst).Elem(), "")
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	return d.lines, nil
}

// errEmpty refuses a config file without settings. Such a file is far
// more often one cut short, or written by a failed tool, than a wish for
// the defaults, and the defaults move root: the service would go dark.
func errEmpty() *Error {
	return &Error{Msg: "the file has no settings (it is empty, or only comments): refusing to run on the defaults " +
		"by accident; start without --config for the defaults, or set at least root"}
}

// yamlError turns a YAML syntax error into an Error with its line.
func yamlError(err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{Line: line, Msg: m[2]}
	}
	return &Error{Msg: msg}
}

// yamlLine picks the line out of the YAML parser's messages.
var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

type decoder struct {
	lines map[string]int
	errs  Errors
	// inAlias counts the aliases (*name) being followed, aliased the
	// values reached through them: a few lines of nested aliases expand
	// to billions of values.
	inAlias, aliased int
	// sectionsNeedValues refuses a section or list key with no value
	// ("dhcp:" and nothing under it), the mark of a file cut in the middle
	// of a mapping.
	sectionsNeedValues bool
}

// maxAliased bounds the values reached through aliases in one document.
const maxAliased = 100_000

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// textFormats say what is expected, for the types whose own parse errors
// are written for programmers ("ParseAddr(\"x\"): unable to parse IP").
var textFormats = map[reflect.Type]string{
	reflect.TypeFor[netip.Addr](): "an IP address like 192.0.2.1",
}

// maxErrors bounds the errors reported for one document; past it, one
// more says the rest are not shown.
const maxErrors = 100

func (d *decoder) fail(n *yaml.Node, key, format string, args ...any) {
	switch {
	case len(d.errs) < maxErrors:
		d.errs = append(d.errs, &Error{Line: n.Line, Key: key, Msg: fmt.Sprintf(format, args...)})
	case len(d.errs) == maxErrors:
		d.errs = append(d.errs, &Error{Line: n.Line, Key: key, Msg: fmt.Sprintf("more than %d errors; the rest are not shown", maxErrors)})
	}
}

// value decodes node n into v, walking structs, slices and maps itself so that
// every error knows its key path and line.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if len(d.errs) > maxErrors {
		return // enough said
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
		d.inAlias++
		defer func() { d.inAlias-- }()
	}
	if d.inAlias > 0 {
		if d.aliased++; d.aliased > maxAliased {
			if d.aliased == maxAliased+1 {
				d.fail(n, path, "more than %d values reached through aliases (*name)", maxAliased)
			}
			return
		}
	}
	if path != "" {
		d.lines[path] = n.Line
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		if d.sectionsNeedValues && isSection(v.Type()) {
			d.fail(n, path, "has no value: was the file cut short? Write {} or [] for none")
		}
		delete(d.lines, path) // not set: "root:" cut after the colon is no root
		return                // "key:" with no value keeps the default
	}
	if reflect.PointerTo(v.Type()).Implements(textUnmarshaler) {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a single value")
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			if want, ok := textFormats[v.Type()]; ok {
				d.fail(n, path, "%q is not %s", n.Value, want)
			} else {
				d.fail(n, path, "%v", err)
			}
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "expected a mapping of keys, got %s", kindName(n))
			return
		}
		fields := map[string]reflect.Value{}
		for i := 0; i < v.NumField(); i++ {
			tag := strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0]
			if tag != "" && tag != "-" {
				fields[tag] = v.Field(i)
			}
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key := join(path, k.Value)
			f, ok := fields[k.Value]
			if !ok {
				d.fail(k, key, "unknown key%s", suggest(k.Value, fields))
				continue
			}
			if seen[k.Value] {
				d.fail(k, key, "key given twice")
				continue
			}
			seen[k.Value] = true
			d.value(val, f, key)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.value(item, s.Index(i), path+"["+strconv.Itoa(i)+"]")
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "expected a mapping, got %s", kindName(n))
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key := reflect.New(v.Type().Key()).Elem()
			d.value(k, key, path)
			elem := reflect.New(v.Type().Elem()).Elem()
			d.value(val, elem, join(path, k.Value))
			v.SetMapIndex(key, elem)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		// Parsed here, not by YAML, which would turn 2.5 into 2 silently.
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a single value, got %s", kindName(n))
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 10, v.Type().Bits())
		if err != nil {
			d.fail(n, path, "%q is not a valid %s", n.Value, typeName(v.Type()))
			return
		}
		v.SetInt(i)
	default:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a single value, got %s", kindName(n))
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.fail(n, path, "%q is not a valid %s", n.Value, typeName(v.Type()))
		}
	}
}

// isSection reports whether t is written as a mapping or a list in YAML.
func isSection(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return false
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Slice, reflect.Map:
		return true
	}
	return false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "boolean (true or false)"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint32, reflect.Uint64, reflect.Uint16:
		return "whole number"
	case reflect.String:
		return "string"
	}
	return t.String()
}

// suggest names the closest known key, for typos such as "max_blocksize".
func suggest(key string, fields map[string]reflect.Value) string {
	best, bestDist := "", 4
	for k := range fields {
		if dist := levenshtein(key, k); dist < bestDist || (dist == bestDist && k < best) {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
