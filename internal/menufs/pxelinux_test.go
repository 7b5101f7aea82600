package menufs

import (
	"errors"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bootforge/internal/boot"
	"bootforge/internal/bootfs"
	"bootforge/internal/menu"
)

// pxeSetup is setup with an iso entry (only iPXE boots it), undionly.kpxe
// on disk, and a profile chosen by UUID.
func pxeSetup(t *testing.T) *FS {
	t.Helper()
	m, _ := setup(t)
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, menu.PickLoader), []byte("iPXE loader"), 0o644)
	dir, err := bootfs.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	m.SetDisk(dir)
	entries := []boot.Entry{{Name: "a", Kind: boot.KindLocal}, {Name: "live cd", Kind: boot.KindISO, ISO: "live.iso"}}
	inv, err := boot.NewInventory([]boot.Profile{
		{Name: "lab", Menu: boot.Menu{Default: "a", Entries: entries}},
		{Name: "byuuid", Match: []boot.Selector{{UUID: "aaaaaaaa-2222-3333-4444-55555555555f"}}, Menu: boot.Menu{Entries: []boot.Entry{{Name: "u", Kind: boot.KindLocal}}}},
	}, nil, "lab")
	if err != nil {
		t.Fatal(err)
	}
	m.Inventory = func() *boot.Inventory { return inv }
	return m
}

func tftpRead(t *testing.T, m *FS, from netip.AddrPort, path string) (string, error) {
	t.Helper()
	f, err := m.Open(bootfs.Request{Path: path, Client: from, Protocol: "tftp"})
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	return string(b), nil
}

// The choice made in pxelinux reaches iPXE: the pick path serves iPXE
// and the client's next iPXE menu boots the entry, once.
func TestPXELinuxChoiceKept(t *testing.T) {
	m := pxeSetup(t)
	m.Sightings.Seen(boot.Client{MAC: macA, IP: client.Addr()}) // DHCP gave it its address
	cfg, err := tftpRead(t, m, client, "pxelinux.cfg/01-52-54-00-00-00-0a")
	if err != nil {
		t.Fatal(err)
	}
	pick := menu.PickPath(macA.String(), "live cd")
	if !strings.Contains(cfg, "PXE "+pick+"\n") {
		t.Fatalf("pxelinux menu does not chain iPXE under %s:\n%s", pick, cfg)
	}
	// Before the choice, iPXE shows the menu.
	if s := script(t, m); !strings.Contains(s, "choose ") {
		t.Fatalf("iPXE menu before any choice:\n%s", s)
	}
	// A fetch of the pick path from elsewhere serves iPXE but keeps nothing.
	other := netip.MustParseAddrPort("192.0.2.99:1000")
	if got, err := tftpRead(t, m, other, pick); err != nil || got != "iPXE loader" {
		t.Fatalf("pick path from another address: %q %v", got, err)
	}
	if s := script(t, m); !strings.Contains(s, "choose ") {
		t.Fatalf("a choice fetched from another address was kept:\n%s", s)
	}
	if got, err := tftpRead(t, m, client, pick); err != nil || got != "iPXE loader" {
		t.Fatalf("pick path: %q %v, want undionly.kpxe's bytes", got, err)
	}
	s := script(t, m)
	if strings.Contains(s, "choose ") || !strings.Contains(s, "sanboot http://192.0.2.1:8080/live.iso\n") {
		t.Fatalf("iPXE after the choice does not boot it directly:\n%s", s)
	}
	if s := script(t, m); !strings.Contains(s, "choose ") {
		t.Fatalf("the choice was not spent: the next iPXE menu boots it again:\n%s", s)
	}
	// A path for an entry of no menu serves iPXE, which shows the menu.
	tftpRead(t, m, client, menu.PickPath(macA.String(), "nope"))
	if s := script(t, m); !strings.Contains(s, "choose ") {
		t.Fatalf("a choice of no entry changed the menu:\n%s", s)
	}
	if _, _, ok := menu.ParsePickPath("bootforge/pick/52-54-00-00-00-0a/live/ipxe.efi"); ok {
		t.Fatal("a pick path for another loader parses")
	}
}

func TestPXELinuxByUUIDAndAddress(t *testing.T) {
	m := pxeSetup(t)
	const uuid = "aaaaaaaa-2222-3333-4444-55555555555f"
	// A UUID a rule names gets its menu, even from an unknown address.
	cfg, err := tftpRead(t, m, client, "pxelinux.cfg/"+uuid)
	if err != nil || !strings.Contains(cfg, "profile byuuid") {
		t.Fatalf("pxelinux.cfg/<uuid>: %v\n%s", err, cfg)
	}
	// A UUID that decides nothing is not found: pxelinux goes on to 01-<mac>.
	if _, err := tftpRead(t, m, client, "pxelinux.cfg/99999999-2222-3333-4444-555555555555"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a UUID no rule names: %v, want not found", err)
	}
	// Upper case or a short name is not a UUID lookup.
	if _, err := tftpRead(t, m, client, "pxelinux.cfg/"+strings.ToUpper(uuid)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("upper-case UUID: %v, want not found", err)
	}
	// Once DHCP saw a MAC at the address, the UUID lookup is that client's.
	other := netip.MustParseAddrPort("192.0.2.60:1000")
	m.Sightings.Seen(boot.Client{MAC: macA, IP: other.Addr(), UUID: "99999999-2222-3333-4444-555555555555"})
	cfg, err = tftpRead(t, m, other, "pxelinux.cfg/99999999-2222-3333-4444-555555555555")
	if err != nil || !strings.Contains(cfg, "profile lab") {
		t.Fatalf("UUID lookup of a seen client: %v\n%s", err, cfg)
	}
	// The hex IP of a client DHCP saw (in proxy mode: the proxy exchange).
	cfg, err = tftpRead(t, m, other, "pxelinux.cfg/C000023C")
	if err != nil || !strings.Contains(cfg, "profile lab") {
		t.Fatalf("hex IP: %v\n%s", err, cfg)
	}
	if _, err := tftpRead(t, m, netip.MustParseAddrPort("192.0.2.61:1"), "pxelinux.cfg/C000023D"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("hex IP of an address nobody was seen at: %v, want not found", err)
	}
	// syslinux.efi looks beside itself.
	if cfg, err := tftpRead(t, m, other, "efi64/pxelinux.cfg/01-52-54-00-00-00-0a"); err != nil || !strings.Contains(cfg, "LABEL a") {
		t.Fatalf("efi64/pxelinux.cfg/01-<mac>: %v\n%s", err, cfg)
	}
}
