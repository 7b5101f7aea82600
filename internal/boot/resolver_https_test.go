package boot

import (
	"net/netip"
	"testing"
)

// With the boot TLS listener on, UEFI HTTP boot clients (arch 16 and 19,
// or vendor class HTTPClient) get https:// loader URLs on its port; PXE
// clients keep TFTP, and iPXE keeps http:// unless it is declared able to
// do HTTPS.
func TestResolveHTTPSBoot(t *testing.T) {
	server := netip.MustParseAddr("192.0.2.1")
	r := testResolver()
	r.HTTPLoaders[FirmwareEFIarm64] = "arm64/ipxe.efi"
	r.HTTPSPort = 4433
	tests := []struct {
		name   string
		client Client
		file   string
	}{
		{"x64 HTTP boot, arch 16", Client{VendorClass: "HTTPClient:Arch:00016:UNDI:003001", Arch: ArchHTTPx64, HasArch: true, Server: server},
			"https://192.0.2.1:4433/ipxe.efi"},
		{"arm64 HTTP boot, arch 19", Client{VendorClass: "HTTPClient:Arch:00019:UNDI:003001", Arch: ArchHTTParm64, HasArch: true, Server: server},
			"https://192.0.2.1:4433/arm64/ipxe.efi"},
		{"vendor class HTTPClient with a PXE arch", Client{VendorClass: "HTTPClient", Arch: ArchEFIx64, HasArch: true, Server: server},
			"https://192.0.2.1:4433/ipxe.efi"},
		{"IPv6 server", Client{VendorClass: "HTTPClient", Arch: ArchHTTPx64, HasArch: true, Server: netip.MustParseAddr("2001:db8::1")},
			"https://[2001:db8::1]:4433/ipxe.efi"},
		{"x64 PXE keeps TFTP", Client{VendorClass: "PXEClient", Arch: ArchEFIx64, HasArch: true, Server: server}, "snponly.efi"},
		{"Debian's iPXE keeps http", Client{VendorClass: "PXEClient", UserClass: []string{"iPXE"}, Server: server},
			"http://192.0.2.1:8080/boot.ipxe"},
	}
	for _, tt := range tests {
		p := r.Resolve(tt.client, nil)
		if !p.Boot || p.BootFile != tt.file {
			t.Errorf("%s: boot %v file %q (%s), want %q", tt.name, p.Boot, p.BootFile, p.Reason, tt.file)
		}
	}
	if p := r.Resolve(tests[0].client, nil); !p.HTTPClient || p.Reason != "UEFI HTTP boot: loader over HTTPS" {
		t.Errorf("HTTPS boot plan: %+v", p)
	}

	// An iPXE declared HTTPS-capable gets its script over HTTPS.
	r.IPXEHTTPS = true
	ipxe := Client{VendorClass: "PXEClient", UserClass: []string{"iPXE"}, Server: server}
	if p := r.Resolve(ipxe, nil); p.BootFile != "https://192.0.2.1:4433/boot.ipxe" {
		t.Errorf("iPXE with HTTPS: %+v", p)
	}
	// ... but only where there is a boot TLS listener; and 443 is left out.
	r.HTTPSPort = 0
	if p := r.Resolve(ipxe, nil); p.BootFile != "http://192.0.2.1:8080/boot.ipxe" {
		t.Errorf("iPXE with HTTPS but no listener: %+v", p)
	}
	if p := r.Resolve(tests[0].client, nil); p.BootFile != "http://192.0.2.1:8080/ipxe.efi" {
		t.Errorf("HTTP boot without the boot TLS listener: %+v", p)
	}
	r.HTTPSPort = 443
	if p := r.Resolve(tests[0].client, nil); p.BootFile != "https://192.0.2.1/ipxe.efi" {
		t.Errorf("HTTPS on 443: %+v", p)
	}
}
