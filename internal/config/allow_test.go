package config

import (
	"net/netip"
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
