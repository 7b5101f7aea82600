package boot

import (
	"net/netip"
	"testing"
)

func TestChooseMirror(t *testing.T) {
	remote := netip.MustParsePrefix("198.51.100.0/24")
	verified := map[string]bool{"debian@1.0.0": true}
	bySubnet := Mirror{URL: "http://198.51.100.1:8080", Subnets: []netip.Prefix{remote}, Versions: verified}
	byRelay := Mirror{URL: "http://198.18.0.1:8080", Relays: []netip.Addr{netip.MustParseAddr("198.18.0.254")}, Versions: verified}
	unverified := bySubnet
	unverified.Versions = nil
	tests := []struct {
		name    string
		c       Client
		proof   []string
		mirrors []Mirror
		want    string // "" for the primary
		why     string
	}{
		{"client on the subnet", Client{IP: netip.MustParseAddr("198.51.100.20")}, nil, []Mirror{bySubnet}, bySubnet.URL, "mirror " + bySubnet.URL},
		{"relayed from the subnet, no address yet", Client{Relay: netip.MustParseAddr("198.51.100.1")}, nil, []Mirror{bySubnet}, bySubnet.URL, "mirror " + bySubnet.URL},
		{"by giaddr", Client{IP: netip.MustParseAddr("192.0.2.50"), Relay: netip.MustParseAddr("198.18.0.254")}, nil, []Mirror{bySubnet, byRelay}, byRelay.URL, "mirror " + byRelay.URL},
		{"another subnet", Client{IP: netip.MustParseAddr("192.0.2.50")}, nil, []Mirror{bySubnet}, "", ""},
		{"not verified", Client{IP: netip.MustParseAddr("198.51.100.20")}, nil, []Mirror{unverified}, "", "mirror " + bySubnet.URL + " is not verified"},
		{"first verified one wins", Client{IP: netip.MustParseAddr("198.51.100.20")}, nil, []Mirror{unverified, {URL: "http://198.51.100.2", Subnets: []netip.Prefix{remote}, Versions: verified}}, "http://198.51.100.2", "mirror http://198.51.100.2"},
		{"one-shot stays here", Client{IP: netip.MustParseAddr("198.51.100.20")}, []string{"images/debian/1.0.0/vmlinuz"}, []Mirror{bySubnet}, "", "one-shot: files from this server, which must see the kernel fetched"},
		{"no mirrors", Client{IP: netip.MustParseAddr("198.51.100.20")}, nil, nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, why, ok := ChooseMirror(Decision{Client: tt.c, Proof: tt.proof}, tt.mirrors)
			if ok != (tt.want != "") || m.URL != tt.want || why != tt.why {
				t.Errorf("got %q, %q, %v; want %q, %q", m.URL, why, ok, tt.want, tt.why)
			}
		})
	}
}

func TestMirrorFor(t *testing.T) {
	m := Mirror{URL: "http://198.51.100.1:8080", Subnets: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		Redirect: true, Versions: map[string]bool{"debian@1.0.0": true}}
	noRedirect := m
	noRedirect.Redirect = false
	in := netip.MustParseAddr("198.51.100.20")
	tests := []struct {
		name    string
		addr    netip.Addr
		version string
		mirrors []Mirror
		ok      bool
	}{
		{"redirected", in, "debian@1.0.0", []Mirror{m}, true},
		{"a version the mirror lacks", in, "debian@2.0.0", []Mirror{m}, false},
		{"another subnet", netip.MustParseAddr("192.0.2.9"), "debian@1.0.0", []Mirror{m}, false},
		{"redirect off", in, "debian@1.0.0", []Mirror{noRedirect}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := MirrorFor(tt.addr, netip.Addr{}, tt.version, tt.mirrors); ok != tt.ok {
				t.Errorf("got %v, want %v", ok, tt.ok)
			}
		})
	}
}
