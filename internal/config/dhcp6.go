package config

import (
	"fmt"
	"net/netip"
	"time"

	"bootforge/internal/dhcp/lease"
)

// DHCP6 configures the DHCPv6 server, under dhcp.v6. It shares the
// loaders, the iPXE script and the HTTP port with dhcp (one resolver
// decides both), and keeps its own mode and pools: an IPv6 network often
// has its addresses from another server or from SLAAC even where bootforge
// hands out the IPv4 ones, and the other way round.
type DHCP6 struct {
	// Mode is off, proxy (boot options only, to boot clients, beside the
	// network's DHCPv6 server or SLAAC) or authoritative (IA_NA addresses
	// from the subnets below, and boot options).
	Mode string `yaml:"mode"`
	// Interfaces to listen on (joined to ff02::1:2). Empty: dhcp.interfaces.
	Interfaces []string `yaml:"interfaces"`
	// ServerAddress is the IPv6 address in boot URLs. Not set: a global
	// address of the receiving interface (for relayed clients, the one the
	// relay sent to).
	ServerAddress netip.Addr `yaml:"server_address"`
	// Preference is the preference option (7) of advertisements, 0-255.
	// 255 makes clients take this server's advertisement at once.
	Preference int `yaml:"preference"`
	// LeaseTime is the valid lifetime of addresses; 0: dhcp.lease_time.
	LeaseTime Duration `yaml:"lease_time"`
	// Subnets are the address pools, for authoritative mode.
	Subnets []Subnet6 `yaml:"subnets"`
}

// Subnet6 is one IPv6 link (a /64) with its pools. A relayed client gets
// the subnet that holds the relay's link-address.
type Subnet6 struct {
	Subnet    Prefix        `yaml:"subnet"` // e.g. 2001:db8:1::/64
	Pools     []lease.Range `yaml:"pools"`  // "2001:db8:1::100-2001:db8:1::1ff"
	DNS       []netip.Addr  `yaml:"dns"`
	LeaseTime Duration      `yaml:"lease_time"` // 0: dhcp.v6.lease_time
}

// Interfaces6 are the interfaces DHCPv6 serves: dhcp.v6.interfaces, else
// dhcp.interfaces.
func (d DHCP) Interfaces6() []string {
	if len(d.V6.Interfaces) > 0 {
		return d.V6.Interfaces
	}
	return d.Interfaces
}

// LeaseTime6 is the valid lifetime of a subnet's addresses.
func (d DHCP) LeaseTime6(s Subnet6) time.Duration {
	switch {
	case s.LeaseTime != 0:
		return s.LeaseTime.D()
	case d.V6.LeaseTime != 0:
		return d.V6.LeaseTime.D()
	}
	return d.LeaseTime.D()
}

func (v *DHCP6) validate(d *DHCP, bad func(key, format string, args ...any)) {
	switch v.Mode {
	case "off", "proxy", "authoritative":
	default:
		bad("dhcp.v6.mode", "%q is not one of off, proxy, authoritative", v.Mode)
	}
	if v.Mode != "off" && len(d.Interfaces6()) == 0 {
		bad("dhcp.v6.interfaces", "name the interfaces to serve (or set dhcp.interfaces): a DHCPv6 server must not answer everywhere")
	}
	if v.ServerAddress.IsValid() && (!v.ServerAddress.Is6() || v.ServerAddress.Is4In6() || v.ServerAddress.IsLinkLocalUnicast()) {
		bad("dhcp.v6.server_address", "%q is not a global IPv6 address (a boot URL cannot carry a link-local one)", v.ServerAddress)
	}
	if v.Preference < 0 || v.Preference > 255 {
		bad("dhcp.v6.preference", "%d is not 0-255", v.Preference)
	}
	if v.LeaseTime != 0 && v.LeaseTime.D() < time.Minute {
		bad("dhcp.v6.lease_time", "%s is shorter than a minute", v.LeaseTime)
	}
	if v.Mode == "authoritative" && len(v.Subnets) == 0 {
		bad("dhcp.v6.subnets", "authoritative mode needs at least one subnet")
	}
	for i, s := range v.Subnets {
		key := fmt.Sprintf("dhcp.v6.subnets[%d]", i)
		if !s.Subnet.IsValid() || !s.Subnet.Addr().Is6() || s.Subnet.Addr().Is4In6() {
			bad(key+".subnet", "an IPv6 subnet is required, like 2001:db8:1::/64")
			continue
		}
		if s.Subnet.Bits() != 64 {
			// Addresses are handed out on a link, and an IPv6 link is a
			// /64 (RFC 4291 2.5.1); radvd announces it as such.
			bad(key+".subnet", "%s: an IPv6 link is a /64", s.Subnet)
		}
		if len(s.Pools) == 0 {
			bad(key+".pools", "name at least one range of %s", s.Subnet)
		}
		for j, p := range s.Pools {
			pkey := fmt.Sprintf("%s.pools[%d]", key, j)
			switch {
			case !p.First.Is6() || !p.Last.Is6():
				bad(pkey, "%q is not a range of IPv6 addresses", p)
			case !s.Subnet.Contains(p.First) || !s.Subnet.Contains(p.Last):
				bad(pkey, "%q is not inside %s", p, s.Subnet)
			}
			for k, q := range s.Pools[:j] {
				if !p.Last.Less(q.First) && !q.Last.Less(p.First) {
					bad(pkey, "%s overlaps %s.pools[%d] %s", p, key, k, q)
				}
			}
		}
		for j, a := range s.DNS {
			if !a.Is6() || a.Is4In6() {
				bad(fmt.Sprintf("%s.dns[%d]", key, j), "%q is not an IPv6 address", text(a))
			}
		}
		if s.LeaseTime != 0 && s.LeaseTime.D() < time.Minute {
			bad(key+".lease_time", "%s is shorter than a minute", s.LeaseTime)
		}
	}
	for i, a := range v.Subnets {
		for j := i + 1; j < len(v.Subnets); j++ {
			if b := v.Subnets[j]; a.Subnet.IsValid() && b.Subnet.IsValid() && a.Subnet.Overlaps(b.Subnet.Prefix) {
				bad(fmt.Sprintf("dhcp.v6.subnets[%d].subnet", j), "%s overlaps dhcp.v6.subnets[%d] %s", b.Subnet, i, a.Subnet)
			}
		}
	}
}
