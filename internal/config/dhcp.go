package config

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// DHCP configures the DHCP server and the PXE boot server.
type DHCP struct {
	// Mode is off, proxy (answer PXE clients only, beside another DHCP
	// server) or authoritative (give addresses).
	Mode string `yaml:"mode"`
	// Interfaces to listen on. Required unless mode is off: a DHCP server
	// must never answer on a network nobody meant it to.
	Interfaces []string `yaml:"interfaces"`
	// Allow lists the client subnets served, by the receiving interface's
	// subnet or the relay's giaddr. Empty: the subnets below, plus in proxy
	// mode the subnets of the served interfaces.
	Allow []Prefix `yaml:"allow"`
	// ServerAddress is the address clients fetch loaders and scripts from.
	// Empty: the receiving interface's address (the relay's subnet for
	// relayed clients: the first address of the served interfaces).
	ServerAddress string `yaml:"server_address"`
	// HTTPPort is the port in the URLs handed to iPXE and UEFI HTTP clients.
	// 0: the port of http.listen.
	HTTPPort int `yaml:"http_port"`
	// Loaders names the first-stage loader per firmware, as paths in root.
	Loaders Loaders `yaml:"loaders"`
	// IPXEScript is the path, below the HTTP root, of the script iPXE gets.
	IPXEScript string `yaml:"ipxe_script"`
	// RateLimit is the packets per second answered per MAC address (burst
	// twice that); a firmware retry storm costs no more.
	RateLimit int `yaml:"rate_limit"`
	// LeaseTime is the default lease time.
	LeaseTime Duration `yaml:"lease_time"`
	// OfferHold is how long an offered address stays held for its client.
	OfferHold Duration `yaml:"offer_hold"`
	// Subnets are the address pools, for authoritative mode.
	Subnets []Subnet `yaml:"subnets"`
}

// Loaders are the first-stage boot loaders by firmware, as paths served
// over TFTP (URLs over HTTP for UEFI HTTP boot).
type Loaders struct {
	BIOS      string `yaml:"bios"`       // arch 0: PXE ROM
	EFIx64    string `yaml:"efi_x64"`    // arch 7 and 9
	EFIia32   string `yaml:"efi_ia32"`   // arch 6
	EFIarm64  string `yaml:"efi_arm64"`  // arch 11
	EFIarm32  string `yaml:"efi_arm32"`  // arch 10
	HTTPx64   string `yaml:"http_x64"`   // arch 16, fetched over HTTP
	HTTParm64 string `yaml:"http_arm64"` // arch 19, fetched over HTTP
	// SecureBootX64 is the shim given to x64 UEFI clients on the Secure
	// Boot path; it fetches grubx64.efi from the same directory.
	SecureBootX64 string `yaml:"secure_boot_x64"`
}

// Subnet is one IPv4 subnet with its pool and options.
type Subnet struct {
	Subnet       Prefix        `yaml:"subnet"`
	Pools        []string      `yaml:"pools"` // "first-last", e.g. "192.0.2.100-192.0.2.200"
	Router       string        `yaml:"router"`
	DNS          []string      `yaml:"dns"`
	Domain       string        `yaml:"domain"`
	NTP          []string      `yaml:"ntp"`
	LeaseTime    Duration      `yaml:"lease_time"` // 0: dhcp.lease_time
	Reservations []Reservation `yaml:"reservations"`
	// SecureBoot sends every x64 UEFI client of this subnet down the shim →
	// signed GRUB chain.
	SecureBoot bool `yaml:"secure_boot"`
}

// Reservation gives one client a fixed address, by MAC or client id.
type Reservation struct {
	MAC      string `yaml:"mac"`
	ClientID string `yaml:"client_id"` // hex, colons allowed, as in option 61
	IP       string `yaml:"ip"`
	Hostname string `yaml:"hostname"`
}

// Prefix is a netip.Prefix written as "192.0.2.0/24".
type Prefix struct{ netip.Prefix }

// UnmarshalText parses CIDR notation.
func (p *Prefix) UnmarshalText(b []byte) error {
	v, err := netip.ParsePrefix(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a subnet like 192.0.2.0/24", b)
	}
	p.Prefix = v.Masked()
	return nil
}

// MarshalText writes CIDR notation.
func (p Prefix) MarshalText() ([]byte, error) { return []byte(p.Prefix.String()), nil }

func defaultDHCP() DHCP {
	return DHCP{
		Mode:       "off",
		IPXEScript: "boot.ipxe",
		RateLimit:  10,
		LeaseTime:  Duration(time.Hour),
		OfferHold:  Duration(30 * time.Second),
		Loaders: Loaders{
			BIOS:          "undionly.kpxe",
			EFIx64:        "snponly.efi",
			EFIia32:       "ipxe-ia32.efi",
			EFIarm64:      "arm64/snponly.efi",
			EFIarm32:      "arm32/snponly.efi",
			HTTPx64:       "ipxe.efi",
			HTTParm64:     "arm64/ipxe.efi",
			SecureBootX64: "shimx64.efi",
		},
	}
}

// ParseRange parses "first-last" into two IPv4 addresses.
func ParseRange(s string) (netip.Addr, netip.Addr, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("%q is not a range like 192.0.2.100-192.0.2.200", s)
	}
	first, err1 := netip.ParseAddr(strings.TrimSpace(a))
	last, err2 := netip.ParseAddr(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || !first.Is4() || !last.Is4() {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("%q is not a range of IPv4 addresses", s)
	}
	if last.Less(first) {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("%q: the last address is before the first", s)
	}
	return first, last, nil
}

// ParseClientID parses hex with optional colons.
func ParseClientID(s string) ([]byte, error) {
	h := strings.ReplaceAll(strings.ReplaceAll(s, ":", ""), "-", "")
	if len(h) == 0 || len(h)%2 != 0 {
		return nil, fmt.Errorf("%q is not hex bytes like 01:52:54:00:12:34:56", s)
	}
	out := make([]byte, len(h)/2)
	for i := range out {
		var b byte
		if _, err := fmt.Sscanf(h[2*i:2*i+2], "%02x", &b); err != nil {
			return nil, fmt.Errorf("%q is not hex bytes like 01:52:54:00:12:34:56", s)
		}
		out[i] = b
	}
	return out, nil
}

func (d *DHCP) validate(bad func(key, format string, args ...any)) {
	switch d.Mode {
	case "off", "proxy", "authoritative":
	default:
		bad("dhcp.mode", "%q is not one of off, proxy, authoritative", d.Mode)
	}
	if d.Mode != "off" && len(d.Interfaces) == 0 {
		bad("dhcp.interfaces", "name the interfaces to serve (a DHCP server must not answer everywhere)")
	}
	if d.ServerAddress != "" {
		if a, err := netip.ParseAddr(d.ServerAddress); err != nil || !a.Is4() {
			bad("dhcp.server_address", "%q is not an IPv4 address", d.ServerAddress)
		}
	}
	if d.HTTPPort < 0 || d.HTTPPort > 65535 {
		bad("dhcp.http_port", "%d is not a port", d.HTTPPort)
	}
	if d.RateLimit < 1 {
		bad("dhcp.rate_limit", "%d must be at least 1 packet per second", d.RateLimit)
	}
	if d.LeaseTime.D() < time.Minute {
		bad("dhcp.lease_time", "%s is shorter than a minute", d.LeaseTime)
	}
	if d.Mode == "authoritative" && len(d.Subnets) == 0 {
		bad("dhcp.subnets", "authoritative mode needs at least one subnet")
	}
	seenIP := map[netip.Addr]string{}
	seenMAC := map[string]string{}
	for i, s := range d.Subnets {
		key := fmt.Sprintf("dhcp.subnets[%d]", i)
		if !s.Subnet.IsValid() || !s.Subnet.Addr().Is4() {
			bad(key+".subnet", "an IPv4 subnet is required, like 192.0.2.0/24")
			continue
		}
		for j, p := range s.Pools {
			first, last, err := ParseRange(p)
			if err != nil {
				bad(fmt.Sprintf("%s.pools[%d]", key, j), "%v", err)
				continue
			}
			if !s.Subnet.Contains(first) || !s.Subnet.Contains(last) {
				bad(fmt.Sprintf("%s.pools[%d]", key, j), "%q is not inside %s", p, s.Subnet)
			}
		}
		for _, ip := range append([]string{s.Router}, append(s.DNS, s.NTP...)...) {
			if ip == "" {
				continue
			}
			if a, err := netip.ParseAddr(ip); err != nil || !a.Is4() {
				bad(key, "%q is not an IPv4 address", ip)
			}
		}
		if s.LeaseTime != 0 && s.LeaseTime.D() < time.Minute {
			bad(key+".lease_time", "%s is shorter than a minute", s.LeaseTime)
		}
		for j, r := range s.Reservations {
			rkey := fmt.Sprintf("%s.reservations[%d]", key, j)
			ip, err := netip.ParseAddr(r.IP)
			if err != nil || !s.Subnet.Contains(ip) {
				bad(rkey+".ip", "%q is not an address in %s", r.IP, s.Subnet)
			} else if other, dup := seenIP[ip]; dup {
				bad(rkey+".ip", "%s is also reserved at %s", ip, other)
			} else {
				seenIP[ip] = rkey
			}
			if r.MAC == "" && r.ClientID == "" {
				bad(rkey, "a reservation needs mac or client_id")
			}
			if r.MAC != "" {
				hw, err := net.ParseMAC(r.MAC)
				if err != nil {
					bad(rkey+".mac", "%q is not a MAC address", r.MAC)
				} else if other, dup := seenMAC[hw.String()]; dup {
					bad(rkey+".mac", "%s is also reserved at %s", hw, other)
				} else {
					seenMAC[hw.String()] = rkey
				}
			}
			if r.ClientID != "" {
				if _, err := ParseClientID(r.ClientID); err != nil {
					bad(rkey+".client_id", "%v", err)
				}
			}
		}
	}
	for i, a := range d.Subnets {
		for j := i + 1; j < len(d.Subnets); j++ {
			if b := d.Subnets[j]; a.Subnet.IsValid() && b.Subnet.IsValid() && a.Subnet.Overlaps(b.Subnet.Prefix) {
				bad(fmt.Sprintf("dhcp.subnets[%d].subnet", j), "%s overlaps dhcp.subnets[%d] %s", b.Subnet, i, a.Subnet)
			}
		}
	}
}
