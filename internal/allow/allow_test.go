package allow

import (
	"net/netip"
	"testing"
)

func TestCheck(t *testing.T) {
	l := List{Key: "tftp.allow", Prefixes: []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("2001:db8:1::/48"),
	}}
	for _, tt := range []struct {
		client string
		want   bool
	}{
		{"192.0.2.7", true},
		{"192.0.2.255", true},
		{"198.51.100.7", false},
		{"::ffff:192.0.2.7", true},     // a dual-stack socket's IPv4 peer
		{"::ffff:198.51.100.7", false}, // ... and a refused one
		{"2001:db8:1::5", true},
		{"2001:db8:1::5%eth0", true}, // a zone does not hide the address
		{"2001:db8:2::5", false},
		{"::1", false},
	} {
		d := l.Check(netip.MustParseAddr(tt.client))
		if d.Allowed != tt.want {
			t.Errorf("Check(%s) = %v, want %v", tt.client, d.Allowed, tt.want)
		}
		if d.Allowed != (d.Reason == "") {
			t.Errorf("Check(%s): allowed %v with reason %q", tt.client, d.Allowed, d.Reason)
		}
		if d.Client.Is4In6() || d.Client.Zone() != "" {
			t.Errorf("Check(%s) checked %s, not the plain address", tt.client, d.Client)
		}
	}
	d := l.Check(netip.MustParseAddr("::ffff:198.51.100.7"))
	if want := "198.51.100.7 is not in tftp.allow"; d.Reason != want {
		t.Errorf("reason %q, want %q", d.Reason, want)
	}
	if d := l.Check(netip.Addr{}); d.Allowed {
		t.Error("an unknown client address passed a list")
	}
}

func TestEmptyAllowsEveryone(t *testing.T) {
	var l List
	for _, a := range []string{"192.0.2.7", "198.51.100.7", "::1", "::ffff:10.0.0.1"} {
		if d := l.Check(netip.MustParseAddr(a)); !d.Allowed || d.Reason != "" {
			t.Errorf("empty list: Check(%s) = %+v", a, d)
		}
	}
}
