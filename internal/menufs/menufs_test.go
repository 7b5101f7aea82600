package menufs

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"bootforge/internal/boot"
	"bootforge/internal/bootfs"
	"bootforge/internal/menu"
	"bootforge/internal/store"
)

var (
	macA   = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0xa}
	client = netip.MustParseAddrPort("192.0.2.50:1234")
)

func setup(t *testing.T) (*FS, *store.SQLite) {
	t.Helper()
	root := t.TempDir()
	for _, f := range []string{"vmlinuz", "initrd.gz", "static.txt"} {
		os.WriteFile(filepath.Join(root, f), []byte(f), 0o644)
	}
	dir, err := bootfs.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.OpenSQLite(filepath.Join(t.TempDir(), "bf.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	menu := boot.Menu{Default: "a", Timeout: time.Second, Entries: []boot.Entry{
		{Name: "a", Kind: boot.KindLocal},
		{Name: "b", Kind: boot.KindLinux, Kernel: "vmlinuz", Initrds: []string{"initrd.gz"}, Cmdline: "marker={profile}-{entry}"},
	}}
	inv, err := boot.NewInventory([]boot.Profile{{Name: "lab", Menu: menu}}, nil, "lab")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return New(dir, func() *boot.Inventory { return inv }, db, boot.NewSightingTable(), log), db
}

func read(t *testing.T, m *FS, path string, q url.Values) string {
	t.Helper()
	f, err := m.Open(bootfs.Request{Path: path, Client: client, Protocol: "http", Query: q, Host: "192.0.2.1:8080"})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	return string(b)
}

func script(t *testing.T, m *FS) string {
	return read(t, m, "/bootforge/ipxe", url.Values{"mac": {"52-54-00-00-00-0a"}, "buildarch": {"i386"}, "platform": {"pcbios"}})
}

func TestOneShotLifecycle(t *testing.T) {
	m, db := setup(t)
	if s := script(t, m); !strings.Contains(s, "choose --default a") {
		t.Fatalf("no one-shot: want the menu, got:\n%s", s)
	}
	db.PutNextBoot(macA, boot.NextBoot{Entry: "b", State: boot.OneShotPending})
	first := script(t, m)
	if !strings.Contains(first, "marker=lab-b") || strings.Contains(first, "choose") {
		t.Fatalf("one-shot not booted directly:\n%s", first)
	}
	if nb, _ := db.NextBoot(macA); nb.State != boot.OneShotDelivered {
		t.Fatalf("state after the menu: %s", nb.State)
	}
	// A firmware retry fetches the menu again before any kernel.
	if retry := script(t, m); retry != first {
		t.Fatalf("retry got another script:\n%s", retry)
	}
	read(t, m, "static.txt", nil) // not a boot file: nothing changes
	if nb, _ := db.NextBoot(macA); nb.State != boot.OneShotDelivered {
		t.Fatalf("state after an unrelated fetch: %s", nb.State)
	}
	read(t, m, "/vmlinuz", nil) // the boot has started
	if nb, _ := db.NextBoot(macA); nb.State != boot.OneShotBooted {
		t.Fatalf("state after the kernel: %s", nb.State)
	}
	if s := script(t, m); !strings.Contains(s, "choose --default a") {
		t.Fatalf("the boot after: want the menu back, got:\n%s", s)
	}
}

func TestOneShotAlwaysAndExpiry(t *testing.T) {
	m, db := setup(t)
	db.PutNextBoot(macA, boot.NextBoot{Entry: "b", State: boot.OneShotPending, Always: true})
	for i := 0; i < 2; i++ {
		if s := script(t, m); !strings.Contains(s, "marker=lab-b") {
			t.Fatalf("boot %d: always one-shot not used", i)
		}
		read(t, m, "vmlinuz", nil)
	}
	db.PutNextBoot(macA, boot.NextBoot{Entry: "b", State: boot.OneShotPending, Expires: time.Now().Add(-time.Minute)})
	if s := script(t, m); !strings.Contains(s, "choose --default a") {
		t.Fatalf("expired one-shot used:\n%s", s)
	}
	if nb, _ := db.NextBoot(macA); nb.State != boot.OneShotExpired {
		t.Fatalf("state %s, want expired", nb.State)
	}
}

func TestGeneratedPaths(t *testing.T) {
	m, _ := setup(t)
	if s := read(t, m, "boot.ipxe", nil); !strings.Contains(s, "chain http://192.0.2.1:8080/bootforge/ipxe?mac=${mac:hexhyp}") {
		t.Fatalf("chain script:\n%s", s)
	}
	if s := read(t, m, "pxelinux.cfg/01-52-54-00-00-00-0a", nil); !strings.Contains(s, "LABEL b") {
		t.Fatalf("pxelinux:\n%s", s)
	}
	if s := read(t, m, "grub/grub.cfg-01-52-54-00-00-00-0a", nil); s != menu.GRUBForward {
		t.Fatalf("grub:\n%s", s)
	}
	if s := read(t, m, "grub/x86_64-efi/grub.cfg", nil); !strings.Contains(s, "${net_default_mac}") {
		t.Fatalf("grub root:\n%s", s)
	}
	if s := read(t, m, "pxelinux.cfg/default", nil); !strings.Contains(s, "DEFAULT a") {
		t.Fatalf("pxelinux default:\n%s", s)
	}
	for _, p := range []string{"pxelinux.cfg/01-zz", "pxelinux.cfg/../../x", "nothing", "pxelinux.cfg/44454c4c-3800-1000"} {
		if _, err := m.Open(bootfs.Request{Path: p, Client: client}); err == nil {
			t.Errorf("%s: generated", p)
		}
	}
	if s := read(t, m, "static.txt", nil); s != "static.txt" {
		t.Fatal("disk file not served")
	}
}

// The menu stage sees what DHCP saw: a profile rule on the vendor class
// (option 60) matches the iPXE script request, which carries none
// (issue #11, bug 2).
func TestVendorRuleFromDHCPSighting(t *testing.T) {
	m, _ := setup(t)
	vendorMenu := boot.Menu{Default: "v", Entries: []boot.Entry{{Name: "v", Kind: boot.KindLinux, Kernel: "vmlinuz", Cmdline: "marker=vendor"}}}
	inv, err := boot.NewInventory([]boot.Profile{
		{Name: "lab", Menu: boot.Menu{Default: "a", Entries: []boot.Entry{{Name: "a", Kind: boot.KindLocal}}}},
		{Name: "bios-pxe", Match: []boot.Selector{{Vendor: "PXEClient:Arch:00000*"}}, Menu: vendorMenu},
	}, nil, "lab")
	if err != nil {
		t.Fatal(err)
	}
	m.Inventory = func() *boot.Inventory { return inv }
	if s := script(t, m); strings.Contains(s, "marker=vendor") {
		t.Fatalf("vendor rule matched with no DHCP sighting:\n%s", s)
	}
	m.Sightings.Seen(boot.Client{MAC: macA, VendorClass: "PXEClient:Arch:00000:UNDI:002001", Arch: boot.ArchBIOS, HasArch: true})
	if s := script(t, m); !strings.Contains(s, "marker=vendor") {
		t.Fatalf("vendor rule did not match after DHCP saw the client:\n%s", s)
	}
}

// A per-client menu names its client: the boot log credits the transfer
// to the MAC in the path, not to the last MAC seen at the address
// (issue #11, bug 7).
func TestGeneratedFileNamesItsClient(t *testing.T) {
	m, _ := setup(t)
	m.Sightings.Seen(boot.Client{MAC: net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}, IP: client.Addr()})
	for _, p := range []string{"bootforge/grub/52:54:00:00:00:0a.cfg", "pxelinux.cfg/01-52-54-00-00-00-0a"} {
		f, err := m.Open(bootfs.Request{Path: p, Client: client, Protocol: "tftp"})
		if err != nil {
			t.Fatal(err)
		}
		if got := bootfs.MadeFor(f); got != macA.String() {
			t.Errorf("%s: made for %q, want %s", p, got, macA)
		}
	}
	f, err := m.Open(bootfs.Request{Path: "pxelinux.cfg/C000023", Client: client, Protocol: "tftp"})
	if err != nil {
		t.Fatal(err)
	}
	if got := bootfs.MadeFor(f); got != "52:54:00:00:00:01" {
		t.Errorf("by address: made for %q, want the MAC seen there", got)
	}
}

func TestOneShotProbeAndBeacon(t *testing.T) {
	m, db := setup(t)
	db.PutNextBoot(macA, boot.NextBoot{Entry: "b", State: boot.OneShotPending})
	script(t, m) // delivered; seen at client's address (the script request's)
	state := func() boot.OneShotState { nb, _ := db.NextBoot(macA); return nb.State }

	// Any other file goes out as the disk's own file: sendfile stays.
	if f, err := m.Open(bootfs.Request{Path: "static.txt", Client: client, Protocol: "http"}); err != nil {
		t.Fatal(err)
	} else if _, ok := f.(syscall.Conn); !ok {
		t.Errorf("static.txt with a one-shot pending is a %T, want the disk's file", f)
	}

	// A probe of the kernel's first bytes, as a range request makes it.
	f, err := m.Open(bootfs.Request{Path: "vmlinuz", Client: client, Protocol: "http"})
	if err != nil {
		t.Fatal(err)
	}
	f.Seek(0, io.SeekStart)
	f.Read(make([]byte, 3))
	f.Close()
	if s := state(); s != boot.OneShotDelivered {
		t.Fatalf("after reading 3 of 7 bytes of the kernel: %s, want delivered", s)
	}

	// The beacon from another address is refused and changes nothing.
	other := netip.MustParseAddrPort("192.0.2.99:4000")
	_, err = m.Open(bootfs.Request{Path: "bootforge/booted", Client: other, Protocol: "http", Query: url.Values{"mac": {macA.String()}}})
	if !errors.Is(err, bootfs.ErrRefused) || !strings.Contains(err.Error(), "last seen at 192.0.2.50, not at 192.0.2.99") {
		t.Fatalf("beacon from another address: %v, want a refusal naming both addresses", err)
	}
	if s := state(); s != boot.OneShotDelivered {
		t.Fatalf("after a refused beacon: %s, want delivered", s)
	}

	// The rest of the kernel, from byte 3: the run reaches the end.
	f, _ = m.Open(bootfs.Request{Path: "vmlinuz", Client: client, Protocol: "tftp"})
	f.ReadAt(make([]byte, 4), 3)
	f.Close()
	if s := state(); s != boot.OneShotBooted {
		t.Fatalf("after the range that finishes the kernel: %s, want booted", s)
	}

	// A beacon is the boot of a one-shot that was served: one set since
	// then, and never served, stays pending.
	db.PutNextBoot(macA, boot.NextBoot{Entry: "b", State: boot.OneShotPending})
	if got := read(t, m, "bootforge/booted", url.Values{"mac": {macA.String()}}); got != "ok\n" || state() != boot.OneShotPending {
		t.Fatalf("beacon for a one-shot never served: %q, state %s, want pending", got, state())
	}

	// From the address it was seen at, the beacon is taken.
	script(t, m)
	if got := read(t, m, "bootforge/booted", url.Values{"mac": {macA.String()}}); got != "ok\n" || state() != boot.OneShotBooted {
		t.Fatalf("beacon from the client's own address: %q, state %s", got, state())
	}

	// A server without a record of the menu (restarted, say) takes the
	// beacon for a delivered one-shot.
	db.PutNextBoot(macA, boot.NextBoot{Entry: "b", State: boot.OneShotPending})
	script(t, m)
	m2 := New(*m.disk.Load(), m.Inventory, db, m.Sightings, m.Log)
	if got := read(t, m2, "bootforge/booted", url.Values{"mac": {macA.String()}}); got != "ok\n" || state() != boot.OneShotBooted {
		t.Fatalf("beacon to a server that did not serve the menu: %q, state %s, want booted", got, state())
	}
}

// Only the one-shot a menu served is consumed by a fetch of that menu's
// kernel: one set while the boot is under way stays pending and is served
// by the next menu, and a menu without a one-shot, served to another MAC
// from the same address, leaves nothing for a later fetch there to consume.
func TestOneShotConsumedOnlyAsServed(t *testing.T) {
	m, db := setup(t)
	shot := func() *boot.NextBoot {
		t.Helper()
		nb, err := db.NextBoot(macA)
		if err != nil || nb == nil {
			t.Fatalf("NextBoot: %v, %v", nb, err)
		}
		return nb
	}

	// Replaced while the boot is under way.
	db.PutNextBoot(macA, boot.NextBoot{Entry: "b", State: boot.OneShotPending})
	if s := script(t, m); !strings.Contains(s, "marker=lab-b") {
		t.Fatalf("one-shot b not served:\n%s", s)
	}
	db.PutNextBoot(macA, boot.NextBoot{Entry: "a", State: boot.OneShotPending})
	read(t, m, "vmlinuz", nil) // the kernel of the menu served, with b
	if nb := shot(); nb.Entry != "a" || nb.State != boot.OneShotPending {
		t.Fatalf("the one-shot set after the menu, after that menu's kernel: %s %s, want a pending", nb.Entry, nb.State)
	}
	if s := script(t, m); !strings.Contains(s, "exit") || strings.Contains(s, "choose") || strings.Contains(s, "marker=") {
		t.Fatalf("the next menu does not boot the one-shot a:\n%s", s)
	}
	if nb := shot(); nb.Entry != "a" || nb.State != boot.OneShotDelivered {
		t.Fatalf("after the next menu: %s %s, want a delivered", nb.Entry, nb.State)
	}

	// Another MAC behind the same address gets a menu without a one-shot.
	db.PutNextBoot(macA, boot.NextBoot{Entry: "b", State: boot.OneShotPending})
	script(t, m)
	read(t, m, "/bootforge/ipxe", url.Values{"mac": {"52-54-00-00-00-0b"}, "buildarch": {"i386"}, "platform": {"pcbios"}})
	read(t, m, "vmlinuz", nil)
	if nb := shot(); nb.State != boot.OneShotDelivered {
		t.Fatalf("a kernel fetched after another MAC's plain menu from the same address: %s, want still delivered", nb.State)
	}
	script(t, m)
	read(t, m, "vmlinuz", nil)
	if nb := shot(); nb.State != boot.OneShotBooted {
		t.Fatalf("the kernel after the one-shot's own menu again: %s, want booted", nb.State)
	}
}
