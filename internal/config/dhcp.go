package config

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"bootforge/internal/boot"
	"bootforge/internal/dhcp/lease"
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
	// Not set (the zero Addr): the receiving interface's address (the
	// relay's subnet for relayed clients: the first address of the served
	// interfaces).
	ServerAddress netip.Addr `yaml:"server_address"`
	// HTTPPort is the port in the URLs handed to iPXE and UEFI HTTP clients.
	// 0: the port of http.listen.
	HTTPPort int `yaml:"http_port"`
	// Loaders names the first-stage loader per firmware, as paths in root.
	Loaders Loaders `yaml:"loaders"`
	// IPXEScript is the path, below the HTTP root, of the script iPXE gets.
	IPXEScript string `yaml:"ipxe_script"`
	// BootServerDiscovery, in proxy mode, leaves the boot file out of the
	// offer to PXE firmware and sends it to the boot server on udp/4011
	// (PXE 2.1 boot server discovery), whose ACK names the file.
	BootServerDiscovery bool `yaml:"boot_server_discovery"`
	// RateLimit is the packets per second answered per MAC address (burst
	// twice that); a firmware retry storm costs no more.
	RateLimit int `yaml:"rate_limit"`
	// LeaseTime is the default lease time.
	LeaseTime Duration `yaml:"lease_time"`
	// OfferHold is how long an offered address stays held for its client.
	OfferHold Duration `yaml:"offer_hold"`
	// Subnets are the address pools, for authoritative mode.
	Subnets []Subnet `yaml:"subnets"`
	// Watch looks for other DHCP servers on the served interfaces.
	Watch Watch `yaml:"watch"`
	// V6 is the DHCPv6 server (internal/dhcp6), configured apart from the
	// IPv4 one above: its own mode and /64 pools.
	V6 DHCP6 `yaml:"v6"`
}

// Watch is the rogue-DHCP watch.
type Watch struct {
	// Enabled listens for other servers' broadcast replies (needs
	// CAP_NET_RAW; without it the watch is off, with a warning).
	Enabled bool `yaml:"enabled"`
	// Probe, if not 0, also broadcasts a DISCOVER this often, to find
	// servers that answer clients by unicast.
	Probe Duration `yaml:"probe"`
}

// Loaders are the first-stage boot loaders by firmware, as paths served
// over TFTP (URLs over HTTP for UEFI HTTP boot).
//
// Which firmware a key serves follows from the key and the firmware table
// in internal/boot, by one rule (loaderKey): "efi_x64" is what efi-x64
// fetches over TFTP, "http_x64" what it fetches by UEFI HTTP boot. Read
// them by firmware with TFTP and HTTP; a loader for another firmware is a
// field here with the key the rule gives it.
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

// TFTP returns the loaders fetched over TFTP, by firmware; a firmware
// without one is absent.
func (l Loaders) TFTP() map[boot.Firmware]string { return l.byFirmware(false) }

// HTTP returns the loaders fetched by UEFI HTTP boot (paths below the HTTP
// root), by firmware; a firmware without one is absent.
func (l Loaders) HTTP() map[boot.Firmware]string { return l.byFirmware(true) }

func (l Loaders) byFirmware(http bool) map[boot.Firmware]string {
	v := reflect.ValueOf(l)
	out := map[boot.Firmware]string{}
	for _, fw := range boot.Firmwares() {
		if f, ok := field(v, loaderKey(fw, http)); ok && f.String() != "" {
			out[fw] = f.String()
		}
	}
	return out
}

// loaderKey is the key under dhcp.loaders of the loader that fw fetches
// over TFTP ("efi-x64": efi_x64) or, if http, by UEFI HTTP boot
// ("efi-x64": http_x64). It is the one place keys and firmware meet.
func loaderKey(fw boot.Firmware, http bool) string {
	if http {
		return "http_" + strings.TrimPrefix(string(fw), "efi-")
	}
	return strings.ReplaceAll(string(fw), "-", "_")
}

// Subnet is one IPv4 subnet with its pool and options.
type Subnet struct {
	Subnet       Prefix        `yaml:"subnet"`
	Pools        []lease.Range `yaml:"pools"` // "first-last", e.g. "192.0.2.100-192.0.2.200"
	Router       netip.Addr    `yaml:"router"`
	DNS          []netip.Addr  `yaml:"dns"`
	Domain       string        `yaml:"domain"`
	NTP          []netip.Addr  `yaml:"ntp"`
	LeaseTime    Duration      `yaml:"lease_time"` // 0: dhcp.lease_time
	Reservations []Reservation `yaml:"reservations"`
	// SecureBoot sends every x64 UEFI client of this subnet down the shim →
	// signed GRUB chain.
	SecureBoot bool `yaml:"secure_boot"`
}

// Reservation gives one client a fixed address, by MAC or client id.
type Reservation struct {
	MAC      MAC        `yaml:"mac"`
	ClientID ClientID   `yaml:"client_id"` // hex, colons allowed, as in option 61
	IP       netip.Addr `yaml:"ip"`
	Hostname string     `yaml:"hostname"`
}

// Prefix is a netip.Prefix written as "192.0.2.0/24".
type Prefix struct{ netip.Prefix }

// UnmarshalText parses CIDR notation. An address with host bits set
// ("192.0.2.5/24") is refused rather than masked: it is a typo in the
// address or in the length, and masking it could serve a wider subnet than
// the operator meant (192.0.2.128/24 for 192.0.2.128/25). An IPv4-mapped
// IPv6 prefix ("::ffff:192.0.2.0/120") is refused too: clients are
// matched by their plain IPv4 address (allow.List.Check unmaps them), so
// it would match no one, and an allow-list holding it would silently
// refuse the very clients it names.
func (p *Prefix) UnmarshalText(b []byte) error {
	v, err := netip.ParsePrefix(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a subnet like 192.0.2.0/24", b)
	}
	if v != v.Masked() {
		return fmt.Errorf("%q has host bits set: the subnet is %s, or the length is wrong", b, v.Masked())
	}
	if v.Addr().Is4In6() {
		return fmt.Errorf("%q is an IPv4-mapped IPv6 prefix, which matches no client; write the IPv4 subnet (%s/%d)", b,
			v.Addr().Unmap(), max(v.Bits()-96, 0))
	}
	p.Prefix = v
	return nil
}

// MarshalText writes CIDR notation.
func (p Prefix) MarshalText() ([]byte, error) { return []byte(p.Prefix.String()), nil }

// MAC is a hardware address, written as net.ParseMAC reads it
// ("52:54:00:12:34:56"). Empty text is no address (nil).
type MAC net.HardwareAddr

// UnmarshalText parses a MAC address; empty text gives nil.
func (m *MAC) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*m = nil
		return nil
	}
	hw, err := net.ParseMAC(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a MAC address", b)
	}
	*m = MAC(hw)
	return nil
}

// MarshalText writes the address with colons; nil is empty text.
func (m MAC) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

func (m MAC) String() string { return net.HardwareAddr(m).String() }

// ClientID is a DHCP client identifier (option 61), written as hex bytes,
// colons or dashes between them allowed: "01:52:54:00:12:34:56". Empty
// text is no identifier (nil).
type ClientID []byte

// UnmarshalText parses hex bytes; empty text gives nil.
func (c *ClientID) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*c = nil
		return nil
	}
	h := strings.NewReplacer(":", "", "-", "").Replace(string(b))
	v, err := hex.DecodeString(h)
	if err != nil || len(v) == 0 {
		return fmt.Errorf("%q is not hex bytes like 01:52:54:00:12:34:56", b)
	}
	*c = ClientID(v)
	return nil
}

// MarshalText writes lower-case hex bytes with colons; nil is empty text.
func (c ClientID) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

func (c ClientID) String() string {
	parts := make([]string, len(c))
	for i, b := range c {
		parts[i] = hex.EncodeToString([]byte{b})
	}
	return strings.Join(parts, ":")
}

func defaultDHCP() DHCP {
	return DHCP{
		Mode:       "off",
		IPXEScript: "boot.ipxe",
		RateLimit:  10,
		LeaseTime:  Duration(time.Hour),
		OfferHold:  Duration(30 * time.Second),
		Watch:      Watch{Enabled: true},
		V6:         DHCP6{Mode: "off"},
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

func (d *DHCP) validate(bad func(key, format string, args ...any)) {
	switch d.Mode {
	case "off", "proxy", "authoritative":
	default:
		bad("dhcp.mode", "%q is not one of off, proxy, authoritative", d.Mode)
	}
	if d.Mode != "off" && len(d.Interfaces) == 0 {
		bad("dhcp.interfaces", "name the interfaces to serve (a DHCP server must not answer everywhere)")
	}
	if d.BootServerDiscovery && d.Mode != "proxy" {
		// Only proxy mode listens on udp/4011.
		bad("dhcp.boot_server_discovery", "works only in proxy mode (mode is %q)", d.Mode)
	}
	if d.ServerAddress.IsValid() && !d.ServerAddress.Is4() {
		bad("dhcp.server_address", "%q is not an IPv4 address", d.ServerAddress)
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
	if p := d.Watch.Probe.D(); p != 0 && p < 5*time.Second {
		bad("dhcp.watch.probe", "%s: probe at most every 5s (0: passive only)", d.Watch.Probe)
	}
	d.V6.validate(d, bad)
	seenIP := map[netip.Addr]string{}
	seenMAC := map[string]string{}
	for i, s := range d.Subnets {
		key := fmt.Sprintf("dhcp.subnets[%d]", i)
		if !s.Subnet.IsValid() || !s.Subnet.Addr().Is4() {
			bad(key+".subnet", "an IPv4 subnet is required, like 192.0.2.0/24")
			continue
		}
		for j, p := range s.Pools {
			pkey := fmt.Sprintf("%s.pools[%d]", key, j)
			switch {
			case !p.First.Is4() || !p.Last.Is4():
				bad(pkey, "%q is not a range of IPv4 addresses", p)
			case !s.Subnet.Contains(p.First) || !s.Subnet.Contains(p.Last):
				bad(pkey, "%q is not inside %s", p, s.Subnet)
			}
			// Overlapping pools are refused, as Kea does: one of them is
			// not what was meant, and a reader cannot tell which.
			for k, q := range s.Pools[:j] {
				if !p.Last.Less(q.First) && !q.Last.Less(p.First) {
					bad(pkey, "%s overlaps %s.pools[%d] %s", p, key, k, q)
				}
			}
		}
		switch {
		case s.Router.IsValid() && !s.Router.Is4():
			bad(key+".router", "%q is not an IPv4 address", s.Router)
		case s.Router.IsValid() && !s.Subnet.Contains(s.Router):
			// A client can reach a default gateway only on its own link.
			bad(key+".router", "%s is not in the subnet %s: clients could not reach it", s.Router, s.Subnet)
		}
		for _, list := range []struct {
			name  string
			addrs []netip.Addr
		}{{"dns", s.DNS}, {"ntp", s.NTP}} {
			for j, a := range list.addrs {
				if !a.Is4() {
					bad(fmt.Sprintf("%s.%s[%d]", key, list.name, j), "%q is not an IPv4 address", text(a))
				}
			}
		}
		if s.LeaseTime != 0 && s.LeaseTime.D() < time.Minute {
			bad(key+".lease_time", "%s is shorter than a minute", s.LeaseTime)
		}
		for j, r := range s.Reservations {
			rkey := fmt.Sprintf("%s.reservations[%d]", key, j)
			if !r.IP.IsValid() {
				bad(rkey+".ip", "an address in %s is required", s.Subnet)
			} else if !s.Subnet.Contains(r.IP) {
				bad(rkey+".ip", "%q is not an address in %s", r.IP, s.Subnet)
			} else if other, dup := seenIP[r.IP]; dup {
				bad(rkey+".ip", "%s is also reserved at %s", r.IP, other)
			} else {
				seenIP[r.IP] = rkey
			}
			if len(r.MAC) == 0 && len(r.ClientID) == 0 {
				bad(rkey, "a reservation needs mac or client_id")
			}
			if len(r.MAC) > 0 {
				if other, dup := seenMAC[r.MAC.String()]; dup {
					bad(rkey+".mac", "%s is also reserved at %s", r.MAC, other)
				} else {
					seenMAC[r.MAC.String()] = rkey
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

// text is an address as it was written: empty for the zero Addr, which
// netip prints as "invalid IP".
func text(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
