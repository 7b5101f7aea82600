package boot

import (
	"net/netip"
	"testing"
)

// Profile subnet rules take IPv6 prefixes, and match a client however
// the socket wrote its address.
func TestSubnetSelectorIPv6(t *testing.T) {
	profiles := []Profile{
		{Name: "v6-lab", Match: []Selector{{Subnet: netip.MustParsePrefix("2001:db8:10::/48")}}, Menu: menu("a")},
		{Name: "v6-rack", Match: []Selector{{Subnet: netip.MustParsePrefix("2001:db8:10:5::/64")}}, Menu: menu("a")},
		{Name: "v4-lab", Match: []Selector{{Subnet: netip.MustParsePrefix("192.0.2.0/24")}}, Menu: menu("a")},
		{Name: "link-local", Match: []Selector{{Subnet: netip.MustParsePrefix("fe80::/10")}}, Menu: menu("a")},
		{Name: "fallback", Menu: menu("a")},
	}
	inv, err := NewInventory(profiles, nil, "fallback")
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr
	for _, tt := range []struct {
		name string
		c    Client
		want string
	}{
		{"address in the /48", Client{IP: a("2001:db8:10:1::7")}, "v6-lab"},
		{"the longer prefix wins", Client{IP: a("2001:db8:10:5::7")}, "v6-rack"},
		{"outside", Client{IP: a("2001:db8:11::7")}, "fallback"},
		{"relayed: the relay's link address", Client{Relay: a("2001:db8:10:5::1"), IP: a("fe80::7")}, "v6-rack"},
		{"on a link we serve", Client{Link: a("2001:db8:10::1")}, "v6-lab"},
		{"a link-local client with a zone", Client{IP: a("fe80::7%br0")}, "link-local"},
		{"an IPv4 client as a dual-stack socket saw it", Client{IP: a("::ffff:192.0.2.7")}, "v4-lab"},
		{"an IPv4 prefix never matches an IPv6 client", Client{IP: a("::c000:207")}, "fallback"},
	} {
		ch, _ := inv.Choose(tt.c)
		if got := ch.Profile.Name; got != tt.want {
			t.Errorf("%s (%+v): %s, want %s", tt.name, tt.c, got, tt.want)
		}
	}
}
