package e2e

// pxelinux's own paths (issue #18, items 1 and 3), with Debian's
// pxelinux 6.04 and iPXE in QEMU (BIOS, TCG), one VM per test:
//
//   - wimboot from pxelinux: the menu runs linux.c32 with wimboot as the
//     kernel and the WinPE files as named initrds (initrdfile=PATH@NAME).
//     wimboot is not packaged in Debian and there is no internet here, so
//     the wimboot fixture is a small file of that name and the proof is
//     syslinux's own parser: pxelinux fetches wimboot, then bootmgr, BCD,
//     boot.sdi and boot.wim (a real WIM made by wimlib), before it would
//     run the kernel, which then fails as it is no kernel.
//   - the choice is kept: an entry only iPXE can boot (chain), picked with
//     the arrow keys in pxelinux's menu, chains undionly.kpxe, and the
//     iPXE menu that follows boots that entry instead of the menu.
//   - pxelinux.cfg/<uuid> and a hex-IP name over TFTP (tftp-hpa), for a
//     client seen only through the proxy exchange beside dnsmasq.
//
// As in boot_menu_test.go, QEMU's ROM is iPXE: a boot.ipxe on disk chains
// pxelinux.0 over TFTP as a plain PXE ROM would.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// ppPXELinuxFiles are the syslinux files pxelinux fetches.
var ppPXELinuxFiles = map[string]string{
	"pxelinux.0":   "/usr/lib/PXELINUX/pxelinux.0",
	"ldlinux.c32":  "/usr/lib/syslinux/modules/bios/ldlinux.c32",
	"menu.c32":     "/usr/lib/syslinux/modules/bios/menu.c32",
	"libutil.c32":  "/usr/lib/syslinux/modules/bios/libutil.c32",
	"libcom32.c32": "/usr/lib/syslinux/modules/bios/libcom32.c32",
	"linux.c32":    "/usr/lib/syslinux/modules/bios/linux.c32",
}

// ppChainPXELinux is the boot.ipxe that makes QEMU's iPXE ROM load
// pxelinux.0 over TFTP (see TestBootMenuPXELinuxBIOS).
const ppChainPXELinux = "#!ipxe\n" +
	"echo bootforge-e2e: chaining pxelinux.0 over TFTP\n" +
	"set net0/filename pxelinux.0\n" +
	"set net0/208:hex f1:00:74:7e\n" +
	"set net0/210:string tftp://192.0.2.1/\n" +
	"chain tftp://192.0.2.1/pxelinux.0\n"

// ppWaitTFTP waits until bootforge logs a complete TFTP transfer of file.
func ppWaitTFTP(t *testing.T, s *Server, file string, timeout time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, r := range ServerRecords(s, "tftp transfer") {
			if r["file"] == file && r["result"] == "ok" {
				return true
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return false
}

// ppWIM makes a small WIM with wimlib, as an operator's boot.wim.
func ppWIM(t *testing.T, dst string) {
	t.Helper()
	need(t, "wimlib-imagex")
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "Windows", "System32"), 0o755)
	os.WriteFile(filepath.Join(src, "Windows", "System32", "winpeshl.ini"), []byte("[LaunchApps]\ncmd.exe\n"), 0o644)
	if out, err := run(t, 60*time.Second, "wimlib-imagex", "capture", src, dst, "WinPE-e2e"); err != nil {
		t.Fatalf("wimlib-imagex capture: %v\n%s", err, out)
	}
}

func TestPXELinuxPathsWimboot(t *testing.T) {
	const mac = "52:54:00:b8:00:01"
	write := map[string]string{
		"boot.ipxe":               ppChainPXELinux,
		"winpe-x64/wimboot":       "wimboot fixture: not a kernel\n",
		"winpe-x64/bootmgr":       "bootmgr fixture\n",
		"winpe-x64/Boot/BCD":      "BCD fixture\n",
		"winpe-x64/Boot/boot.sdi": "boot.sdi fixture\n",
	}
	m := newMenuLab(t, menuLabOptions{
		DHCP: "  loaders: {bios: pxelinux.0}\n",
		Inventory: `inventory:
  profiles:
    - name: winpe
      match: [{mac: "` + mac + `"}]
      menu:
        title: wimboot from pxelinux
        default: win10_install
        timeout: 1s
        entries:
          - {name: win10_install, label: "Windows 10 Deployment", kind: wimboot, wimboot: winpe-x64/wimboot,
             bootmgr: winpe-x64/bootmgr, bcd: winpe-x64/Boot/BCD, boot_sdi: winpe-x64/Boot/boot.sdi, boot_wim: winpe-x64/boot.wim}
` + linuxEntries("", "linux"),
		Copy:  ppPXELinuxFiles,
		Write: write,
	})
	ppWIM(t, filepath.Join(m.Root, "winpe-x64", "boot.wim"))
	if out, err := run(t, 30*time.Second, "wimlib-imagex", "info", filepath.Join(m.Root, "winpe-x64", "boot.wim")); err != nil || !strings.Contains(out, "WinPE-e2e") {
		t.Fatalf("the test WIM is not one: %v\n%s", err, out)
	}

	vm := StartVM(t, VMOptions{Lab: m.Lab, Firmware: "bios", MAC: mac})
	if !ppWaitTFTP(t, m.Server, "winpe-x64/boot.wim", bmBootTimeout) {
		t.Fatalf("the client never fetched boot.wim; TFTP log: %v", tftpLog(m.Server, ""))
	}
	t.Logf("boot.wim fetched after %s", vm.Elapsed().Round(time.Millisecond))

	// The rendered config, as the client got it.
	cfg := ppTFTPGet(t, m.Lab, "pxelinux.cfg/01-"+pxeMAC(mac))
	want := "COM32 linux.c32\n  APPEND winpe-x64/wimboot initrdfile=winpe-x64/bootmgr@bootmgr,winpe-x64/Boot/BCD@BCD," +
		"winpe-x64/Boot/boot.sdi@boot.sdi,winpe-x64/boot.wim@boot.wim\n"
	if !strings.Contains(cfg, want) {
		t.Errorf("pxelinux.cfg lacks the wimboot entry %q:\n%s", want, cfg)
	}
	// In order, by the client: linux.c32, wimboot, then the WinPE files.
	var order []string
	for _, r := range ServerRecords(m.Server, "tftp transfer") {
		if r["result"] == "ok" && strings.HasPrefix(r["client"], "192.0.2.1") && r["client"] != "192.0.2.1" {
			order = append(order, r["file"])
		}
	}
	wantOrder := []string{"linux.c32", "winpe-x64/wimboot", "winpe-x64/bootmgr", "winpe-x64/Boot/BCD", "winpe-x64/Boot/boot.sdi", "winpe-x64/boot.wim"}
	at := 0
	for _, f := range order {
		if at < len(wantOrder) && f == wantOrder[at] {
			at++
		}
	}
	if at != len(wantOrder) {
		t.Errorf("the client's TFTP transfers %v do not hold %v in that order", order, wantOrder)
	}
	// syslinux's own words: linux.c32 loaded wimboot and wrapped each file
	// under its name (SeaBIOS copies the text console to serial).
	for _, f := range []string{"bootmgr", "Boot/BCD", "Boot/boot.sdi", "boot.wim"} {
		name := f[strings.LastIndex(f, "/")+1:]
		re := regexp.MustCompile(`Encapsulating winpe-x64/` + regexp.QuoteMeta(f+"@"+name) + `\.\.\. ok`)
		if _, err := vm.WaitFor(re, 20*time.Second); err != nil {
			t.Errorf("the console does not show linux.c32 wrapping %s as %s (%v); tail:\n%s", f, name, err, vm.Tail(15))
		}
	}
	t.Logf("client TFTP transfers: %v", order)
}

// ppTFTPGet fetches a file from bootforge with tftp-hpa from a new host
// on the lab network.
func ppTFTPGet(t *testing.T, lab *Lab, name string) string {
	t.Helper()
	h := lab.AddHost(t, "192.0.2.77/24")
	return ppTFTPFrom(t, h, name, true)
}

// ppTFTPFrom fetches name with tftp-hpa from h; it fails the test if the
// result is not as ok says (found or not).
func ppTFTPFrom(t *testing.T, h *LabHost, name string, ok bool) string {
	t.Helper()
	need(t, "tftp")
	out := filepath.Join(t.TempDir(), "got")
	res, _ := h.Exec(30*time.Second, "tftp", "-m", "binary", "192.0.2.1", "-c", "get", name, out)
	b, err := os.ReadFile(out)
	found := err == nil && !strings.Contains(res, "Error code")
	if found != ok {
		t.Fatalf("tftp get %s from %s: found %v, want %v (%s)", name, h.Netns, found, ok, strings.TrimSpace(res))
	}
	return string(b)
}

// ppQMP sends keys to a VM's keyboard through QEMU's QMP socket.
func ppQMP(t *testing.T, sock string, keys ...string) {
	t.Helper()
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		t.Fatalf("QMP: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	readReturn := func() {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("QMP: %v", err)
			}
			var m map[string]any
			json.Unmarshal([]byte(line), &m)
			if _, ok := m["return"]; ok {
				return
			}
			if e, ok := m["error"]; ok {
				t.Fatalf("QMP error: %v", e)
			}
		}
	}
	r.ReadString('\n') // greeting
	fmt.Fprintln(c, `{"execute":"qmp_capabilities"}`)
	readReturn()
	for _, k := range keys {
		fmt.Fprintf(c, `{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":%q}]}}`+"\n", k)
		readReturn()
		time.Sleep(300 * time.Millisecond)
	}
}

func TestPXELinuxPathsChoiceKept(t *testing.T) {
	const mac = "52:54:00:b8:00:02"
	m := newMenuLab(t, menuLabOptions{
		DHCP: "  loaders: {bios: pxelinux.0}\n",
		Inventory: `inventory:
  profiles:
    - name: pick
      match: [{mac: "` + mac + `"}]
      menu:
        title: the choice is kept
        default: first
        timeout: 60s
        entries:
` + linuxEntries("", "first") + `          - {name: chained, label: "Chain a script", kind: chain, url: chained.ipxe}
`,
		Copy: map[string]string{"undionly.kpxe": "/usr/lib/ipxe/undionly.kpxe"},
		Write: map[string]string{
			"boot.ipxe": ppChainPXELinux,
			"chained.ipxe": "#!ipxe\necho bootforge-e2e: the chosen chain entry runs\n" +
				"kernel http://192.0.2.1:8080/vmlinuz initrd=initrd.gz " + strings.ReplaceAll(bmCmdline, "{profile}-{entry}", "kept-chained") + "\n" +
				"initrd http://192.0.2.1:8080/initrd.gz\nboot\n",
		},
	})
	for name, src := range ppPXELinuxFiles {
		copyFile(t, src, filepath.Join(m.Root, name))
	}
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	vm := StartVM(t, VMOptions{Lab: m.Lab, Firmware: "bios", MAC: mac, Args: []string{"-qmp", "unix:" + sock + ",server=on,wait=off"}})
	cfgName := "pxelinux.cfg/01-" + pxeMAC(mac)
	if !ppWaitTFTP(t, m.Server, cfgName, bmBootTimeout) || !ppWaitTFTP(t, m.Server, "menu.c32", 60*time.Second) {
		t.Fatalf("pxelinux never fetched its menu; TFTP log: %v", tftpLog(m.Server, ""))
	}
	// From here on the client's iPXE gets bootforge's own boot.ipxe, as it
	// would behind a plain PXE ROM.
	os.Remove(filepath.Join(m.Root, "boot.ipxe"))
	time.Sleep(5 * time.Second) // menu.c32 draws its menu
	ppQMP(t, sock, "down", "ret")
	got, err := vm.WaitFor(regexp.MustCompile(bmMarkerRE), bmBootTimeout)
	if err != nil {
		t.Fatalf("no marker after choosing the chain entry: %v", err)
	}
	t.Logf("marker after %s: %s", vm.Elapsed().Round(time.Millisecond), strings.TrimSpace(got[0]))
	if mk := markers(got[1]); len(mk) != 1 || mk[0] != "bfmarker=kept-chained" {
		t.Errorf("booted markers %v, want [bfmarker=kept-chained]: the chain entry chosen in pxelinux", mk)
	}
	pick := "bootforge/pick/" + pxeMAC(mac) + "/chained/undionly.kpxe"
	if !ppWaitTFTP(t, m.Server, pick, time.Second) {
		t.Errorf("pxelinux did not fetch iPXE as %s; TFTP log: %v", pick, tftpLog(m.Server, ""))
	}
	if m.Server.CountLog("pxelinux: choice kept for iPXE") == 0 {
		t.Errorf("bootforge did not log the kept choice")
	}
	var ipxeMenus []LogRecord
	for _, r := range ServerRecords(m.Server, "menu") {
		if r["format"] == "ipxe" && r["mac"] == mac {
			ipxeMenus = append(ipxeMenus, r)
		}
	}
	if len(ipxeMenus) == 0 || ipxeMenus[0]["boot"] != "chained" {
		t.Errorf("the iPXE menu after pxelinux does not boot the choice: %v", ipxeMenus)
	}
}

func TestPXELinuxPathsUUIDAndHexIP(t *testing.T) {
	need(t, "dnsmasq", "udhcpc", "tftp")
	const uuid = "5c0ffee0-1234-4abc-8def-0123456789ab"
	lab := NewLab(t)
	client := dhAddHost(t, lab, "")
	mac := strings.TrimSpace(client.MustExec("cat", "/sys/class/net/"+client.Iface+"/address"))
	cfg := `log: {level: debug, format: text}
dhcp:
  mode: proxy
  interfaces: [br0]
  loaders: {bios: pxelinux.0}
inventory:
  profiles:
    - name: bymac
      match: [{mac: "` + mac + `"}]
      menu: {entries: [{name: disk, kind: local}]}
    - name: byuuid
      priority: 5
      match: [{uuid: "` + uuid + `"}]
      menu: {entries: [{name: disk, kind: local}]}
    - name: other
      menu: {entries: [{name: disk, kind: local}]}
  default_profile: other
`
	s := StartServer(t, ServerOptions{Netns: lab.Netns, Addr: lab.IP(), Config: cfg,
		Args: []string{"--tftp-addr", lab.IP() + ":69", "--http-addr", lab.IP() + ":8080"}})
	dh := lab.AddHost(t, "192.0.2.2/24")
	StartDnsmasq(t, dh.Netns, dh.Iface, "--dhcp-range=192.0.2.100,192.0.2.199,255.255.255.0,1h")

	// A client on a fixed address, never seen by DHCP: its hex name is
	// not found, and pxelinux would go on to default.
	stranger := lab.AddHost(t, "192.0.2.50/24")
	ppTFTPFrom(t, stranger, "pxelinux.cfg/C0000232", false)
	// pxelinux.cfg/<uuid> of a UUID a rule names.
	if got := ppTFTPFrom(t, stranger, "pxelinux.cfg/"+uuid, true); !strings.Contains(got, "# bootforge profile byuuid") {
		t.Errorf("pxelinux.cfg/%s is not profile byuuid's:\n%s", uuid, got)
	}

	// A BIOS PXE client, as its ROM does it: DISCOVER, the offers of
	// dnsmasq (an address) and of bootforge's proxy (pxelinux.0), then a
	// REQUEST for dnsmasq's address.
	c := dhSocket(t, client.Netns, client.Iface, 68)
	pxe := []dhOpt{dhOS(60, "PXEClient:Arch:00000:UNDI:002001"), dhOArch(0)}
	disc := dhNewMsg(mac, dhDiscover, pxe...)
	var offer, proxy *dhPkt
	for i := 0; i < 10 && (offer == nil || proxy == nil); i++ {
		dhSendRaw(t, c, "255.255.255.255:67", disc.Bytes())
		for _, r := range dhCollect(t, c, disc.XID, time.Second, 0) {
			switch {
			case r.IPs(54) == "192.0.2.2" && r.Type() == dhOffer:
				offer = r
			case r.IPs(54) == "192.0.2.1" && r.Type() == dhOffer:
				proxy = r
			}
		}
	}
	if offer == nil || proxy == nil || proxy.File != "pxelinux.0" {
		t.Fatalf("offers: dnsmasq %v, bootforge's proxy %v (want boot file pxelinux.0)", offer, proxy)
	}
	ip := offer.YIAddr
	req := dhNewMsg(mac, dhRequest, append(pxe, dhOIP(50, ip), dhOIP(54, "192.0.2.2"))...)
	req.XID = disc.XID
	dhMustExchange(t, c, "255.255.255.255:67", req, dhAck, 10*time.Second)
	client.MustExec("ip", "addr", "add", ip+"/24", "dev", client.Iface)
	a := net.ParseIP(ip).To4()
	hexIP := fmt.Sprintf("%02X%02X%02X%02X", a[0], a[1], a[2], a[3])
	for _, name := range []string{hexIP, hexIP[:7]} {
		got := ppTFTPFrom(t, client, "pxelinux.cfg/"+name, true)
		if !strings.Contains(got, "# bootforge profile bymac") {
			t.Errorf("pxelinux.cfg/%s from %s (%s) is not profile bymac's:\n%s", name, ip, mac, got)
		}
	}
	menus := 0
	for _, r := range ServerRecords(s, "menu") {
		if r["format"] == "pxelinux" && r["mac"] == mac && r["profile"] == "bymac" {
			menus++
		}
	}
	if menus < 2 {
		t.Errorf("bootforge logged %d pxelinux menus for %s, want 2", menus, mac)
	}
}

// syslinux.efi (Debian's syslinux-efi 6.04) for an x64 UEFI client:
// DHCP hands an arch-7 client efi64/syslinux.efi (dhcp.loaders.efi_x64),
// EDK2's own PXE loads it over TFTP, it reads ldlinux.e64, menu.c32 and
// efi64/pxelinux.cfg/01-<mac> from its own directory, and boots the
// default Linux entry after the menu's timeout, by absolute paths.
func TestPXELinuxPathsSyslinuxEFI(t *testing.T) {
	const mac = "52:54:00:b8:00:03"
	copies := map[string]string{"efi64/syslinux.efi": "/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi"}
	for _, f := range []string{"ldlinux.e64", "menu.c32", "libutil.c32", "libcom32.c32", "linux.c32"} {
		copies["efi64/"+f] = "/usr/lib/syslinux/modules/efi64/" + f
	}
	m := newMenuLab(t, menuLabOptions{
		DHCP: "  loaders: {efi_x64: efi64/syslinux.efi}\n",
		Inventory: `inventory:
  profiles:
    - name: efi
      match: [{mac: "` + mac + `"}]
      menu:
        title: syslinux.efi
        default: second
        timeout: 1s
        entries:
` + linuxEntries("", "first", "second"),
		Copy: copies,
	})
	vm, got := BootVM(t, VMOptions{Lab: m.Lab, Firmware: "uefi", MAC: mac, Timeout: bmBootTimeout,
		Expect: bmMarkerRE + `|Loading \S+ failed: [^\n\x1b]*`})
	t.Logf("after %s: %s", vm.Elapsed().Round(time.Millisecond), strings.TrimSpace(got[0]))
	if len(got) < 2 || got[1] == "" {
		t.Fatalf("syslinux.efi: %q; TFTP log: %v", got[0], tftpLog(m.Server, ""))
	}
	if mk := markers(got[1]); len(mk) != 1 || mk[0] != "bfmarker=efi-second" {
		t.Errorf("booted markers %v, want [bfmarker=efi-second]", mk)
	}
	for _, f := range []string{"efi64/syslinux.efi", "efi64/ldlinux.e64", "efi64/pxelinux.cfg/01-" + pxeMAC(mac), "efi64/menu.c32", "vmlinuz"} {
		if !ppWaitTFTP(t, m.Server, f, time.Second) {
			t.Errorf("no complete TFTP transfer of %s; TFTP log: %v", f, tftpLog(m.Server, ""))
		}
	}
	t.Logf("TFTP: %v", tftpLog(m.Server, ""))
}
