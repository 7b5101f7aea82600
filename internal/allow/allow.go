// Package allow answers one question for every listener — TFTP, HTTP(S),
// DHCP and the API: may this client address ask at all?
//
// The specification asks to restrict network boot to the provisioning
// networks and block it from user networks. A boot server that answers
// anyone who can reach it hands loaders, menus and kernel command lines
// to any machine on a routed user VLAN, so each listener checks the
// client first, before parsing, opening or deciding anything. The check
// lives here, once, so that the four adapters cannot disagree on what
// "in the list" means (IPv4-mapped IPv6, zones, the empty list); each
// adapter acts on the Decision and builds its log line and boot-log event
// from it.
package allow

import (
	"fmt"
	"net/http"
	"net/netip"
)

// List is the client subnets a listener answers. Empty allows every
// client.
type List struct {
	// Key names the setting the prefixes came from ("tftp.allow", or
	// "allow" when the listener has none of its own), for the reason a
	// refusal gives.
	Key      string
	Prefixes []netip.Prefix
}

// Decision is the answer for one client.
type Decision struct {
	Client  netip.Addr // as checked: unmapped, without a zone
	Allowed bool
	Reason  string // why not; empty when allowed
}

// Check decides whether client may ask. An IPv4-mapped IPv6 address
// (::ffff:192.0.2.7, what a dual-stack socket reports for an IPv4 peer)
// is checked as the IPv4 address it is, and an IPv6 zone is dropped: a
// prefix never contains an address with a zone.
func (l List) Check(client netip.Addr) Decision {
	a := client.Unmap().WithZone("")
	d := Decision{Client: a, Allowed: true}
	if len(l.Prefixes) == 0 {
		return d
	}
	for _, p := range l.Prefixes {
		if p.Contains(a) {
			return d
		}
	}
	d.Allowed = false
	d.Reason = fmt.Sprintf("%s is not in %s", a, l.Key)
	if !a.IsValid() {
		d.Reason = "no client address; " + l.Key + " is set"
	}
	return d
}

// Empty reports whether the list allows every client.
func (l List) Empty() bool { return len(l.Prefixes) == 0 }

// Request checks the client of an HTTP request (its RemoteAddr). A nil
// list allows every client.
func (l *List) Request(r *http.Request) Decision {
	client, _ := netip.ParseAddrPort(r.RemoteAddr)
	if l == nil {
		return Decision{Client: client.Addr().Unmap(), Allowed: true}
	}
	return l.Check(client.Addr())
}
