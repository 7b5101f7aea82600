package boot

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func menu(entries ...string) Menu {
	m := Menu{Timeout: time.Second}
	for _, e := range entries {
		m.Entries = append(m.Entries, Entry{Name: e, Kind: KindLocal})
	}
	if len(entries) > 0 {
		m.Default = entries[0]
	}
	return m
}

func TestChooseSelectors(t *testing.T) {
	profiles := []Profile{
		{Name: "by-mac", Match: []Selector{{MAC: mustMAC("52:54:00:00:00:01")}}, Menu: menu("a")},
		{Name: "by-oui", Match: []Selector{{OUI: []byte{0x00, 0x1b, 0x21}}}, Menu: menu("a")},
		{Name: "by-uuid", Priority: 3, Match: []Selector{{UUID: "4c4c4544-0000-1000-8000-000000000001"}}, Menu: menu("a")},
		{Name: "by-arch", Match: []Selector{{Arch: FirmwareEFIarm64}}, Menu: menu("a")},
		{Name: "by-vendor", Match: []Selector{{Vendor: "HTTPClient*"}}, Menu: menu("a")},
		{Name: "by-maker", Match: []Selector{{Manufacturer: "Dell*", Product: "OptiPlex 70?0"}}, Menu: menu("a")},
		{Name: "by-serial", Match: []Selector{{Serial: "SN-42"}}, Menu: menu("a")},
		{Name: "by-subnet", Match: []Selector{{Subnet: netip.MustParsePrefix("198.51.100.0/24")}}, Menu: menu("a")},
		{Name: "by-label", Match: []Selector{{Labels: []string{"kiosk", "lab"}}}, Menu: menu("a")},
		{Name: "or-rules", Match: []Selector{{Serial: "A1"}, {Serial: "B2"}}, Menu: menu("a")},
		{Name: "fallback", Menu: menu("a")},
	}
	hosts := []Host{{Name: "kiosk1", MACs: []net.HardwareAddr{mustMAC("52:54:00:00:00:09")}, Labels: []string{"lab", "kiosk"}}}
	inv, err := NewInventory(profiles, hosts, "fallback")
	if err != nil {
		t.Fatal(err)
	}
	other := mustMAC("52:54:00:ff:ff:ff")
	tests := []struct {
		name string
		f    Client
		want string
	}{
		{"mac", Client{MAC: mustMAC("52:54:00:00:00:01")}, "by-mac"},
		{"mac is case-insensitive", Client{MAC: mustMAC("52:54:00:00:00:01")}, "by-mac"},
		{"oui", Client{MAC: mustMAC("00:1b:21:aa:bb:cc")}, "by-oui"},
		{"uuid, any case", Client{MAC: other, UUID: "4C4C4544-0000-1000-8000-000000000001"}, "by-uuid"},
		{"arch", Client{MAC: other, Firmware: FirmwareEFIarm64}, "by-arch"},
		{"vendor glob", Client{MAC: other, VendorClass: "HTTPClient:Arch:00016"}, "by-vendor"},
		{"manufacturer and product (AND)", Client{MAC: other, Manufacturer: "Dell Inc.", Product: "OptiPlex 7050"}, "by-maker"},
		{"AND fails on one condition", Client{MAC: other, Manufacturer: "Dell Inc.", Product: "Latitude"}, "fallback"},
		{"serial", Client{MAC: other, Serial: "SN-42"}, "by-serial"},
		{"subnet by client IP", Client{MAC: other, IP: netip.MustParseAddr("198.51.100.7")}, "by-subnet"},
		{"subnet by relay", Client{MAC: other, Relay: netip.MustParseAddr("198.51.100.1")}, "by-subnet"},
		{"labels from the host", Client{MAC: mustMAC("52:54:00:00:00:09")}, "by-label"},
		{"OR: second rule", Client{MAC: other, Serial: "B2"}, "or-rules"},
		{"nothing: default", Client{MAC: other}, "fallback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := inv.Choose(tt.f)
			if !ok || c.Profile.Name != tt.want {
				t.Fatalf("chose %q (%s), want %q", c.Profile.Name, c.Why, tt.want)
			}
			if c.Why == "" {
				t.Fatal("no reason")
			}
		})
	}
}

func TestChoosePrecedence(t *testing.T) {
	mac := mustMAC("52:54:00:00:00:01")
	profiles := []Profile{
		{Name: "specific", Match: []Selector{{MAC: mac}}, Menu: menu("a")},
		{Name: "broad", Match: []Selector{{Arch: FirmwareBIOS}}, Menu: menu("a")},
		{Name: "urgent", Priority: 10, Match: []Selector{{Arch: FirmwareBIOS, Labels: []string{"urgent"}}}, Menu: menu("a")},
		{Name: "low", Priority: 1, Match: []Selector{{OUI: []byte{0x52, 0x54, 0x00}}}, Menu: menu("a")},
		{Name: "pinned", Menu: menu("a")},
		{Name: "default", Menu: menu("a")},
	}
	hosts := []Host{
		{Name: "p", MACs: []net.HardwareAddr{mustMAC("52:54:00:00:00:02")}, Profile: "pinned", Labels: []string{"urgent"}},
		{Name: "u", MACs: []net.HardwareAddr{mustMAC("52:54:00:00:00:03")}, Labels: []string{"urgent"}},
	}
	inv, err := NewInventory(profiles, hosts, "default")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    Client
		want string
	}{
		{"1. pinned beats priority", Client{MAC: mustMAC("52:54:00:00:00:02"), Firmware: FirmwareBIOS}, "pinned"},
		{"2. highest priority", Client{MAC: mustMAC("52:54:00:00:00:03"), Firmware: FirmwareBIOS}, "urgent"},
		{"2. any priority beats specificity", Client{MAC: mac, Firmware: FirmwareBIOS}, "low"},
		{"3. most specific without priority", Client{MAC: mustMAC("00:00:00:00:00:01"), Firmware: FirmwareBIOS}, "broad"},
		{"4. default", Client{MAC: mustMAC("00:00:00:00:00:01"), Firmware: FirmwareEFIx64}, "default"},
	}
	for _, tt := range tests {
		c, _ := inv.Choose(tt.f)
		if c.Profile.Name != tt.want {
			t.Errorf("%s: chose %q (%s), want %q", tt.name, c.Profile.Name, c.Why, tt.want)
		}
	}
	// Without a priority, the more specific rule wins.
	inv2, err := NewInventory(profiles[:2], nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := inv2.Choose(Client{MAC: mac, Firmware: FirmwareBIOS}); c.Profile.Name != "specific" {
		t.Fatalf("chose %q, want specific", c.Profile.Name)
	}
	if _, ok := inv2.Choose(Client{MAC: mustMAC("00:00:00:00:00:09")}); ok {
		t.Fatal("no match and no default, yet a choice")
	}
}

func TestVariant(t *testing.T) {
	p := Profile{Name: "p", Match: []Selector{{OUI: []byte{0x52}}}, Menu: menu("bios-entry"),
		Variants: map[Firmware]Menu{FirmwareEFIx64: menu("efi-entry")}}
	inv, err := NewInventory([]Profile{p}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := inv.Choose(Client{MAC: mustMAC("52:00:00:00:00:01"), Firmware: FirmwareEFIx64})
	if c.Menu.Default != "efi-entry" {
		t.Fatalf("variant not used: %+v", c.Menu)
	}
}

func TestInventoryErrors(t *testing.T) {
	mac := mustMAC("52:54:00:00:00:01")
	tests := []struct {
		name     string
		profiles []Profile
		hosts    []Host
		def      string
		want     string
	}{
		{"duplicate priority", []Profile{{Name: "a", Priority: 5, Source: "a.yaml:3"}, {Name: "b", Priority: 5, Source: "b.yaml:7"}}, nil, "", "priority 5"},
		{"duplicate name", []Profile{{Name: "a", Source: "x.yaml:1"}, {Name: "a", Source: "y.yaml:1"}}, nil, "", "defined twice"},
		{"tie", []Profile{{Name: "a", Match: []Selector{{Arch: FirmwareBIOS}}, Source: "a.yaml:2"}, {Name: "b", Match: []Selector{{Arch: FirmwareBIOS}}, Source: "b.yaml:2"}}, nil, "", "equal specificity"},
		{"default entry missing", []Profile{{Name: "a", Menu: Menu{Default: "x", Entries: []Entry{{Name: "y", Kind: KindLocal}}}, Source: "a.yaml:4"}}, nil, "", `default entry "x"`},
		{"bad kind", []Profile{{Name: "a", Menu: Menu{Entries: []Entry{{Name: "y", Kind: "floppy"}}}}}, nil, "", "unknown kind"},
		{"linux without kernel", []Profile{{Name: "a", Menu: Menu{Entries: []Entry{{Name: "y", Kind: KindLinux}}}}}, nil, "", "needs kernel"},
		{"wimboot without bcd", []Profile{{Name: "a", Menu: Menu{Entries: []Entry{{Name: "w", Kind: KindWimboot, Wimboot: "w", BootSDI: "s", BootWIM: "m"}}}}}, nil, "", "needs bcd"},
		{"unknown pinned profile", nil, []Host{{Name: "h", Profile: "nope", Source: "hosts.yaml:9"}}, "", `profile "nope" does not exist`},
		{"unknown default", nil, nil, "nope", `default profile "nope"`},
		{"MAC on two hosts", nil, []Host{{Name: "h1", MACs: []net.HardwareAddr{mac}}, {Name: "h2", MACs: []net.HardwareAddr{mac}}}, "", "also belongs"},
		{"one name on two hosts", nil, []Host{{Name: "srv", UUID: "u1", Source: "hosts/a.yaml:1"}, {Name: "srv", UUID: "u2", Source: "hosts/b.yaml:1"}}, "",
			`hosts/b.yaml:1: host "srv": host "srv" (hosts/a.yaml:1) has the same name`},
		{"names that differ in case", nil, []Host{{Name: "pc1", MACs: []net.HardwareAddr{mac}, Source: "store"}, {Name: "PC1", UUID: "u2", Source: "store"}}, "",
			`store: host "PC1": host "pc1" (store) has the same name; host names are unique, ignoring case`},
	}
	for _, tt := range tests {
		_, err := NewInventory(tt.profiles, tt.hosts, tt.def)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	// Disjoint rules of equal specificity are fine.
	_, err := NewInventory([]Profile{
		{Name: "a", Match: []Selector{{Arch: FirmwareBIOS}}},
		{Name: "b", Match: []Selector{{Arch: FirmwareEFIx64}}},
		{Name: "c", Match: []Selector{{MAC: mac}}},
		{Name: "d", Match: []Selector{{MAC: mustMAC("52:54:00:00:00:02")}}},
	}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	// Two entries whose names become one label are refused, in the main
	// menu and in variants, naming both entries, the label and the file.
	for _, tt := range []struct{ a, b, label string }{
		{"диск", "сеть", ""},
		{"安装", "救援", ""},
		{"a.b", "a_2eb", "a_2eb"},
	} {
		m := Menu{Default: tt.b, Entries: []Entry{{Name: tt.a, Kind: KindLinux, Kernel: "vmlinuz"}, {Name: tt.b, Kind: KindShell}}}
		if tt.label == "" {
			// Unequal labels: these load.
			if _, err := NewInventory([]Profile{{Name: "p", Menu: m, Variants: map[Firmware]Menu{FirmwareEFIx64: m}}}, nil, ""); err != nil {
				t.Errorf("%q and %q: %v", tt.a, tt.b, err)
			}
			continue
		}
		for _, p := range []Profile{
			{Name: "p", Menu: m, Source: "profiles/p.yaml:2"},
			{Name: "p", Menu: menu("x"), Variants: map[Firmware]Menu{FirmwareEFIx64: m}, Source: "profiles/p.yaml:2"},
		} {
			_, err := NewInventory([]Profile{p}, nil, "")
			if err == nil {
				t.Errorf("%q and %q, both label %q: loaded", tt.a, tt.b, tt.label)
				continue
			}
			for _, want := range []string{"profiles/p.yaml:2: ", `profile "p"`, `"` + tt.a + `"`, `"` + tt.b + `"`, `label "` + tt.label + `"`} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q and %q: %v; want %s in it", tt.a, tt.b, err, want)
				}
			}
			if p.Variants != nil && !strings.Contains(err.Error(), "efi-x64 variant") {
				t.Errorf("the refusal does not name the variant: %v", err)
			}
		}
	}
	// The source position is in the message.
	_, err = NewInventory([]Profile{{Name: "a", Priority: 5, Source: "a.yaml:3"}, {Name: "b", Priority: 5, Source: "b.yaml:7"}}, nil, "")
	if !strings.Contains(err.Error(), "b.yaml:7") && !strings.Contains(err.Error(), "a.yaml:3") {
		t.Fatalf("no file:line in %v", err)
	}
}

// A host is found by name ignoring case, as DNS looks names up.
func TestHostNamed(t *testing.T) {
	inv, err := NewInventory(nil, []Host{{Name: "pc1", UUID: "u1"}, {Name: "Srv-2", UUID: "u2"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"pc1": "pc1", "PC1": "pc1", "srv-2": "Srv-2", "SRV-2": "Srv-2"} {
		if h, ok := inv.HostNamed(key); !ok || h.Name != want {
			t.Errorf("HostNamed(%q) = %q, %v; want %q", key, h.Name, ok, want)
		}
	}
	if h, ok := inv.HostNamed("pc2"); ok {
		t.Errorf("HostNamed(pc2) = %q", h.Name)
	}
}

func TestNextBootActive(t *testing.T) {
	now := time.Unix(1000, 0)
	var nb *NextBoot
	if nb.Active(now) {
		t.Fatal("nil active")
	}
	cases := []struct {
		nb   NextBoot
		want bool
	}{
		{NextBoot{Entry: "b", State: OneShotPending}, true},
		{NextBoot{Entry: "b", State: OneShotDelivered}, true},
		{NextBoot{Entry: "b", State: OneShotBooted}, false},
		{NextBoot{Entry: "b", State: OneShotBooted, Always: true}, true},
		{NextBoot{Entry: "b", State: OneShotPending, Expires: now.Add(-time.Second)}, false},
		{NextBoot{Entry: "b", State: OneShotPending, Expires: now.Add(time.Second)}, true},
	}
	for i, c := range cases {
		if got := c.nb.Active(now); got != c.want {
			t.Errorf("%d: %+v active = %v", i, c.nb, got)
		}
	}
}

func TestCheckHostName(t *testing.T) {
	for _, ok := range []string{"pc1", "a", "PC-01", "0lab", strings.Repeat("a", 63)} {
		if err := CheckHostName(ok); err != nil {
			t.Errorf("CheckHostName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "-pc", "pc-", "pc.lab", "pc_1", "a/b", "nul\x00", "\x1b[31mRED", "h\u00e9", "with space", strings.Repeat("a", 64)} {
		err := CheckHostName(bad)
		if err == nil {
			t.Errorf("CheckHostName(%q) = nil, want a refusal", bad)
			continue
		}
		if strings.ContainsAny(err.Error(), "\x00\x1b") {
			t.Errorf("CheckHostName(%q): the message carries the raw control character: %q", bad, err)
		}
	}
	// The refusal names the character as typed and where it is, not a byte.
	for name, want := range map[string]string{
		"пк":     `has 'п' at character 1;`,
		"pcé":    `has 'é' at character 3;`,
		"pc\xd0": `has "\xd0" at character 3;`,
		"pc.lab": `has '.' at character 3;`,
		"-pc":    `starts or ends with a hyphen;`,
	} {
		if err := CheckHostName(name); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("CheckHostName(%q) = %v, want %s...", name, err, want)
		}
	}
	// Every source goes through the inventory: a stored host too.
	_, err := NewInventory([]Profile{{Name: "p", Menu: menu("a")}},
		[]Host{{Name: "\x1b[31mRED", MACs: []net.HardwareAddr{mustMAC("52:54:00:00:00:01")}, Source: "store"}}, "p")
	if err == nil || !strings.Contains(err.Error(), `store: host "\x1b[31mRED"`) {
		t.Errorf("NewInventory with a host named ESC[31mRED: %v, want a refusal naming it escaped", err)
	}
}

// A UUID is read in the forms operators copy it in and kept as clients
// are matched by it; anything else is refused rather than kept to never
// match.
func TestParseUUID(t *testing.T) {
	const want = "4c4c4544-0042-3510-8052-b4c04f4a4d32"
	for _, in := range []string{want, "4C4C4544-0042-3510-8052-B4C04F4A4D32", "{4C4C4544-0042-3510-8052-B4C04F4A4D32}",
		"4c4c4544004235108052b4c04f4a4d32", "urn:uuid:4c4c4544-0042-3510-8052-b4c04f4a4d32"} {
		if got, err := ParseUUID(in); err != nil || got != want {
			t.Errorf("ParseUUID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "u-1", "4c4c4544-0042-3510-8052", "4c4c4544-0042-3510-8052-b4c04f4a4d3g", "4c4c4544-0042-3510-8052-b4c04f4a4d32\x00"} {
		if got, err := ParseUUID(bad); err == nil {
			t.Errorf("ParseUUID(%q) = %q, want a refusal", bad, got)
		}
	}
}

func TestCheckLabel(t *testing.T) {
	for _, ok := range []string{"kiosk", "rack:4", "dept=it", "Lab_2", "étage-3", strings.Repeat("a", MaxLabel)} {
		if err := CheckLabel(ok); err != nil {
			t.Errorf("CheckLabel(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "tab\there", "nul\x00", "\x1b[31mRED", "bad\xffutf8", "nbsp\u00a0x", strings.Repeat("a", MaxLabel+1)} {
		err := CheckLabel(bad)
		if err == nil {
			t.Errorf("CheckLabel(%q) = nil, want a refusal", bad)
			continue
		}
		if strings.ContainsAny(err.Error(), "\x00\x1b") {
			t.Errorf("CheckLabel(%q): the message carries the raw control character: %q", bad, err)
		}
	}
}
