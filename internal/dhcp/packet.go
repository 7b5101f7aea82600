package dhcp

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"time"

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

// PXE 2.1 vendor sub-options (option 43) for boot server discovery.
const (
	pxeDiscoveryControl = 6  // PXE_DISCOVERY_CONTROL
	pxeBootServers      = 8  // PXE_BOOT_SERVERS: type, count, addresses
	pxeBootMenu         = 9  // PXE_BOOT_MENU: type, description
	pxeMenuPrompt       = 10 // PXE_MENU_PROMPT: timeout, prompt
	pxeBootItem         = 71 // PXE_BOOT_ITEM: type, layer (client's request, server's ACK)
	pxeEnd              = 255
)

// pxeBootServerType is the one boot server type bootforge announces, from
// the range the PXE spec leaves to vendors (0x8000-0xFFFE). Type 0 would
// mean "PXE bootstrap server": EDK2 takes it for local boot and gives up.
const pxeBootServerType = 0x8000

// Discovery control bits 0-2: no broadcast discovery (EDK2 broadcasts it to
// port 67, where the proxy answers only DISCOVERs), no multicast discovery
// (nobody listens on a multicast group), and accept only the servers in
// PXE_BOOT_SERVERS. Left: unicast to the listed server on udp/4011. Bit 3
// is clear, so the client does not expect a boot file in the offer.
const discoverUnicastOnly = 1<<0 | 1<<1 | 1<<2

// discoveryOptions is option 43 for a proxy offer that sends a PXE client
// to the boot server at server instead of naming the boot file: discovery
// control, one boot server, a one-item menu and a prompt with timeout 0,
// which makes the firmware take that item at once (PXE 2.1, table 2-1).
func discoveryOptions(server netip.Addr) []byte {
	const desc = "bootforge"
	ip := server.As4()
	typ := []byte{pxeBootServerType >> 8, pxeBootServerType & 0xff}
	b := []byte{pxeDiscoveryControl, 1, discoverUnicastOnly}
	b = append(b, pxeBootServers, 7, typ[0], typ[1], 1, ip[0], ip[1], ip[2], ip[3])
	b = append(b, pxeBootMenu, byte(3+len(desc)), typ[0], typ[1], byte(len(desc)))
	b = append(b, desc...)
	b = append(b, pxeMenuPrompt, byte(1+len(desc)), 0)
	b = append(b, desc...)
	return append(b, pxeEnd)
}

// bootItem returns the PXE_BOOT_ITEM (type and layer, 4 bytes) of a
// boot server request, or nil.
func bootItem(p *dhcpv4.DHCPv4) []byte {
	v := p.Options.Get(dhcpv4.OptionVendorSpecificInformation)
	for len(v) > 0 && v[0] != pxeEnd {
		if v[0] == 0 { // pad
			v = v[1:]
			continue
		}
		if len(v) < 2 || len(v) < 2+int(v[1]) {
			return nil
		}
		if v[0] == pxeBootItem && v[1] == 4 {
			return append([]byte(nil), v[2:6]...)
		}
		v = v[2+int(v[1]):]
	}
	return nil
}

var errNotRequest = errors.New("not a BOOTREQUEST")

// parse decodes a request, whose fields and options are then parts of b.
// It merges options carried in the file and sname fields under option 52
// (RFC 2132 9.3), which decode, as the library, leaves unread.
func parse(b []byte) (*dhcpv4.DHCPv4, error) {
	p, err := decode(b)
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
	c.CircuitID, c.RemoteID = relayIDs(p.Options.Get(dhcpv4.OptionRelayAgentInformation))
	return c
}

// relayIDs reads the circuit and remote IDs (sub-options 1 and 2) from
// the relay agent information, option 82 (RFC 3046), as the library's
// p.RelayAgentInfo() reads them (FuzzRelayIDs holds them equal): pad
// skipped, end ends, a sub-option given twice concatenated, a last code
// without a length read as empty, none if a value runs past the option's
// end. It makes no map of sub-options, as that did for every relayed
// packet; each ID shares the option's bytes.
func relayIDs(v []byte) (circuit, remote []byte) {
	for len(v) > 0 {
		code := v[0]
		if code == 0 { // pad
			v = v[1:]
			continue
		}
		if code == 255 { // end
			break
		}
		if len(v) < 2 {
			break
		}
		n := int(v[1])
		if len(v) < 2+n {
			return nil, nil
		}
		data := v[2 : 2+n : 2+n]
		switch code {
		case uint8(dhcpv4.AgentCircuitIDSubOption):
			circuit = join(circuit, data)
		case uint8(dhcpv4.AgentRemoteIDSubOption):
			remote = join(remote, data)
		}
		v = v[2+n:]
	}
	return circuit, remote
}

// join is a sub-option's value with data, given again, after it.
func join(value, data []byte) []byte {
	switch {
	case len(data) == 0:
		return value
	case value == nil:
		return data
	}
	return append(value[:len(value):len(value)], data...)
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

// bootOptions counts the options withBoot sets in a reply to req
// (TestBootOptionsCounted).
func bootOptions(req *dhcpv4.DHCPv4, plan boot.Plan) int {
	if !plan.Boot {
		return 0
	}
	n := 2 // boot file name, class identifier
	if !plan.HTTPClient {
		n++ // TFTP server name
		if plan.Stage == boot.StageFirmware {
			n++ // PXE vendor options
		}
	}
	return n + copied(req, dhcpv4.OptionClientMachineIdentifier)
}

// copied counts the option req has that a reply copies (1 or 0), for the
// reply's map.
func copied(req *dhcpv4.DHCPv4, c dhcpv4.OptionCode) int {
	if req.Options.Has(c) {
		return 1
	}
	return 0
}

// withBoot adds a plan's boot answer to a reply.
func withBoot(r *draft, req *dhcpv4.DHCPv4, plan boot.Plan, server netip.Addr) {
	if !plan.Boot {
		return
	}
	r.BootFileName = plan.BootFile
	r.setText(dhcpv4.OptionBootfileName, plan.BootFile)
	if plan.HTTPClient {
		r.setText(dhcpv4.OptionClassIdentifier, "HTTPClient")
	} else {
		// siaddr, and option 66 for the clients that read only options.
		r.ServerIPAddr = server.AsSlice()
		r.setAddrText(dhcpv4.OptionTFTPServerName, server)
		r.setText(dhcpv4.OptionClassIdentifier, "PXEClient")
		if plan.Stage == boot.StageFirmware {
			r.set(dhcpv4.OptionVendorSpecificInformation, pxeVendorOptions)
		}
	}
	echoUUID(r, req)
}

// echoUUID copies the client's machine identifier (option 97) into the
// reply, as the PXE spec asks of PXE servers.
func echoUUID(r *draft, req *dhcpv4.DHCPv4) {
	if uuid := req.Options.Get(dhcpv4.OptionClientMachineIdentifier); uuid != nil {
		r.set(dhcpv4.OptionClientMachineIdentifier, uuid)
	}
}

// draft is a reply being built: the packet, and the buffer its options'
// values are written into, in one object. Its setters write each value
// as the library's typed option of that kind writes it
// (TestReplySettersMatchLibrary). Built with the library's options and
// modifiers, each option was two or three objects, for a value that
// appendPacket copies into the packet a moment later (BenchmarkDORA, which
// also counts its client's objects: 122 per DORA then, 52 now).
type draft struct {
	dhcpv4.DHCPv4
	vals []byte // the values written so far, in buf until it is full
	buf  [replyValues]byte
}

// replyValues is room for the option values a reply writes: an ACK with
// a boot file's name, a TFTP server's and a few address lists fits.
const replyValues = 256

// set sets option code to v, which the reply shares.
func (r *draft) set(code dhcpv4.OptionCode, v []byte) { r.Options[code.Code()] = v }

// setText sets option code to the text s.
func (r *draft) setText(code dhcpv4.OptionCode, s string) {
	r.setFrom(code, append(r.vals, s...))
}

// setAddrText sets option code to addr written out in text.
func (r *draft) setAddrText(code dhcpv4.OptionCode, addr netip.Addr) {
	r.setFrom(code, addr.AppendTo(r.vals))
}

// setIPs sets option code to the IPv4 addresses in addrs, one after
// another. An address of another kind is left out, and an IPv4-mapped
// IPv6 one written as IPv4, as net.IP.To4 does it for the library.
func (r *draft) setIPs(code dhcpv4.OptionCode, addrs ...netip.Addr) {
	b := r.vals
	for _, a := range addrs {
		if a = a.Unmap(); a.Is4() {
			v := a.As4()
			b = append(b, v[:]...)
		}
	}
	if len(b) == len(r.vals) {
		r.set(code, nil) // none: the library's value is nil too
		return
	}
	r.setFrom(code, b)
}

// setSeconds sets option code to d in whole seconds, as a 32-bit number.
func (r *draft) setSeconds(code dhcpv4.OptionCode, d time.Duration) {
	r.setFrom(code, binary.BigEndian.AppendUint32(r.vals, uint32(d/time.Second)))
}

// setMask sets option code to the netmask of a prefix of bits bits.
func (r *draft) setMask(code dhcpv4.OptionCode, bits int) {
	r.setFrom(code, binary.BigEndian.AppendUint32(r.vals, ^uint32(0)<<(32-bits)))
}

// setFrom sets option code to what b holds past the values written so
// far, and takes b as the values: the new one is capped, so that nothing
// written after it can change it.
func (r *draft) setFrom(code dhcpv4.OptionCode, b []byte) {
	r.set(code, b[len(r.vals):len(b):len(b)])
	r.vals = b
}

// newReply is the reply of type mt that dhcpv4.NewReplyFromRequest
// makes of req (TestNewReplyMatchesLibrary): the BOOTP reply to req's
// hardware type and address, transaction ID and flags, through its relay
// (giaddr), with its options 82 (RFC 3046) and 61 (RFC 6842), and every
// address 0.0.0.0. The library draws a random transaction ID from
// crypto/rand for every packet it makes, under a context with a timer,
// and a reply replaces it with the request's at once: that draw was a
// tenth of the handler's CPU per DORA (BenchmarkDORA). later counts the
// options the caller sets after, so that the option map is made at its
// size: one made for 16 options instead of the dozen a reply has was the
// largest allocation per packet.
func newReply(req *dhcpv4.DHCPv4, mt dhcpv4.MessageType, later int) *draft {
	n := 1 + later + copied(req, dhcpv4.OptionRelayAgentInformation) + copied(req, dhcpv4.OptionClientIdentifier)
	r := &draft{DHCPv4: dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootRequest,
		HWType:        req.HWType,
		TransactionID: req.TransactionID,
		ClientHWAddr:  req.ClientHWAddr,
		Flags:         req.Flags,
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: req.GatewayIPAddr,
		Options:       make(dhcpv4.Options, n),
	}}
	if req.OpCode == dhcpv4.OpcodeBootRequest {
		r.OpCode = dhcpv4.OpcodeBootReply
	}
	r.vals = r.buf[:0]
	r.setFrom(dhcpv4.OptionDHCPMessageType, append(r.vals, byte(mt)))
	for _, c := range []dhcpv4.OptionCode{dhcpv4.OptionRelayAgentInformation, dhcpv4.OptionClientIdentifier} {
		if v := req.Options.Get(c); v != nil {
			r.set(c, v)
		}
	}
	return r
}
