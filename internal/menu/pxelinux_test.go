package menu

import (
	"strings"
	"testing"

	"bootforge/internal/boot"
)

// The specification's entry (KERNEL winpe-x64/wimboot, INITRD
// winpe-x64/boot.wim) as syslinux can really run it: wimboot through
// linux.c32, each WinPE file a cpio entry under the name wimboot wants.
func TestPXELinuxWimboot(t *testing.T) {
	r := req()
	r.Menu.Entries = append(r.Menu.Entries, boot.Entry{Name: "win10_install", Label: "Windows 10 Deployment", Kind: boot.KindWimboot,
		Wimboot: "/winpe-x64/wimboot", Bootmgr: "winpe-x64/bootmgr", BCD: "winpe-x64/Boot/BCD",
		BootSDI: "winpe-x64/Boot/boot.sdi", BootWIM: "winpe-x64/boot.wim"})
	s, err := PXELinux(r)
	if err != nil {
		t.Fatal(err)
	}
	want := "LABEL win10_install\n  MENU LABEL Windows 10 Deployment\n  COM32 linux.c32\n" +
		"  APPEND winpe-x64/wimboot initrdfile=winpe-x64/bootmgr@bootmgr,winpe-x64/Boot/BCD@BCD," +
		"winpe-x64/Boot/boot.sdi@boot.sdi,winpe-x64/boot.wim@boot.wim\n"
	if !strings.Contains(s, want) {
		t.Errorf("missing\n%s\nin:\n%s", want, s)
	}
	// Without bootmgr (newer wimboot takes it from boot.wim): three files.
	if !strings.Contains(s, "APPEND wimboot initrdfile=win/BCD@BCD,win/boot.sdi@boot.sdi,win/boot.wim@boot.wim\n") {
		t.Errorf("wimboot entry without bootmgr wrong:\n%s", s)
	}
	if strings.Contains(s, "KERNEL undionly.kpxe") {
		t.Errorf("an entry still hands over to iPXE without the choice:\n%s", s)
	}
}

// iso, chain and shell entries chain iPXE under a path that names the
// client and the entry, so that iPXE boots the choice.
func TestPXELinuxKeepsChoice(t *testing.T) {
	r := req()
	r.Vars["mac"] = "52:54:00:AB:00:01"
	r.Menu.Entries = append(r.Menu.Entries, boot.Entry{Name: "other net", Kind: boot.KindChain, URL: "http://192.0.2.9/x.ipxe"})
	s, err := PXELinux(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"LABEL live\n  MENU LABEL live\n  PXE bootforge/pick/52-54-00-ab-00-01/live/undionly.kpxe\n",
		"LABEL sh\n  MENU LABEL sh\n  PXE bootforge/pick/52-54-00-ab-00-01/sh/undionly.kpxe\n",
		"LABEL other_20net\n  MENU LABEL other net\n  PXE bootforge/pick/52-54-00-ab-00-01/other%20net/undionly.kpxe\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in:\n%s", want, s)
		}
	}
	// Without a MAC there is no client to keep the choice for.
	delete(r.Vars, "mac")
	s, _ = PXELinux(r)
	if !strings.Contains(s, "LABEL live\n  MENU LABEL live\n  PXE undionly.kpxe\n") {
		t.Errorf("without a MAC, want a plain chain to iPXE:\n%s", s)
	}
}

func TestPickPathRoundTrip(t *testing.T) {
	for _, entry := range []string{"live", "other net", "a/b", "x%y", "ünï"} {
		p := PickPath("52:54:00:12:34:56", entry)
		mac, got, ok := ParsePickPath(p)
		if !ok || mac != "52-54-00-12-34-56" || got != entry {
			t.Errorf("PickPath(%q) = %q parses to %q %q %v", entry, p, mac, got, ok)
		}
		if strings.Count(p, "/") != 4 || strings.ContainsAny(p, " \n") {
			t.Errorf("PickPath(%q) = %q: not one path element per part", entry, p)
		}
	}
	for _, p := range []string{"bootforge/pick/m/e/ipxe.efi", "bootforge/pick/m/undionly.kpxe", "bootforge/pick//e/undionly.kpxe",
		"bootforge/pick/m/e/f/undionly.kpxe", "pick/m/e/undionly.kpxe", "bootforge/pick/m/%zz/undionly.kpxe"} {
		if _, _, ok := ParsePickPath(p); ok {
			t.Errorf("ParsePickPath(%q) accepted", p)
		}
	}
}

// syslinux.efi lives in efi64/ and reads paths relative to itself: file
// paths are absolute; entries only iPXE boots cannot be chosen.
func TestPXELinuxEFI(t *testing.T) {
	r := req()
	r.EFI = true
	r.Vars["mac"] = "52:54:00:ab:00:01"
	s, err := PXELinux(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  KERNEL ::images/d/vmlinuz\n  APPEND initrd=::images/d/initrd.gz console=ttyS0",
		"  APPEND ::wimboot initrdfile=::win/BCD@BCD,::win/boot.sdi@boot.sdi,::win/boot.wim@boot.wim\n",
		"LABEL live\n  MENU LABEL live\n  MENU DISABLE\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in:\n%s", want, s)
		}
	}
	if strings.Contains(s, "undionly.kpxe") {
		t.Errorf("syslinux.efi is told to chain a BIOS loader:\n%s", s)
	}
}
