package boot

import (
	"net/netip"
	"testing"
)

func TestURL6(t *testing.T) {
	srv := netip.MustParseAddr("2001:db8::1")
	r := &Resolver{
		Loaders:     map[Firmware]string{FirmwareEFIx64: "snponly.efi", FirmwareEFIarm64: "arm64/snp only.efi"},
		HTTPLoaders: map[Firmware]string{FirmwareEFIx64: "ipxe.efi"},
		Script:      "boot.ipxe",
		HTTPPort:    8080,
	}
	for _, tc := range []struct {
		name string
		c    Client
		want string
	}{
		{"PXE arch 7 over TFTP", Client{Arch: ArchEFIx64, HasArch: true, VendorClass: "PXEClient:Arch:00007:UNDI:003000"}, "tftp://[2001:db8::1]/snponly.efi"},
		{"arch 9 is x64 too", Client{Arch: ArchEFIBC, HasArch: true}, "tftp://[2001:db8::1]/snponly.efi"},
		{"path escaped", Client{Arch: ArchEFIarm64, HasArch: true}, "tftp://[2001:db8::1]/arm64/snp%20only.efi"},
		{"HTTP boot arch 16", Client{Arch: ArchHTTPx64, HasArch: true, VendorClass: "HTTPClient:Arch:00016:UNDI:003000"}, "http://[2001:db8::1]:8080/ipxe.efi"},
		{"iPXE gets the script, never the loader", Client{Arch: ArchEFIx64, HasArch: true, UserClass: []string{"iPXE"}}, "http://[2001:db8::1]:8080/boot.ipxe"},
		{"no loader: nothing", Client{Arch: ArchEFIia32, HasArch: true}, ""},
		{"not a boot client", Client{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.Server = srv
			if tc.c.HasArch && tc.c.VendorClass == "" {
				tc.c.VendorClass = ClassOfArch(tc.c.Arch)
			}
			if got := URL6(r.Resolve(tc.c, nil), srv); got != tc.want {
				t.Errorf("URL6 = %q, want %q", got, tc.want)
			}
		})
	}
	if got := URL6(Plan{Boot: true, BootFile: "x.efi"}, netip.Addr{}); got != "tftp://SERVER/x.efi" {
		t.Errorf("no server: %q", got)
	}
	if got := URL6(Plan{Boot: true, BootFile: "x.efi"}, netip.MustParseAddr("fe80::1%br0")); got != "tftp://[fe80::1]/x.efi" {
		t.Errorf("zone kept: %q", got)
	}
}

func TestVendorClass6(t *testing.T) {
	for _, tc := range []struct {
		items [][]byte
		want  string
	}{
		{nil, ""},
		{[][]byte{[]byte("PXEClient:Arch:00007:UNDI:003000")}, "PXEClient:Arch:00007:UNDI:003000"},
		{[][]byte{[]byte("foo"), []byte("HTTPClient:Arch:00016")}, "HTTPClient:Arch:00016"},
		{[][]byte{[]byte("foo"), []byte("bar")}, "foo"},
	} {
		if got := VendorClass6(tc.items); got != tc.want {
			t.Errorf("VendorClass6(%q) = %q, want %q", tc.items, got, tc.want)
		}
	}
	if ClassOfArch(ArchEFIx64) != "PXEClient:Arch:00007" || ClassOfArch(ArchHTTPx64) != "HTTPClient:Arch:00016" {
		t.Error("ClassOfArch")
	}
	if (Client{}).BootClient6() || !(Client{HasArch: true}).BootClient6() || !(Client{VendorClass: "HTTPClient"}).BootClient6() {
		t.Error("BootClient6")
	}
}
