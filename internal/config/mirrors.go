package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// Mirror is one entry of mirrors: a second bootforge that holds copies of
// the active image versions (bootforge mirror sync) for the clients of
// some subnets or relays, so that their kernels, initrds and WIMs do not
// cross the WAN. Menus for those clients name the mirror's URL for the
// files of image entries; the menu itself still comes from here.
type Mirror struct {
	// Subnets are client subnets the mirror serves.
	Subnets []Prefix `yaml:"subnets"`
	// Relays are relay agents (giaddr) whose clients the mirror serves.
	Relays []netip.Addr `yaml:"relays"`
	// URL is the mirror's file server base, e.g. http://198.51.100.1:8080.
	URL string `yaml:"url"`
	// Redirect makes the file server answer those clients' requests for
	// image files with a 302 to the same path on the mirror.
	Redirect bool `yaml:"redirect"`
}

// validateMirrors checks mirrors: each has a base URL over http or https
// with a host and nothing after the path, and at least one subnet or
// relay (subnets are checked for host bits as they are decoded).
func validateMirrors(ms []Mirror, bad func(string, string, ...any)) {
	seen := map[string]int{}
	for i, m := range ms {
		key := fmt.Sprintf("mirrors[%d]", i)
		if err := CheckMirrorURL(m.URL); err != nil {
			bad(key+".url", "%v", err)
		} else if j, dup := seen[strings.TrimSuffix(m.URL, "/")]; dup {
			bad(key+".url", "%q is also mirrors[%d]", m.URL, j)
		} else {
			seen[strings.TrimSuffix(m.URL, "/")] = i
		}
		if len(m.Subnets) == 0 && len(m.Relays) == 0 {
			bad(key, "names no subnets and no relays: no client would use it")
		}
		for j, r := range m.Relays {
			if !r.IsValid() || r.IsUnspecified() {
				bad(fmt.Sprintf("%s.relays[%d]", key, j), "%q is not a relay agent address", r)
			}
		}
	}
}

// CheckMirrorURL accepts a mirror's base URL: http or https, a host, an
// optional path, and no user, query or fragment.
func CheckMirrorURL(s string) error {
	if s == "" {
		return fmt.Errorf("no url: name the mirror's file server, like http://198.51.100.1:8080")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL: %v", s, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: the scheme must be http or https", s)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%q has no host", s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(s, "?#"):
		return fmt.Errorf("%q: a base URL has no user, query or fragment", s)
	}
	return nil
}
