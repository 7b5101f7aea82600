package menu

import (
	"strings"
	"testing"

	"bootforge/internal/boot"
)

func TestGRUBWimboot(t *testing.T) {
	r := req()
	r.Menu.Entries = append(r.Menu.Entries, boot.Entry{Name: "win2", Kind: boot.KindWimboot, Wimboot: "/pe/wimboot",
		Bootmgr: "pe/bootmgr", BCD: "pe/BCD", BootSDI: "pe/boot.sdi", BootWIM: "pe/boot.wim"})
	s, err := GRUB(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		// Without bootmgr: wimboot finds it in boot.wim.
		"menuentry 'win' --id 'win' {\n  if [ \"$grub_platform\" = pc ]; then\n    linux16 '/wimboot'\n" +
			"    initrd16 'newc:BCD:/win/BCD' 'newc:boot.sdi:/win/boot.sdi' 'newc:boot.wim:/win/boot.wim'\n  else\n",
		"    linux16 '/pe/wimboot'\n    initrd16 'newc:bootmgr:/pe/bootmgr' 'newc:BCD:/pe/BCD' 'newc:boot.sdi:/pe/boot.sdi' 'newc:boot.wim:/pe/boot.wim'\n",
		"    echo 'bootforge: wimboot needs iPXE or BIOS GRUB; this EFI GRUB cannot load it'\n    sleep 10\n  fi\n}\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in:\n%s", want, s)
		}
	}
	if strings.Contains(s, "needs iPXE\n") && strings.Contains(s, "entry kind wimboot") {
		t.Errorf("wimboot still rendered as an iPXE-only kind:\n%s", s)
	}
}

func TestGRUBChain(t *testing.T) {
	r := req()
	r.Menu.Entries = []boot.Entry{
		{Name: "loader", Kind: boot.KindChain, URL: "tools/memtest.efi"},
		{Name: "script", Kind: boot.KindChain, URL: "http://192.0.2.9/menu.ipxe"},
		{Name: "tftp", Kind: boot.KindChain, URL: "tftp://192.0.2.9/x.efi"},
	}
	r.Menu.Default = "loader"
	s, err := GRUB(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"menuentry 'loader' --id 'loader' {\n  if [ \"$grub_platform\" = pc ]; then\n    pxechainloader '/tools/memtest.efi'\n  else\n    chainloader '/tools/memtest.efi'\n  fi\n}\n",
		"menuentry 'script' --id 'script' {\n  echo 'bootforge: chain to http://192.0.2.9/menu.ipxe needs iPXE; GRUB cannot run it'\n  sleep 10\n}\n",
		"echo 'bootforge: chain to tftp://192.0.2.9/x.efi needs iPXE; GRUB cannot run it'\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in:\n%s", want, s)
		}
	}
	// GRUB reads paths on devices: a URL after chainloader fails at boot.
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, "chainloader") && strings.Contains(line, "://") {
			t.Errorf("GRUB cannot run %q", line)
		}
	}
}

// TestGRUBWimbootQuoting: a path with a quote stays one GRUB word.
func TestGRUBWimbootQuoting(t *testing.T) {
	r := req()
	r.Boot = "w"
	r.Menu.Entries = []boot.Entry{{Name: "w", Kind: boot.KindWimboot, Wimboot: "it's/wimboot", BCD: "b\nreboot", BootSDI: "s", BootWIM: "w"}}
	s, err := GRUB(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s, `linux16 '/it'\''s/wimboot'`) || !strings.Contains(s, `'newc:BCD:/b reboot'`) {
		t.Errorf("paths not quoted as one word each:\n%s", s)
	}
}
