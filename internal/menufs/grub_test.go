package menufs

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bootforge/internal/boot"
	"bootforge/internal/bootfs"
	"bootforge/internal/menu"
)

// grubSetup serves two profiles: one for an SMBIOS product with a
// slash and spaces in it, one by UUID, and a default.
func grubSetup(t *testing.T) *FS {
	t.Helper()
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "vmlinuz"), []byte("k"), 0o644)
	dir, err := bootfs.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	entry := func(name string) boot.Menu {
		return boot.Menu{Entries: []boot.Entry{{Name: name, Kind: boot.KindLinux, Kernel: "vmlinuz", Cmdline: "m={profile} u={uuid}"}}}
	}
	inv, err := boot.NewInventory([]boot.Profile{
		{Name: "optiplex", Menu: entry("o"), Match: []boot.Selector{{Manufacturer: "Dell*", Product: "OptiPlex 70?0 (a/b)", Serial: "S/N 1"}}},
		{Name: "byuuid", Menu: entry("u"), Match: []boot.Selector{{UUID: "0b1c2d3e-0000-4000-8000-00000000000a"}}},
		{Name: "other", Menu: entry("x")},
	}, nil, "other")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return New(dir, func() *boot.Inventory { return inv }, nil, boot.NewSightingTable(), log)
}

func grubRead(t *testing.T, m *FS, path string) (string, error) {
	t.Helper()
	f, err := m.Open(bootfs.Request{Path: path, Client: client, Protocol: "tftp"})
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	return string(b), nil
}

func TestGRUBForwardsSMBIOSFacts(t *testing.T) {
	m := grubSetup(t)
	for _, p := range []string{"grub.cfg", "grub/grub.cfg", "grub/i386-pc/grub.cfg", "grub.cfg-01-52-54-00-00-00-0a"} {
		s, err := grubRead(t, m, p)
		if err != nil || s != menu.GRUBForward {
			t.Fatalf("%s: %v\n%s", p, err, s)
		}
	}
	for _, want := range []string{"smbios --type 1 --get-byte 4 --set bf_i\nif [ \"$bf_i\" -gt 0 ]; then smbios --type 1 --get-string 4 --set bf_manufacturer; fi\n",
		"--get-byte 5 --set bf_i\nif [ \"$bf_i\" -gt 0 ]; then smbios --type 1 --get-string 5 --set bf_product; fi\n",
		"--get-byte 7 --set bf_i\nif [ \"$bf_i\" -gt 0 ]; then smbios --type 1 --get-string 7 --set bf_serial; fi\n",
		"smbios --type 1 --get-uuid 8 --set bf_uuid\n",
		// The facts path, then the menu by MAC alone if it fails.
		"configfile \"/bootforge/grub/${net_default_mac}/uuid=${bf_uuid}/manufacturer=${bf_manufacturer}/product=${bf_product}/serial=${bf_serial}/grub.cfg\"\nconfigfile \"/bootforge/grub/${net_default_mac}.cfg\"\n"} {
		if !strings.Contains(menu.GRUBForward, want) {
			t.Errorf("forwarder lacks %q", want)
		}
	}

	for _, c := range []struct{ path, profile string }{
		// As GRUB expands the forwarder on a machine of each profile.
		{"bootforge/grub/52:54:00:00:00:0a/uuid=/manufacturer=Dell Inc./product=OptiPlex 7050 (a/b)/serial=S/N 1/grub.cfg", "optiplex"},
		{"/bootforge/grub/52:54:00:00:00:0a/uuid=0B1C2D3E-0000-4000-8000-00000000000A/manufacturer=QEMU/product=Standard PC (i440FX + PIIX, 1996)/serial=/grub.cfg", "byuuid"},
		{"bootforge/grub/52:54:00:00:00:0a/uuid=/manufacturer=Dell Inc./product=OptiPlex 7050 (a/b)/serial=/grub.cfg", "other"},
		{"bootforge/grub/52:54:00:00:00:0a.cfg", "other"},
	} {
		s, err := grubRead(t, m, c.path)
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		if !strings.Contains(s, "# bootforge profile "+c.profile+"\n") {
			t.Errorf("%s: want profile %s, got:\n%s", c.path, c.profile, s)
		}
	}
	s, _ := grubRead(t, m, "bootforge/grub/52:54:00:00:00:0a/uuid=0B1C2D3E-0000-4000-8000-00000000000A/manufacturer=/product=/serial=/grub.cfg")
	if !strings.Contains(s, "u=0b1c2d3e-0000-4000-8000-00000000000a") {
		t.Errorf("the UUID from the path does not reach {uuid}:\n%s", s)
	}
	for _, p := range []string{
		"bootforge/grub/zz/uuid=/grub.cfg",                               // not a MAC
		"bootforge/grub/52:54:00:00:00:0a/colour=red/grub.cfg",           // not a fact
		"bootforge/grub/52:54:00:00:00:0a/uuid=/product=a/../b/grub.cfg", // refused by bootfs
	} {
		if _, err := grubRead(t, m, p); err == nil {
			t.Errorf("%s: generated", p)
		}
	}
}

// TestGRUBPeekMatchesOpen: a signature (made from PeekGRUB) must be of
// exactly the bytes the same request returns.
func TestGRUBPeekMatchesOpen(t *testing.T) {
	m := grubSetup(t)
	for _, c := range []struct{ path, profile string }{
		{"grub/grub.cfg-01-52-54-00-00-00-0a", "other"},
		{"bootforge/grub/52:54:00:00:00:0a.cfg", "other"},
		{"bootforge/grub/52:54:00:00:00:0a/uuid=/manufacturer=Dell Inc./product=OptiPlex 7050 (a/b)/serial=S/N 1/grub.cfg", "optiplex"},
	} {
		req := bootfs.Request{Path: c.path, Client: client, Protocol: "tftp"}
		peek, p, ok, err := m.PeekGRUB(c.path, req)
		if err != nil || !ok || p.Name != c.profile {
			t.Fatalf("%s: PeekGRUB ok %v, profile %q, err %v; want profile %s", c.path, ok, p.Name, err, c.profile)
		}
		if got, _ := grubRead(t, m, c.path); got != peek {
			t.Errorf("%s: PeekGRUB gives\n%s\nOpen gives\n%s", c.path, peek, got)
		}
	}
	if _, _, ok, _ := m.PeekGRUB("grub/grub.cfg", bootfs.Request{Path: "grub/grub.cfg", Client: client}); ok {
		t.Error("grub.cfg names no client, so it has no signed profile")
	}
}

// An entry whose command line GRUB cannot pass on as written is left out
// of the GRUB menu, the others served; the refusal is logged and is in the
// decision's reason, as a refused menu's is.
func TestGRUBMenuLeavesOutEntry(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "vmlinuz"), []byte("k"), 0o644)
	dir, err := bootfs.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := boot.NewInventory([]boot.Profile{{Name: "lab", Menu: boot.Menu{Default: "good", Entries: []boot.Entry{
		{Name: "good", Kind: boot.KindLinux, Kernel: "vmlinuz", Cmdline: "marker=good"},
		{Name: "odd", Kind: boot.KindLinux, Kernel: "vmlinuz", Cmdline: `marker=odd path=a\b`},
	}}}}, nil, "lab")
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	m := New(dir, func() *boot.Inventory { return inv }, nil, boot.NewSightingTable(), log)
	s, err := grubRead(t, m, "bootforge/grub/52:54:00:00:00:0a.cfg")
	if err != nil {
		t.Fatalf("GRUB menu refused: %v", err)
	}
	if !strings.Contains(s, "marker=good") || strings.Contains(s, "marker=odd") || !strings.Contains(s, `left out entry "odd"`) {
		t.Errorf("menu should boot good, leave odd out and say so:\n%s", s)
	}
	if l := logged.String(); !strings.Contains(l, "menu: entry left out") || !strings.Contains(l, "odd") ||
		!strings.Contains(l, "left out: ") {
		t.Errorf("the left-out entry is neither warned about nor in the menu line's reason:\n%s", l)
	}
}
