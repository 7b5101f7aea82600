package check

import (
	"net"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// An Advertise is read as what it offers: an address makes its server
// authoritative, a boot file URL alone a boot-only server, and a status
// other than Success is kept.
func TestAdvertised(t *testing.T) {
	mac := net.HardwareAddr{0x52, 0x54, 0, 0, 0, 7}
	sol, err := dhcpv6.NewSolicit(mac)
	if err != nil {
		t.Fatal(err)
	}
	duid := &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{0x02, 0, 0, 0, 0, 1}}
	withAddr, err := dhcpv6.NewAdvertiseFromSolicit(sol, dhcpv6.WithServerID(duid),
		dhcpv6.WithIANA(dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP("2001:db8::100"), PreferredLifetime: time.Hour, ValidLifetime: time.Hour}),
		dhcpv6.WithOption(dhcpv6.OptBootFileURL("tftp://[2001:db8::1]/snponly.efi")))
	if err != nil {
		t.Fatal(err)
	}
	s := advertised(withAddr)
	if s.Kind != "authoritative" || len(s.Addresses) != 1 || s.Addresses[0] != "2001:db8::100" ||
		s.BootFileURL != "tftp://[2001:db8::1]/snponly.efi" || s.DUID != "00:03:00:01:02:00:00:00:00:01" || s.Status != "" {
		t.Errorf("with an address: %+v", s)
	}
	bootOnly, _ := dhcpv6.NewAdvertiseFromSolicit(sol, dhcpv6.WithServerID(duid),
		dhcpv6.WithOption(dhcpv6.OptBootFileURL("http://[2001:db8::1]:8080/bootforge/boot.ipxe")),
		dhcpv6.WithOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusNoAddrsAvail, StatusMessage: "no addresses here"}))
	if s := advertised(bootOnly); s.Kind != "boot-only" || len(s.Addresses) != 0 || s.Status != "NoAddrsAvail: no addresses here" {
		t.Errorf("boot only: %+v", s)
	}
}
