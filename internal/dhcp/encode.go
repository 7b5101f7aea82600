package dhcp

import (
	"encoding/binary"
	"math/bits"
	"net"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// appendPacket appends p's wire form to b: the bytes p.ToBytes() makes
// (TestAppendPacketIsToBytes and FuzzAppendPacket hold them equal), without
// its allocations. The library's encoder grows a new buffer for each
// packet, sorts the option codes into a new slice and pads from a new
// one; under DHCP load that was a tenth of the bytes the server allocated
// per lease, each of them a cost to the garbage collector. A worker
// appends every reply into one buffer instead (Server.send).
//
// The layout is RFC 2131's: the fixed BOOTP fields, the magic cookie, the
// options in ascending code with option 82 last (RFC 3046 2.1), each
// value over 255 bytes split into options of the same code (RFC 3396),
// the end option, and padding to BOOTP's 300 bytes (RFC 951), which some
// relay agents drop packets without. An address field that is not IPv4
// is written as 0.0.0.0, where the library's encoder would panic.
func appendPacket(b []byte, p *dhcpv4.DHCPv4) []byte {
	start := len(b)
	b = append(b, byte(p.OpCode), byte(p.HWType), byte(len(p.ClientHWAddr)), p.HopCount)
	b = append(b, p.TransactionID[:]...)
	b = binary.BigEndian.AppendUint16(b, p.NumSeconds)
	b = binary.BigEndian.AppendUint16(b, p.Flags)
	b = appendIP4(b, p.ClientIPAddr)
	b = appendIP4(b, p.YourIPAddr)
	b = appendIP4(b, p.ServerIPAddr)
	b = appendIP4(b, p.GatewayIPAddr)
	b = appendField(b, []byte(p.ClientHWAddr), 16, 16)
	b = appendField(b, p.ServerHostName, 64, 63) // NUL-terminated: at most 63 bytes
	b = appendField(b, p.BootFileName, 128, 127)
	b = append(b, 99, 130, 83, 99) // the magic cookie

	// The codes present, as a bit set: walking it in order sorts them
	// without a slice. Pad and end are not options to write.
	var present [4]uint64
	for code := range p.Options {
		present[code>>6] |= 1 << (code & 63)
	}
	present[0] &^= 1 << 0
	present[agentInfo>>6] &^= 1 << (agentInfo & 63)
	present[3] &^= 1 << (255 & 63)
	for w, set := range present {
		for ; set != 0; set &= set - 1 {
			code := uint8(w*64 + bits.TrailingZeros64(set))
			b = appendOption(b, code, p.Options[code])
		}
	}
	if v, ok := p.Options[agentInfo]; ok {
		b = appendOption(b, agentInfo, v)
	}
	b = append(b, 255)
	for len(b)-start < 300 {
		b = append(b, 0)
	}
	return b
}

// agentInfo is option 82, the relay agent information, which goes last.
const agentInfo = 82

func appendOption(b []byte, code uint8, v []byte) []byte {
	if len(v) == 0 {
		return append(b, code, 0)
	}
	for len(v) > 0 {
		n := min(len(v), 255)
		b = append(b, code, byte(n))
		b = append(b, v[:n]...)
		v = v[n:]
	}
	return b
}

func appendIP4(b []byte, ip net.IP) []byte {
	if v4 := ip.To4(); v4 != nil {
		return append(b, v4...)
	}
	return append(b, 0, 0, 0, 0)
}

// appendField appends s cut to keep bytes, zero-filled to size.
func appendField[T string | []byte](b []byte, s T, size, keep int) []byte {
	n := min(len(s), keep)
	b = append(b, s[:n]...)
	for i := n; i < size; i++ {
		b = append(b, 0)
	}
	return b
}
