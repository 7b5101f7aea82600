package config

import (
	"strings"
	"testing"
)

// A mirror's subnets, relays and URL are checked at load, with line and key.
func TestMirrorsRefused(t *testing.T) {
	tests := []struct {
		name, text string
		key, msg   string
	}{
		{"host bits", "mirrors:\n  - {subnets: [198.51.100.7/24], url: \"http://198.51.100.1:8080\"}\n",
			"mirrors[0].subnets[0]", "host bits set"},
		{"ftp", "mirrors:\n  - {subnets: [198.51.100.0/24], url: \"ftp://198.51.100.1\"}\n",
			"mirrors[0].url", "scheme must be http or https"},
		{"no host", "mirrors:\n  - {subnets: [198.51.100.0/24], url: \"http:///x\"}\n",
			"mirrors[0].url", "has no host"},
		{"query", "mirrors:\n  - {subnets: [198.51.100.0/24], url: \"http://198.51.100.1/?a=b\"}\n",
			"mirrors[0].url", "no user, query or fragment"},
		{"no url", "mirrors:\n  - {subnets: [198.51.100.0/24]}\n",
			"mirrors[0].url", "no url"},
		{"no clients", "mirrors:\n  - {url: \"http://198.51.100.1:8080\"}\n",
			"mirrors[0]", "no subnets and no relays"},
		{"bad relay", "mirrors:\n  - {relays: [\"198.51.100.300\"], url: \"http://198.51.100.1:8080\"}\n",
			"mirrors[0].relays[0]", ""},
		{"twice", "mirrors:\n  - {subnets: [198.51.100.0/24], url: \"http://198.51.100.1:8080\"}\n  - {relays: [198.51.100.1], url: \"http://198.51.100.1:8080/\"}\n",
			"mirrors[1].url", "is also mirrors[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := parseErr(t, siblingPaths+tt.text)
			if e.Key != tt.key || !strings.Contains(e.Msg, tt.msg) || e.Line == 0 {
				t.Errorf("got %s (line %d, key %q), want key %q and %q", e, e.Line, e.Key, tt.key, tt.msg)
			}
		})
	}
}

func TestMirrorsAccepted(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte(siblingPaths+"mirrors:\n  - subnets: [198.51.100.0/24, 2001:db8::/32]\n    relays: [198.51.100.1]\n    url: https://mirror.example:8443/boot\n    redirect: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Mirrors[0]
	if len(m.Subnets) != 2 || m.Relays[0].String() != "198.51.100.1" || m.URL != "https://mirror.example:8443/boot" || !m.Redirect {
		t.Errorf("decoded %+v", m)
	}
}
