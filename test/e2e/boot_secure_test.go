package e2e

// The Secure Boot PXE chain, booted by real firmware with Secure Boot
// enforced: OVMF_CODE.secboot.fd with Microsoft's keys enrolled
// (OVMF_VARS.ms.fd) on a q35 machine with SMM. bootforge is the only
// server (authoritative DHCP, TFTP, HTTP on the lab bridge, as in
// boot_menu_test.go) and hands such clients Debian's Microsoft-signed shim
// (shimx64.efi), which loads Debian's signed netboot GRUB (grubx64.efi),
// which reads bootforge's generated grub/grub.cfg and then the client's
// own bootforge/grub/<mac>.cfg, whose linux/initrd come over TFTP. shim
// verifies the kernel for GRUB.
//
// The test kernel is Debian's signed vmlinuz (NetbootKernel). The kernel
// prints "secureboot: Secure boot enabled" only when the firmware really
// enforced Secure Boot, so the command line of these entries leaves out
// "quiet". An unsigned copy is made with osslsigncode remove-signature.
//
// StartVM knows plain OVMF only, so startSecureVM builds the QEMU command
// line of LAB.md ("Secure Boot PXE chain") itself and reuses the VM type
// for the console.

import (
	"debug/pe"
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

// Secure Boot firmware and loaders (packages ovmf, shim-signed,
// grub-efi-amd64-signed, ipxe).
const (
	ovmfCodeSecboot = "/usr/share/OVMF/OVMF_CODE.secboot.fd"
	ovmfVarsMS      = "/usr/share/OVMF/OVMF_VARS.ms.fd"
	shimSigned      = "/usr/lib/shim/shimx64.efi.signed"
	grubNetSigned   = "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed"
	ipxeSNPOnly     = "/usr/lib/ipxe/snponly.efi"
)

// sbCmdline is bmCmdline without "quiet": the kernel's
// "secureboot: Secure boot enabled" is an info message.
const sbCmdline = "console=ttyS0 panic=-1 bfmarker={profile}-{entry}"

// sbEnabled is what the kernel prints when the firmware enforced Secure Boot.
const sbEnabled = "secureboot: Secure boot enabled"

// sbRefusedRE matches what shim or GRUB print when they refuse an image.
// The unsigned-kernel test logs which one appeared; sbRefusal is the one
// Debian's shim 15.8 and GRUB 2.06 really print (see that test).
var sbRefusedRE = regexp.MustCompile(`(?i)[^\n]*(bad shim signature|verification failed|invalid signature|security violation|access denied)[^\n]*`)

// sbLoaders are the Secure Boot loaders in root, by their served names.
var sbLoaders = map[string]string{"shimx64.efi": shimSigned, "grubx64.efi": grubNetSigned}

// sbGate bounds the Secure Boot VMs these tests run at once: TCG uses a
// whole core per VM, and the machine has two. A test takes all the slots
// it needs in one go, so two tests can never hold half each.
var sbGate = &vmGate{free: 2}

type vmGate struct {
	mu   sync.Mutex
	cond *sync.Cond
	free int
}

// acquire takes n slots until the test ends.
func (g *vmGate) acquire(t *testing.T, n int) {
	t.Helper()
	g.mu.Lock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
	start := time.Now()
	for g.free < n {
		g.cond.Wait()
	}
	g.free -= n
	g.mu.Unlock()
	if w := time.Since(start); w > time.Second {
		t.Logf("waited %s for %d VM slot(s)", w.Round(time.Second), n)
	}
	t.Cleanup(func() {
		g.mu.Lock()
		g.free += n
		g.cond.Broadcast()
		g.mu.Unlock()
	})
}

// sbEntries is a profile's linux entries, each booting the test kernel
// (or kernel, if not empty) with sbCmdline.
func sbEntries(kernel string, names ...string) string {
	if kernel == "" {
		kernel = "vmlinuz"
	}
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "          - {name: %s, label: \"Entry %s\", kind: linux, kernel: %s, initrds: [initrd.gz], cmdline: \"%s\"}\n",
			n, n, kernel, sbCmdline)
	}
	return b.String()
}

// startSecureVM starts a Secure Boot UEFI VM on a new tap of lab, with
// the command line of LAB.md: q35 with SMM, the secboot OVMF read-only, a
// private copy of the Microsoft-keyed variable store, virtio-net without
// option ROM (EDK2's own PXE), TCG.
func startSecureVM(t *testing.T, lab *Lab, mac string) *VM {
	t.Helper()
	return StartVM(t, VMOptions{Lab: lab, Firmware: "uefi-secboot", MAC: mac})
}

// sbBoot waits for a VM's marker without failing the test (it may run in
// a goroutine) and returns the booted cmdline.
func sbBoot(t *testing.T, vm *VM, what string) (string, error) {
	got, err := vm.WaitFor(regexp.MustCompile(bmMarkerRE), bmBootTimeout)
	if err != nil {
		vm.shown.Store(true)
		return "", fmt.Errorf("%s VM %s: %v\nconsole tail:\n%s", what, vm.MAC, err, vm.Tail(40))
	}
	t.Logf("%s VM %s: marker after %s: %s", what, vm.MAC, vm.Elapsed().Round(time.Millisecond), strings.TrimSpace(got[0]))
	return got[1], nil
}

// sbTFTP returns the TFTP log records of the client at ip, as "file
// (result)", and the set of files transferred with result=ok (without a
// leading /).
func sbTFTP(s *Server, ip string) ([]string, map[string]LogRecord) {
	ok := map[string]LogRecord{}
	var all []string
	for _, r := range serverRecordsAny(s, "tftp transfer", "tftp: not found", "tftp: refused") {
		if Host(r["client"]) != ip {
			continue
		}
		all = append(all, r["file"]+" ("+r["result"]+")")
		if r["msg"] == "tftp transfer" && r["result"] == "ok" {
			ok[strings.TrimPrefix(r["file"], "/")] = r
		}
	}
	return all, ok
}

// requireSecureChain checks that the client mac fetched every stage of the
// Secure Boot chain over TFTP with result=ok, and returns its requests.
func requireSecureChain(t *testing.T, s *Server, mac string) []string {
	t.Helper()
	ip := leaseIP(s, mac)
	if ip == "" {
		t.Errorf("bootforge logged no DHCP lease for %s", mac)
		return nil
	}
	all, ok := sbTFTP(s, ip)
	t.Logf("TFTP requests of %s (%s), in order: %v", mac, ip, all)
	// The client's menu comes by the path with GRUB's SMBIOS facts
	// (bootforge/grub/<mac>/uuid=.../grub.cfg), else by MAC alone.
	menu := "bootforge/grub/" + mac + ".cfg"
	for f := range ok {
		if strings.HasPrefix(f, "bootforge/grub/"+mac+"/uuid=") {
			menu = f
		}
	}
	for _, f := range []string{"shimx64.efi", "grubx64.efi", menu, "vmlinuz", "initrd.gz"} {
		if _, found := ok[f]; !found {
			t.Errorf("%s (%s): no TFTP transfer of %s with result=ok; its TFTP log: %v", mac, ip, f, all)
		}
	}
	_, a := ok["grub/grub.cfg"]
	_, b := ok["grub/x86_64-efi/grub.cfg"]
	if !a && !b {
		t.Errorf("%s (%s): neither grub/grub.cfg nor grub/x86_64-efi/grub.cfg transferred with result=ok; its TFTP log: %v", mac, ip, all)
	}
	// DHCP handed the firmware the shim, never the iPXE loader.
	shim := false
	for _, r := range ServerRecords(s, "dhcp: replied") {
		if r["mac"] != mac {
			continue
		}
		if r["type"] == "ACK" && r["file"] == "shimx64.efi" {
			shim = true
		}
		if r["file"] == "snponly.efi" {
			t.Errorf("bootforge offered the Secure Boot client %s snponly.efi: %v", mac, r)
		}
	}
	if !shim {
		t.Errorf("bootforge logged no DHCP ACK to %s with file shimx64.efi (dhcp.loaders.secure_boot_x64)", mac)
	}
	return all
}

// requireGRUBMenu checks that bootforge logged a GRUB menu of profile for mac.
func requireGRUBMenu(t *testing.T, s *Server, mac, profile string) {
	t.Helper()
	for _, r := range ServerRecords(s, "menu") {
		if r["format"] == "grub" && r["mac"] == mac && r["profile"] == profile {
			return
		}
	}
	t.Errorf("bootforge logged no grub menu of profile %s for %s", profile, mac)
}

// unsignedKernel writes a copy of the signed test kernel with its
// signature removed by osslsigncode, and checks both files' certificate
// tables: signed has one, the copy none.
func unsignedKernel(t *testing.T, signed string) string {
	t.Helper()
	need(t, "osslsigncode")
	if n := certTableSize(t, signed); n == 0 {
		t.Fatalf("the test kernel %s has no Authenticode signature: it cannot prove a Secure Boot chain", signed)
	}
	out := filepath.Join(t.TempDir(), "vmlinuz-unsigned")
	if o, err := run(t, 60*time.Second, "osslsigncode", "remove-signature", "-in", signed, "-out", out); err != nil {
		t.Fatalf("osslsigncode remove-signature: %v\n%s", err, o)
	}
	if n := certTableSize(t, out); n != 0 {
		t.Fatalf("osslsigncode remove-signature left a certificate table of %d bytes in %s", n, out)
	}
	return out
}

// certTableSize is the size of a PE file's certificate table (data
// directory 4), the Authenticode signatures.
func certTableSize(t *testing.T, path string) uint32 {
	t.Helper()
	f, err := pe.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok || len(oh.DataDirectory) <= 4 {
		t.Fatalf("%s is not a PE32+ image with a security directory", path)
	}
	return oh.DataDirectory[4].Size
}

// ---------------------------------------------------------------------------
// 1. Secure Boot enforced: shim, signed GRUB, generated grub.cfg, signed kernel

func TestBootSecureBoot(t *testing.T) {
	t.Parallel()
	const mac = "52:54:00:5b:01:01"
	m := newMenuLab(t, menuLabOptions{
		Inventory: `inventory:
  profiles:
    - name: secure
      secure_boot: true
      match: [{mac: "` + mac + `"}]
      menu:
        entries:
` + sbEntries("", "sb"),
		Copy: sbLoaders,
	})
	// The preview names the chain and the menu GRUB will get.
	out := m.cli(t, "menu", "render", "--mac", mac, "--arch", "7")
	t.Logf("bootforge menu render --mac %s --arch 7:\n%s", mac, out)
	for _, w := range []string{"# dhcp boot file: shimx64.efi", "Secure Boot chain", "grubx64.efi",
		"bootforge/grub/" + mac + ".cfg", "# profile: secure", "linux '/vmlinuz'", "bfmarker=secure-sb"} {
		if !strings.Contains(out, w) {
			t.Errorf("bootforge menu render --mac %s --arch 7 lacks %q", mac, w)
		}
	}

	sbGate.acquire(t, 1)
	vm := startSecureVM(t, m.Lab, mac)
	cmdline, err := sbBoot(t, vm, "Secure Boot")
	if err != nil {
		t.Fatal(err)
	}
	if got := markers(cmdline); len(got) != 1 || got[0] != "bfmarker=secure-sb" {
		t.Errorf("booted markers %v, want [bfmarker=secure-sb]", got)
	}
	if !strings.Contains(vm.Console(), sbEnabled) {
		t.Errorf("the kernel booted but did not print %q: Secure Boot was not enforced\nconsole tail:\n%s", sbEnabled, vm.Tail(60))
	}
	for _, l := range vm.Lines() {
		if strings.Contains(l.Text, "Secure boot") || strings.Contains(l.Text, "shim") || strings.Contains(l.Text, "Loading Linux") {
			t.Logf("console %6.1fs: %s", l.At.Seconds(), l.Text)
		}
	}
	requireSecureChain(t, m.Server, mac)
	requireGRUBMenu(t, m.Server, mac, "secure")
}

// ---------------------------------------------------------------------------
// 2a. An unsigned kernel in a Secure Boot profile refuses the config

func TestBootSecureUnsignedKernelRefused(t *testing.T) {
	t.Parallel()
	const mac = "52:54:00:5b:02:01"
	kernel, initrd := NetbootKernel(t)
	unsigned := unsignedKernel(t, kernel)
	root, data := t.TempDir(), t.TempDir()
	copyFile(t, kernel, filepath.Join(root, "vmlinuz"))
	copyFile(t, unsigned, filepath.Join(root, "vmlinuz-unsigned"))
	copyFile(t, initrd, filepath.Join(root, "initrd.gz"))
	for name, src := range sbLoaders {
		copyFile(t, src, filepath.Join(root, name))
	}
	// Profile sbprof is Secure Boot: its entry "good" is signed, "bad" is
	// not. Profile legacy is not Secure Boot, so its unsigned kernel is fine.
	cfg := fmt.Sprintf(`root: %s
data_dir: %s
inventory:
  profiles:
    - name: sbprof
      secure_boot: true
      match: [{mac: "%s"}]
      menu:
        entries:
%s    - name: legacy
      match: [{oui: "02:00:00"}]
      menu:
        entries:
%s`, root, data, mac, sbEntries("vmlinuz", "good")+sbEntries("vmlinuz-unsigned", "bad"), sbEntries("vmlinuz-unsigned", "old"))
	cfgPath := filepath.Join(t.TempDir(), "bootforge.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	checkRefusal := func(what, out string) {
		t.Helper()
		for _, w := range []string{`profile "sbprof"`, `entry "bad"`, `"vmlinuz-unsigned"`, "not signed"} {
			if !strings.Contains(out, w) {
				t.Errorf("%s: the refusal does not name %s:\n%s", what, w, out)
			}
		}
		for _, w := range []string{`entry "good"`, `profile "legacy"`, `entry "old"`} {
			if strings.Contains(out, w) {
				t.Errorf("%s: the refusal names %s, which is not at fault:\n%s", what, w, out)
			}
		}
	}

	// bootforge serve refuses to start. It runs in a lab namespace, so that
	// if it did start, it would listen there only.
	lab := NewLab(t)
	start := time.Now()
	out, err := lab.Exec(30*time.Second, binary, "--config", cfgPath, "serve",
		"--tftp-addr", lab.IP()+":69", "--http-addr", lab.IP()+":8080", "--https-addr", lab.IP()+":8443")
	t.Logf("bootforge serve with an unsigned Secure Boot kernel (%s, %v):\n%s", time.Since(start).Round(time.Millisecond), err, out)
	switch {
	case err == nil:
		t.Errorf("bootforge serve exited 0 with an unsigned kernel in a Secure Boot profile")
	case strings.Contains(err.Error(), "timed out") || strings.Contains(out, "bootforge ready"):
		t.Errorf("bootforge serve started with an unsigned kernel in a Secure Boot profile: %v", err)
	default:
		checkRefusal("bootforge serve", out)
	}

	// So does the preview.
	out, err = run(t, 60*time.Second, binary, "--config", cfgPath, "menu", "render", "--mac", mac, "--arch", "7")
	t.Logf("bootforge menu render --mac %s --arch 7 (%v):\n%s", mac, err, out)
	if err == nil {
		t.Errorf("bootforge menu render succeeded with an unsigned kernel in a Secure Boot profile")
	} else {
		checkRefusal("bootforge menu render", out)
	}

	// Without the unsigned entry the same config loads: the refusal was
	// about that file alone.
	good := strings.Replace(cfg, sbEntries("vmlinuz-unsigned", "bad"), "", 1)
	if err := os.WriteFile(cfgPath, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, 60*time.Second, binary, "--config", cfgPath, "menu", "render", "--mac", mac, "--arch", "7")
	if err != nil || !strings.Contains(out, "# dhcp boot file: shimx64.efi") {
		t.Errorf("bootforge menu render with the signed kernel only: %v, want the shim chain:\n%s", err, out)
	}

	// A running server checks inventory files when they change: a Secure
	// Boot profile with the unsigned kernel is refused and the running
	// inventory kept.
	invDir := t.TempDir()
	os.MkdirAll(filepath.Join(invDir, "profiles"), 0o755)
	srv := StartServer(t, ServerOptions{Netns: lab.Netns, Addr: lab.IP(), Root: root,
		Config: strings.Replace(good, "data_dir: "+data+"\n", "", 1) + "  dir: " + invDir + "\n"})
	late := `name: late
secure_boot: true
match: [{mac: "52:54:00:5b:02:02"}]
menu:
  entries:
    - {name: lateentry, kind: linux, kernel: vmlinuz-unsigned, initrds: [initrd.gz]}
`
	if err := os.WriteFile(filepath.Join(invDir, "profiles", "late.yaml"), []byte(late), 0o644); err != nil {
		t.Fatal(err)
	}
	srv.WaitLog("inventory refused", 15*time.Second)
	for _, r := range ServerRecords(srv, "inventory refused, keeping the last good one") {
		t.Logf("running server, inventory file changed: %s", r["err"])
		for _, w := range []string{`profile "late"`, `entry "lateentry"`, `"vmlinuz-unsigned"`, "late.yaml"} {
			if !strings.Contains(r["err"], w) {
				t.Errorf("the running server's refusal does not name %s: %s", w, r["err"])
			}
		}
	}
}

// ---------------------------------------------------------------------------
// 2b. The firmware chain itself refuses an unsigned kernel
//
// The server starts with the signed kernel (the load check passes), then
// the file is replaced on disk by its unsigned copy under the same name:
// bootforge checks at load, not per boot, so it serves it. shim's
// verifier, called by GRUB's linux command, must refuse it.

func TestBootSecureUnsignedKernelFailsToBoot(t *testing.T) {
	t.Parallel()
	const mac = "52:54:00:5b:03:01"
	kernel, _ := NetbootKernel(t)
	unsigned := unsignedKernel(t, kernel)
	m := newMenuLab(t, menuLabOptions{
		Inventory: `inventory:
  profiles:
    - name: secure
      secure_boot: true
      match: [{mac: "` + mac + `"}]
      menu:
        entries:
` + sbEntries("", "sb"),
		Copy: sbLoaders,
	})
	b, err := os.ReadFile(unsigned)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(filepath.Join(m.Root, "vmlinuz"), b); err != nil {
		t.Fatal(err)
	}
	if n := certTableSize(t, filepath.Join(m.Root, "vmlinuz")); n != 0 {
		t.Fatalf("root/vmlinuz still has a certificate table (%d bytes)", n)
	}

	sbGate.acquire(t, 1)
	vm := startSecureVM(t, m.Lab, mac)
	// Whichever comes first: a refusal, or the marker of a kernel that
	// should never have run.
	got, err := vm.WaitFor(regexp.MustCompile(sbRefusedRE.String()+"|"+bmMarkerRE), bmBootTimeout)
	if err != nil {
		vm.shown.Store(true)
		t.Fatalf("no verification error from shim or GRUB: %v\nconsole tail:\n%s", err, vm.Tail(60))
	}
	if strings.Contains(got[0], BootMarker) {
		vm.shown.Store(true)
		t.Fatalf("the unsigned kernel booted under Secure Boot (%s), without a verification error: %q\nconsole tail:\n%s",
			vm.Elapsed().Round(time.Millisecond), strings.TrimSpace(got[0]), vm.Tail(40))
	}
	refusedAt := vm.Elapsed()
	t.Logf("refusal after %s: %q", refusedAt.Round(time.Millisecond), strings.TrimSpace(got[0]))
	// Give a bypass, if any, time to boot anyway: a kernel that was
	// accepted reaches the marker in seconds.
	const grace = 60 * time.Second
	if booted, err := vm.WaitFor(regexp.MustCompile(bmMarkerRE), grace); err == nil {
		t.Errorf("the unsigned kernel booted under Secure Boot: %q", strings.TrimSpace(booted[0]))
	}
	console := vm.Console()
	t.Logf("console tail after %s more:\n%s", grace, vm.Tail(25))
	if strings.Contains(console, sbEnabled) {
		t.Errorf("the kernel started (%q on the console) although it is unsigned", sbEnabled)
	}
	if !strings.Contains(console, sbRefusal) {
		t.Errorf("the console lacks %q (the refusal Debian's shim/GRUB print); it showed %q", sbRefusal, strings.TrimSpace(got[0]))
	}
	// bootforge did serve the unsigned file: the firmware refused it, not
	// a missing download.
	ip := leaseIP(m.Server, mac)
	all, _ := sbTFTP(m.Server, ip)
	t.Logf("TFTP requests of %s (%s): %v", mac, ip, all)
	served := 0
	for _, r := range serverRecordsAny(m.Server, "tftp transfer") {
		if Host(r["client"]) == ip && strings.TrimPrefix(r["file"], "/") == "vmlinuz" && r["result"] == "ok" {
			if r["bytes"] != strconv.Itoa(len(b)) {
				t.Errorf("vmlinuz was served with %s bytes, want %d (the unsigned copy)", r["bytes"], len(b))
			}
			served++
		}
	}
	if served == 0 {
		t.Errorf("bootforge never served the unsigned vmlinuz to %s: the refusal was not the firmware's", mac)
	}
	t.Logf("the unsigned kernel was fetched %d time(s)", served)
}

// sbRefusal is the refusal the unsigned-kernel boot must show.
const sbRefusal = "bad shim signature"

// ---------------------------------------------------------------------------
// 3. A mixed fleet: one bootforge, a Secure Boot VM on shim and a plain
// UEFI VM on iPXE, at the same time

func TestBootSecureMixedFleet(t *testing.T) {
	t.Parallel()
	const (
		sbMAC    = "52:54:00:5b:04:01" // matched by the Secure Boot profile
		plainMAC = "52:54:00:5b:04:02" // matched by nothing: the default profile
	)
	m := newMenuLab(t, menuLabOptions{
		Inventory: `inventory:
  default_profile: plain
  profiles:
    - name: plain
      menu:
        entries:
` + sbEntries("", "ipxe") + `    - name: secure
      secure_boot: true
      match: [{mac: "` + sbMAC + `"}]
      menu:
        entries:
` + sbEntries("", "sb"),
		Copy: map[string]string{"shimx64.efi": shimSigned, "grubx64.efi": grubNetSigned, "snponly.efi": ipxeSNPOnly},
	})
	out := m.cli(t, "menu", "render", "--mac", plainMAC, "--arch", "7")
	if !strings.Contains(out, "# dhcp boot file: snponly.efi") || strings.Contains(out, "Secure Boot") {
		t.Errorf("bootforge menu render --mac %s --arch 7: want the iPXE loader snponly.efi, no Secure Boot chain:\n%s", plainMAC, out)
	}

	sbGate.acquire(t, 2)
	sbVM := startSecureVM(t, m.Lab, sbMAC)
	plainVM := StartVM(t, VMOptions{Lab: m.Lab, Firmware: "uefi", MAC: plainMAC})
	var wg sync.WaitGroup
	var sbLine, plainLine string
	var sbErr, plainErr error
	wg.Add(2)
	go func() { defer wg.Done(); sbLine, sbErr = sbBoot(t, sbVM, "Secure Boot") }()
	go func() { defer wg.Done(); plainLine, plainErr = sbBoot(t, plainVM, "plain UEFI") }()
	wg.Wait()
	if sbErr != nil {
		t.Error(sbErr)
	}
	if plainErr != nil {
		plainVM.shown.Store(true)
		t.Error(plainErr)
	}
	if sbErr == nil {
		if got := markers(sbLine); len(got) != 1 || got[0] != "bfmarker=secure-sb" {
			t.Errorf("Secure Boot VM: markers %v, want [bfmarker=secure-sb]", got)
		}
		if !strings.Contains(sbVM.Console(), sbEnabled) {
			t.Errorf("Secure Boot VM: the kernel did not print %q", sbEnabled)
		}
		requireSecureChain(t, m.Server, sbMAC)
		requireGRUBMenu(t, m.Server, sbMAC, "secure")
	}
	if plainErr == nil {
		if got := markers(plainLine); len(got) != 1 || got[0] != "bfmarker=plain-ipxe" {
			t.Errorf("plain UEFI VM: markers %v, want [bfmarker=plain-ipxe]", got)
		}
		requireTokens(t, plainVM, plainLine, "initrd=initrd.gz")
		if strings.Contains(plainVM.Console(), sbEnabled) {
			t.Errorf("plain UEFI VM: the kernel printed %q on firmware without Secure Boot", sbEnabled)
		}
	}

	// The plain VM took the iPXE path: snponly.efi over TFTP, then the
	// script, its menu, kernel and initrd over HTTP; never the shim.
	var firmwareACK, ipxeACK bool
	for _, r := range ServerRecords(m.Server, "dhcp: replied") {
		if r["mac"] != plainMAC {
			continue
		}
		switch {
		case r["type"] == "ACK" && r["file"] == "snponly.efi":
			firmwareACK = true
		case r["type"] == "ACK" && strings.HasSuffix(r["file"], "/boot.ipxe"):
			ipxeACK = true
		case r["file"] == "shimx64.efi":
			t.Errorf("bootforge offered the plain UEFI client %s the shim: %v", plainMAC, r)
		}
	}
	if !firmwareACK || !ipxeACK {
		t.Errorf("plain UEFI VM %s: DHCP ACK with snponly.efi %v, with the boot.ipxe URL %v; want both", plainMAC, firmwareACK, ipxeACK)
	}
	ip := leaseIP(m.Server, plainMAC)
	all, ok := sbTFTP(m.Server, ip)
	t.Logf("TFTP requests of the plain UEFI VM %s (%s): %v", plainMAC, ip, all)
	if _, found := ok["snponly.efi"]; !found {
		t.Errorf("plain UEFI VM: no TFTP transfer of snponly.efi with result=ok: %v", all)
	}
	for _, f := range []string{"shimx64.efi", "grubx64.efi", "vmlinuz"} {
		if _, found := ok[f]; found {
			t.Errorf("plain UEFI VM fetched %s over TFTP: it should be on the iPXE path", f)
		}
	}
	httpOK := map[string]bool{}
	for _, r := range ServerRecords(m.Server, "http request") {
		if r["client"] == ip && r["status"] == "200" {
			httpOK[r["path"]] = true
		}
	}
	for _, p := range []string{"/boot.ipxe", "/bootforge/ipxe", "/vmlinuz", "/initrd.gz"} {
		if !httpOK[p] {
			t.Errorf("plain UEFI VM (%s): no HTTP 200 for %s; got %v", ip, p, httpOK)
		}
	}
	found := false
	for _, r := range ServerRecords(m.Server, "menu") {
		found = found || (r["format"] == "ipxe" && r["mac"] == plainMAC && r["profile"] == "plain")
	}
	if !found {
		t.Errorf("bootforge logged no iPXE menu of profile plain for %s", plainMAC)
	}
}

// ---------------------------------------------------------------------------
// 4. Per-client menus: two Secure Boot clients, one root grub.cfg, two menus
//
// Client A is Secure Boot by its profile; client B by its host record,
// which pins a profile that says nothing about Secure Boot.

func TestBootSecurePerClientMenus(t *testing.T) {
	t.Parallel()
	const (
		macA = "52:54:00:5b:05:01"
		macB = "52:54:00:5b:05:02"
	)
	m := newMenuLab(t, menuLabOptions{
		Inventory: `inventory:
  hosts:
    - {name: sbhost, macs: ["` + macB + `"], profile: sbb, secure_boot: true}
  profiles:
    - name: sba
      secure_boot: true
      match: [{mac: "` + macA + `"}]
      menu:
        default: two
        timeout: 1s
        entries:
` + sbEntries("", "one", "two") + `    - name: sbb
      menu:
        entries:
` + sbEntries("", "only"),
		Copy: sbLoaders,
	})
	for _, c := range []struct{ mac, why string }{{macA, `Secure Boot for profile "sba"`}, {macB, `Secure Boot for host "sbhost"`}} {
		out := m.cli(t, "menu", "render", "--mac", c.mac, "--arch", "7")
		if !strings.Contains(out, "# dhcp boot file: shimx64.efi") || !strings.Contains(out, c.why) {
			t.Errorf("bootforge menu render --mac %s --arch 7: want shimx64.efi (%s):\n%s", c.mac, c.why, out)
		}
	}

	sbGate.acquire(t, 2)
	vms := map[string]*VM{macA: startSecureVM(t, m.Lab, macA), macB: startSecureVM(t, m.Lab, macB)}
	want := map[string]string{macA: "bfmarker=sba-two", macB: "bfmarker=sbb-only"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	lines := map[string]string{}
	for mac, vm := range vms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			line, err := sbBoot(t, vm, "Secure Boot")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Error(err)
				return
			}
			lines[mac] = line
		}()
	}
	wg.Wait()
	for mac, w := range want {
		line, booted := lines[mac]
		if !booted {
			continue
		}
		if got := markers(line); len(got) != 1 || got[0] != w {
			t.Errorf("VM %s booted markers %v, want [%s]", mac, got, w)
		}
		if !strings.Contains(vms[mac].Console(), sbEnabled) {
			t.Errorf("VM %s: the kernel did not print %q", mac, sbEnabled)
		}
	}
	requireSecureChain(t, m.Server, macA)
	requireSecureChain(t, m.Server, macB)
	requireGRUBMenu(t, m.Server, macA, "sba")
	requireGRUBMenu(t, m.Server, macB, "sbb")
	// Both read the same root grub.cfg (same size), then their own menus.
	sizes := map[string]string{}
	for _, mac := range []string{macA, macB} {
		_, ok := sbTFTP(m.Server, leaseIP(m.Server, mac))
		for _, f := range []string{"grub/grub.cfg", "grub/x86_64-efi/grub.cfg"} {
			if r, found := ok[f]; found {
				sizes[mac] = f + " " + r["bytes"] + " bytes"
			}
		}
	}
	if sizes[macA] == "" || sizes[macA] != sizes[macB] {
		t.Errorf("the two clients' root grub.cfg differ: %v", sizes)
	}
	t.Logf("root grub.cfg: %v", sizes)
}
