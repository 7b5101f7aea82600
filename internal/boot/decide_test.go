package boot

import (
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// decideInventory is a small site: a pinned host, a priority profile, a
// specific and a broad profile with a firmware variant, and a default.
func decideInventory(t *testing.T) *Inventory {
	t.Helper()
	linux := func(name, kernel string) Entry {
		return Entry{Name: name, Kind: KindLinux, Kernel: kernel, Initrds: []string{"initrd.gz"}}
	}
	lab := Menu{Default: "install", Entries: []Entry{
		linux("install", "debian/vmlinuz"),
		{Name: "winpe", Kind: KindWimboot, Wimboot: "wimboot", BCD: "pe/BCD", BootSDI: "pe/boot.sdi", BootWIM: "pe/boot.wim"},
		{Name: "live", Kind: KindISO, ISO: "http://192.0.2.1:8080/iso/live.iso?x=1"},
		{Name: "disk", Kind: KindLocal},
	}}
	efi := Menu{Default: "uefi-only", Entries: []Entry{linux("uefi-only", `efi\vmlinuz`), {Name: "disk", Kind: KindLocal}}}
	profiles := []Profile{
		{Name: "lab", Match: []Selector{{OUI: []byte{0x52, 0x54, 0x00}}}, Menu: lab, Variants: map[Firmware]Menu{FirmwareEFIx64: efi}},
		{Name: "kiosk", Match: []Selector{{MAC: mustMAC("52:54:00:00:00:02")}}, Menu: menu("kiosk-app")},
		{Name: "dell", Priority: 10, Match: []Selector{{Manufacturer: "Dell*"}, {Vendor: "PXEClient:Arch:00000*", Subnet: netip.MustParsePrefix("198.51.100.0/24")}}, Menu: menu("dell-image")},
		{Name: "fallback", Menu: menu("disk")},
	}
	hosts := []Host{{Name: "pinned", MACs: []net.HardwareAddr{mustMAC("52:54:00:00:00:03")}, Profile: "fallback"}}
	inv, err := NewInventory(profiles, hosts, "fallback")
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func TestDecide(t *testing.T) {
	inv := decideInventory(t)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	labMAC := mustMAC("52:54:00:00:00:01")
	shot := func(entry string, state OneShotState, always bool, expires time.Time) *NextBoot {
		return &NextBoot{Entry: entry, State: state, Always: always, Expires: expires}
	}
	tests := []struct {
		name    string
		client  Client
		shot    *NextBoot
		profile string
		menu    string // the menu's default entry: which menu was chosen
		boot    string
		advance OneShotState
		proof   []string
		reason  string // a part of the reason
	}{
		// Precedence.
		{name: "pinned host beats its rules", client: Client{MAC: mustMAC("52:54:00:00:00:03"), Manufacturer: "Dell Inc."},
			profile: "fallback", menu: "disk", reason: `host "pinned" pins profile "fallback"`},
		{name: "priority beats a MAC rule", client: Client{MAC: mustMAC("52:54:00:00:00:02"), Manufacturer: "DELL INC."},
			profile: "dell", menu: "dell-image", reason: "priority 10"},
		{name: "MAC beats OUI", client: Client{MAC: mustMAC("52:54:00:00:00:02")}, profile: "kiosk", menu: "kiosk-app"},
		{name: "OUI", client: Client{MAC: labMAC, Firmware: FirmwareBIOS}, profile: "lab", menu: "install"},
		{name: "default", client: Client{MAC: mustMAC("02:00:00:00:00:01")}, profile: "fallback", menu: "disk", reason: "default profile"},
		{name: "vendor and subnet (AND), by the relay", client: Client{MAC: mustMAC("02:00:00:00:00:01"),
			VendorClass: "PXEClient:Arch:00000:UNDI:002001", Relay: netip.MustParseAddr("198.51.100.1")}, profile: "dell", menu: "dell-image"},
		{name: "vendor and subnet (AND), on a direct link", client: Client{MAC: mustMAC("02:00:00:00:00:01"),
			VendorClass: "PXEClient:Arch:00000:UNDI:002001", Link: netip.MustParseAddr("198.51.100.1")}, profile: "dell", menu: "dell-image"},
		{name: "vendor alone is not enough", client: Client{MAC: mustMAC("02:00:00:00:00:01"),
			VendorClass: "PXEClient:Arch:00000:UNDI:002001"}, profile: "fallback", menu: "disk"},
		// Variants.
		{name: "efi-x64 variant", client: Client{MAC: labMAC, Firmware: FirmwareEFIx64}, profile: "lab", menu: "uefi-only", reason: "efi-x64 variant"},
		{name: "no variant for arm64", client: Client{MAC: labMAC, Firmware: FirmwareEFIarm64}, profile: "lab", menu: "install"},
		// One-shots.
		{name: "pending one-shot boots and is delivered", client: Client{MAC: labMAC, Firmware: FirmwareBIOS},
			shot: shot("install", OneShotPending, false, time.Time{}), profile: "lab", menu: "install",
			boot: "install", advance: OneShotDelivered, proof: []string{"debian/vmlinuz"}, reason: `one-shot boots "install"`},
		{name: "delivered one-shot boots again (firmware retry), no change", client: Client{MAC: labMAC, Firmware: FirmwareBIOS},
			shot: shot("winpe", OneShotDelivered, false, now.Add(time.Hour)), profile: "lab", menu: "install",
			boot: "winpe", proof: []string{"wimboot", "pe/boot.wim"}},
		{name: "ISO URL: its path proves the boot", client: Client{MAC: labMAC, Firmware: FirmwareBIOS},
			shot: shot("live", OneShotPending, false, time.Time{}), profile: "lab", menu: "install",
			boot: "live", advance: OneShotDelivered, proof: []string{"iso/live.iso"}},
		{name: "booted one-shot is spent", client: Client{MAC: labMAC, Firmware: FirmwareBIOS},
			shot: shot("install", OneShotBooted, false, time.Time{}), profile: "lab", menu: "install"},
		{name: "always one-shot stays after its boot", client: Client{MAC: labMAC, Firmware: FirmwareBIOS},
			shot: shot("install", OneShotBooted, true, time.Time{}), profile: "lab", menu: "install",
			boot: "install", proof: []string{"debian/vmlinuz"}},
		{name: "expired one-shot expires", client: Client{MAC: labMAC, Firmware: FirmwareBIOS},
			shot: shot("install", OneShotDelivered, false, now.Add(-time.Minute)), profile: "lab", menu: "install",
			advance: OneShotExpired, reason: "expired"},
		{name: "expired state stays", client: Client{MAC: labMAC, Firmware: FirmwareBIOS},
			shot: shot("install", OneShotExpired, false, now.Add(-time.Minute)), profile: "lab", menu: "install"},
		{name: "one-shot of another firmware's menu: the menu, said why", client: Client{MAC: labMAC, Firmware: FirmwareBIOS},
			shot: shot("uefi-only", OneShotPending, false, time.Time{}), profile: "lab", menu: "install",
			reason: `one-shot "uefi-only" is not in this menu`},
		{name: "variant entry, path with backslash", client: Client{MAC: labMAC, Firmware: FirmwareEFIx64},
			shot: shot("uefi-only", OneShotPending, false, time.Time{}), profile: "lab", menu: "uefi-only",
			boot: "uefi-only", advance: OneShotDelivered, proof: []string{"efi/vmlinuz"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Decide(tt.client, inv, tt.shot, now)
			if err != nil {
				t.Fatal(err)
			}
			if d.Choice.Profile.Name != tt.profile || d.Choice.Menu.Default != tt.menu {
				t.Errorf("profile %q menu %q, want %q menu %q (%s)", d.Choice.Profile.Name, d.Choice.Menu.Default, tt.profile, tt.menu, d.Reason)
			}
			if d.Boot != tt.boot || d.Advance != tt.advance {
				t.Errorf("boot %q advance %q, want %q %q (%s)", d.Boot, d.Advance, tt.boot, tt.advance, d.Reason)
			}
			if !reflect.DeepEqual(d.Proof, tt.proof) {
				t.Errorf("proof %q, want %q", d.Proof, tt.proof)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason %q lacks %q", d.Reason, tt.reason)
			}
		})
	}
}

func TestDecideWithoutProfile(t *testing.T) {
	inv, err := NewInventory([]Profile{{Name: "only", Match: []Selector{{Serial: "X"}}, Menu: menu("a")}}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decide(Client{MAC: mustMAC("52:54:00:00:00:01")}, inv, nil, time.Now()); err == nil || !strings.Contains(err.Error(), "52:54:00:00:00:01") {
		t.Fatalf("err = %v", err)
	}
}

func TestReachable(t *testing.T) {
	inv := decideInventory(t)
	names := func(ps []Profile) string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		name  string
		known Selector
		want  string
	}{
		{"pinned host: its profile only", Selector{MAC: mustMAC("52:54:00:00:00:03")}, "fallback"},
		{"a lab MAC: the OUI rule, rules on other facts, the default", Selector{MAC: mustMAC("52:54:00:00:00:09")}, "dell,fallback,lab"},
		{"another vendor's MAC", Selector{MAC: mustMAC("02:00:00:00:00:01")}, "dell,fallback"},
		{"x64 UEFI on a subnet the dell rule cannot match", Selector{Arch: FirmwareEFIx64, Subnet: netip.MustParsePrefix("192.0.2.0/24")}, "dell,fallback,kiosk,lab"},
	}
	for _, tt := range tests {
		if got := names(inv.Reachable(tt.known)); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestSightings(t *testing.T) {
	s := NewSightingTable()
	mac := mustMAC("52:54:00:00:00:01")
	s.Seen(Client{MAC: mac, VendorClass: "PXEClient:Arch:00007", Firmware: FirmwareEFIx64})
	s.Seen(Client{MAC: mac, IP: netip.MustParseAddr("192.0.2.10")}) // the ACK: an address, nothing else
	c, ok := s.ByIP(netip.MustParseAddr("192.0.2.10"))
	if !ok || c.VendorClass != "PXEClient:Arch:00007" || c.Firmware != FirmwareEFIx64 {
		t.Fatalf("by IP: %+v %v", c, ok)
	}
	menuStage := Client{MAC: mac, Firmware: FirmwareBIOS}.With(c)
	if menuStage.Firmware != FirmwareBIOS || menuStage.VendorClass != "PXEClient:Arch:00007" {
		t.Fatalf("With: %+v", menuStage)
	}
	if _, ok := s.ByMAC(mustMAC("52:54:00:00:00:02")); ok {
		t.Fatal("unknown MAC found")
	}
}

func TestProvedBy(t *testing.T) {
	d := Decision{Proof: []string{"debian/vmlinuz", "pe/boot.wim"}}
	const size = 1000
	tests := []struct {
		name string
		f    Fetch
		want bool
	}{
		{"whole kernel", Fetch{Path: "debian/vmlinuz", Size: size, From: 0, To: size}, true},
		{"range that finishes a resumed download", Fetch{Path: "debian/vmlinuz", Size: size, From: 600, To: size}, true},
		{"last byte", Fetch{Path: "debian/vmlinuz", Size: size, From: size - 1, To: size}, true},
		{"second proof file", Fetch{Path: "pe/boot.wim", Size: size, To: size}, true},
		{"first 100 bytes", Fetch{Path: "debian/vmlinuz", Size: size, From: 0, To: 100}, false},
		{"a range in the middle", Fetch{Path: "debian/vmlinuz", Size: size, From: 100, To: 999}, false},
		{"nothing read (HEAD, size query)", Fetch{Path: "debian/vmlinuz", Size: size, From: size, To: size}, false},
		{"nothing read from the start", Fetch{Path: "debian/vmlinuz", Size: size}, false},
		{"empty file read whole", Fetch{Path: "debian/vmlinuz", Size: 0}, true},
		{"another file", Fetch{Path: "debian/initrd.gz", Size: size, To: size}, false},
		{"backwards", Fetch{Path: "debian/vmlinuz", Size: size, From: size, To: 10}, false},
	}
	for _, tt := range tests {
		if got := d.ProvedBy(tt.f); got != tt.want {
			t.Errorf("%s: ProvedBy(%+v) = %v, want %v", tt.name, tt.f, got, tt.want)
		}
	}
	if (Decision{}).ProvedBy(Fetch{Path: "debian/vmlinuz", Size: size, To: size}) {
		t.Error("a decision without a one-shot has no proof files, yet a fetch proved it")
	}
}

func TestCheckBeacon(t *testing.T) {
	mac := mustMAC("52:54:00:00:00:01")
	at := netip.MustParseAddr("192.0.2.10")
	seen := Client{MAC: mac, IP: at}
	if err := CheckBeacon(mac, at, seen, true); err != nil {
		t.Errorf("beacon from the address the MAC was seen at refused: %v", err)
	}
	if err := CheckBeacon(mac, netip.MustParseAddr("::ffff:192.0.2.10"), seen, true); err != nil {
		t.Errorf("beacon from the same address, IPv4-mapped, refused: %v", err)
	}
	for _, tt := range []struct {
		name  string
		from  string
		seen  Client
		found bool
		want  string
	}{
		{"another address", "192.0.2.11", seen, true, "last seen at 192.0.2.10, not at 192.0.2.11"},
		{"never seen", "192.0.2.10", Client{}, false, "has not been seen"},
		{"seen without an address", "192.0.2.10", Client{MAC: mac}, true, "without an address"},
	} {
		err := CheckBeacon(mac, netip.MustParseAddr(tt.from), tt.seen, tt.found)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: CheckBeacon = %v, want an error with %q", tt.name, err, tt.want)
		}
	}
}
