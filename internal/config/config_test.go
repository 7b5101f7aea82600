package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// siblingPaths are valid, unrelated root and data_dir settings. Cases that test
// some other key start with them, so that their only error is the one under
// test.
const siblingPaths = "data_dir: /srv/bootforge-state\nroot: /srv/boot\n"

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		line int
		key  string
		msg  string // substring of the message
		full string // if set, the whole Error() text
	}{
		{
			name: "unknown nested key with a suggestion",
			yaml: "tftp:\n  max_windw_size: 8\n",
			line: 2, key: "tftp.max_windw_size", msg: `unknown key (did you mean "max_window_size"?)`,
			full: `bootforge.yaml:2: tftp.max_windw_size: unknown key (did you mean "max_window_size"?)`,
		},
		{
			name: "unknown top-level key without a close match",
			yaml: siblingPaths + "frobnicate: 1\n",
			line: 3, key: "frobnicate", msg: "unknown key",
			full: "bootforge.yaml:3: frobnicate: unknown key",
		},
		{
			name: "unknown key deep down",
			yaml: "http:\n  tls:\n    enabled: true\n    certificate: /x\n",
			line: 4, key: "http.tls.certificate", msg: "unknown key",
		},
		{
			name: "word for a number",
			yaml: "tftp:\n  max_window_size: abc\n",
			line: 2, key: "tftp.max_window_size", msg: `"abc" is not a valid whole number`,
			full: `bootforge.yaml:2: tftp.max_window_size: "abc" is not a valid whole number`,
		},
		{
			name: "fraction for a whole number",
			yaml: "tftp:\n  retries: 2.5\n",
			line: 2, key: "tftp.retries", msg: `"2.5" is not a valid whole number`,
		},
		{
			name: "word for a boolean",
			yaml: "tftp:\n  enabled: maybe\n",
			line: 2, key: "tftp.enabled", msg: `"maybe" is not a valid boolean`,
		},
		{
			name: "list for a string",
			yaml: "root: [a, b]\n",
			line: 1, key: "root", msg: "expected a single value, got a list",
		},
		{
			name: "scalar for a section",
			yaml: "tftp: 5\n",
			line: 1, key: "tftp", msg: `expected a mapping of keys, got "5"`,
		},
		{
			name: "key given twice",
			yaml: "tftp:\n  retries: 3\n  retries: 4\n",
			line: 3, key: "tftp.retries", msg: "key given twice",
		},
		{
			name: "window size zero",
			yaml: siblingPaths + "tftp:\n  max_window_size: 0\n",
			line: 4, key: "tftp.max_window_size", msg: "0 is outside 1..65535",
			full: "bootforge.yaml:4: tftp.max_window_size: 0 is outside 1..65535",
		},
		{
			name: "window size too large",
			yaml: siblingPaths + "tftp:\n  max_window_size: 65536\n",
			line: 4, key: "tftp.max_window_size", msg: "65536 is outside 1..65535",
		},
		{
			name: "block size below 8",
			yaml: siblingPaths + "tftp:\n  max_block_size: 7\n",
			line: 4, key: "tftp.max_block_size", msg: "7 is outside 8..65464",
		},
		{
			name: "block size above 65464",
			yaml: siblingPaths + "tftp:\n  max_block_size: 65465\n",
			line: 4, key: "tftp.max_block_size", msg: "65465 is outside 8..65464",
		},
		{
			name: "duration without unit",
			yaml: "tftp:\n  timeout: 5\n",
			line: 2, key: "tftp.timeout", msg: `"5" is not a duration like 1s or 250ms`,
		},
		{
			name: "duration too short",
			yaml: siblingPaths + "tftp:\n  timeout: 5ms\n",
			line: 4, key: "tftp.timeout", msg: "5ms is outside 10ms..255s",
		},
		{
			name: "duration too long",
			yaml: siblingPaths + "tftp:\n  timeout: 256s\n",
			line: 4, key: "tftp.timeout", msg: "4m16s is outside 10ms..255s",
		},
		{
			name: "retries zero",
			yaml: siblingPaths + "tftp:\n  retries: 0\n",
			line: 4, key: "tftp.retries", msg: "0 is outside 1..100",
		},
		{
			name: "max transfers zero",
			yaml: siblingPaths + "tftp:\n  max_transfers: 0\n",
			line: 4, key: "tftp.max_transfers", msg: "must be at least 1",
		},
		{
			name: "log level",
			yaml: siblingPaths + "log:\n  level: verbose\n",
			line: 4, key: "log.level", msg: `"verbose" is not one of debug, info, warn, error`,
		},
		{
			name: "log format",
			yaml: siblingPaths + "log:\n  format: xml\n",
			line: 4, key: "log.format", msg: `"xml" is not one of text, json`,
		},
		{
			name: "listen without port",
			yaml: siblingPaths + "tftp:\n  listen: nonsense\n",
			line: 4, key: "tftp.listen", msg: `"nonsense" is not host:port`,
		},
		{
			name: "listen on a host name",
			yaml: siblingPaths + "http:\n  listen: localhost:8080\n",
			line: 4, key: "http.listen", msg: "host must be an IP address or empty",
		},
		{
			name: "listen on a bad port",
			yaml: siblingPaths + "http:\n  tls:\n    listen: \":nope\"\n",
			line: 5, key: "http.tls.listen", msg: "bad port",
		},
		{
			name: "cert without key",
			yaml: siblingPaths + "http:\n  tls:\n    cert: /etc/ssl/boot.pem\n",
			line: 5, key: "http.tls.cert", msg: "cert and key must be given together",
		},
		{
			name: "data_dir inside root",
			yaml: "root: /srv/boot\ndata_dir: /srv/boot/state\n",
			line: 2, key: "data_dir", msg: "must not be inside root",
		},
		{
			name: "data_dir equal to root",
			yaml: "root: /srv/boot\ndata_dir: /srv/boot\n",
			line: 2, key: "data_dir", msg: `"/srv/boot" must not be root "/srv/boot"`,
		},
		{
			name: "more than one document",
			yaml: "root: /a\n---\nroot: /b\n",
			line: 2, msg: "more than one YAML document",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("bootforge.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s\ngiving tftp=%+v", tt.yaml, cfg.TFTP)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error is %T, not config.Errors: %v", err, err)
			}
			if len(es) != 1 {
				t.Fatalf("want exactly one error, got %d:\n%v", len(es), err)
			}
			e := es[0]
			if e.File != "bootforge.yaml" || e.Line != tt.line || e.Key != tt.key || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("got file=%q line=%d key=%q msg=%q\nwant file=%q line=%d key=%q msg containing %q",
					e.File, e.Line, e.Key, e.Msg, "bootforge.yaml", tt.line, tt.key, tt.msg)
			}
			if tt.full != "" && err.Error() != tt.full {
				t.Errorf("message\n got: %s\nwant: %s", err.Error(), tt.full)
			}
			if !strings.HasPrefix(err.Error(), "bootforge.yaml:") {
				t.Errorf("message does not start with the file name: %s", err)
			}
		})
	}
}

// A YAML syntax error names the file and the line the parser stopped at, as
// file:line like every other error. (The parser reports an unclosed flow
// list on the line it opened, so that case checks only the file.)
func TestParseSyntaxError(t *testing.T) {
	tests := []struct {
		name, yaml, line string
	}{
		{"tab indentation", "tftp:\n\tretries: 3\n", "boot.yaml:2: "},
		{"unterminated quote", "root: /srv\ndata_dir: \"/srv/x\n", "boot.yaml:2: "},
		{"unclosed flow list", "tftp:\n  max_window_size: [1\n", "boot.yaml:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("boot.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tt.yaml)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "boot.yaml") || !strings.Contains(msg, tt.line) {
				t.Errorf("message %q should name boot.yaml and %q", msg, tt.line)
			}
		})
	}
}

// Every problem is reported at once, each with its own line.
func TestParseReportsAllErrors(t *testing.T) {
	_, err := Parse("b.yaml", []byte(siblingPaths+"tftp:\n  max_window_size: 0\n  retries: 0\nlog:\n  format: xml\n"))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("want config.Errors, got %T: %v", err, err)
	}
	got := map[string]int{}
	for _, e := range es {
		got[e.Key] = e.Line
	}
	want := map[string]int{"tftp.max_window_size": 4, "tftp.retries": 5, "log.format": 7}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors by key and line: got %v, want %v\n%v", got, want, err)
	}
	for _, line := range []string{"b.yaml:4: tftp.max_window_size:", "b.yaml:5: tftp.retries:", "b.yaml:7: log.format:"} {
		if !strings.Contains(err.Error(), line) {
			t.Errorf("message lacks %q:\n%v", line, err)
		}
	}
}

func TestDefaultsValid(t *testing.T) {
	d := Default()
	if err := d.Validate(); err != nil {
		t.Fatalf("the embedded defaults do not validate: %v", err)
	}
	if d.TFTP.MaxWindowSize != 64 || d.TFTP.Listen != ":69" || d.HTTP.Listen != ":8080" || d.HTTP.TLS.Listen != ":8443" ||
		d.Root != "/var/lib/bootforge/root" || d.DataDir != "/var/lib/bootforge" || d.TFTP.Timeout.D() != time.Second {
		t.Errorf("defaults changed: %+v", d)
	}
}

// A config file without settings is refused, not taken as "the defaults":
// it is far more likely cut short or written by a tool that failed, and
// the defaults move root, so the service would go dark. (Without --config
// the defaults are still there.)
func TestEmptyFileRefused(t *testing.T) {
	for _, text := range []string{"", "\n\n", "   \n\t\n", "# nothing here\n", "# a\n\n# b\n", "~\n", "---\n", "--- # x\n...\n"} {
		cfg, err := Parse("empty.yaml", []byte(text))
		if err == nil {
			t.Errorf("Parse(%q) accepted it, root %q", text, cfg.Root)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "empty.yaml: ") || !strings.Contains(msg, "no settings") {
			t.Errorf("Parse(%q): %q should name the file and say it has no settings", text, msg)
		}
	}
}

// A file cut in the middle of a mapping leaves a section key with nothing
// under it; that is refused with the key's line rather than taken as "the
// defaults of that section". A single value left empty still keeps its
// default, as before.
func TestTruncatedSectionRefused(t *testing.T) {
	full := siblingPaths + "inventory:\n  profiles:\n    - name: lab\n      menu:\n        entries:\n          - {name: a, kind: local}\n"
	if _, err := Parse("t.yaml", []byte(full)); err != nil {
		t.Fatalf("the whole file: %v", err)
	}
	for _, tt := range []struct {
		text string
		line int
		key  string
	}{
		{siblingPaths + "inventory:\n", 3, "inventory"},
		{siblingPaths + "inventory:\n  profiles:\n", 4, "inventory.profiles"},
		{siblingPaths + "inventory:\n  profiles:\n    - name: lab\n      menu:\n", 6, "inventory.profiles[0].menu"},
		{siblingPaths + "inventory:\n  profiles:\n    - name: lab\n      menu:\n        entries:\n", 7, "inventory.profiles[0].menu.entries"},
		{siblingPaths + "dhcp:\n  mode: proxy\n  interfaces:\n", 5, "dhcp.interfaces"},
		{siblingPaths + "tftp:\n", 3, "tftp"},
	} {
		_, err := Parse("t.yaml", []byte(tt.text))
		var es Errors
		if !errors.As(err, &es) || es[0].Line != tt.line || es[0].Key != tt.key || !strings.Contains(es[0].Msg, "cut short") {
			t.Errorf("Parse(%q): got %v, want t.yaml:%d: %s: ... cut short ...", tt.text, err, tt.line, tt.key)
		}
	}
	for _, text := range []string{siblingPaths + "tftp:\n  timeout:\n", siblingPaths + "dhcp:\n  interfaces: []\ninventory: {}\n"} {
		if _, err := Parse("t.yaml", []byte(text)); err != nil {
			t.Errorf("Parse(%q): %v", text, err)
		}
	}
}

// A file that sets only some keys keeps the defaults for the rest.
func TestParseKeepsDefaults(t *testing.T) {
	cfg, err := Parse("p.yaml", []byte(siblingPaths+"tftp:\n  max_window_size: 16\n  timeout: 250ms\n  case_insensitive: true\nhttp:\n  access_log: false\n  tls:\n    enabled:\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.DataDir, want.Root = "/srv/bootforge-state", "/srv/boot"
	want.TFTP.MaxWindowSize = 16
	want.TFTP.Timeout = Duration(250 * time.Millisecond)
	want.TFTP.CaseInsensitive = true
	want.HTTP.AccessLog = false // "enabled:" with no value keeps the default
	cfg.from = origin{}         // where the settings came from is not a setting
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestDataDirAndRoot(t *testing.T) {
	tests := []struct {
		root, data string
		ok         bool
	}{
		{"/var/lib/bootforge/root", "/var/lib/bootforge", true}, // root inside data_dir: the default layout
		{"/srv/boot", "/srv/state", true},
		{"/srv/boot", "/srv/boot2", true}, // a shared prefix is not containment
		{"/srv/boot", "/srv/boot/state", false},
		{"/srv/boot", "/srv/boot/a/b/c", false},
		{"/srv/boot", "/srv/boot", false},
		{"/srv/boot/", "/srv/boot/state", false},
		{"/srv/boot", "/srv/other/../boot/state", false},
		{"/srv/boot", "/srv/boot/..state", false}, // a name that starts with ".." is still inside
		{"r", "r/state", false},                   // relative siblingPaths
		{"/", "/var/lib/bootforge", false},
	}
	for _, tt := range tests {
		cfg := Default()
		cfg.Root, cfg.DataDir = tt.root, tt.data
		err := cfg.Validate()
		if tt.ok && err != nil {
			t.Errorf("root %q, data_dir %q: refused: %v", tt.root, tt.data, err)
		}
		if !tt.ok {
			var es Errors
			if !errors.As(err, &es) || len(es) != 1 || es[0].Key != "data_dir" {
				t.Errorf("root %q, data_dir %q: want one data_dir error, got %v", tt.root, tt.data, err)
			}
		}
	}
}

func TestApplyPrecedence(t *testing.T) {
	// defaults < file
	cfg, err := Parse("p.yaml", []byte(siblingPaths+"tftp:\n  max_window_size: 16\n  listen: 127.0.0.1:1069\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TFTP.MaxWindowSize != 16 {
		t.Fatalf("file did not beat the default: %d", cfg.TFTP.MaxWindowSize)
	}

	// file < environment < flags
	t.Setenv("BOOTFORGE_TFTP_MAX_WINDOW_SIZE", "8")
	t.Setenv("BOOTFORGE_TFTP_ADDR", "127.0.0.1:2069")
	t.Setenv("BOOTFORGE_LOG_FORMAT", "json")
	env := FromEnv()
	byKey := map[string]Override{}
	for _, o := range env {
		byKey[o.Key] = o
	}
	for key, want := range map[string]Override{
		"tftp.max_window_size": {"tftp.max_window_size", "8", "BOOTFORGE_TFTP_MAX_WINDOW_SIZE"},
		"tftp.listen":          {"tftp.listen", "127.0.0.1:2069", "BOOTFORGE_TFTP_ADDR"},
		"log.format":           {"log.format", "json", "BOOTFORGE_LOG_FORMAT"},
	} {
		if got := byKey[key]; got != want {
			t.Errorf("FromEnv for %s: got %+v, want %+v", key, got, want)
		}
	}
	flags := []Override{{Key: "tftp.listen", Value: "127.0.0.1:3069", Source: "--tftp-addr"}}
	if err := cfg.Apply(append(env, flags...)); err != nil {
		t.Fatal(err)
	}
	if cfg.TFTP.MaxWindowSize != 8 {
		t.Errorf("environment did not beat the file: max_window_size %d", cfg.TFTP.MaxWindowSize)
	}
	if cfg.TFTP.Listen != "127.0.0.1:3069" {
		t.Errorf("flag did not beat the environment: tftp.listen %q", cfg.TFTP.Listen)
	}
	if cfg.Log.Format != "json" {
		t.Errorf("log.format %q, want json from the environment", cfg.Log.Format)
	}
	if cfg.TFTP.Retries != Default().TFTP.Retries {
		t.Errorf("an untouched key changed: retries %d", cfg.TFTP.Retries)
	}
}

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		o    Override
		want string
	}{
		{Override{"tftp.max_window_size", "abc", "BOOTFORGE_TFTP_MAX_WINDOW_SIZE"},
			`tftp.max_window_size: from BOOTFORGE_TFTP_MAX_WINDOW_SIZE: "abc" is not a valid whole number`},
		{Override{"tftp.timeout", "5", "BOOTFORGE_TFTP_TIMEOUT"}, `tftp.timeout: from BOOTFORGE_TFTP_TIMEOUT: "5" is not a duration`},
		{Override{"tftp.nope", "1", "BOOTFORGE_TFTP_NOPE"}, `unknown key "tftp.nope"`},
		{Override{"tftp", "1", "BOOTFORGE_TFTP"}, "tftp: from BOOTFORGE_TFTP"},
		// Values that parse but do not validate are caught by Apply too.
		{Override{"tftp.max_window_size", "0", "BOOTFORGE_TFTP_MAX_WINDOW_SIZE"}, "tftp.max_window_size: 0 is outside 1..65535"},
		{Override{"tftp.listen", "nonsense", "--tftp-addr"}, `tftp.listen: "nonsense" is not host:port`},
	}
	for _, tt := range tests {
		cfg := Default()
		cfg.Root, cfg.DataDir = "/srv/boot", "/srv/bootforge-state"
		err := cfg.Apply([]Override{tt.o})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Apply(%+v): got %v, want an error containing %q", tt.o, err, tt.want)
		}
	}
}

func TestSet(t *testing.T) {
	cfg := Default()
	for _, kv := range [][2]string{
		{"root", "0123"}, // a string key stays a string, even when it looks like a number
		{"http.tls.cert", "true"},
		{"http.tls.key", "/k"},
		{"tftp.timeout", "250ms"},
		{"tftp.enabled", "false"},
		{"tftp.max_block_size", "1428"},
	} {
		if err := cfg.Set(kv[0], kv[1]); err != nil {
			t.Fatalf("Set(%q, %q): %v", kv[0], kv[1], err)
		}
	}
	if cfg.Root != "0123" || cfg.HTTP.TLS.Cert != "true" || cfg.HTTP.TLS.Key != "/k" || cfg.TFTP.Timeout.D() != 250*time.Millisecond ||
		cfg.TFTP.Enabled || cfg.TFTP.MaxBlockSize != 1428 {
		t.Errorf("Set gave %+v", cfg)
	}
}

func TestEnvNamesAndKeys(t *testing.T) {
	for key, want := range map[string]string{
		"tftp.max_window_size": "BOOTFORGE_TFTP_MAX_WINDOW_SIZE",
		"http.tls.listen":      "BOOTFORGE_HTTP_TLS_LISTEN",
		"root":                 "BOOTFORGE_ROOT",
		"data_dir":             "BOOTFORGE_DATA_DIR",
	} {
		if got := EnvName(key); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", key, got, want)
		}
	}
	keys := Keys()
	have := map[string]bool{}
	for _, k := range keys {
		have[k] = true
	}
	for _, k := range []string{"root", "data_dir", "log.level", "log.format", "tftp.listen", "tftp.max_window_size",
		"tftp.timeout", "http.listen", "http.access_log", "http.tls.listen", "http.tls.cert"} {
		if !have[k] {
			t.Errorf("Keys() lacks %q: %v", k, keys)
		}
	}
	if have["tftp"] || have["http.tls"] {
		t.Errorf("Keys() lists sections as keys: %v", keys)
	}
	// Every key can be set by its name, so every env variable works.
	for _, k := range keys {
		cfg := Default()
		f, ok := valueOfKey(&cfg, k)
		if !ok {
			t.Errorf("key %q from Keys() cannot be found", k)
			continue
		}
		if err := cfg.Set(k, f); err != nil {
			t.Errorf("Set(%q, its own default %q): %v", k, f, err)
		}
	}
}

// valueOfKey returns the current value of key as text, as an operator would write it.
func valueOfKey(c *Config, key string) (string, bool) {
	v := reflect.ValueOf(c).Elem()
	for _, part := range strings.Split(key, ".") {
		f, ok := field(v, part)
		if !ok {
			return "", false
		}
		v = f
	}
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		text, err := m.MarshalText() // Duration as "1s", an unset netip.Addr as ""
		return string(text), err == nil
	}
	if isList(v.Type()) { // "a,b", as the environment writes a list
		items := make([]string, v.Len())
		for i := range items {
			text, ok := valueOf(v.Index(i))
			if !ok {
				return "", false
			}
			items[i] = text
		}
		return strings.Join(items, ","), true
	}
	return valueOf(v)
}

func valueOf(v reflect.Value) (string, bool) {
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		text, err := m.MarshalText()
		return string(text), err == nil
	}
	return fmt.Sprint(v.Interface()), true
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1s", time.Second, true},
		{"250ms", 250 * time.Millisecond, true},
		{"1m30s", 90 * time.Second, true},
		{"1.5s", 1500 * time.Millisecond, true},
		{"5", 0, false},
		{"abc", 0, false},
		{"", 0, false},
		{"1 s", 0, false},
	}
	for _, tt := range tests {
		var d Duration
		err := d.UnmarshalText([]byte(tt.in))
		if tt.ok != (err == nil) {
			t.Errorf("UnmarshalText(%q): err %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if tt.ok {
			if d.D() != tt.want {
				t.Errorf("UnmarshalText(%q) = %s, want %s", tt.in, d, tt.want)
			}
			text, _ := d.MarshalText()
			var back Duration
			if err := back.UnmarshalText(text); err != nil || back != d {
				t.Errorf("round trip of %s through %q gave %s, %v", d, text, back, err)
			}
		} else if !strings.Contains(err.Error(), "is not a duration like 1s or 250ms") {
			t.Errorf("UnmarshalText(%q) error %q does not explain the format", tt.in, err)
		}
	}
	// In YAML too, quoted or not.
	for text, want := range map[string]time.Duration{
		"tftp:\n  timeout: 250ms\n":    250 * time.Millisecond,
		"tftp:\n  timeout: \"2s\"\n":   2 * time.Second,
		"tftp:\n  timeout: 1m0s\n":     time.Minute,
		"tftp:\n  timeout: '255s'\n":   255 * time.Second,
		"tftp:\n  timeout: 0.01s\n":    10 * time.Millisecond,
		"tftp:\n  timeout:\n":          time.Second, // no value: the default
		"tftp:\n  retries: 3\n":        time.Second,
		"tftp:\n  timeout: 1000ms\n":   time.Second,
		"tftp:\n  timeout: 1s # c\n":   time.Second,
		"tftp: {timeout: 100ms}\n":     100 * time.Millisecond,
		"tftp:\n  timeout: &t 3s\n":    3 * time.Second,
		"tftp:\n  timeout: 1h\n":       -1, // out of range
		"tftp:\n  timeout: [1s]\n":     -1,
		"tftp:\n  timeout: -1s\n":      -1,
		"tftp:\n  timeout: 1fortn\n":   -1,
		"tftp:\n  timeout: 9ms\n":      -1,
		"tftp:\n  timeout: 255001ms\n": -1,
	} {
		cfg, err := Parse("d.yaml", []byte(siblingPaths+text))
		if want < 0 {
			if err == nil || !strings.Contains(err.Error(), "tftp.timeout") {
				t.Errorf("%q: want a tftp.timeout error, got %v", text, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", text, err)
		} else if cfg.TFTP.Timeout.D() != want {
			t.Errorf("%q: timeout %s, want %s", text, cfg.TFTP.Timeout, want)
		}
	}
}

// The defaults an operator relies on without a config file.
func TestDefaultsThatMatter(t *testing.T) {
	d := Default()
	if !d.Audit.Enabled || d.Audit.Retention.D() != 90*24*time.Hour {
		t.Errorf("boot log defaults: %+v", d.Audit)
	}
	if !d.API.Enabled || d.API.Listen != "127.0.0.1:9090" {
		t.Errorf("API defaults: %+v", d.API)
	}
	if d.StoreSync != "full" || d.DHCP.Mode != "off" || d.TFTP.MaxWindowSize != 64 {
		t.Errorf("defaults: sync %q, dhcp %q, window %d", d.StoreSync, d.DHCP.Mode, d.TFTP.MaxWindowSize)
	}
}

func TestSigningDir(t *testing.T) {
	cfg := Default()
	if cfg.Signing.Enabled || cfg.KeysDir() != "/var/lib/bootforge/keys" {
		t.Errorf("defaults: %+v %q", cfg.Signing, cfg.KeysDir())
	}
	cfg.Signing.Dir = "/var/lib/bootforge/root/keys"
	err := cfg.Validate()
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 || es[0].Key != "signing.dir" {
		t.Errorf("signing.dir inside root: %v", err)
	}
	cfg.Signing.Dir = "/etc/bootforge/keys"
	if err := cfg.Validate(); err != nil || cfg.KeysDir() != "/etc/bootforge/keys" {
		t.Errorf("signing.dir outside root: %v", err)
	}
}
