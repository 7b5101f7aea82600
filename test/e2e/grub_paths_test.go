package e2e

import (
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// GRUB paths (issue 18, item 2): BIOS GRUB from `bootforge init`
// (grub-mknetdir's i386-pc PXE core), and profiles chosen by the SMBIOS
// facts GRUB reads with its smbios module.

// TestGRUBPathsBIOSSMBIOS boots the i386-pc core that `bootforge init`
// built, with a QEMU SMBIOS product that one profile matches and a MAC
// that another, lower-priority profile matches: the product's profile
// must boot, which only happens if GRUB sent its facts.
func TestGRUBPathsBIOSSMBIOS(t *testing.T) {
	const (
		mac     = "52:54:00:b9:18:01"
		core    = gpCore
		product = "bootforge e2e/grub" // a space and a slash, as real names have
		uuid    = "0b1c2d3e-4f50-4617-8899-aabbccdd1801"
	)
	copies := grubNetTree(t)
	m := newMenuLab(t, menuLabOptions{
		DHCP: "  loaders: {bios: " + core + "}\n",
		Inventory: `inventory:
  profiles:
    - name: byoui
      priority: 10
      match: [{oui: "52:54:00"}]
      menu:
        entries:
` + linuxEntries("", "one") + `
    - name: smbios
      priority: 20
      match: [{product: "bootforge e2e/*", manufacturer: "Bootforge*", serial: "SN-18"}]
      menu:
        entries:
` + linuxEntries("", "one"),
		Copy: copies,
		// QEMU's BIOS ROM is iPXE, which DHCP sends to the boot script:
		// this one (a disk file wins) loads the GRUB PXE core over TFTP, as
		// a plain PXE ROM given dhcp.loaders.bios does.
		Write: map[string]string{"boot.ipxe": chainCoreScript},
	})
	// A plain BIOS PXE ROM (arch 0, no iPXE options) is handed the core.
	h := dhAddHost(t, m.Lab, "192.0.2.30")
	c := dhSocket(t, h.Netns, h.Iface, 68)
	offer := dhMustExchange(t, c, "255.255.255.255:67",
		dhNewMsg("52:54:00:b9:18:02", dhDiscover, dhOS(60, "PXEClient:Arch:00000:UNDI:002001"), dhOArch(0)), dhOffer, dhReplyWait)
	if offer.File != core {
		t.Errorf("BIOS PXE client offered boot file %q, want %q: %s", offer.File, core, offer)
	}

	vm, got := BootVM(t, VMOptions{Lab: m.Lab, Firmware: "bios", MAC: mac, Timeout: bmBootTimeout, Expect: bmMarkerRE,
		Args: []string{"-smbios", "type=1,manufacturer=Bootforge Lab,product=" + product + ",serial=SN-18", "-uuid", uuid}})
	t.Logf("BIOS GRUB: marker after %s", vm.Elapsed().Round(time.Millisecond))
	if mk := markers(got[1]); len(mk) != 1 || mk[0] != "bfmarker=smbios-one" {
		t.Errorf("markers %v, want [bfmarker=smbios-one] (the profile of the SMBIOS product)", mk)
	}
	vm.Kill()

	var coreSent, facts bool
	var files []string
	for _, r := range serverRecordsAny(m.Server, "tftp transfer") {
		f := strings.TrimPrefix(r["file"], "/")
		files = append(files, f+" "+r["result"])
		switch {
		case r["result"] != "ok":
		case f == core:
			coreSent = true
		case strings.HasPrefix(f, "bootforge/grub/"+mac+"/") && strings.Contains(f, "/product="+product+"/"):
			// GRUB writes the UUID as iPXE's ${uuid} does (SMBIOS 2.6
			// byte order), so one host uuid: matches both.
			if !strings.Contains(f, "/uuid="+uuid+"/") {
				t.Errorf("GRUB sent another UUID than QEMU's %s: %s", uuid, f)
			}
			facts = true
			t.Logf("GRUB asked for its menu as %s", f)
		}
	}
	if !coreSent || !facts {
		t.Errorf("TFTP: core.0 sent %v, menu by SMBIOS facts %v; transfers: %v", coreSent, facts, files)
	}
	menus := 0
	for _, r := range ServerRecords(m.Server, "menu") {
		if r["format"] == "grub" && r["mac"] == mac && r["profile"] == "smbios" {
			menus++
		}
	}
	if menus == 0 {
		t.Errorf("bootforge logged no GRUB menu of profile smbios for %s", mac)
	}
}

const gpCore = "grub/i386-pc/core.0"

// chainCoreScript is boot.ipxe for BIOS GRUB tests: QEMU's BIOS ROM is
// iPXE, which DHCP sends to the boot script; this one (a disk file wins)
// loads the GRUB PXE core over TFTP, as a plain PXE ROM given
// dhcp.loaders.bios does.
const chainCoreScript = "#!ipxe\n" +
	"set net0/filename " + gpCore + "\n" +
	"chain tftp://192.0.2.1/" + gpCore + "\n"

// grubNetTree runs `bootforge init` and returns what it built for BIOS
// GRUB (core.0 and its module tree), as root name -> file, for
// menuLabOptions.Copy.
func grubNetTree(t *testing.T) map[string]string {
	t.Helper()
	initDir := filepath.Join(t.TempDir(), "bf")
	out, err := run(t, 120*time.Second, binary, "init", initDir)
	if err != nil || !strings.Contains(out, "built ") || !strings.Contains(out, "dhcp.loaders.bios: "+gpCore) {
		t.Fatalf("bootforge init: %v\n%s", err, out)
	}
	copies := map[string]string{}
	initRoot := filepath.Join(initDir, "root")
	filepath.WalkDir(filepath.Join(initRoot, "grub"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(initRoot, p)
			copies[filepath.ToSlash(rel)] = p
		}
		return err
	})
	if copies[gpCore] == "" || copies["grub/i386-pc/normal.mod"] == "" {
		t.Fatalf("init built no GRUB netboot tree: %d files", len(copies))
	}
	return copies
}

// TestGRUBPathsBIOSChain: a chain entry whose url is a loader below the
// root runs on BIOS GRUB (pxechainloader): GRUB loads iPXE's
// undionly.kpxe over TFTP and iPXE starts.
func TestGRUBPathsBIOSChain(t *testing.T) {
	const mac = "52:54:00:b9:18:03"
	copies := grubNetTree(t)
	copies["undionly.kpxe"] = "/usr/lib/ipxe/undionly.kpxe"
	m := newMenuLab(t, menuLabOptions{
		DHCP: "  loaders: {bios: " + gpCore + "}\n",
		Inventory: `inventory:
  profiles:
    - name: chain
      match: [{oui: "52:54:00"}]
      menu:
        entries:
          - {name: ipxe, kind: chain, url: undionly.kpxe}
`,
		Copy:  copies,
		Write: map[string]string{"boot.ipxe": chainCoreScript},
	})
	vm := StartVM(t, VMOptions{Lab: m.Lab, Firmware: "bios", MAC: mac})
	// undionly.kpxe, unlike QEMU's iPXE ROM, starts on the PXE stack it
	// was loaded by, and says so.
	started := regexp.MustCompile(`PXE->EB: !PXE at`)
	if _, err := vm.WaitFor(started, bmBootTimeout); err != nil {
		t.Fatalf("GRUB did not start undionly.kpxe: %v\nconsole tail:\n%s", err, vm.Tail(40))
	}
	t.Logf("GRUB chained undionly.kpxe; it started after %s", vm.Elapsed().Round(time.Millisecond))
	if con := vm.Console(); strings.Contains(con, "error:") {
		t.Errorf("GRUB printed an error on the way:\n%s", vm.Tail(30))
	}
	vm.Kill()
	sent := false
	for _, r := range serverRecordsAny(m.Server, "tftp transfer") {
		if strings.TrimPrefix(r["file"], "/") == "undionly.kpxe" && r["result"] == "ok" {
			sent = true
		}
	}
	if !sent {
		t.Errorf("undionly.kpxe was not sent over TFTP: %v", tftpLog(m.Server, `^192\.0\.2\.1\d\d`))
	}
}
