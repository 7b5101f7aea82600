package config

import (
	"net/netip"
	"strings"
	"testing"
)

// A boot listener's own list wins over the top-level one; without one it
// inherits it. The API never inherits.
func TestAllowList(t *testing.T) {
	cfg, err := Parse("a.yaml", []byte(`root: /srv/boot
data_dir: /srv/state
allow: [192.0.2.0/24, "2001:db8::/32"]
tftp:
  allow: [198.51.100.0/24]
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		listener, key, allowed, refused string
	}{
		{"tftp", "tftp.allow", "198.51.100.9", "192.0.2.9"},
		{"http", "allow", "192.0.2.9", "198.51.100.9"},
		{"dhcp", "allow", "2001:db8::9", "198.51.100.9"},
	} {
		l := cfg.AllowList(tt.listener)
		if l.Key != tt.key {
			t.Errorf("%s: list from %q, want %q", tt.listener, l.Key, tt.key)
		}
		if !l.Check(netip.MustParseAddr(tt.allowed)).Allowed || l.Check(netip.MustParseAddr(tt.refused)).Allowed {
			t.Errorf("%s: %v allows the wrong clients", tt.listener, l.Prefixes)
		}
	}
	if l := cfg.AllowList("api"); !l.Empty() || l.Key != "api.allow" {
		t.Errorf("the API inherited %v from %s", l.Prefixes, l.Key)
	}
	if l := Default().AllowList("http"); !l.Empty() {
		t.Errorf("default allow-list %v, want none", l.Prefixes)
	}
	if _, err := Parse("a.yaml", []byte("root: /srv/boot\nallow: [192.0.2.1/24]\n")); err == nil {
		t.Error("allow: a subnet with host bits set was taken")
	}
	var c Config = Default()
	if err := c.Set("api.allow", "127.0.0.0/8,::1/128"); err != nil || len(c.AllowList("api").Prefixes) != 2 {
		t.Errorf("BOOTFORGE_API_ALLOW as a comma list: %v %v", err, c.API.Allow)
	}
}

// Clients are checked by their plain IPv4 address (allow.List.Check
// unmaps ::ffff:192.0.2.7), so an IPv4-mapped prefix in a list could
// never match anyone: it is refused at load, naming the IPv4 subnet to
// write, as a profile's subnet rule is.
func TestAllowMappedPrefixRefused(t *testing.T) {
	for _, p := range []string{"::ffff:192.0.2.0/120", "::ffff:0:0/96"} {
		_, err := Parse("a.yaml", []byte("root: /srv/boot\nallow: [\""+p+"\"]\n"))
		if err == nil {
			t.Errorf("allow: [%s] was taken; it matches no client", p)
			continue
		}
		want := map[string]string{"::ffff:192.0.2.0/120": "192.0.2.0/24", "::ffff:0:0/96": "0.0.0.0/0"}[p]
		if !strings.Contains(err.Error(), want) {
			t.Errorf("allow: [%s]: %v, want it to name %s", p, err, want)
		}
	}
	var c Config = Default()
	if err := c.Set("http.allow", "::ffff:198.51.100.0/120"); err == nil {
		t.Errorf("BOOTFORGE_HTTP_ALLOW with a mapped prefix was taken: %v", c.HTTP.Allow)
	}
}
