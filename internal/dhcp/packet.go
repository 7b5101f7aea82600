package dhcp

import (
	"errors"
	"net"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"bootforge/internal/boot"
)

// Offsets in a BOOTP packet (RFC 951, RFC 2131).
const (
	offSname   = 44
	offFile    = 108
	offOptions = 240 // after the magic cookie
)

// PXE option 43 sub-option 6, PXE_DISCOVERY_CONTROL, with bit 3 set: "boot
// file name present: download it, skip boot server discovery". Ending with
// sub-option 255.
var pxeVendorOptions = []byte{6, 1, 8, 255}

var errNotRequest = errors.New("not a BOOTREQUEST")

// parse decodes a request. It merges options carried in the file and sname
// fields under option 52 (RFC 2132 9.3), which the library leaves unread.
func parse(b []byte) (*dhcpv4.DHCPv4, error) {
	p, err := dhcpv4.FromBytes(b)
	if err != nil {
		return nil, err
	}
	if p.OpCode != dhcpv4.OpcodeBootRequest {
		return nil, errNotRequest
	}
	if ov := p.Options.Get(dhcpv4.OptionOptionOverload); len(ov) == 1 && len(b) >= offOptions {
		// RFC 3396 order: options field, then file, then sname.
		if ov[0]&1 != 0 {
			if err := merge(p, b[offFile:offFile+128]); err != nil {
				return nil, err
			}
			p.BootFileName = ""
		}
		if ov[0]&2 != 0 {
			if err := merge(p, b[offSname:offSname+64]); err != nil {
				return nil, err
			}
			p.ServerHostName = ""
		}
	}
	if p.MessageType() == dhcpv4.MessageTypeNone {
		return nil, errors.New("no message type (BOOTP is not served)")
	}
	return p, nil
}

func merge(p *dhcpv4.DHCPv4, field []byte) error {
	extra := dhcpv4.Options{}
	if err := extra.FromBytes(field); err != nil {
		return err
	}
	for code, v := range extra {
		p.Options[code] = append(p.Options[code], v...)
	}
	return nil
}

// clientOf turns a request into what the resolver needs.
func clientOf(p *dhcpv4.DHCPv4, iface string, server netip.Addr) boot.Client {
	c := boot.Client{
		MAC:         p.ClientHWAddr,
		ClientID:    p.Options.Get(dhcpv4.OptionClientIdentifier),
		VendorClass: string(p.Options.Get(dhcpv4.OptionClassIdentifier)),
		UserClass:   userClass(p.Options.Get(dhcpv4.OptionUserClassInformation)),
		IPXE:        p.Options.Has(dhcpv4.GenericOptionCode(175)),
		Interface:   iface,
		Server:      server,
	}
	if a := p.Options.Get(dhcpv4.OptionClientSystemArchitectureType); len(a) >= 2 {
		c.Arch, c.HasArch = boot.Arch(uint16(a[0])<<8|uint16(a[1])), true
		c.Firmware, _ = c.Arch.Firmware()
	}
	if u := p.Options.Get(dhcpv4.OptionClientMachineIdentifier); len(u) == 17 && u[0] == 0 {
		c.UUID = boot.FormatUUID(u[1:])
	}
	if ip, ok := addr4(p.ClientIPAddr); ok {
		c.IP = ip
	}
	if ip, ok := addr4(p.GatewayIPAddr); ok {
		c.Relay = ip
	}
	if ri := p.RelayAgentInfo(); ri != nil {
		c.CircuitID = ri.Get(dhcpv4.AgentCircuitIDSubOption)
		c.RemoteID = ri.Get(dhcpv4.AgentRemoteIDSubOption)
	}
	return c
}

// userClass reads option 77. RFC 3004 wants length-prefixed strings, but
// iPXE and much UEFI firmware send one bare string, and some send garbage;
// whatever does not parse as RFC 3004 is taken as one string.
func userClass(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	var out []string
	for rest := b; len(rest) > 0; {
		n := int(rest[0])
		if n == 0 || n+1 > len(rest) {
			return []string{string(b)}
		}
		out = append(out, string(rest[1:1+n]))
		rest = rest[1+n:]
	}
	return out
}

// addr4 converts a packet's IPv4 field; false for 0.0.0.0 or malformed.
func addr4(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip.To4())
	if !ok || a.IsUnspecified() {
		return netip.Addr{}, false
	}
	return a, true
}

// withBoot adds a plan's boot answer to a reply.
func withBoot(reply, req *dhcpv4.DHCPv4, plan boot.Plan, server netip.Addr) {
	if !plan.Boot {
		return
	}
	reply.BootFileName = plan.BootFile
	reply.UpdateOption(dhcpv4.OptBootFileName(plan.BootFile))
	if plan.HTTPClient {
		reply.UpdateOption(dhcpv4.OptClassIdentifier("HTTPClient"))
	} else {
		// siaddr, and option 66 for the clients that read only options.
		reply.ServerIPAddr = server.AsSlice()
		reply.UpdateOption(dhcpv4.OptTFTPServerName(server.String()))
		reply.UpdateOption(dhcpv4.OptClassIdentifier("PXEClient"))
		if plan.Stage == boot.StageFirmware {
			reply.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionVendorSpecificInformation, pxeVendorOptions))
		}
	}
	if uuid := req.Options.Get(dhcpv4.OptionClientMachineIdentifier); uuid != nil {
		reply.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, uuid))
	}
}
