package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// parseErr parses text and returns its one error, failing the test
// otherwise.
func parseErr(t *testing.T, text string) *Error {
	t.Helper()
	_, err := Parse("c.yaml", []byte(text))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("Parse accepted (or failed oddly, %v):\n%s", err, text)
	}
	if len(es) != 1 {
		t.Fatalf("want one error, got %d:\n%v", len(es), err)
	}
	return es[0]
}

// Settings that cannot work are refused with file, line and key.
func TestDHCPMistakesRefused(t *testing.T) {
	tests := []struct {
		name, text string
		line       int
		key, msg   string
	}{
		{"router outside its subnet", dhcpBase + "      router: 198.51.100.1\n",
			8, "dhcp.subnets[0].router", "198.51.100.1 is not in the subnet 192.0.2.0/24"},
		{"overlapping pools", dhcpBase + "      pools: [\"192.0.2.10-192.0.2.20\", \"192.0.2.30-192.0.2.40\", \"192.0.2.20-192.0.2.25\"]\n",
			8, "dhcp.subnets[0].pools[2]", "192.0.2.20-192.0.2.25 overlaps dhcp.subnets[0].pools[0] 192.0.2.10-192.0.2.20"},
		{"a pool inside another", dhcpBase + "      pools: [\"192.0.2.10-192.0.2.200\", \"192.0.2.30-192.0.2.40\"]\n",
			8, "dhcp.subnets[0].pools[1]", "overlaps dhcp.subnets[0].pools[0]"},
		{"host bits in a subnet", siblingPaths + "dhcp:\n  mode: authoritative\n  interfaces: [eth1]\n  subnets:\n    - subnet: 192.0.2.128/24\n",
			7, "dhcp.subnets[0].subnet", `"192.0.2.128/24" has host bits set: the subnet is 192.0.2.0/24, or the length is wrong`},
		{"host bits in allow", siblingPaths + "dhcp:\n  allow: [192.0.2.0/24, 198.51.100.7/24]\n",
			4, "dhcp.allow[1]", "has host bits set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := parseErr(t, tt.text)
			if e.File != "c.yaml" || e.Line != tt.line || e.Key != tt.key || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("got %s\nwant c.yaml:%d: %s: ...%s...", e, tt.line, tt.key, tt.msg)
			}
		})
	}
	// Touching pools and a router in the subnet are fine.
	if _, err := Parse("c.yaml", []byte(dhcpBase+"      pools: [\"192.0.2.10-192.0.2.20\", \"192.0.2.21-192.0.2.30\"]\n      router: 192.0.2.1\n")); err != nil {
		t.Error(err)
	}
}

// A menu path the serving rules refuse can never be served: refused at
// load with the key of the entry's field.
func TestProfilePathOutsideRootRefused(t *testing.T) {
	profile := siblingPaths + "inventory:\n  profiles:\n    - name: lab\n      menu:\n        entries:\n"
	for _, tt := range []struct{ entry, key string }{
		{"          - {name: a, kind: linux, kernel: ../../etc/passwd}\n", "inventory.profiles[0].menu.entries[0].kernel"},
		{"          - {name: a, kind: linux, kernel: k, initrds: [i, images/../../x]}\n", "inventory.profiles[0].menu.entries[0].initrds[1]"},
		{"          - {name: a, kind: wimboot, wimboot: w, bcd: \"..\\\\BCD\"}\n", "inventory.profiles[0].menu.entries[0].bcd"},
	} {
		e := parseErr(t, profile+tt.entry)
		if e.Line != 8 || e.Key != tt.key || !strings.Contains(e.Msg, "can never be served") {
			t.Errorf("%s: got %s, want c.yaml:8: %s: ... can never be served", tt.entry, e, tt.key)
		}
	}
	variant := siblingPaths + "inventory:\n  profiles:\n    - name: lab\n      variants:\n        bios:\n          entries:\n            - {name: a, kind: iso, iso: /../x.iso}\n"
	if e := parseErr(t, variant); e.Key != "inventory.profiles[0].variants.bios.entries[0].iso" || e.Line != 9 {
		t.Errorf("variant: got %s", e)
	}
	// Paths inside root, with a leading slash, and URLs are fine.
	ok := profile + "          - {name: a, kind: linux, kernel: /images/vmlinuz, initrds: [\"http://192.0.2.9/i.gz\"]}\n"
	if _, err := Parse("c.yaml", []byte(ok)); err != nil {
		t.Error(err)
	}
}

// A command line a loader cannot hand the kernel as written is warned
// about at load, with the loader and the way to write it (that loader's
// menus leave the entry out; the others serve it); one that
// every loader carries, with GRUB's and iPXE's special characters, is not.
func TestCmdlineLoadersCannotCarryWarned(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "root"), 0o755); err != nil {
		t.Fatal(err)
	}
	profile := "root: root\ndata_dir: state\ninventory:\n  profiles:\n    - name: lab\n      menu:\n        entries:\n"
	const key = "c.yaml:8: inventory.profiles[0].menu.entries[0].cmdline: "
	for cmdline, want := range map[string]string{
		`preseed/late_command=\"in-target sh -c 'echo a; echo b'\"`: "GRUB would not pass it on as written",
		`a=\"b c\"`:     `write the word in quotes ("a=b c", not a="b c"`,
		`m=${net0/mac}`: "iPXE would not pass it on as written: it expands ${...} as its settings",
	} {
		got := warningsOf(t, dir, profile+"          - {name: a, kind: linux, kernel: k, cmdline: \""+cmdline+"\"}\n")
		if !strings.Contains(got, key) || !strings.Contains(got, want) {
			t.Errorf("cmdline %s: warnings\n%s\nwant %s...%s", cmdline, got, key, want)
		}
	}
	ok := profile + "          - {name: a, kind: linux, kernel: k, cmdline: \"\\\"preseed/late_command=in-target sh -c echo a; echo b\\\" foo=$bar #x ; h={hostname}\"}\n"
	if got := warningsOf(t, dir, ok); strings.Contains(got, ".cmdline") {
		t.Errorf("a command line every loader carries: %s", got)
	}
}

// warningsOf loads text as the file dir/c.yaml and returns its warnings
// as text, one per line.
func warningsOf(t *testing.T, dir, text string, overrides ...Override) string {
	t.Helper()
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Apply(overrides); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, w := range cfg.Warnings() {
		lines = append(lines, w.Error())
	}
	return strings.Join(lines, "\n")
}

// Probable mistakes that do not stop the service are warned about with
// file, line and key.
func TestWarnings(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for _, f := range []string{"vmlinuz", "initrd.gz", "undionly.kpxe"} {
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := filepath.Join(dir, "c.yaml")
	text := `root: root
data_dir: state
dhcp:
  mode: proxy
  interfaces: [eth1]
  loaders: {bios: undionly.kpxe, efi_x64: snp.efi, efi_ia32: "", efi_arm64: "", efi_arm32: "", http_x64: "", http_arm64: "", secure_boot_x64: ""}
  subnets:
    - subnet: 192.0.2.0/24
      pools: ["192.0.2.100-192.0.2.200"]
inventory:
  profiles:
    - name: lab
      menu:
        entries:
          - {name: ok, kind: linux, kernel: vmlinuz, initrds: [initrd.gz], cmdline: "host={hostname} e={entry}"}
          - name: bad
            kind: linux
            kernel: images/vmlinuz
            initrds: [initrd.gz, images/initrd.gz]
            cmdline: "host={hostnmae} x={bogus_thing}"
          - {name: chain, kind: chain, url: "http://192.0.2.9/{x}"}
`
	got := warningsOf(t, dir, text)
	for _, want := range []string{
		c + `:6: dhcp.loaders.efi_x64: "snp.efi" is not in root ` + root,
		c + `:9: dhcp.subnets[0].pools: proxy mode gives no addresses: these pools are ignored`,
		c + `:18: inventory.profiles[0].menu.entries[1].kernel: "images/vmlinuz" is not in root ` + root,
		c + `:19: inventory.profiles[0].menu.entries[1].initrds[1]: "images/initrd.gz" is not in root`,
		c + `:20: inventory.profiles[0].menu.entries[1].cmdline: {hostnmae} is not a placeholder (did you mean "hostname"?)`,
		c + `:20: inventory.profiles[0].menu.entries[1].cmdline: {bogus_thing} is not a placeholder; it reaches the kernel as written`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings lack\n  %s\ngot:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != 6 {
		t.Errorf("want 6 warnings, got %d:\n%s", n, got)
	}

	// A config without mistakes has no warnings.
	if got := warningsOf(t, dir, "root: root\ndata_dir: state\n"); got != "" {
		t.Errorf("a clean config warns:\n%s", got)
	}
	// A file that leaves root to its default is warned about; a missing root too.
	got = warningsOf(t, dir, "data_dir: state\n")
	if !strings.Contains(got, c+": root: not set; serving the default /var/lib/bootforge/root") {
		t.Errorf("root left to the default: %s", got)
	}
	got = warningsOf(t, dir, "root: nothere\ndata_dir: state\n")
	if !strings.Contains(got, c+":1: root: "+filepath.Join(dir, "nothere")+" does not exist") {
		t.Errorf("missing root: %s", got)
	}
	// A value from the environment is named by its variable, not a line.
	got = warningsOf(t, dir, "root: root\ndata_dir: state\n", Override{Key: "root", Value: filepath.Join(dir, "gone"), Source: "BOOTFORGE_ROOT"})
	if !strings.Contains(got, "root: from BOOTFORGE_ROOT: "+filepath.Join(dir, "gone")+" does not exist") || strings.Contains(got, c) {
		t.Errorf("root from the environment: %s", got)
	}
}

// CheckProfile is the same check for profiles in inventory files.
func TestCheckProfile(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "vmlinuz"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := Profile{Name: "p", Menu: Menu{Entries: []Entry{
		{Name: "a", Kind: "linux", Kernel: "vmlinuz", Initrds: []string{"missing.gz"}, Cmdline: "{ip}"},
		{Name: "b", Kind: "linux", Kernel: "../../etc/passwd", Cmdline: "{nope}"},
	}}}
	errs, warns := CheckProfile(root, false, p)
	if len(errs) != 1 || errs[0].Key != "menu.entries[1].kernel" {
		t.Errorf("errors: %v", errs)
	}
	if len(warns) != 2 || warns[0].Key != "menu.entries[0].initrds[0]" || warns[1].Key != "menu.entries[1].cmdline" {
		t.Errorf("warnings: %v", warns)
	}
	// Case-insensitive roots find VMLINUZ as vmlinuz, as TFTP does.
	p.Menu.Entries = []Entry{{Name: "a", Kind: "linux", Kernel: "VMLINUZ"}}
	if _, warns := CheckProfile(root, true, p); len(warns) != 0 {
		t.Errorf("case-insensitive: %v", warns)
	}
	if _, warns := CheckProfile(root, false, p); len(warns) != 1 {
		t.Errorf("case-sensitive: %v", warns)
	}
}

// A BOOTFORGE_* variable that names no setting is warned about, with the
// nearest known name.
func TestUnknownEnv(t *testing.T) {
	got := unknownEnv([]string{
		"BOOTFORGE_TFTP_MAX_WINDOW_SIZE=8", "BOOTFORGE_CONFIG=/x", "BOOTFORGE_TFTP_ADDR=:69", "PATH=/bin",
		"BOOTFORGE_TFTP_MAX_WINDOWSIZE=8", "BOOTFORGE_DHCP_INTERFACE=eth1", "BOOTFORGE_ROOOT=/srv", "BOOTFORGE_SOMETHING_ELSE_ENTIRELY=1",
		"BOOTFORGE_TEST_POSTGRES=postgres:///x", // the tests' own
	})
	want := []string{
		`BOOTFORGE_TFTP_MAX_WINDOWSIZE: not a bootforge variable; ignored (did you mean "BOOTFORGE_TFTP_MAX_WINDOW_SIZE"?)`,
		`BOOTFORGE_DHCP_INTERFACE: not a bootforge variable; ignored (did you mean "BOOTFORGE_DHCP_INTERFACES"?)`,
		`BOOTFORGE_ROOOT: not a bootforge variable; ignored (did you mean "BOOTFORGE_ROOT"?)`,
		`BOOTFORGE_SOMETHING_ELSE_ENTIRELY: not a bootforge variable; ignored`,
	}
	var msgs []string
	for _, e := range got {
		msgs = append(msgs, e.Error())
	}
	if !reflect.DeepEqual(msgs, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
	// And Warnings reports them.
	t.Setenv("BOOTFORGE_ROOOT", "/srv")
	cfg := Default()
	if ws := cfg.Warnings().Error(); !strings.Contains(ws, "BOOTFORGE_ROOOT") {
		t.Errorf("Warnings: %s", ws)
	}
}

// List keys can be set from the environment, comma-separated.
func TestListFromEnv(t *testing.T) {
	t.Setenv("BOOTFORGE_DHCP_INTERFACES", "eth1, eth2")
	t.Setenv("BOOTFORGE_DHCP_ALLOW", "192.0.2.0/24,198.51.100.0/24")
	t.Setenv("BOOTFORGE_DHCP_MODE", "proxy")
	cfg := Default()
	cfg.Root, cfg.DataDir = "/srv/boot", "/srv/state"
	if err := cfg.Apply(FromEnv()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.DHCP.Interfaces, "|"); got != "eth1|eth2" {
		t.Errorf("dhcp.interfaces %q", got)
	}
	if len(cfg.DHCP.Allow) != 2 || cfg.DHCP.Allow[1].String() != "198.51.100.0/24" {
		t.Errorf("dhcp.allow %v", cfg.DHCP.Allow)
	}
	// A bad element names the variable; an empty value is no list.
	err := cfg.Apply([]Override{{Key: "dhcp.allow", Value: "192.0.2.0/24,nonsense", Source: "BOOTFORGE_DHCP_ALLOW"}})
	if err == nil || !strings.Contains(err.Error(), `dhcp.allow: from BOOTFORGE_DHCP_ALLOW: "nonsense" is not a subnet`) {
		t.Errorf("bad element: %v", err)
	}
	if err := cfg.Set("dhcp.interfaces", ""); err != nil || len(cfg.DHCP.Interfaces) != 0 {
		t.Errorf("empty list: %v %q", err, cfg.DHCP.Interfaces)
	}
	// In brackets, as in the file; "[]" is the empty list, which is how
	// a variable says it (one set empty is as if it were not set).
	if err := cfg.Set("dhcp.interfaces", " [eth1, eth2] "); err != nil || strings.Join(cfg.DHCP.Interfaces, "|") != "eth1|eth2" {
		t.Errorf("[eth1, eth2]: %v %q", err, cfg.DHCP.Interfaces)
	}
	if err := cfg.Set("dhcp.allow", "[]"); err != nil || len(cfg.DHCP.Allow) != 0 {
		t.Errorf("[]: %v %v", err, cfg.DHCP.Allow)
	}

	// The variable may complete a file that turns DHCP on without naming
	// interfaces: the file is validated with the overrides over it.
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(siblingPaths+"dhcp:\n  mode: proxy\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "c.yaml:4: dhcp.interfaces: name the interfaces") {
		t.Errorf("without the variable: %v", err)
	}
	cfg, err = Load(path, Override{Key: "dhcp.interfaces", Value: "eth1", Source: "BOOTFORGE_DHCP_INTERFACES"})
	if err != nil || strings.Join(cfg.DHCP.Interfaces, ",") != "eth1" {
		t.Errorf("with the variable: %q, %v", cfg.DHCP.Interfaces, err)
	}
}

// Relative paths in a file are taken from the file's directory, not the
// working directory; relative paths from flags stay with the working
// directory, as a shell user expects.
func TestRelativePathsFromConfigDir(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "etc", "bootforge.yaml")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	text := "root: ../srv/root\ndata_dir: state\ninventory:\n  dir: inv\nsigning:\n  dir: /abs/keys\nhttp:\n  tls:\n    cert: tls/c.pem\n    key: tls/k.pem\n" +
		"api:\n  tls:\n    cert: api/c.pem\n    key: api/k.pem\nstore:\n  url: sqlite:db/bootforge.db\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir()) // somewhere else entirely
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	etc := filepath.Join(dir, "etc")
	for _, tt := range []struct{ key, got, want string }{
		{"root", cfg.Root, filepath.Join(dir, "srv", "root")},
		{"data_dir", cfg.DataDir, filepath.Join(etc, "state")},
		{"inventory.dir", cfg.Inventory.Dir, filepath.Join(etc, "inv")},
		{"signing.dir", cfg.Signing.Dir, "/abs/keys"},
		{"http.tls.cert", cfg.HTTP.TLS.Cert, filepath.Join(etc, "tls/c.pem")},
		{"http.tls.key", cfg.HTTP.TLS.Key, filepath.Join(etc, "tls/k.pem")},
		{"api.tls.cert", cfg.API.TLS.Cert, filepath.Join(etc, "api/c.pem")},
		{"api.tls.key", cfg.API.TLS.Key, filepath.Join(etc, "api/k.pem")},
		{"store.url", cfg.Store.URL, "sqlite:" + filepath.Join(etc, "db/bootforge.db")},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.key, tt.got, tt.want)
		}
	}
	// Through a relative --config too.
	t.Chdir(dir)
	cfg, err = Load(filepath.Join("etc", "bootforge.yaml"))
	if err != nil || cfg.Root != filepath.Join(dir, "srv", "root") {
		t.Errorf("relative --config: root %q, %v", cfg.Root, err)
	}
	if err := cfg.Apply([]Override{{Key: "root", Value: "r", Source: "--root"}}); err != nil || cfg.Root != "r" {
		t.Errorf("a flag's relative root: %q, %v", cfg.Root, err)
	}
}

// A reload is refused when root would fall back to its default only
// because the file no longer names it, or move to a missing directory.
func TestCheckReload(t *testing.T) {
	dir := t.TempDir()
	old, err := Parse("c.yaml", []byte("root: "+dir+"\ndata_dir: /srv/state\n"))
	if err != nil {
		t.Fatal(err)
	}
	cut, err := Parse("c.yaml", []byte("data_dir: /srv/state\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckReload(old, cut); err == nil || !strings.Contains(err.Error(), "c.yaml: root: no longer set") {
		t.Errorf("root dropped from the file: %v", err)
	}
	// Cut just after "root:", the key is there but names nothing.
	cutAfterColon, err := Parse("c.yaml", []byte("data_dir: /srv/state\nroot:"))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckReload(old, cutAfterColon); err == nil || !strings.Contains(err.Error(), "c.yaml: root: no longer set") {
		t.Errorf("root: with no value: %v", err)
	}
	// Set by a flag instead, it is no accident.
	byFlag := cut
	if err := byFlag.Apply([]Override{{Key: "root", Value: filepath.Join(dir, "sub"), Source: "--root"}}); err != nil {
		t.Fatal(err)
	}
	if err := CheckReload(old, byFlag); err == nil || !strings.Contains(err.Error(), "root: from --root: "+filepath.Join(dir, "sub")+" is not a directory") {
		t.Errorf("root from a flag, missing: %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckReload(old, byFlag); err != nil {
		t.Errorf("root from a flag, existing: %v", err)
	}
	if err := CheckReload(old, old); err != nil {
		t.Errorf("unchanged: %v", err)
	}
}

// A value from a flag or variable that the config refuses names the flag
// or variable the operator typed, whether it did not parse ("from
// BOOTFORGE_TFTP_RETRIES: ...") or was refused once parsed: --log-level
// loud said only `log.level: "loud" is not one of ...`.
func TestOverrideErrorNamesItsSource(t *testing.T) {
	for _, tt := range []struct {
		o    Override
		want string
	}{
		{Override{Key: "log.level", Value: "loud", Source: "--log-level"}, `log.level: "loud" is not one of debug, info, warn, error (from --log-level)`},
		{Override{Key: "log.format", Value: "xml", Source: "BOOTFORGE_LOG_FORMAT"}, `log.format: "xml" is not one of text, json (from BOOTFORGE_LOG_FORMAT)`},
		{Override{Key: "tftp.retries", Value: "x", Source: "BOOTFORGE_TFTP_RETRIES"}, `tftp.retries: from BOOTFORGE_TFTP_RETRIES: "x" is not a valid whole number`},
	} {
		cfg := Default()
		err := cfg.Apply([]Override{tt.o})
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s=%s: %v, want %s", tt.o.Source, tt.o.Value, err, tt.want)
		}
	}
}

// A list key's variable set empty does not empty the file's list (an
// empty variable is as if it were not set), and says so, with the way to
// say the empty list; one whose list is empty anyway, and a scalar's, are
// not warned about.
func TestEmptyListVariableWarned(t *testing.T) {
	cfg := Default()
	if err := cfg.Set("allow", "192.0.2.0/24"); err != nil {
		t.Fatal(err)
	}
	ws := cfg.emptyListEnv([]string{"BOOTFORGE_ALLOW=", "BOOTFORGE_TFTP_ALLOW=", "BOOTFORGE_ROOT=", "BOOTFORGE_DHCP_INTERFACES=eth1"})
	want := `BOOTFORGE_ALLOW: set but empty, so ignored, as every BOOTFORGE_* variable set empty is: allow stays [192.0.2.0/24]; BOOTFORGE_ALLOW=[] is the empty list`
	if len(ws) != 1 || ws[0].Error() != want {
		t.Errorf("warnings %q, want only %q", ws.Error(), want)
	}
}

// The kernel's command-line limit is counted with what the loaders put
// before the words, the entry's kernel and initrd paths among them: a
// line that fits alone but not with its paths is warned about.
func TestCmdlineLengthCountsPaths(t *testing.T) {
	long := strings.Repeat("d/", 100) // 200 bytes of directories
	words := "x=" + strings.Repeat("y", 1900)
	p := Profile{Name: "lab", Menu: Menu{Entries: []Entry{
		{Name: "short", Kind: "linux", Kernel: "vmlinuz", Cmdline: words},
		{Name: "long", Kind: "linux", Kernel: long + "vmlinuz", Initrds: []string{long + "initrd.gz"}, Cmdline: words},
	}}}
	_, warns := CheckProfile("", false, p)
	var keys []string
	for _, w := range warns {
		keys = append(keys, w.Key)
		if !strings.Contains(w.Msg, "2047") {
			t.Errorf("%s: %s, want the kernel's limit named", w.Key, w.Msg)
		}
	}
	if len(keys) != 1 || keys[0] != "menu.entries[1].cmdline" {
		t.Errorf("warned about %v, want only menu.entries[1].cmdline (its paths make it too long)", keys)
	}
}
