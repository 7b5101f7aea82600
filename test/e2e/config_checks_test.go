package e2e

// Config mistakes as an operator makes them, against the real binary: an
// empty or truncated file at start and on SIGHUP, values that cannot work
// (refused, the service stays as it was), values that are probably wrong
// (warned about with file, line and key), and relative paths in the file.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ccAddrs are serve flags for free loopback addresses, the API's too.
func ccAddrs(t *testing.T) (args []string, httpAddr string) {
	ta, ha, hsa := clAddrs(t)
	api := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	return []string{"--tftp-addr", ta, "--http-addr", ha, "--https-addr", hsa, "--api-addr", api}, ha
}

// ccWrite writes text to path.
func ccWrite(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A config file with no settings, or one that cannot work, stops the start
// with a message naming the file (and the line and key), and a non-zero
// exit, instead of a service on the defaults.
func TestConfigChecksRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	ccWrite(t, filepath.Join(root, "vmlinuz"), "k")
	base := fmt.Sprintf("root: %s\ndata_dir: %s\n", root, filepath.Join(dir, "state"))
	profile := base + "inventory:\n  profiles:\n    - name: lab\n      menu:\n        entries:\n"
	for _, tt := range []struct{ name, text, want string }{
		{"empty", "", "cfg.yaml: the file has no settings"},
		{"blank lines", "\n\n  \n", "cfg.yaml: the file has no settings"},
		{"comments only", "# bootforge\n# root: /srv\n", "cfg.yaml: the file has no settings"},
		{"null document", "---\n~\n", "cfg.yaml: the file has no settings"},
		{"cut in a mapping", base + "inventory:\n  profiles:\n", "cfg.yaml:4: inventory.profiles: has no value: was the file cut short?"},
		{"kernel outside root", profile + "          - {name: a, kind: linux, kernel: ../../etc/passwd}\n",
			`cfg.yaml:8: inventory.profiles[0].menu.entries[0].kernel: "../../etc/passwd" can never be served`},
		{"router outside subnet", base + "dhcp:\n  mode: authoritative\n  interfaces: [bf-none0]\n  subnets:\n    - subnet: 192.0.2.0/24\n      router: 198.51.100.1\n",
			"cfg.yaml:8: dhcp.subnets[0].router: 198.51.100.1 is not in the subnet 192.0.2.0/24"},
		{"overlapping pools", base + "dhcp:\n  mode: authoritative\n  interfaces: [bf-none0]\n  subnets:\n    - subnet: 192.0.2.0/24\n      pools: [\"192.0.2.10-192.0.2.50\", \"192.0.2.40-192.0.2.60\"]\n",
			"cfg.yaml:8: dhcp.subnets[0].pools[1]: 192.0.2.40-192.0.2.60 overlaps dhcp.subnets[0].pools[0]"},
		{"host bits in a subnet", base + "dhcp:\n  mode: authoritative\n  interfaces: [bf-none0]\n  subnets:\n    - subnet: 192.0.2.128/24\n",
			`cfg.yaml:7: dhcp.subnets[0].subnet: "192.0.2.128/24" has host bits set`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "cfg.yaml")
			ccWrite(t, cfg, tt.text)
			addrs, _ := ccAddrs(t)
			// root and data_dir come by flag too, so that even a server
			// that took the file never touches the machine's defaults.
			args := append([]string{"serve", "--config", cfg, "--root", root, "--data-dir", filepath.Join(dir, "state")}, addrs...)
			out, code := clRun(t, 15*time.Second, nil, args...)
			if code == 0 || strings.Contains(out, "bootforge ready") {
				t.Fatalf("exit %d; the server started:\n%s", code, out)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("the refusal does not say %q:\n%s", tt.want, out)
			}
		})
	}
}

// On SIGHUP, an empty or truncated file, or a root that is not there, is
// refused and the running config kept: the files stay served.
func TestConfigChecksReload(t *testing.T) {
	need(t, "curl")
	dir := t.TempDir()
	rootA := filepath.Join(dir, "a")
	ccWrite(t, filepath.Join(rootA, "boot.txt"), "served from A\n")
	ccWrite(t, filepath.Join(rootA, "vmlinuz"), "k")
	state := filepath.Join(dir, "state")
	cfg := filepath.Join(dir, "etc", "bootforge.yaml")
	good := fmt.Sprintf("data_dir: %s\nroot: %s\ninventory:\n  profiles:\n    - name: lab\n      menu:\n        entries:\n          - {name: a, kind: linux, kernel: vmlinuz}\n", state, rootA)
	ccWrite(t, cfg, good)
	addrs, ha := ccAddrs(t)
	s := clStart(t, nil, append([]string{"serve", "--config", cfg}, addrs...)...)
	if got := clGet(t, "http://"+ha+"/boot.txt"); got != "served from A\n" {
		t.Fatalf("before any reload: %q", got)
	}

	refused := []struct{ name, text, want string }{
		{"empty", "", cfg + `: the file has no settings`},
		{"comments only", "# emptied by a tool\n", cfg + `: the file has no settings`},
		// Cut at a line: root and everything after it are gone.
		{"cut before root", fmt.Sprintf("data_dir: %s\n", state), cfg + `: root: no longer set, so it would fall back to the default /var/lib/bootforge/root; keeping ` + rootA},
		// Cut in the middle of a mapping.
		{"cut in a mapping", good[:strings.Index(good, "    - name")], cfg + `:4: inventory.profiles: has no value: was the file cut short?`},
		{"cut in a line", good[:len(good)-12], cfg + `:7: did not find expected ',' or '}'`},
		{"root not there", fmt.Sprintf("data_dir: %s\nroot: %s\n", state, filepath.Join(dir, "typo")), cfg + `:2: root: ` + filepath.Join(dir, "typo") + ` is not a directory; keeping ` + rootA},
	}
	for i, tt := range refused {
		ccWrite(t, cfg, tt.text)
		s.Signal(syscall.SIGHUP)
		clWaitCount(t, s, "reload refused, keeping the running config", i+1)
		if got := clGet(t, "http://"+ha+"/boot.txt"); got != "served from A\n" {
			t.Errorf("%s: HTTP after the refused reload: %q, want root A's file", tt.name, got)
		}
		if !strings.Contains(s.Log(), tt.want) {
			t.Errorf("%s: the refusal does not say %q:\n%s", tt.name, tt.want, s.Log())
		}
	}
	if n := s.CountLog("config reloaded"); n != 0 {
		t.Errorf("%d reloads were taken:\n%s", n, s.Log())
	}
	if _, err := os.Stat(filepath.Join(dir, "typo")); err == nil {
		t.Errorf("the refused root was made")
	}

	// A good file with a missing kernel and a misspelled placeholder is
	// taken, with a warning naming file, line and key for each.
	ccWrite(t, cfg, strings.Replace(good, "kernel: vmlinuz}", "kernel: images/vmlinuz, cmdline: \"h={hostnaem}\"}", 1))
	s.Signal(syscall.SIGHUP)
	clWaitCount(t, s, "config reloaded", 1)
	for _, want := range []string{
		cfg + `:8: inventory.profiles[0].menu.entries[0].kernel: \"images/vmlinuz\" is not in root ` + rootA,
		cfg + `:8: inventory.profiles[0].menu.entries[0].cmdline: {hostnaem} is not a placeholder (did you mean \"hostname\"?)`,
	} {
		if !strings.Contains(s.Log(), want) {
			t.Errorf("the reload does not warn %s:\n%s", want, s.Log())
		}
	}
}

// At start: relative paths in the file are the config directory's, not
// the working directory's; probable mistakes and misspelled variables are
// warned about; list keys can come from the environment.
func TestConfigChecksStart(t *testing.T) {
	need(t, "curl")
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc")
	ccWrite(t, filepath.Join(etc, "root", "boot.txt"), "beside the config\n")
	cfg := filepath.Join(etc, "bootforge.yaml")
	ccWrite(t, cfg, `root: root
data_dir: state
inventory:
  profiles:
    - name: lab
      menu:
        entries:
          - {name: a, kind: linux, kernel: vmlinuz, initrds: [initrd.gz]}
`)
	addrs, ha := ccAddrs(t)
	// clStart runs the server in a fresh temporary working directory.
	s := clStart(t, []string{"BOOTFORGE_TFTP_MAX_WINDOWSIZE=8"}, append([]string{"serve", "--config", cfg}, addrs...)...)
	if got := clGet(t, "http://"+ha+"/boot.txt"); got != "beside the config\n" {
		t.Errorf("the relative root is not the config directory's: GET boot.txt gave %q\n%s", got, s.Log())
	}
	if _, err := os.Stat(filepath.Join(etc, "state", "bootforge.db")); err != nil {
		t.Errorf("the relative data_dir is not the config directory's: %v", err)
	}
	for _, want := range []string{
		"root=" + filepath.Join(etc, "root"),
		cfg + `:8: inventory.profiles[0].menu.entries[0].kernel: \"vmlinuz\" is not in root ` + filepath.Join(etc, "root"),
		cfg + `:8: inventory.profiles[0].menu.entries[0].initrds[0]: \"initrd.gz\" is not in root`,
		`BOOTFORGE_TFTP_MAX_WINDOWSIZE: not a bootforge variable; ignored (did you mean \"BOOTFORGE_TFTP_MAX_WINDOW_SIZE\"?)`,
	} {
		if !strings.Contains(s.Log(), want) {
			t.Errorf("the start log lacks %s:\n%s", want, s.Log())
		}
	}

	// A list key from the environment: BOOTFORGE_DHCP_INTERFACES replaces
	// the file's dhcp.interfaces. None of these interfaces exists, so the
	// start fails on opening the first one, by its name: the variable's.
	proxy := filepath.Join(t.TempDir(), "proxy.yaml")
	ccWrite(t, proxy, fmt.Sprintf("root: %s\ndata_dir: %s\ndhcp:\n  mode: proxy\n  interfaces: [bf-file0]\n", filepath.Join(etc, "root"), filepath.Join(dir, "state2")))
	addrs, _ = ccAddrs(t)
	out, code := clRun(t, 15*time.Second, nil, append([]string{"serve", "--config", proxy}, addrs...)...)
	if code == 0 || !strings.Contains(out, "bf-file0") {
		t.Errorf("without the variable: exit %d, want a failure naming bf-file0\n%s", code, out)
	}
	out, code = clRun(t, 15*time.Second, []string{"BOOTFORGE_DHCP_INTERFACES=bf-none0, bf-none1"}, append([]string{"serve", "--config", proxy}, addrs...)...)
	if code == 0 || strings.Contains(out, "bf-file0") || !strings.Contains(out, "bf-none0") {
		t.Errorf("with BOOTFORGE_DHCP_INTERFACES=bf-none0, bf-none1: exit %d, want a failure naming bf-none0\n%s", code, out)
	}
	// Set empty it is as if it were not set, as every variable (a
	// template's blank must not empty an allow-list), and says so; "[]"
	// is the empty list, which DHCP on refuses.
	out, code = clRun(t, 15*time.Second, []string{"BOOTFORGE_DHCP_INTERFACES="}, append([]string{"serve", "--config", proxy}, addrs...)...)
	if code == 0 || !strings.Contains(out, `dhcp interface "bf-file0"`) ||
		!strings.Contains(out, "BOOTFORGE_DHCP_INTERFACES: set but empty, so ignored, as every BOOTFORGE_* variable set empty is: dhcp.interfaces stays [bf-file0]; BOOTFORGE_DHCP_INTERFACES=[] is the empty list") {
		t.Errorf("with BOOTFORGE_DHCP_INTERFACES= : exit %d, want a failure naming bf-file0 and a warning\n%s", code, out)
	}
	out, code = clRun(t, 15*time.Second, []string{"BOOTFORGE_DHCP_INTERFACES=[]"}, append([]string{"serve", "--config", proxy}, addrs...)...)
	if code == 0 || strings.Contains(out, "bf-file0") || !strings.Contains(out, "dhcp.interfaces: name the interfaces to serve (a DHCP server must not answer everywhere) (from BOOTFORGE_DHCP_INTERFACES)") {
		t.Errorf("with BOOTFORGE_DHCP_INTERFACES=[]: exit %d, want dhcp.interfaces refused as empty\n%s", code, out)
	}
	// And it completes a file that names none.
	ccWrite(t, proxy, fmt.Sprintf("root: %s\ndata_dir: %s\ndhcp:\n  mode: proxy\n", filepath.Join(etc, "root"), filepath.Join(dir, "state2")))
	out, code = clRun(t, 15*time.Second, []string{"BOOTFORGE_DHCP_INTERFACES=bf-none0"}, append([]string{"serve", "--config", proxy}, addrs...)...)
	if code == 0 || strings.Contains(out, "name the interfaces") || !strings.Contains(out, "bf-none0") {
		t.Errorf("a file without interfaces and BOOTFORGE_DHCP_INTERFACES=bf-none0: exit %d, want a failure naming bf-none0\n%s", code, out)
	}
}

// check --expect-profile against a running server: a menu of another
// profile fails with one line that names both profiles, as every item
// is one line; it printed the menu's first three lines (#!ipxe, the
// profile line and half a kernel line) in the item, JSON included.
func TestConfigChecksExpectProfile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bootforge.yaml")
	ccWrite(t, filepath.Join(dir, "root", "vmlinuz"), "kernel\n")
	ccWrite(t, cfg, `root: root
data_dir: state
inventory:
  profiles:
    - name: lab
      menu:
        entries:
          - {name: a, kind: linux, kernel: vmlinuz}
    - name: special
      match: [{mac: "02:bf:00:00:00:09"}]
      menu:
        entries:
          - {name: b, kind: linux, kernel: vmlinuz}
`)
	addrs, _ := ccAddrs(t)
	clStart(t, nil, append([]string{"serve", "--config", cfg}, addrs...)...)
	menuItem := func(expect string) (string, string) {
		t.Helper()
		out, _ := clRun(t, time.Minute, nil, append([]string{"check", "--json", "--config", cfg, "--mac", "02:bf:00:00:00:09",
			"--expect-profile", expect}, addrs...)...)
		var items []struct{ Name, Status, Detail string }
		// The list, then stderr's "checklist failed" (tftp has no loader).
		if err := json.NewDecoder(strings.NewReader(out)).Decode(&items); err != nil {
			t.Fatalf("check --json: %v\n%s", err, out)
		}
		for _, it := range items {
			if it.Name == "menu" {
				return it.Status, it.Detail
			}
		}
		t.Fatalf("no menu item:\n%s", out)
		return "", ""
	}
	if status, detail := menuItem("special"); status != "pass" || detail != "02:bf:00:00:00:09 gets profile special" {
		t.Errorf("the expected profile: %s %q", status, detail)
	}
	if status, detail := menuItem("lab"); status != "fail" || detail != "02:bf:00:00:00:09 gets profile special, not lab (--expect-profile)" {
		t.Errorf("another profile: %s %q, want one line naming both", status, detail)
	}
}

// Keys replaced under a running server (keys init --force) and a SIGHUP:
// the reload says that they apply on restart, and menus are still signed
// with the key the server started with. The reload was silent, and the
// operator took the SIGHUP to have applied the new keys.
func TestConfigChecksKeysReplaced(t *testing.T) {
	need(t, "curl", "openssl")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bootforge.yaml")
	ccWrite(t, filepath.Join(dir, "root", "vmlinuz"), "kernel\n")
	ccWrite(t, cfg, `root: root
data_dir: state
signing: {enabled: true}
inventory:
  profiles:
    - name: lab
      match: [{mac: "02:bf:00:00:00:09"}]
      menu:
        entries:
          - {name: a, kind: linux, kernel: vmlinuz}
`)
	keysInit := func(args ...string) string {
		t.Helper()
		out, code := clRun(t, 2*time.Minute, nil, append([]string{"keys", "init", "--config", cfg}, args...)...)
		if code != 0 {
			t.Fatalf("keys init %v: exit %d\n%s", args, code, out)
		}
		return out
	}
	keysInit()
	addrs, ha := ccAddrs(t)
	s := clStart(t, nil, append([]string{"serve", "--config", cfg}, addrs...)...)
	// signer is the SHA-256 fingerprint of the certificate that signed
	// the menu, as openssl reads it from the signature.
	sigFile := filepath.Join(dir, "ipxe.sig")
	signer := func() string {
		t.Helper()
		if _, err := run(t, 20*time.Second, "curl", "-sf", "-o", sigFile, "http://"+ha+"/bootforge/ipxe.sig?mac=02-bf-00-00-00-09"); err != nil {
			t.Fatalf("GET ipxe.sig: %v\n%s", err, s.Log())
		}
		out, err := run(t, 20*time.Second, "sh", "-c", "openssl pkcs7 -inform DER -in "+sigFile+" -print_certs | openssl x509 -noout -fingerprint -sha256")
		if err != nil {
			t.Fatalf("openssl: %v\n%s", err, out)
		}
		return out
	}
	before := signer()
	const warning = "were replaced; they apply on restart (until then menus are signed with the old signing key)"

	s.Signal(syscall.SIGHUP)
	clWaitCount(t, s, "config reloaded", 1)
	if s.CountLog(warning) != 0 {
		t.Errorf("a reload with the keys as they were warns:\n%s", s.Log())
	}

	if out := keysInit("--force"); !strings.Contains(out, "until it is restarted; a reload (SIGHUP) does not read keys") {
		t.Errorf("keys init --force does not say that serve goes on with the old keys:\n%s", out)
	}
	s.Signal(syscall.SIGHUP)
	clWaitCount(t, s, "config reloaded", 2)
	if want := "reload: the keys in " + filepath.Join(dir, "state", "keys") + " " + warning; s.CountLog(want) != 1 {
		t.Errorf("the reload after keys init --force does not say %q:\n%s", want, s.Log())
	}
	if after := signer(); after != before {
		t.Errorf("the menu is signed by another certificate after the reload: %s, before %s", after, before)
	}
}

// An allow-list from the environment: a variable set empty (a service
// manager's template with the value left out) keeps the file's list, so a
// client outside it is still refused; "[]" empties it on purpose, and
// everyone is let in.
func TestConfigChecksEmptyListVariable(t *testing.T) {
	need(t, "curl")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bootforge.yaml")
	ccWrite(t, filepath.Join(dir, "root", "boot.txt"), "served\n")
	ccWrite(t, cfg, "root: root\ndata_dir: state\nallow: [192.0.2.0/24]\n")
	for _, tt := range []struct {
		env, code string
	}{
		{"BOOTFORGE_ALLOW=", "403"},
		{"BOOTFORGE_ALLOW=[]", "200"},
	} {
		addrs, ha := ccAddrs(t)
		s := clStart(t, []string{tt.env}, append([]string{"serve", "--config", cfg}, addrs...)...)
		out, _ := run(t, 20*time.Second, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "15", "http://"+ha+"/boot.txt")
		if out != tt.code {
			t.Errorf("%s: GET from 127.0.0.1 with allow [192.0.2.0/24] in the file: status %s, want %s\n%s", tt.env, out, tt.code, s.Log())
		}
		s.Stop()
	}
}
