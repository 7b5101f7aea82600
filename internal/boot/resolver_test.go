package boot

import (
	"net"
	"net/netip"
	"testing"
)

func testResolver() *Resolver {
	return &Resolver{
		Loaders: map[Firmware]string{
			FirmwareBIOS:     "undionly.kpxe",
			FirmwareEFIx64:   "snponly.efi",
			FirmwareEFIarm64: "arm64/snponly.efi",
		},
		HTTPLoaders: map[Firmware]string{FirmwareEFIx64: "ipxe.efi"},
		Script:      "boot.ipxe",
		HTTPPort:    8080,
	}
}

func TestResolve(t *testing.T) {
	server := netip.MustParseAddr("192.0.2.1")
	pxe := func(arch Arch) Client {
		return Client{VendorClass: "PXEClient:Arch:00000:UNDI:002001", Arch: arch, HasArch: true, Server: server}
	}
	tests := []struct {
		name   string
		client Client
		boot   bool
		file   string
		fw     Firmware
		stage  Stage
		http   bool
	}{
		{"BIOS PXE ROM", pxe(ArchBIOS), true, "undionly.kpxe", FirmwareBIOS, StageFirmware, false},
		{"x64 UEFI arch 7", pxe(ArchEFIx64), true, "snponly.efi", FirmwareEFIx64, StageFirmware, false},
		{"x64 UEFI arch 9 (RFC 4578 errata)", pxe(ArchEFIBC), true, "snponly.efi", FirmwareEFIx64, StageFirmware, false},
		{"arm64 UEFI", pxe(ArchEFIarm64), true, "arm64/snponly.efi", FirmwareEFIarm64, StageFirmware, false},
		{"arm32 UEFI: no loader configured", pxe(ArchEFIarm32), false, "", FirmwareEFIarm32, "", false},
		{"unknown arch", pxe(Arch(200)), false, "", FirmwareUnknown, "", false},
		{"PXE without option 93 is BIOS", Client{VendorClass: "PXEClient", Server: server}, true, "undionly.kpxe", FirmwareBIOS, StageFirmware, false},
		{"UEFI HTTP boot by arch", Client{VendorClass: "HTTPClient:Arch:00016:UNDI:003001", Arch: ArchHTTPx64, HasArch: true, Server: server},
			true, "http://192.0.2.1:8080/ipxe.efi", FirmwareEFIx64, StageFirmware, true},
		{"UEFI HTTP boot by vendor class only", Client{VendorClass: "HTTPClient", Arch: ArchEFIx64, HasArch: true, Server: server},
			true, "http://192.0.2.1:8080/ipxe.efi", FirmwareEFIx64, StageFirmware, true},
		{"arm64 HTTP: no loader", Client{VendorClass: "HTTPClient", Arch: ArchHTTParm64, HasArch: true, Server: server}, false, "", FirmwareEFIarm64, "", false},
		{"iPXE by user class breaks the loop", Client{VendorClass: "PXEClient:Arch:00000", UserClass: []string{"iPXE"}, Arch: ArchBIOS, HasArch: true, Server: server},
			true, "http://192.0.2.1:8080/boot.ipxe", FirmwareBIOS, StageIPXE, false},
		{"iPXE by option 175 only", Client{VendorClass: "PXEClient:Arch:00007", IPXE: true, Arch: ArchEFIx64, HasArch: true, Server: server},
			true, "http://192.0.2.1:8080/boot.ipxe", FirmwareEFIx64, StageIPXE, false},
		{"iPXE without vendor class", Client{UserClass: []string{"iPXE"}, Server: server},
			true, "http://192.0.2.1:8080/boot.ipxe", FirmwareBIOS, StageIPXE, false},
		{"other user class is not iPXE", Client{VendorClass: "PXEClient", UserClass: []string{"gPXE"}, Server: server},
			true, "undionly.kpxe", FirmwareBIOS, StageFirmware, false},
		{"plain DHCP client", Client{VendorClass: "MSFT 5.0", Server: server}, false, "", "", "", false},
		{"no vendor class", Client{Server: server}, false, "", "", "", false},
	}
	r := testResolver()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := r.Resolve(tt.client, nil)
			if p.Boot != tt.boot || p.BootFile != tt.file || p.Stage != tt.stage || p.HTTPClient != tt.http {
				t.Fatalf("got %+v", p)
			}
			if tt.boot && p.Firmware != tt.fw {
				t.Fatalf("firmware %q, want %q", p.Firmware, tt.fw)
			}
			if p.Reason == "" {
				t.Fatal("no reason given")
			}
		})
	}
}

func TestURLPort80(t *testing.T) {
	r := testResolver()
	r.HTTPPort = 80
	p := r.Resolve(Client{UserClass: []string{"iPXE"}, Server: netip.MustParseAddr("198.51.100.7")}, nil)
	if p.BootFile != "http://198.51.100.7/boot.ipxe" {
		t.Fatal(p.BootFile)
	}
}

func TestArchString(t *testing.T) {
	for a, want := range map[Arch]string{0: "bios", 7: "efi-x64", 9: "efi-x64", 16: "efi-x64-http", 11: "efi-arm64", 99: "arch-99"} {
		if got := a.String(); got != want {
			t.Errorf("Arch(%d) = %q, want %q", a, got, want)
		}
	}
}

func TestResolveSecureBoot(t *testing.T) {
	r := testResolver()
	r.SecureBootLoader = "shimx64.efi"
	r.SecureBootSubnets = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
	sbMAC, hostMAC := mustMAC("52:54:00:5b:00:01"), mustMAC("52:54:00:5b:00:02")
	inv, err := NewInventory([]Profile{
		{Name: "sb", SecureBoot: true, Match: []Selector{{MAC: sbMAC}}},
		{Name: "plain"},
	}, []Host{{Name: "h", MACs: []net.HardwareAddr{hostMAC}, SecureBoot: true}}, "plain")
	if err != nil {
		t.Fatal(err)
	}
	server := netip.MustParseAddr("192.0.2.1")
	uefi := func(mac net.HardwareAddr) Client {
		return Client{MAC: mac, VendorClass: "PXEClient:Arch:00007", Arch: ArchEFIx64, HasArch: true, Server: server}
	}
	cases := []struct {
		name string
		c    Client
		want string
		sb   bool
	}{
		{"profile says Secure Boot", uefi(sbMAC), "shimx64.efi", true},
		{"host says Secure Boot", uefi(hostMAC), "shimx64.efi", true},
		{"neither: iPXE path", uefi(mustMAC("52:54:00:00:00:09")), "snponly.efi", false},
		{"subnet default, by relay", func() Client {
			c := uefi(mustMAC("52:54:00:00:00:09"))
			c.Relay = netip.MustParseAddr("198.51.100.1")
			return c
		}(), "shimx64.efi", true},
		{"BIOS is never Secure Boot", Client{MAC: sbMAC, VendorClass: "PXEClient", Arch: ArchBIOS, HasArch: true, Server: server}, "undionly.kpxe", false},
		{"iPXE still gets the script", func() Client { c := uefi(sbMAC); c.IPXE = true; return c }(), "http://192.0.2.1:8080/boot.ipxe", false},
	}
	for _, tc := range cases {
		p := r.Resolve(tc.c, inv)
		if p.BootFile != tc.want || p.SecureBoot != tc.sb {
			t.Errorf("%s: %+v", tc.name, p)
		}
	}
}

// TestFormatUUID writes option 97's 16 bytes as iPXE's ${uuid} shows them
// (lower-case hex, 8-4-4-4-12), which inventory files match against; a
// UUID of another length is no UUID.
func TestFormatUUID(t *testing.T) {
	b := []byte{0x4c, 0x4c, 0x45, 0x44, 0x00, 0x4e, 0x38, 0x10, 0x80, 0x4b, 0xb2, 0xc0, 0x4f, 0xab, 0xCD, 0xEF}
	if got, want := FormatUUID(b), "4c4c4544-004e-3810-804b-b2c04fabcdef"; got != want {
		t.Errorf("FormatUUID = %q, want %q", got, want)
	}
	for _, n := range []int{0, 15, 17} {
		if got := FormatUUID(make([]byte, n)); got != "" {
			t.Errorf("FormatUUID of %d bytes = %q, want \"\"", n, got)
		}
	}
	if n := testing.AllocsPerRun(100, func() { FormatUUID(b) }); n > 1 {
		t.Errorf("FormatUUID allocates %v times, want 1 (the string)", n)
	}
}
