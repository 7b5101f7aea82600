package relaydoc

import (
	"net/netip"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	in := Input{
		Server:      netip.MustParseAddr("192.0.2.1"),
		Relayed:     []Subnet{{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Gateway: netip.MustParseAddr("198.51.100.1")}, {Prefix: netip.MustParsePrefix("198.18.0.0/20")}},
		ClientIface: "vlan20", UpstreamIface: "eth0",
		BootFiles: []BootFile{{Clients: "iPXE", IPXE: true, File: "http://192.0.2.1:8080/boot.ipxe"},
			{Clients: "efi-x64 PXE", Arches: []uint16{7, 9}, File: "snponly.efi"}},
	}
	var b strings.Builder
	if err := Write(&b, in, nil); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"# Relayed subnet 198.51.100.0/24, gateway 198.51.100.1\n",
		"# Relayed subnet 198.18.0.0/20, gateway <gateway>\n",
		"dhcrelay -4 -a -id vlan20 -iu eth0 192.0.2.1\n",
		" ip address 198.51.100.1 255.255.255.0\n ip helper-address 192.0.2.1\n",
		"set forwarding-options dhcp-relay server-group bootforge 192.0.2.1\n",
		"/ip dhcp-relay add name=bootforge-198-51-100-0-24 interface=vlan20 dhcp-server=192.0.2.1 local-address=198.51.100.1 disabled=no\n",
		"if exists user-class and option user-class = \"iPXE\" {\n  filename \"http://192.0.2.1:8080/boot.ipxe\";\n}\nelsif option arch = 7 or option arch = 9 {\n  filename \"snponly.efi\";\n}\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	// No gateway, no address line: only what is known is written.
	if strings.Count(out, " ip address ") != 1 {
		t.Errorf("an address line for a subnet without a router:\n%s", out)
	}
	if err := Write(&b, in, []string{"cisco", "nope"}); err == nil || !strings.Contains(err.Error(), `unknown format "nope"`) {
		t.Errorf("unknown format: %v", err)
	}
}
