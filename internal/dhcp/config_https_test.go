package dhcp

import (
	"net/netip"
	"testing"

	"bootforge/internal/boot"
)

// http.tls.boot gives the resolver the boot listener's port, so UEFI HTTP
// boot clients get https:// loader URLs; ipxe_trust sends iPXE there too.
func TestNewResolverHTTPSBoot(t *testing.T) {
	cfg := parseConfig(t, authoritative)
	cfg.HTTP.TLS.Boot, cfg.HTTP.TLS.BootListen = true, ":4434"
	server := netip.MustParseAddr("192.0.2.2")
	fw := boot.Client{VendorClass: "HTTPClient:Arch:00016:UNDI:003001", Arch: boot.ArchHTTPx64, HasArch: true, Server: server}
	ipxe := boot.Client{VendorClass: "PXEClient", UserClass: []string{"iPXE"}, Server: server}
	r := NewResolver(cfg)
	if p := r.Resolve(fw, nil); p.BootFile != "https://192.0.2.2:4434/ipxe.efi" || !p.HTTPClient {
		t.Errorf("UEFI HTTP boot: %+v", p)
	}
	if p := r.Resolve(ipxe, nil); p.BootFile != "http://192.0.2.2:8081/boot.ipxe" {
		t.Errorf("Debian's iPXE: %+v", p)
	}
	cfg.HTTP.TLS.IPXETrust = true
	if p := NewResolver(cfg).Resolve(ipxe, nil); p.BootFile != "https://192.0.2.2:4434/boot.ipxe" {
		t.Errorf("iPXE with ipxe_trust: %+v", p)
	}
}
