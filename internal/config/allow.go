package config

import "bootforge/internal/allow"

// AllowList is the allow-list of one listener: "tftp", "http" (HTTP and
// HTTPS), "dhcp" or "api". A boot listener's own list (tftp.allow,
// http.allow, dhcp.allow) wins; without one it takes the top-level allow.
// The API never inherits: it lives on the management network, not the
// boot networks, and has only api.allow. An empty list allows everyone
// (for DHCP: the defaults of dhcp.allow).
func (c Config) AllowList(listener string) allow.List {
	var own []Prefix
	switch listener {
	case "tftp":
		own = c.TFTP.Allow
	case "http":
		own = c.HTTP.Allow
	case "dhcp":
		own = c.DHCP.Allow
	case "api":
		return list("api.allow", c.API.Allow)
	default:
		panic("config: no listener " + listener)
	}
	if len(own) > 0 {
		return list(listener+".allow", own)
	}
	return list("allow", c.Allow)
}

func list(key string, ps []Prefix) allow.List {
	l := allow.List{Key: key}
	for _, p := range ps {
		l.Prefixes = append(l.Prefixes, p.Prefix)
	}
	return l
}
