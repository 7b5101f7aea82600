package e2e

// The decisions of issue #11, each proven against the real binary and real
// peers: which loader a client gets (Secure Boot by subnet on a directly
// served link), which profile a menu comes from (vendor class rules), what
// the API and CLI store and accept (a host's secure_boot, one-shot entries
// of reachable profiles), which kernels are checked for a Secure Boot host,
// what the preview says for UEFI HTTP boot, and what the boot log records
// (profile and reason of DHCP answers; the MAC a URL names).
//
// The QEMU tests reuse boot_menu_test.go's lab (bootforge as the only DHCP,
// TFTP and HTTP server) and boot_secure_test.go's Secure Boot VM and
// checks, and take a slot of sbGate per VM.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// Helpers

// dcSubnetSecureBoot continues the lab subnet item that newMenuLab writes
// (192.0.2.0/24, its last key lease_time at six spaces) with secure_boot:
// put it first in menuLabOptions.Inventory, before the inventory: key.
const dcSubnetSecureBoot = "      secure_boot: true\n"

// dcCLIConfig writes cfg, with s's root and data_dir, to a file for the
// CLI: the same inventory and store as the running server.
func dcCLIConfig(t *testing.T, s *Server, cfg string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bootforge.yaml")
	text := fmt.Sprintf("root: %s\ndata_dir: %s\n", s.Root, s.DataDir) + cfg
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// dcCLI runs the CLI with --config cliCfg and returns output and exit code.
func dcCLI(t *testing.T, cliCfg string, args ...string) (string, int) {
	t.Helper()
	return clRun(t, 60*time.Second, nil, append([]string{"--config", cliCfg}, args...)...)
}

// dcEvents reads the boot log with `bootforge log --json args...` (one
// JSON object per line) until done accepts it or 15 s pass: the recorder
// writes in batches.
func dcEvents(t *testing.T, cliCfg string, done func([]map[string]any) bool, args ...string) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, code := dcCLI(t, cliCfg, append([]string{"log", "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("bootforge log --json %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		var events []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			var e map[string]any
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("bootforge log --json printed a line that is not one JSON object: %q: %v", line, err)
			}
			events = append(events, e)
		}
		if done(events) || time.Now().After(deadline) {
			return events
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// dcStr is a string field of a JSON event ("" if missing or not a string).
func dcStr(e map[string]any, k string) string {
	s, _ := e[k].(string)
	return s
}

// dcDump prints events one JSON object per line, for failure messages.
func dcDump(events []map[string]any) string {
	var b strings.Builder
	for _, e := range events {
		j, _ := json.Marshal(e)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// dcAPI is an API client (curl) with one token.
type dcAPI struct {
	t     *testing.T
	base  string
	token string
}

// dcAdminAPI makes an admin token for s with the CLI and returns a client;
// with cliCfg, through that config, so that the token is in its store.
func dcAdminAPI(t *testing.T, s *Server, cliCfg ...string) *dcAPI {
	t.Helper()
	need(t, "curl")
	var out string
	var code int
	if len(cliCfg) > 0 { // the server's own config: its store, PostgreSQL too
		out, code = dcCLI(t, cliCfg[0], "token", "create", "--role", "admin")
	} else {
		out, code = clRun(t, 30*time.Second, []string{"BOOTFORGE_DATA_DIR=" + s.DataDir, "BOOTFORGE_ROOT=" + s.Root},
			"token", "create", "--role", "admin")
	}
	tok := ""
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "bf_") {
			tok = f
		}
	}
	if code != 0 || tok == "" {
		t.Fatalf("bootforge token create --role admin: exit %d, no token:\n%s", code, out)
	}
	return &dcAPI{t: t, base: "http://" + s.APIAddr, token: tok}
}

// call sends one request and returns the status and the body.
func (a *dcAPI) call(method, path, body string) (int, string) {
	a.t.Helper()
	args := []string{"-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, "-H", "Authorization: Bearer " + a.token}
	if body != "" {
		args = append(args, "-H", "Content-Type: application/json", "--data", body)
	}
	out, err := run(a.t, 20*time.Second, "curl", append(args, a.base+path)...)
	if err != nil {
		a.t.Fatalf("curl -X %s %s: %v\n%s", method, path, err, out)
	}
	i := strings.LastIndex(out, "\n")
	var code int
	fmt.Sscanf(out[i+1:], "%d", &code)
	text := out[:i]
	var b bytes.Buffer
	if json.Compact(&b, []byte(text)) == nil {
		text = b.String() // one line, for failure messages
	}
	return code, text
}

// dcServe runs the binary with args in lab's namespace until it exits or
// logs "bootforge ready" (then it is stopped), for at most 20 s, and
// returns its output, whether it got ready, and its exit error.
func dcServe(t *testing.T, lab *Lab, args ...string) (string, bool, error) {
	t.Helper()
	cmd := lab.Command(binary, args...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case err := <-done:
			return out.String(), strings.Contains(out.String(), "bootforge ready"), err
		case <-deadline:
			cmd.Process.Kill()
			err := <-done
			return out.String(), true, fmt.Errorf("still running after 20 s (%v)", err)
		case <-time.After(50 * time.Millisecond):
			if strings.Contains(out.String(), "bootforge ready") {
				cmd.Process.Signal(syscall.SIGTERM)
				err := <-done
				return out.String(), true, err
			}
		}
	}
}

// dcWaitFirmwareReplies waits until bootforge has answered mac's firmware
// (a DHCP OFFER or ACK whose boot file is not an iPXE script URL) and
// returns those answers; it fails the test if none comes within timeout or
// QEMU exits first.
func dcWaitFirmwareReplies(t *testing.T, s *Server, vm *VM, mac string, timeout time.Duration) []LogRecord {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var got []LogRecord
		for _, r := range ServerRecords(s, "dhcp: replied") {
			if strings.EqualFold(r["mac"], mac) && (r["type"] == "OFFER" || r["type"] == "ACK") &&
				!strings.HasSuffix(r["file"], "/boot.ipxe") {
				got = append(got, r)
			}
		}
		if len(got) > 0 {
			return got
		}
		if vm.Exited(0) || time.Now().After(deadline) {
			vm.shown.Store(true)
			t.Fatalf("bootforge sent VM %s no DHCP OFFER/ACK within %s (its replies: %v)\nconsole tail:\n%s",
				mac, vm.Elapsed().Round(time.Second), dhReplies(s, mac, ""), vm.Tail(30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// 1. dhcp.subnets[].secure_boot for a client on a directly served link
//
// The VM is on the lab bridge, which bootforge serves directly (no relay),
// and its firmware has no address yet (no ciaddr). Nothing but the subnet
// says Secure Boot: the profile and the (absent) host record do not.

func TestDecisionSubnetSecureBootDirectLink(t *testing.T) {
	t.Parallel()
	const mac = "52:54:00:dc:01:01"
	m := newMenuLab(t, menuLabOptions{
		Inventory: dcSubnetSecureBoot + `inventory:
  profiles:
    - name: plain
      match: [{mac: "` + mac + `"}]
      menu:
        entries:
` + sbEntries("", "sb"),
		Copy: sbLoaders,
	})
	// The setting took: a client known to be on the subnet (by its
	// address) gets the shim. This is not the bug: it isolates it.
	out := m.cli(t, "menu", "render", "--mac", mac, "--arch", "7", "--ip", "192.0.2.150")
	if !strings.Contains(out, "# dhcp boot file: shimx64.efi") || !strings.Contains(out, "Secure Boot for subnet 192.0.2.0/24") {
		t.Fatalf("precondition: bootforge menu render --mac %s --arch 7 --ip 192.0.2.150 does not give the shim for the Secure Boot subnet:\n%s", mac, out)
	}

	sbGate.acquire(t, 1)
	vm := startSecureVM(t, m.Lab, mac)
	// Fail fast and precisely on the firmware's DHCP answer: with another
	// loader, Secure Boot firmware just refuses it and the marker never comes.
	replies := dcWaitFirmwareReplies(t, m.Server, vm, mac, bmBootTimeout)
	for _, r := range replies {
		if r["file"] != "shimx64.efi" {
			vm.shown.Store(true)
			t.Fatalf("the Secure Boot VM %s on the directly served subnet 192.0.2.0/24 (secure_boot: true; no profile or host says so) got DHCP %s with boot file %q, want shimx64.efi (dhcp.loaders.secure_boot_x64)\nconsole tail:\n%s",
				mac, r["type"], r["file"], vm.Tail(20))
		}
	}
	requireSecureBootTo(t, m, vm, mac, "Secure Boot (by subnet)", "bfmarker=plain-sb", "plain")
}

// ---------------------------------------------------------------------------
// 2. A vendor class (option 60) rule chooses the menu
//
// QEMU's BIOS ROM is iPXE; its DHCP request carries vendor class
// PXEClient:Arch:00000:UNDI:002001. Its menu must come from the profile
// whose rule matches that, not from the default profile.

func TestDecisionVendorRuleChoosesMenu(t *testing.T) {
	t.Parallel()
	const mac = "52:54:00:dc:02:01"
	m := newMenuLab(t, menuLabOptions{
		Inventory: `inventory:
  default_profile: fallback
  profiles:
    - name: fallback
      menu:
        entries:
` + linuxEntries("", "fb") + `    - name: byvendor
      match: [{vendor: "PXEClient:Arch:00000*"}]
      menu:
        entries:
` + linuxEntries("", "v"),
	})
	// A neighbour without an address records the DHCP broadcasts, to prove
	// what vendor class the VM really sent.
	watcher := m.Lab.AddHost(t, "")
	sniff := dhSniff(t, watcher.Netns, watcher.Iface)

	sbGate.acquire(t, 1)
	_, cmdline := m.boot(t, "bios", mac)

	var vendors []string
	for _, c := range sniff.Packets() {
		p, err := dhParse(c.Payload)
		if err != nil || p.Op != 1 || !strings.EqualFold(p.CHAddr.String(), mac) {
			continue
		}
		vendors = append(vendors, p.Str(60))
	}
	sent := false
	for _, v := range vendors {
		sent = sent || strings.HasPrefix(v, "PXEClient:Arch:00000")
	}
	if !sent {
		t.Fatalf("precondition: the VM's DHCP requests carried no vendor class PXEClient:Arch:00000* (saw %q)", vendors)
	}
	t.Logf("vendor classes the VM sent: %q", vendors)

	var menus []string
	for _, r := range ServerRecords(m.Server, "menu") {
		if r["mac"] == mac {
			menus = append(menus, r["format"]+" profile="+r["profile"]+" ("+r["why"]+")")
		}
	}
	if got := markers(cmdline); len(got) != 1 || got[0] != "bfmarker=byvendor-v" {
		t.Errorf("the BIOS iPXE VM (vendor class PXEClient:Arch:00000:UNDI:002001) booted markers %v, want [bfmarker=byvendor-v] (profile byvendor, rule vendor: \"PXEClient:Arch:00000*\"); menus served: %v",
			got, menus)
	}
}

// ---------------------------------------------------------------------------
// 3. PUT /api/v1/hosts/{name} keeps secure_boot

func TestDecisionAPIHostSecureBoot(t *testing.T) {
	t.Parallel()
	cfg := `inventory:
  default_profile: lab
  profiles:
    - name: lab
      menu:
        entries:
          - {name: disk, kind: local}
`
	s := StartServer(t, ServerOptions{Config: cfg})
	cliCfg := dcCLIConfig(t, s, cfg)
	api := dcAdminAPI(t, s)
	const name, mac = "sbpc", "52:54:00:dc:03:01"
	code, body := api.call("PUT", "/api/v1/hosts/"+name, `{"macs":["`+mac+`"],"secure_boot":true}`)
	if code != 200 {
		t.Fatalf("PUT /api/v1/hosts/%s with secure_boot: %d %s", name, code, body)
	}

	// The inventory picks store changes up within two seconds.
	var host map[string]any
	var list string
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, list = api.call("GET", "/api/v1/hosts", "")
		var hosts []map[string]any
		if code != 200 || json.Unmarshal([]byte(list), &hosts) != nil {
			t.Fatalf("GET /api/v1/hosts: %d %s", code, list)
		}
		host = nil
		for _, h := range hosts {
			if h["name"] == name {
				host = h
			}
		}
		if host != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	switch {
	case host == nil:
		t.Errorf("GET /api/v1/hosts does not list host %s after the PUT:\n%s", name, list)
	case host["secure_boot"] != true:
		t.Errorf("PUT /api/v1/hosts/%s sent \"secure_boot\": true and got 200, but GET /api/v1/hosts shows secure_boot=%v for it: %s",
			name, host["secure_boot"], dcJSON(host))
	}

	out, code2 := dcCLI(t, cliCfg, "host", "show", name, "--json")
	var shown []map[string]any
	if code2 != 0 || json.Unmarshal([]byte(out), &shown) != nil || len(shown) != 1 {
		t.Fatalf("bootforge host show %s --json: exit %d:\n%s", name, code2, out)
	}
	if shown[0]["secure_boot"] != true {
		t.Errorf("bootforge host show %s --json shows secure_boot=%v, want true:\n%s", name, shown[0]["secure_boot"], out)
	}
}

func dcJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// ---------------------------------------------------------------------------
// 4a. A Secure Boot host (hosts/*.yaml, no pin) gets its kernels checked

func TestDecisionHostSecureBootKernelChecked(t *testing.T) {
	t.Parallel()
	const mac = "52:54:00:dc:04:01"
	kernel, initrd := NetbootKernel(t)
	unsigned := unsignedKernel(t, kernel)
	root, data, invDir := t.TempDir(), t.TempDir(), t.TempDir()
	copyFile(t, kernel, filepath.Join(root, "vmlinuz"))
	copyFile(t, unsigned, filepath.Join(root, "vmlinuz-unsigned"))
	copyFile(t, initrd, filepath.Join(root, "initrd.gz"))
	for name, src := range sbLoaders {
		copyFile(t, src, filepath.Join(root, name))
	}
	// secure_boot is on the host only, in hosts/*.yaml; it pins nothing:
	// its MAC rule gives it profile byrule, whose entry "bad" is unsigned.
	// Profile legacy (another OUI) can never be this host's: its unsigned
	// kernel is no Secure Boot kernel.
	os.MkdirAll(filepath.Join(invDir, "hosts"), 0o755)
	if err := os.WriteFile(filepath.Join(invDir, "hosts", "sb.yaml"),
		[]byte(`- {name: sbhost, macs: ["`+mac+`"], secure_boot: true}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`root: %s
data_dir: %s
inventory:
  dir: %s
  profiles:
    - name: byrule
      match: [{mac: "%s"}]
      menu:
        entries:
%s    - name: legacy
      match: [{oui: "02:00:00"}]
      menu:
        entries:
%s`, root, data, invDir, mac, sbEntries("vmlinuz", "good")+sbEntries("vmlinuz-unsigned", "bad"), sbEntries("vmlinuz-unsigned", "old"))
	cfgPath := filepath.Join(t.TempDir(), "bootforge.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	checkRefusal := func(what, out string) {
		t.Helper()
		for _, w := range []string{`profile "byrule"`, `entry "bad"`, `"vmlinuz-unsigned"`, "not signed"} {
			if !strings.Contains(out, w) {
				t.Errorf("%s: the refusal does not name %s:\n%s", what, w, out)
			}
		}
		for _, w := range []string{`entry "good"`, `profile "legacy"`, `entry "old"`} {
			if strings.Contains(out, w) {
				t.Errorf("%s: the refusal names %s, which no Secure Boot client can be handed:\n%s", what, w, out)
			}
		}
	}

	// The host really takes the shim chain (that part works today).
	out, code := clRun(t, 60*time.Second, nil, "--config", cfgPath, "menu", "render", "--mac", mac, "--arch", "7")
	t.Logf("bootforge menu render --mac %s --arch 7 (exit %d):\n%s", mac, code, out)
	if code == 0 {
		if !strings.Contains(out, "# dhcp boot file: shimx64.efi") || !strings.Contains(out, `Secure Boot for host "sbhost"`) {
			t.Errorf("precondition: host sbhost (secure_boot in hosts/sb.yaml) is not on the shim chain:\n%s", out)
		}
		t.Errorf("bootforge menu render succeeded although Secure Boot host sbhost (hosts/sb.yaml, no pin) is handed profile byrule, whose entry \"bad\" has the unsigned kernel vmlinuz-unsigned")
	} else {
		checkRefusal("bootforge menu render", out)
	}

	// bootforge serve refuses to start. It runs in a lab namespace, so
	// that if it does start it listens there only.
	lab := NewLab(t)
	out, started, err := dcServe(t, lab, "--config", cfgPath, "serve",
		"--tftp-addr", lab.IP()+":69", "--http-addr", lab.IP()+":8080", "--https-addr", lab.IP()+":8443", "--api-addr", lab.IP()+":9090")
	t.Logf("bootforge serve (started %v, exit %v):\n%s", started, err, out)
	switch {
	case started:
		t.Errorf("bootforge serve started (\"bootforge ready\") although Secure Boot host sbhost (hosts/sb.yaml, no pin) is handed profile byrule, whose entry \"bad\" has the unsigned kernel vmlinuz-unsigned")
	case err == nil:
		t.Errorf("bootforge serve exited 0 with an unsigned kernel in the profile of a Secure Boot host")
	default:
		checkRefusal("bootforge serve", out)
	}

	// Without the unsigned entry the same inventory loads: the refusal
	// was about that file alone.
	good := strings.Replace(cfg, sbEntries("vmlinuz-unsigned", "bad"), "", 1)
	if err := os.WriteFile(cfgPath, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = clRun(t, 60*time.Second, nil, "--config", cfgPath, "menu", "render", "--mac", mac, "--arch", "7")
	if code != 0 || !strings.Contains(out, "# dhcp boot file: shimx64.efi") {
		t.Errorf("bootforge menu render with the signed kernel only: exit %d, want the shim chain:\n%s", code, out)
	}
}

// ---------------------------------------------------------------------------
// 4b. ... and boots through shim with a signed kernel

func TestDecisionHostSecureBootBoots(t *testing.T) {
	t.Parallel()
	const mac = "52:54:00:dc:04:02"
	invDir := t.TempDir()
	os.MkdirAll(filepath.Join(invDir, "hosts"), 0o755)
	if err := os.WriteFile(filepath.Join(invDir, "hosts", "sb.yaml"),
		[]byte(`- {name: sbhost, macs: ["`+mac+`"], secure_boot: true}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := newMenuLab(t, menuLabOptions{
		Inventory: `inventory:
  dir: ` + invDir + `
  profiles:
    - name: byrule
      match: [{mac: "` + mac + `"}]
      menu:
        entries:
` + sbEntries("", "signed"),
		Copy: sbLoaders,
	})
	out := m.cli(t, "menu", "render", "--mac", mac, "--arch", "7")
	if !strings.Contains(out, "# dhcp boot file: shimx64.efi") || !strings.Contains(out, `Secure Boot for host "sbhost"`) ||
		!strings.Contains(out, "# profile: byrule") {
		t.Errorf("bootforge menu render --mac %s --arch 7: want the shim chain for host sbhost and profile byrule:\n%s", mac, out)
	}

	sbGate.acquire(t, 1)
	vm := startSecureVM(t, m.Lab, mac)
	requireSecureBootTo(t, m, vm, mac, "Secure Boot (by host file)", "bfmarker=byrule-signed", "byrule")
}

// ---------------------------------------------------------------------------
// 5. One-shot entries: any reachable profile's menus, variants included;
// never an entry no reachable profile has

func TestDecisionNextBootReachableEntries(t *testing.T) {
	t.Parallel()
	const (
		macA = "52:54:00:dc:05:01" // profile lab by OUI; arm reachable by firmware
		macB = "02:00:00:dc:05:02" // no rule matches its MAC: only arm is reachable
	)
	cfg := `inventory:
  hosts:
    - {name: pc-a, macs: ["` + macA + `"]}
    - {name: pc-b, macs: ["` + macB + `"]}
  profiles:
    - name: lab
      match: [{oui: "52:54:00"}]
      menu:
        entries:
          - {name: disk, kind: local}
      variants:
        efi-x64:
          entries:
            - {name: uefi-shell, kind: shell}
    - name: arm
      match: [{arch: efi-arm64}]
      menu:
        entries:
          - {name: armdisk, kind: local}
      variants:
        efi-arm64:
          entries:
            - {name: arm-shell, kind: shell}
`
	s := StartServer(t, ServerOptions{Config: cfg})
	cliCfg := dcCLIConfig(t, s, cfg)
	api := dcAdminAPI(t, s)

	// Accepted by both: an entry only in a firmware variant of a profile
	// the host can be given.
	for _, c := range []struct{ mac, entry, where string }{
		{macA, "uefi-shell", "profile lab's efi-x64 variant"},
		{macB, "arm-shell", "profile arm's efi-arm64 variant"},
	} {
		out, code := dcCLI(t, cliCfg, "host", "next-boot", c.mac, c.entry)
		if code != 0 {
			t.Errorf("bootforge host next-boot %s %s (only in %s): exit %d, want it accepted:\n%s", c.mac, c.entry, c.where, code, out)
		}
		st, body := api.call("PUT", "/api/v1/next-boot/"+c.mac, `{"entry":"`+c.entry+`"}`)
		if st != 200 {
			t.Errorf("PUT /api/v1/next-boot/%s {\"entry\":%q} (only in %s): %d %s, want 200 as the CLI accepts it",
				c.mac, c.entry, c.where, st, strings.TrimSpace(body))
		}
	}

	// Refused by both: an entry in no profile either host can be given.
	for _, mac := range []string{macA, macB} {
		out, code := dcCLI(t, cliCfg, "host", "next-boot", mac, "ghost")
		if code == 0 {
			t.Errorf("bootforge host next-boot %s ghost (no profile has an entry ghost): exit 0, want non-zero; it printed: %q",
				mac, strings.TrimSpace(out))
		} else if !strings.Contains(out, "ghost") {
			t.Errorf("bootforge host next-boot %s ghost: exit %d, but the error does not name the entry:\n%s", mac, code, out)
		}
		st, body := api.call("PUT", "/api/v1/next-boot/"+mac, `{"entry":"ghost"}`)
		var e struct{ Code, Field, Message string }
		json.Unmarshal([]byte(body), &e)
		if st != 400 || !strings.Contains(e.Message, "ghost") {
			t.Errorf("PUT /api/v1/next-boot/%s {\"entry\":\"ghost\"} (no profile has it): %d %s, want 400 naming the entry",
				mac, st, strings.TrimSpace(body))
		}
	}
	st, body := api.call("GET", "/api/v1/next-boot", "")
	if st != 200 {
		t.Fatalf("GET /api/v1/next-boot: %d %s", st, body)
	}
	var shots []map[string]any
	json.Unmarshal([]byte(body), &shots)
	for _, sh := range shots {
		if sh["entry"] == "ghost" {
			t.Errorf("a refused one-shot was stored: %s", dcJSON(sh))
		}
	}
}

// ---------------------------------------------------------------------------
// 6. The preview of a UEFI HTTP boot client names what the server gives it

func TestDecisionMenuRenderHTTPBoot(t *testing.T) {
	t.Parallel()
	inv := `inventory:
  default_profile: lab
  profiles:
    - name: lab
      menu:
        entries:
          - {name: disk, kind: local}
`
	cfg := dhProxyConfig + inv
	lab := NewLab(t)
	s := dhStart(t, lab, cfg)
	h := dhAddHost(t, lab, "192.0.2.30")
	c := dhSocket(t, h.Netns, h.Iface, 68)

	// What the server really gives an x64 UEFI HTTP boot client.
	const mac = "52:54:00:dc:06:01"
	msg := dhNewMsg(mac, dhDiscover, dhOS(60, "HTTPClient:Arch:00016:UNDI:003001"), dhOArch(16))
	r := dhMustExchange(t, c, "255.255.255.255:67", msg, dhOffer, dhReplyWait)
	served, err := url.Parse(r.Str(67))
	if err != nil || served.Scheme != "http" || r.Str(60) != "HTTPClient" {
		t.Fatalf("precondition: the server's answer to arch 16: boot file %q, vendor class %q; want an http:// URL and HTTPClient", r.Str(67), r.Str(60))
	}
	t.Logf("the server gives arch 16 (HTTPClient) boot file %s", served)

	cliCfg := dcCLIConfig(t, s, cfg)
	bootLine := regexp.MustCompile(`(?m)^# dhcp boot file: (.*?)(?: \((.*)\))?$`)
	for _, arch := range []string{"16", "efi-x64-http"} {
		out, code := dcCLI(t, cliCfg, "menu", "render", "--mac", mac, "--arch", arch)
		if code != 0 {
			t.Errorf("bootforge menu render --mac %s --arch %s: exit %d, want it accepted:\n%s", mac, arch, code, out)
			continue
		}
		mm := bootLine.FindStringSubmatch(out)
		if mm == nil {
			t.Errorf("bootforge menu render --arch %s prints no \"# dhcp boot file:\" line:\n%s", arch, out)
			continue
		}
		line := strings.TrimSpace(mm[0])
		u, err := url.Parse(mm[1])
		switch {
		case err != nil:
			t.Errorf("bootforge menu render --arch %s: the boot file %q is not a URL (%v); want an http:// URL of %s as the server gives (%s). Line: %q",
				arch, mm[1], err, served.Path, served, line)
		case u.Scheme != "http" || u.Host == "" || strings.ContainsAny(u.Host, " \t") || u.Path != served.Path:
			t.Errorf("bootforge menu render --arch %s: boot file %q, want an http:// URL with a host and path %s, as the server gives arch 16 (%s). Line: %q",
				arch, mm[1], served.Path, served, line)
		}
		if !strings.Contains(mm[2], "UEFI HTTP boot") || strings.Contains(line, "TFTP") {
			t.Errorf("bootforge menu render --arch %s: the reason %q does not say UEFI HTTP boot (or says TFTP). Line: %q", arch, mm[2], line)
		}
	}
}

// ---------------------------------------------------------------------------
// 7a. DHCP events in the boot log carry firmware, profile and reason

func TestDecisionBootLogDHCPReason(t *testing.T) {
	t.Parallel()
	const mac = "52:54:00:dc:07:01"
	inv := `inventory:
  profiles:
    - name: pxe7
      match: [{mac: "` + mac + `"}]
      menu:
        entries:
          - {name: disk, kind: local}
`
	cfg := dhAuthConfig("192.0.2.100", "192.0.2.150", "") + inv
	lab := NewLab(t)
	s := dhStart(t, lab, cfg)
	cliCfg := dcCLIConfig(t, s, cfg)

	// A client that looks like x64 UEFI PXE firmware: vendor class
	// PXEClient:Arch:00007 and option 93 = 7.
	h := dhAddHost(t, lab, "")
	dhSetMAC(t, h, mac)
	lease := dhMustUdhcpc(t, h, "-V", "PXEClient:Arch:00007:UNDI:003016", "-x", "0x5d:0007")
	t.Logf("udhcpc lease: ip %s, boot file %q", lease["ip"], lease["boot_file"])

	isDHCP := func(e map[string]any) bool {
		st := dcStr(e, "stage")
		return dcStr(e, "protocol") == "dhcp" && (st == "offer" || st == "ack")
	}
	events := dcEvents(t, cliCfg, func(es []map[string]any) bool {
		for _, e := range es {
			if isDHCP(e) && dcStr(e, "stage") == "ack" {
				return true
			}
		}
		return false
	}, "--mac", mac)
	n := 0
	for _, e := range events {
		if !isDHCP(e) {
			continue
		}
		n++
		if a := dcStr(e, "arch"); a != "efi-x64" {
			t.Errorf("DHCP %s event: arch %q, want efi-x64 (the client sent option 93 = 7): %s", dcStr(e, "stage"), a, dcJSON(e))
		}
		if p := dcStr(e, "profile"); p != "pxe7" {
			t.Errorf("DHCP %s event: profile %q, want pxe7 (its MAC rule): %s", dcStr(e, "stage"), p, dcJSON(e))
		}
		if r, ok := e["reason"].(string); !ok || strings.TrimSpace(r) == "" {
			t.Errorf("DHCP %s event: reason %v, want a non-empty string: %s", dcStr(e, "stage"), e["reason"], dcJSON(e))
		}
	}
	if n == 0 {
		t.Fatalf("bootforge log --mac %s --json shows no DHCP offer or ack:\n%s", mac, dcDump(events))
	}
}

// ---------------------------------------------------------------------------
// 7b. A URL that names a MAC wins over the last MAC seen at that address

func TestDecisionBootLogMACFromURL(t *testing.T) {
	t.Parallel()
	need(t, "curl")
	cfg := `inventory:
  default_profile: lab
  profiles:
    - name: lab
      menu:
        entries:
          - {name: disk, kind: local}
`
	s := StartServer(t, ServerOptions{Config: cfg})
	cliCfg := dcCLIConfig(t, s, cfg)
	base := "http://" + s.HTTPAddr
	const mac1, mac2 = "52:54:00:00:00:01", "52:54:00:00:00:02"
	grubFile := "bootforge/grub/" + mac2 + ".cfg"
	for _, u := range []string{
		base + "/bootforge/ipxe?mac=52-54-00-00-00-01&buildarch=x86_64&platform=efi",
		base + "/" + grubFile,
	} {
		if body := clGet(t, u); body == "" {
			t.Fatalf("GET %s: no 200 answer", u)
		}
	}
	ip := Host(s.HTTPAddr)
	events := dcEvents(t, cliCfg, func(es []map[string]any) bool {
		for _, e := range es {
			if dcStr(e, "protocol") == "http" && dcStr(e, "file") == grubFile {
				return true
			}
		}
		return false
	}, "--ip", ip)
	found := false
	for _, e := range events {
		if dcStr(e, "protocol") != "http" || dcStr(e, "file") != grubFile {
			continue
		}
		found = true
		if got := dcStr(e, "mac"); got != mac2 {
			t.Errorf("the http event for %s (fetched from %s after a script request for %s) has mac %q, want %s, the MAC its URL names: %s",
				grubFile, ip, mac1, got, mac2, dcJSON(e))
		}
	}
	if !found {
		t.Fatalf("bootforge log --ip %s --json has no http event for %s:\n%s", ip, grubFile, dcDump(events))
	}
}

// requireSecureBootTo waits for a Secure Boot VM to boot the one marker
// want with Secure Boot enforced, through shim, signed GRUB and the menu
// of profile.
func requireSecureBootTo(t *testing.T, m *menuLab, vm *VM, mac, what, want, profile string) {
	t.Helper()
	cmdline, err := sbBoot(t, vm, what)
	if err != nil {
		t.Fatal(err)
	}
	if got := markers(cmdline); len(got) != 1 || got[0] != want {
		t.Errorf("booted markers %v, want [%s]", got, want)
	}
	if !strings.Contains(vm.Console(), sbEnabled) {
		t.Errorf("the kernel booted but did not print %q: Secure Boot was not enforced", sbEnabled)
	}
	requireSecureChain(t, m.Server, mac)
	requireGRUBMenu(t, m.Server, mac, profile)
}
