package e2e

// A profile's kernel command line reaches the kernel as the operator
// wrote it, through iPXE and through GRUB. The command line is legitimate
// but has what each loader reads specially: for GRUB ";", "$x", "#",
// braces and a double-quoted word (a Debian preseed late_command); for
// iPXE "${" and the words ";", "&&", "||" and "#..." that end or comment
// out its command, also inside double quotes, where iPXE splits too; a run of spaces, which both turn into one; and a
// {placeholder}. The test initrd prints /proc/cmdline.

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCmdlineLoaders(t *testing.T) {
	const hostile = `  "preseed/late_command=in-target sh -c echo a; echo b" foo=$bar baz=${bar ; && || #c x=a;b}{ h={mac} "k=a #b ; c"`
	cmdline, _ := json.Marshal(bmCmdline + hostile) // JSON is YAML
	m := newMenuLab(t, menuLabOptions{
		DHCP: "  loaders: {efi_x64: grubnetx64.efi}\n",
		Inventory: `inventory:
  profiles:
    - name: hostile
      match: [{oui: "52:54:00"}]
      menu:
        entries:
          - {name: one, kind: linux, kernel: vmlinuz, initrds: [initrd.gz], cmdline: ` + string(cmdline) + `}
`,
		Copy: map[string]string{"grubnetx64.efi": "/usr/lib/grub/x86_64-efi/monolithic/grubnetx64.efi"},
	})
	// One VM at a time. What the kernel must see: the words as written,
	// joined by one space, {profile}-{entry} and {mac} substituted. GRUB
	// puts BOOT_IMAGE=<kernel> in front, as it does for every kernel.
	for _, c := range []struct{ loader, firmware, mac, prefix string }{
		{"ipxe", "bios", "52:54:00:c8:00:01", ""},                     // QEMU's iPXE ROM runs bootforge's script
		{"grub", "uefi", "52:54:00:c8:00:02", "BOOT_IMAGE=/vmlinuz "}, // OVMF loads grubnetx64.efi, which reads bootforge's grub.cfg
	} {
		want := c.prefix + `console=ttyS0 quiet panic=-1 bfmarker=hostile-one "preseed/late_command=in-target sh -c echo a; echo b" foo=$bar baz=${bar ; && || #c x=a;b}{ h=` + c.mac + ` "k=a #b ; c"`
		vm, got := m.boot(t, c.firmware, c.mac)
		vm.Kill()
		if got = strings.TrimRight(got, "\r"); got != want {
			t.Errorf("%s (%s) booted the kernel with\n  %s\nwant\n  %s", c.loader, c.firmware, got, want)
		}
		menus := 0
		for _, r := range ServerRecords(m.Server, "menu") {
			if r["format"] == c.loader && r["mac"] == c.mac && r["profile"] == "hostile" {
				menus++
			}
		}
		if menus == 0 {
			t.Errorf("bootforge logged no %s menu of profile hostile for %s: the boot did not come through %s", c.loader, c.mac, c.loader)
		}
	}
}
