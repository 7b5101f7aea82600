package e2e

// Generated boot menus, booted by real firmware. bootforge is the only
// server here: authoritative DHCP on the lab bridge, TFTP on :69 and HTTP
// on :8080 at 192.0.2.1, with profiles and hosts in its config. Every boot
// is proven by the test initrd's serial marker, which echoes the kernel
// command line; the menus put bfmarker={profile}-{entry} there, so the
// marker names the profile and the entry that booted.
//
// QEMU's BIOS option ROMs are all iPXE (/usr/lib/ipxe/qemu/pxe-*.rom), and
// iPXE identifies itself (user class iPXE), so bootforge hands it the iPXE
// script, never the BIOS loader. The pxelinux test therefore puts a boot.ipxe
// on disk (a disk file wins over the generated one) that chains
// tftp://192.0.2.1/pxelinux.0, as a plain PXE ROM would have loaded it;
// a udhcpc posing as a plain PXE ROM checks that DHCP offers pxelinux.0.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// bmBootTimeout is how long a VM may take to the marker: TCG on a loaded
// two-core machine, sometimes three VMs at once.
const bmBootTimeout = 300 * time.Second

// bmMarkerRE matches the whole marker line; group 1 is the kernel cmdline.
var bmMarkerRE = regexp.QuoteMeta(BootMarker) + ` ([^\n]*)\n`

// bmCmdline is what every test entry passes to the kernel: the marker
// names profile and entry.
const bmCmdline = "console=ttyS0 quiet panic=-1 bfmarker={profile}-{entry}"

// menuLab is a lab with bootforge as DHCP, TFTP and HTTP server.
type menuLab struct {
	Lab       *Lab
	Server    *Server
	Root      string
	CLIConfig string // the server's config plus its root and data_dir, for the CLI
	HTTP      string // http://192.0.2.1:8080
}

// menuLabOptions configure newMenuLab.
type menuLabOptions struct {
	DHCP      string            // extra YAML inside dhcp:, indented by two spaces
	Inventory string            // the inventory: section, YAML at top level
	Copy      map[string]string // root name -> source file
	Write     map[string]string // root name -> content
}

// newMenuLab fills a root with the test kernel (vmlinuz), initrd
// (initrd.gz) and o's files, and starts bootforge in a new lab.
func newMenuLab(t *testing.T, o menuLabOptions) *menuLab {
	t.Helper()
	kernel, initrd := NetbootKernel(t)
	lab := NewLab(t)
	m := &menuLab{Lab: lab, Root: t.TempDir(), HTTP: "http://" + lab.IP() + ":8080"}
	copyFile(t, kernel, filepath.Join(m.Root, "vmlinuz"))
	copyFile(t, initrd, filepath.Join(m.Root, "initrd.gz"))
	for name, src := range o.Copy {
		if _, err := os.Stat(src); err != nil {
			t.Fatalf("%v (scripts/deps.sh installs the package that has it)", err)
		}
		os.MkdirAll(filepath.Dir(filepath.Join(m.Root, name)), 0o755)
		copyFile(t, src, filepath.Join(m.Root, name))
	}
	for name, text := range o.Write {
		os.MkdirAll(filepath.Dir(filepath.Join(m.Root, name)), 0o755)
		if err := os.WriteFile(filepath.Join(m.Root, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`log: {level: debug, format: text}
dhcp:
  mode: authoritative
  interfaces: [br0]
%s  subnets:
    - subnet: 192.0.2.0/24
      pools: ["192.0.2.100-192.0.2.199"]
      router: 192.0.2.1
      lease_time: 10m
%s`, o.DHCP, o.Inventory)
	m.Server = StartServer(t, ServerOptions{
		Netns: lab.Netns, Addr: lab.IP(), Root: m.Root, Config: cfg,
		Args: []string{"--tftp-addr", lab.IP() + ":69", "--http-addr", lab.IP() + ":8080"},
	})
	if !strings.Contains(m.Server.Log(), "dhcp_on=") {
		t.Fatalf("bootforge is ready but serves no DHCP:\n%s", m.Server.Log())
	}
	// The CLI must use the server's store: same config, root and data_dir.
	m.CLIConfig = filepath.Join(t.TempDir(), "bootforge.yaml")
	cli := fmt.Sprintf("root: %s\ndata_dir: %s\n", m.Server.Root, m.Server.DataDir) + cfg
	if err := os.WriteFile(m.CLIConfig, []byte(cli), 0o644); err != nil {
		t.Fatal(err)
	}
	return m
}

// cli runs the bootforge CLI against the server's store and config.
func (m *menuLab) cli(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, 60*time.Second, binary, append([]string{"--config", m.CLIConfig}, args...)...)
	if err != nil {
		t.Fatalf("bootforge %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// nextBootState returns the one-shot state `bootforge host show MAC --json`
// reports, or "" if there is none.
func (m *menuLab) nextBootState(t *testing.T, mac string) (entry, state string) {
	t.Helper()
	out := m.cli(t, "host", "show", mac, "--json")
	var hosts []struct {
		Name     string `json:"name"`
		NextBoot *struct {
			Entry string `json:"entry"`
			State string `json:"state"`
		} `json:"next_boot"`
	}
	if err := json.Unmarshal([]byte(out), &hosts); err != nil {
		t.Fatalf("bootforge host show %s --json: %v\n%s", mac, err, out)
	}
	if len(hosts) != 1 {
		t.Fatalf("bootforge host show %s: %d hosts, want 1:\n%s", mac, len(hosts), out)
	}
	if hosts[0].NextBoot == nil {
		return "", ""
	}
	return hosts[0].NextBoot.Entry, hosts[0].NextBoot.State
}

// boot boots a VM and returns it with the kernel cmdline its marker shows.
func (m *menuLab) boot(t *testing.T, firmware, mac string) (*VM, string) {
	t.Helper()
	vm, got := BootVM(t, VMOptions{Lab: m.Lab, Firmware: firmware, MAC: mac, Timeout: bmBootTimeout, Expect: bmMarkerRE})
	t.Logf("%s %s: marker after %s: %s", firmware, mac, vm.Elapsed().Round(time.Millisecond), strings.TrimSpace(got[0]))
	return vm, got[1]
}

// requireTokens fails unless every want is a whole word of cmdline.
func requireTokens(t *testing.T, vm *VM, cmdline string, want ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, f := range strings.Fields(cmdline) {
		have[f] = true
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("VM %s booted cmdline %q, which lacks %q", vm.MAC, cmdline, w)
		}
	}
}

// markers returns the bfmarker= words of cmdline.
func markers(cmdline string) []string {
	var out []string
	for _, f := range strings.Fields(cmdline) {
		if strings.HasPrefix(f, "bfmarker=") {
			out = append(out, f)
		}
	}
	return out
}

// tftpLog returns bootforge's TFTP log records (transfers, not found,
// refusals) in order, as "file result" strings, for clients whose address
// matches client (a regexp on the client field; "" for all).
func tftpLog(s *Server, client string) []string {
	var out []string
	re := regexp.MustCompile(client)
	for _, r := range serverRecordsAny(s, "tftp transfer", "tftp: not found", "tftp: refused") {
		if !re.MatchString(r["client"]) {
			continue
		}
		out = append(out, r["file"]+" ("+r["result"]+")")
	}
	return out
}

// serverRecordsAny is ServerRecords for several messages, in log order.
func serverRecordsAny(s *Server, msgs ...string) []LogRecord {
	want := map[string]bool{}
	for _, m := range msgs {
		want[m] = true
	}
	var out []LogRecord
	for _, line := range strings.Split(s.Log(), "\n") {
		rec := LogRecord{}
		for _, mm := range logfmtRE.FindAllStringSubmatch(line, -1) {
			v := mm[2]
			if strings.HasPrefix(v, `"`) {
				if u, err := strconv.Unquote(v); err == nil {
					v = u
				}
			}
			rec[mm[1]] = v
		}
		if want[rec["msg"]] {
			out = append(out, rec)
		}
	}
	return out
}

// logTime parses a record's time=.
func logTime(t *testing.T, r LogRecord) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, r["time"])
	if err != nil {
		t.Fatalf("log record without a time: %v", r)
	}
	return ts
}

// linuxEntries is a profile's linux entries, one per name, all booting
// the test kernel with bmCmdline plus extra.
func linuxEntries(extra string, names ...string) string {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "          - {name: %s, label: \"Entry %s\", kind: linux, kernel: vmlinuz, initrds: [initrd.gz], cmdline: \"%s%s\"}\n",
			n, n, bmCmdline, extra)
	}
	return b.String()
}

// pxeMAC is the pxelinux/GRUB file-name form of a MAC: 52-54-00-...
func pxeMAC(mac string) string { return strings.ReplaceAll(strings.ToLower(mac), ":", "-") }

// ---------------------------------------------------------------------------
// 1. BIOS pxelinux with a generated pxelinux.cfg/01-<mac>

func TestBootMenuPXELinuxBIOS(t *testing.T) {
	t.Parallel()
	const mac = "52:54:00:b1:00:01"
	m := newMenuLab(t, menuLabOptions{
		DHCP: "  loaders: {bios: pxelinux.0}\n",
		Inventory: `inventory:
  profiles:
    - name: pxe
      match: [{mac: "` + mac + `"}]
      menu:
        title: pxelinux test
        default: second
        timeout: 2s
        entries:
` + linuxEntries("", "first", "second"),
		Copy: map[string]string{
			"pxelinux.0":   "/usr/lib/PXELINUX/pxelinux.0",
			"ldlinux.c32":  "/usr/lib/syslinux/modules/bios/ldlinux.c32",
			"menu.c32":     "/usr/lib/syslinux/modules/bios/menu.c32",
			"libutil.c32":  "/usr/lib/syslinux/modules/bios/libutil.c32",
			"libcom32.c32": "/usr/lib/syslinux/modules/bios/libcom32.c32",
		},
		// QEMU's ROM is iPXE: it gets this script (a disk file wins over the
		// generated one) and loads pxelinux.0 over TFTP as a PXE ROM would.
		// pxelinux finds iPXE's PXE extensions and, left alone, takes this
		// script's http:// URL as its path prefix and fetches everything
		// over HTTP through iPXE. The loader's file name and the PXELINUX
		// path prefix option (210, enabled by magic option 208) in iPXE's
		// cached DHCP reply make it use TFTP from 192.0.2.1, as it does
		// behind a plain PXE ROM.
		Write: map[string]string{"boot.ipxe": "#!ipxe\n" +
			"echo bootforge-e2e: chaining pxelinux.0 over TFTP\n" +
			"set net0/filename pxelinux.0\n" +
			"set net0/208:hex f1:00:74:7e\n" +
			"set net0/210:string tftp://192.0.2.1/\n" +
			"chain tftp://192.0.2.1/pxelinux.0\n"},
	})
	// A plain BIOS PXE ROM (vendor class PXEClient, no user class iPXE)
	// is offered the configured loader, pxelinux.0, from 192.0.2.1.
	pxeClient := dhAddHost(t, m.Lab, "")
	lease := dhMustUdhcpc(t, pxeClient, "-V", "PXEClient:Arch:00000:UNDI:002001")
	if lease["boot_file"] != "pxelinux.0" || lease["siaddr"] != "192.0.2.1" {
		t.Errorf("a BIOS PXE client got boot file %q from %q, want pxelinux.0 from 192.0.2.1 (dhcp.loaders.bios)", lease["boot_file"], lease["siaddr"])
	}

	vm, cmdline := m.boot(t, "bios", mac)
	if got := markers(cmdline); len(got) != 1 || got[0] != "bfmarker=pxe-second" {
		t.Errorf("booted markers %v, want [bfmarker=pxe-second] (the default entry after the timeout)", got)
	}
	requireTokens(t, vm, cmdline, "initrd=initrd.gz", "console=ttyS0")

	cfgName := "pxelinux.cfg/01-" + pxeMAC(mac)
	var cfgDone, kernelStart time.Time
	for _, r := range serverRecordsAny(m.Server, "tftp transfer") {
		switch {
		case r["file"] == cfgName && r["result"] == "ok":
			cfgDone = logTime(t, r)
		case r["file"] == "vmlinuz" && r["result"] == "ok" && kernelStart.IsZero():
			d, _ := time.ParseDuration(r["duration"])
			kernelStart = logTime(t, r).Add(-d)
		}
	}
	if cfgDone.IsZero() {
		t.Errorf("bootforge logged no TFTP transfer of %s with result=ok; TFTP log: %v", cfgName, tftpLog(m.Server, ""))
	}
	if kernelStart.IsZero() {
		t.Errorf("bootforge logged no complete TFTP transfer of vmlinuz; TFTP log: %v", tftpLog(m.Server, ""))
	}
	if !cfgDone.IsZero() && !kernelStart.IsZero() {
		gap := kernelStart.Sub(cfgDone)
		t.Logf("menu served, kernel requested %s later (menu timeout 2 s)", gap.Round(time.Millisecond))
		if gap < 2*time.Second {
			t.Errorf("the kernel was requested %s after the menu: before the 2 s menu timeout ran out", gap)
		}
	}
	menus := 0
	for _, r := range ServerRecords(m.Server, "menu") {
		if r["format"] == "pxelinux" && r["mac"] == mac && r["profile"] == "pxe" {
			menus++
		}
	}
	if menus == 0 {
		t.Errorf("bootforge logged no pxelinux menu of profile pxe for %s", mac)
	}
	t.Logf("TFTP requests: %v", tftpLog(m.Server, ""))
}

// ---------------------------------------------------------------------------
// 2. UEFI: EDK2's PXE (arch 7) loads GRUB, GRUB the generated grub.cfg
//
// Debian's grubnetx64.efi (2.06) asks for /grub/x86_64-efi/{command,fs,
// crypto,terminal}.lst (not found), then /grub/grub.cfg, never
// grub.cfg-01-<mac>: the generated root grub.cfg reads the SMBIOS facts
// and sends it on to /bootforge/grub/<mac>/uuid=.../grub.cfg (else
// /bootforge/grub/<mac>.cfg). The test logs the paths it asked for.

func TestBootMenuGRUBUEFI(t *testing.T) {
	t.Parallel()
	const mac = "52:54:00:b2:00:01"
	m := newMenuLab(t, menuLabOptions{
		DHCP: "  loaders: {efi_x64: grubnetx64.efi}\n",
		Inventory: `inventory:
  profiles:
    - name: grubefi
      match: [{oui: "52:54:00", arch: efi-x64}]
      menu:
        default: two
        timeout: 1s
        entries:
` + linuxEntries("", "one", "two"),
		Copy: map[string]string{"grubnetx64.efi": "/usr/lib/grub/x86_64-efi/monolithic/grubnetx64.efi"},
	})
	// First boot: a one-shot to the non-default entry, consumed when GRUB
	// fetches the kernel over TFTP. Second boot: the default again.
	m.cli(t, "host", "next-boot", mac, "one")
	vm, cmdline := m.boot(t, "uefi", mac)
	if got := markers(cmdline); len(got) != 1 || got[0] != "bfmarker=grubefi-one" {
		t.Errorf("one-shot boot: markers %v, want [bfmarker=grubefi-one]", got)
	}
	requireTokens(t, vm, cmdline, "console=ttyS0")
	vm.Kill()
	if e, st := m.nextBootState(t, mac); e != "one" || st != "booted" {
		t.Errorf("after the GRUB one-shot boot: host show says entry %q state %q, want one booted", e, st)
	}
	vm, cmdline = m.boot(t, "uefi", mac)
	if got := markers(cmdline); len(got) != 1 || got[0] != "bfmarker=grubefi-two" {
		t.Errorf("boot after the one-shot: markers %v, want [bfmarker=grubefi-two] (the default)", got)
	}
	requireTokens(t, vm, cmdline, "console=ttyS0")

	requests := tftpLog(m.Server, `^192\.0\.2\.1\d\d`)
	t.Logf("TFTP requests of both boots (firmware, then GRUB), in order: %v", requests)
	var loader, cfg, kernel, initrd bool
	for _, r := range serverRecordsAny(m.Server, "tftp transfer") {
		if r["result"] != "ok" {
			continue
		}
		switch f := strings.TrimPrefix(r["file"], "/"); {
		case f == "grubnetx64.efi":
			loader = true
		case strings.HasSuffix(f, "grub.cfg-01-"+pxeMAC(mac)) || f == "grub.cfg" || strings.HasSuffix(f, "/grub.cfg"):
			cfg = true
		case f == "vmlinuz":
			kernel = true
		case f == "initrd.gz":
			initrd = true
		}
	}
	if !loader || !cfg || !kernel || !initrd {
		t.Errorf("TFTP transfers: loader %v, grub.cfg %v, kernel %v, initrd %v; want all; log: %v", loader, cfg, kernel, initrd, requests)
	}
	grubMenus := 0
	for _, r := range ServerRecords(m.Server, "menu") {
		if r["format"] == "grub" && r["mac"] == mac && r["profile"] == "grubefi" {
			grubMenus++
		}
	}
	if grubMenus == 0 {
		t.Errorf("bootforge logged no grub menu of profile grubefi for %s", mac)
	}
	// EDK2's PXE client (arch 7) was given the configured EFI loader.
	gotLoader := false
	for _, r := range ServerRecords(m.Server, "dhcp: replied") {
		if r["mac"] == mac && r["type"] == "ACK" && r["file"] == "grubnetx64.efi" {
			gotLoader = true
		}
	}
	if !gotLoader {
		t.Errorf("bootforge logged no DHCP ACK to %s with file grubnetx64.efi (dhcp.loaders.efi_x64)", mac)
	}
	// The client's own menu, by whichever generated name GRUB asked for.
	perClient := false
	for _, r := range serverRecordsAny(m.Server, "tftp transfer") {
		f := strings.TrimPrefix(r["file"], "/")
		// grub.cfg sends GRUB on with its SMBIOS facts in the path:
		// bootforge/grub/<mac>/uuid=.../grub.cfg.
		if r["result"] == "ok" && (strings.HasSuffix(f, "grub.cfg-01-"+pxeMAC(mac)) || f == "bootforge/grub/"+mac+".cfg" ||
			strings.HasPrefix(f, "bootforge/grub/"+mac+"/uuid=")) {
			perClient = true
		}
	}
	if !perClient {
		t.Errorf("GRUB fetched neither grub.cfg-01-%s nor bootforge/grub/%s(.cfg or /...); TFTP log: %v", pxeMAC(mac), mac, requests)
	}
}

// ---------------------------------------------------------------------------
// 3. Two VMs, two rules, two profiles

func TestBootMenuProfiles(t *testing.T) {
	t.Parallel()
	const (
		macA = "52:54:00:b3:00:01" // matched by its exact MAC
		macB = "02:42:ac:b3:00:02" // another OUI, matched by oui + arch
	)
	m := newMenuLab(t, menuLabOptions{
		Inventory: `inventory:
  default_profile: fallback
  profiles:
    - name: fallback
      menu:
        entries:
` + linuxEntries("", "fb") + `    - name: bymac
      match: [{mac: "` + macA + `"}]
      menu:
        default: m2
        timeout: 1s
        entries:
` + linuxEntries("", "m1", "m2") + `    - name: byoui
      match: [{oui: "02:42:ac", arch: bios}]
      menu:
        default: o1
        timeout: 1s
        entries:
` + linuxEntries("", "o1", "o2"),
	})
	want := map[string]string{macA: "bfmarker=bymac-m2", macB: "bfmarker=byoui-o1"}
	var wg sync.WaitGroup
	got := map[string][]string{}
	var mu sync.Mutex
	for _, mac := range []string{macA, macB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vm, err := bmBootNoFatal(t, m, "bios", mac)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("%v\nconsole tail:\n%s", err, vm.Tail(30))
				return
			}
			got[mac] = markers(vm.cmdline)
		}()
	}
	wg.Wait()
	for mac, w := range want {
		if g := got[mac]; len(g) != 1 || g[0] != w {
			t.Errorf("VM %s booted markers %v, want [%s]", mac, g, w)
		}
	}
	// The chain: generated /boot.ipxe, then the client's own script.
	for _, mac := range []string{macA, macB} {
		ip := leaseIP(m.Server, mac)
		var chain, own bool
		for _, r := range ServerRecords(m.Server, "http request") {
			if r["status"] != "200" || r["client"] != ip {
				continue
			}
			chain = chain || r["path"] == "/boot.ipxe"
			own = own || r["path"] == "/bootforge/ipxe"
		}
		if !chain || !own {
			t.Errorf("%s (%s): HTTP log lacks GET /boot.ipxe (%v) or /bootforge/ipxe (%v)", mac, ip, chain, own)
		}
		found := false
		for _, r := range ServerRecords(m.Server, "menu") {
			if r["mac"] == mac && r["format"] == "ipxe" {
				found = true
				t.Logf("menu for %s: profile %s (%s)", mac, r["profile"], r["why"])
			}
		}
		if !found {
			t.Errorf("bootforge logged no iPXE menu for %s", mac)
		}
	}
	// A client no rule matches gets the default profile.
	peer := m.Lab.AddHost(t, "192.0.2.10")
	need(t, "curl")
	script := peer.MustExec("curl", "-sS", "--fail", "--max-time", "20",
		m.HTTP+"/bootforge/ipxe?mac=52-54-00-b3-00-99&buildarch=i386&platform=pcbios")
	if !strings.Contains(script, "bfmarker=fallback-fb") {
		t.Errorf("script for an unmatched MAC does not boot the default profile's entry:\n%s", script)
	}
}

// leaseIP returns the address bootforge's DHCP leased to mac.
func leaseIP(s *Server, mac string) string {
	ip := ""
	for _, r := range ServerRecords(s, "dhcp: lease") {
		if r["mac"] == mac {
			ip = r["ip"]
		}
	}
	return ip
}

// bootedVM is a VM and the cmdline its marker showed.
type bootedVM struct {
	*VM
	cmdline string
}

// bmBootNoFatal boots a VM from a goroutine: it reports failure as an
// error instead of calling t.Fatal.
func bmBootNoFatal(t *testing.T, m *menuLab, firmware, mac string) (*bootedVM, error) {
	vm := StartVM(t, VMOptions{Lab: m.Lab, Firmware: firmware, MAC: mac})
	got, err := vm.WaitFor(regexp.MustCompile(bmMarkerRE), bmBootTimeout)
	b := &bootedVM{VM: vm}
	if err != nil {
		return b, fmt.Errorf("VM %s: %v", mac, err)
	}
	b.cmdline = got[1]
	t.Logf("%s %s: marker after %s: %s", firmware, mac, vm.Elapsed().Round(time.Millisecond), strings.TrimSpace(got[0]))
	return b, nil
}

// ---------------------------------------------------------------------------
// 4. One-shot next boot, with a firmware that fetches its menu twice

func TestBootMenuOneShot(t *testing.T) {
	t.Parallel()
	const mac = "52:54:00:b4:00:01"
	// A firmware retry: this boot script fetches the client's menu once,
	// throws it away, and fetches it again to run it.
	menuURL := "http://192.0.2.1:8080/bootforge/ipxe?mac=${mac:hexhyp}&buildarch=${buildarch}&platform=${platform}&ip=${ip}"
	m := newMenuLab(t, menuLabOptions{
		Inventory: `inventory:
  hosts:
    - {name: oneshot-pc, macs: ["` + mac + `"], profile: os}
  profiles:
    - name: os
      menu:
        default: a
        timeout: 2s
        entries:
` + linuxEntries("", "a", "b"),
		Write: map[string]string{"boot.ipxe": "#!ipxe\n" +
			"imgfetch --name first " + menuURL + "\n" +
			"echo bootforge-e2e: fetched the menu once, fetching it again\n" +
			"imgfree first\n" +
			"chain " + menuURL + "\n"},
	})

	if out := m.cli(t, "host", "next-boot", mac, "b"); !strings.Contains(out, "pending") {
		t.Errorf("bootforge host next-boot: %q, want it to say pending", out)
	}
	if e, s := m.nextBootState(t, mac); e != "b" || s != "pending" {
		t.Fatalf("after next-boot: host show says entry %q state %q, want b pending", e, s)
	}
	t.Logf("after next-boot: %s", strings.TrimSpace(m.cli(t, "host", "show", mac)))

	// Another machine on the lab asks for this client's menu twice, as a
	// firmware retrying its download would: both times the one-shot.
	peer := m.Lab.AddHost(t, "192.0.2.10")
	need(t, "curl")
	url := m.HTTP + "/bootforge/ipxe?mac=" + strings.ReplaceAll(mac, ":", "-") + "&buildarch=i386&platform=pcbios"
	for i := 1; i <= 2; i++ {
		script := peer.MustExec("curl", "-sS", "--fail", "--max-time", "20", url)
		if !strings.Contains(script, "bfmarker=os-b") || strings.Contains(script, "bfmarker=os-a") || strings.Contains(script, "choose") {
			t.Errorf("menu fetch %d while the one-shot is pending/delivered: want entry b alone, got:\n%s", i, script)
		}
		if e, s := m.nextBootState(t, mac); e != "b" || s != "delivered" {
			t.Errorf("after menu fetch %d: host show says entry %q state %q, want b delivered", i, e, s)
		}
	}

	// The VM fetches its menu twice more before the kernel: still b.
	vm1, cmdline := m.boot(t, "bios", mac)
	if got := markers(cmdline); len(got) != 1 || got[0] != "bfmarker=os-b" {
		t.Errorf("one-shot boot: markers %v, want [bfmarker=os-b]", got)
	}
	vm1.Kill()
	vmIP := ""
	for _, r := range ServerRecords(m.Server, "menu") {
		if r["mac"] == mac && dhcpClientRE.MatchString(r["client"]) {
			vmIP = r["client"]
			if r["boot"] != "b" {
				t.Errorf("menu served to the VM at %s without the one-shot: %v", vmIP, r)
			}
		}
	}
	if n := countMenus(m.Server, mac, vmIP); n < 2 {
		t.Errorf("the VM fetched its menu %d times before the kernel, want 2 (a retry)", n)
	}
	if e, s := m.nextBootState(t, mac); e != "b" || s != "booted" {
		t.Errorf("after the one-shot boot: host show says entry %q state %q, want b booted", e, s)
	}
	t.Logf("after the one-shot boot: %s", strings.TrimSpace(m.cli(t, "host", "show", mac)))
	if m.Server.CountLog(`msg="one-shot booted"`) != 1 {
		t.Errorf("want exactly one \"one-shot booted\" log line:\n%s", m.Server.Log())
	}

	// The boot after that takes the menu's default again.
	_, cmdline = m.boot(t, "bios", mac)
	if got := markers(cmdline); len(got) != 1 || got[0] != "bfmarker=os-a" {
		t.Errorf("boot after the one-shot: markers %v, want [bfmarker=os-a] (the default)", got)
	}
	if e, s := m.nextBootState(t, mac); s != "booted" {
		t.Errorf("after the second boot: host show says entry %q state %q, want booted", e, s)
	}
}

// countMenus counts menus served to mac from client ip.
func countMenus(s *Server, mac, ip string) int {
	n := 0
	for _, r := range ServerRecords(s, "menu") {
		if r["mac"] == mac && r["client"] == ip {
			n++
		}
	}
	return n
}

// ---------------------------------------------------------------------------
// 5. An iso entry: iPXE sanboot of an isolinux ISO over bootforge's HTTP

func TestBootMenuISOSanboot(t *testing.T) {
	t.Parallel()
	need(t, "xorriso")
	const mac = "52:54:00:b5:00:01"
	kernel, initrd := NetbootKernel(t)
	iso := filepath.Join(t.TempDir(), "live.iso")
	buildISO(t, iso, kernel, initrd, "console=ttyS0 quiet panic=-1 bfmarker=iso-isolinux")
	m := newMenuLab(t, menuLabOptions{
		Inventory: `inventory:
  default_profile: live
  profiles:
    - name: live
      menu:
        entries:
          - {name: cd, kind: iso, iso: iso/live.iso}
`,
		Copy: map[string]string{"iso/live.iso": iso},
	})
	_, cmdline := m.boot(t, "bios", mac)
	if got := markers(cmdline); len(got) != 1 || got[0] != "bfmarker=iso-isolinux" {
		t.Errorf("booted markers %v, want [bfmarker=iso-isolinux] (the ISO's own isolinux.cfg)", got)
	}
	partial, other := 0, map[string]int{}
	for _, r := range ServerRecords(m.Server, "http request") {
		if r["path"] != "/iso/live.iso" {
			continue
		}
		if r["status"] == "206" && r["range"] != "" {
			partial++
		} else {
			other[r["method"]+" "+r["status"]+" range="+r["range"]]++
		}
	}
	t.Logf("ISO requests: %d answered 206 to a Range request; others: %v", partial, other)
	served := false
	for _, r := range ServerRecords(m.Server, "menu") {
		served = served || (r["mac"] == mac && r["format"] == "ipxe" && r["profile"] == "live")
	}
	if !served {
		t.Errorf("bootforge logged no iPXE menu of profile live for %s", mac)
	}
	if partial < 10 {
		t.Errorf("bootforge's access log shows %d range requests for /iso/live.iso answered 206, want many (iPXE reads the ISO in ranges)", partial)
	}
	for k := range other {
		if !strings.HasPrefix(k, "HEAD 200") {
			t.Errorf("ISO request other than a 206 range read or a HEAD: %s", k)
		}
	}
}

// buildISO makes an isolinux ISO that boots kernel and initrd with cmdline.
func buildISO(t *testing.T, iso, kernel, initrd, cmdline string) {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "isolinux"), 0o755)
	copyFile(t, "/usr/lib/ISOLINUX/isolinux.bin", filepath.Join(dir, "isolinux", "isolinux.bin"))
	copyFile(t, "/usr/lib/syslinux/modules/bios/ldlinux.c32", filepath.Join(dir, "isolinux", "ldlinux.c32"))
	copyFile(t, kernel, filepath.Join(dir, "vmlinuz"))
	copyFile(t, initrd, filepath.Join(dir, "initrd.gz"))
	cfg := "DEFAULT live\nPROMPT 0\nTIMEOUT 1\nLABEL live\n  KERNEL /vmlinuz\n  APPEND initrd=/initrd.gz " + cmdline + "\n"
	if err := os.WriteFile(filepath.Join(dir, "isolinux", "isolinux.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, 120*time.Second, "xorriso", "-as", "mkisofs", "-o", iso,
		"-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
		"-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", dir)
	if err != nil {
		t.Fatalf("xorriso: %v\n%s", err, out)
	}
}

// ---------------------------------------------------------------------------
// 6. Hostile hostnames never reach a menu

// TestBootMenuHostileHostname: host names are DNS labels, so a name built
// to break out of an iPXE or GRUB line is refused where it enters — in the
// config at load, and by host add — and never reaches a menu. (Menus
// still quote what they print; internal/menu's tests cover that.)
func TestBootMenuHostileHostname(t *testing.T) {
	t.Parallel()
	hostileIPXE := `pc1;reboot "dq" 'sq' ${net0/mac} ${hostname} || shell && exit menuentry`
	hostileGRUB := `pc2;reboot "dq" 'sq' ${net_default_mac} $(id) }; menuentry x { configfile`
	name, _ := json.Marshal(hostileIPXE) // JSON is YAML
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bootforge.yaml")
	text := "root: " + filepath.Join(dir, "root") + "\ndata_dir: " + filepath.Join(dir, "data") +
		"\ninventory:\n  hosts:\n    - {name: " + string(name) + `, macs: ["52:54:00:b6:00:01"]}` + "\n"
	if err := os.MkdirAll(filepath.Join(dir, "root"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := clRun(t, 30*time.Second, nil, "serve", "--config", cfg, "--tftp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--https-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(out, "DNS label") {
		t.Errorf("a config host named %q: exit %d\n%s", hostileIPXE, code, out)
	}
	cfg2 := filepath.Join(dir, "clean.yaml")
	if err := os.WriteFile(cfg2, []byte("root: "+filepath.Join(dir, "root")+"\ndata_dir: "+filepath.Join(dir, "data")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = clRun(t, 30*time.Second, nil, "--config", cfg2, "host", "add", hostileGRUB, "--mac", "52:54:00:b6:00:02")
	if code == 0 || !strings.Contains(out, "DNS label") {
		t.Errorf("host add %q: exit %d\n%s", hostileGRUB, code, out)
	}
	if out, _ := clRun(t, 30*time.Second, nil, "--config", cfg2, "host", "list"); strings.Contains(out, "pc2") {
		t.Errorf("the refused host is listed:\n%s", out)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
