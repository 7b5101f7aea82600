package allow

import (
	"net/netip"
	"testing"
)

// IPv6 lists: "::/0" opens every IPv6 client and no IPv4 one (the README
// writes [0.0.0.0/0, "::/0"] for everyone); link-local clients need
// fe80::/10, whatever their zone.
func TestCheckIPv6Lists(t *testing.T) {
	for _, tt := range []struct {
		list   []string
		client string
		want   bool
	}{
		{[]string{"::/0"}, "2001:db8::1", true},
		{[]string{"::/0"}, "fe80::1%br0", true},
		{[]string{"::/0"}, "192.0.2.7", false},
		{[]string{"::/0"}, "::ffff:192.0.2.7", false}, // an IPv4 client, as a dual-stack socket saw it
		{[]string{"0.0.0.0/0", "::/0"}, "::ffff:192.0.2.7", true},
		{[]string{"2001:db8::/112"}, "2001:db8::ffff", true},
		{[]string{"2001:db8::/112"}, "2001:db8::1:66", false}, // the same /64, outside the list
		{[]string{"2001:db8::/112"}, "fe80::1%br0", false},
		{[]string{"2001:db8::/112", "fe80::/10"}, "fe80::1%br0", true},
		{[]string{"2001:db8::/112", "fe80::/10"}, "fe80::1", true},
	} {
		l := List{Key: "allow"}
		for _, p := range tt.list {
			l.Prefixes = append(l.Prefixes, netip.MustParsePrefix(p))
		}
		if d := l.Check(netip.MustParseAddr(tt.client)); d.Allowed != tt.want {
			t.Errorf("%v: Check(%s) = %+v, want allowed %v", tt.list, tt.client, d, tt.want)
		}
	}
}
