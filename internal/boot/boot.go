// Package boot is bootforge's domain core: what we know about a client at
// one step of its boot (Client), and what it gets next (Plan).
//
// Every boot is a conversation over several protocols: the firmware's DHCP
// asks which loader to fetch, the loader asks again, iPXE asks for a script,
// the script fetches kernels and images. At each step the question is the
// same, so the answer comes from one pure function, Resolver.Resolve, with
// no I/O. DHCP, TFTP and HTTP code only turns packets into a Client and a
// Plan into bytes. That keeps the decisions in one place, testable with a
// table, and keeps the protocol code ignorant of policy.
package boot

import (
	"net"
	"net/netip"
	"strings"
)

// Stage is which program is asking.
type Stage string

// Stages of a boot.
const (
	StageFirmware Stage = "firmware" // the PXE ROM or UEFI's own PXE/HTTP client
	StageIPXE     Stage = "ipxe"     // iPXE, chainloaded or built in
)

// Client is what we know about a client at one step of its boot: from a
// DHCP packet, from what iPXE reports in its script request, or from what
// an earlier step taught us (a Sighting). Fields a step cannot know stay
// zero.
type Client struct {
	MAC         net.HardwareAddr
	ClientID    []byte // DHCP option 61
	UUID        string // option 97 or iPXE's ${uuid}: lower case, with dashes
	Arch        Arch   // option 93
	HasArch     bool
	VendorClass string   // option 60, e.g. "PXEClient:Arch:00007:UNDI:003016"
	UserClass   []string // option 77, e.g. "iPXE"
	IPXE        bool     // option 175 present (iPXE's encapsulated options)
	// Firmware is the kind of loader the client runs: from option 93 over
	// DHCP, from ${buildarch} and ${platform} for iPXE, BIOS for pxelinux.
	Firmware Firmware
	// SMBIOS facts, as iPXE reports them.
	Manufacturer string
	Product      string
	Serial       string

	IP    netip.Addr // the client's address, if it has one
	Relay netip.Addr // giaddr, if relayed
	// Link is an address of ours on the client's own network when it is
	// not relayed: the receiving interface's. With IP and Relay it says
	// which subnet the client is on before it has an address.
	Link      netip.Addr
	CircuitID []byte     // option 82.1
	RemoteID  []byte     // option 82.2
	Interface string     // the interface the request arrived on
	Server    netip.Addr // the address the client reaches us at
}

// OnNetwork reports whether the client is on p: by its address, its
// relay's, or, for a client on a link we serve directly, that link's.
// IPv4 and IPv6 prefixes alike; an address is compared as it is, not as
// a socket wrote it (an IPv4-mapped ::ffff:192.0.2.7 is 192.0.2.7, a
// link-local zone is dropped), since netip's Contains matches neither.
func (c *Client) OnNetwork(p netip.Prefix) bool {
	in := func(a netip.Addr) bool { return a.IsValid() && p.Contains(a.Unmap().WithZone("")) }
	return in(c.IP) || in(c.Relay) || (!c.Relay.IsValid() && in(c.Link))
}

// PXE reports whether the client is network-booting: vendor class
// PXEClient or HTTPClient, or iPXE.
func (c Client) PXE() bool {
	return strings.HasPrefix(c.VendorClass, "PXEClient") || c.HTTPClient() || c.IsIPXE()
}

// HTTPClient reports whether the client asked for UEFI HTTP boot.
func (c Client) HTTPClient() bool { return strings.HasPrefix(c.VendorClass, "HTTPClient") }

// IsIPXE reports whether the client is iPXE: user class "iPXE" or option
// 175. Either is enough, because some builds send only one.
func (c Client) IsIPXE() bool {
	if c.IPXE {
		return true
	}
	for _, u := range c.UserClass {
		if u == "iPXE" {
			return true
		}
	}
	return false
}

// Plan is the answer for one step.
type Plan struct {
	// Boot is false for clients that are not network-booting: they get an
	// address (in authoritative mode) and nothing else.
	Boot bool
	// Firmware and Stage say what we took the client for.
	Firmware Firmware
	Stage    Stage
	// BootFile is a path served over TFTP, or a URL for HTTP clients.
	BootFile string
	// HTTPClient means the answer must carry vendor class HTTPClient, as
	// UEFI HTTP boot requires.
	HTTPClient bool
	// SecureBoot means the client takes the shim → signed GRUB chain.
	SecureBoot bool
	// Profile is the profile the client's menu will come from, when the
	// inventory has one for it.
	Profile string
	// Reason explains the plan in logs and previews.
	Reason string
}
