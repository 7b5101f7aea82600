package boot

import (
	"net/netip"
	"slices"
)

// Mirror is a second bootforge that serves copies of image versions to
// some clients (the config's mirrors), as the primary last verified it.
type Mirror struct {
	URL      string         // its file server base, e.g. http://198.51.100.1:8080
	Subnets  []netip.Prefix // clients on these networks use it
	Relays   []netip.Addr   // and clients relayed through these giaddrs
	Redirect bool           // the primary answers their image file requests with a 302
	// Versions are the image versions (NAME@VERSION) the primary found on
	// the mirror with the same manifest as its own at the last check.
	// Empty: the mirror is not verified (unreachable, different or
	// missing a version) and is not used.
	Versions map[string]bool
}

// Serves reports whether the mirror is meant for client c: c is on one of
// its subnets (by address, relay or link, as a profile's subnet rule
// matches) or was relayed by one of its relays.
func (m Mirror) Serves(c Client) bool {
	if c.Relay.IsValid() && slices.Contains(m.Relays, c.Relay) {
		return true
	}
	for _, p := range m.Subnets {
		if c.OnNetwork(p) {
			return true
		}
	}
	return false
}

// ChooseMirror picks the mirror whose URLs d's menu gives for the files of
// its image entries: the first mirror that serves d's client and is
// verified. A menu that carries a one-shot keeps the primary's URLs: the
// one-shot is spent when this server sees the kernel fetched, which it
// would not if the mirror served it. ok is false for the primary; why
// says which rule decided, for the log.
func ChooseMirror(d Decision, mirrors []Mirror) (m Mirror, why string, ok bool) {
	for _, m := range mirrors {
		if !m.Serves(d.Client) {
			continue
		}
		switch {
		case len(d.Proof) > 0:
			return Mirror{}, "one-shot: files from this server, which must see the kernel fetched", false
		case len(m.Versions) == 0:
			why = "mirror " + m.URL + " is not verified"
			continue
		}
		return m, "mirror " + m.URL, true
	}
	return Mirror{}, why, false
}

// MirrorFor picks the mirror for a request by client addr of a file of
// image version version (NAME@VERSION): the first verified mirror that
// serves addr and holds that version, for the file server's redirect.
// Only mirrors with Redirect are considered.
func MirrorFor(addr netip.Addr, relay netip.Addr, version string, mirrors []Mirror) (Mirror, bool) {
	c := Client{IP: addr, Relay: relay}
	for _, m := range mirrors {
		if m.Redirect && m.Versions[version] && m.Serves(c) {
			return m, true
		}
	}
	return Mirror{}, false
}
