package dhcp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// decode reads a packet as dhcpv4.FromBytes reads it (FuzzDecode holds the
// two equal, field by field, and failing together), in 3 objects where
// the library's made 19 for a relayed PXE DISCOVER. The library copies
// every address and option value into a slice of its own through a
// reader that allocates as it goes: 30 of the 152 objects per DORA in
// BenchmarkDORA (its client's included), each of them work for the
// garbage collector. Here the addresses and option values are parts of b:
// the caller gives each packet a buffer of its own (Server.read) and does
// not write into it. Whatever keeps a value past the request copies it
// (the lease pool keeps its own MAC and client identifier).
//
// The layout is RFC 2131's: 236 bytes of fixed BOOTP fields, the magic
// cookie, then options up to the end option. A code given more than once
// has its values concatenated (RFC 3396).
func decode(b []byte) (*dhcpv4.DHCPv4, error) {
	if len(b) < offOptions {
		return nil, fmt.Errorf("%w: %d bytes, a DHCP packet has at least %d", errShort, len(b), offOptions)
	}
	if cookie := b[offOptions-4 : offOptions]; [4]byte(cookie) != [4]byte{99, 130, 83, 99} {
		return nil, fmt.Errorf("malformed DHCP packet: got magic cookie %v, want [99 130 83 99]", cookie)
	}
	p := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeType(b[0]),
		HWType:        iana.HWType(b[1]),
		HopCount:      b[3],
		TransactionID: dhcpv4.TransactionID(b[4:8]),
		NumSeconds:    uint16(b[8])<<8 | uint16(b[9]),
		Flags:         uint16(b[10])<<8 | uint16(b[11]),
		ClientIPAddr:  net.IP(b[12:16:16]),
		YourIPAddr:    net.IP(b[16:20:20]),
		ServerIPAddr:  net.IP(b[20:24:24]),
		GatewayIPAddr: net.IP(b[24:28:28]),
		// All 16 bytes of chaddr are there; hlen says how many count.
		ClientHWAddr:   net.HardwareAddr(b[28 : 28+min(int(b[2]), 16) : 44]),
		ServerHostName: cString(b[offSname:offFile]),
		BootFileName:   cString(b[offFile : offOptions-4]),
	}
	opts, err := decodeOptions(b[offOptions:])
	if err != nil {
		return nil, err
	}
	p.Options = opts
	return p, nil
}

// errShort is a packet too short for BOOTP's fixed fields.
var errShort = errors.New("packet too short")

// decodeOptions reads the options field up to the end option, which it
// requires unless the field is empty, as the library does.
func decodeOptions(b []byte) (dhcpv4.Options, error) {
	opts := make(dhcpv4.Options, countOptions(b))
	if len(b) == 0 {
		return opts, nil
	}
	for len(b) > 0 {
		code := b[0]
		switch code {
		case 0: // pad
			b = b[1:]
			continue
		case 255: // end
			return opts, nil
		}
		if len(b) < 2 || len(b) < 2+int(b[1]) {
			return nil, fmt.Errorf("error collecting options: option %d runs past the packet's end", code)
		}
		n := int(b[1])
		v := b[2 : 2+n : 2+n] // capped: appending a later part copies
		if old, ok := opts[code]; ok || n == 0 {
			v = append(old, v...) // also the library's nil for a first empty value
		}
		opts[code] = v
		b = b[2+n:]
	}
	return nil, io.ErrUnexpectedEOF // no end option
}

// countOptions is how many options b holds, a code given twice counted
// twice: the size the map is made with, so that it never grows.
func countOptions(b []byte) int {
	n := 0
	for len(b) >= 2 && b[0] != 255 {
		if b[0] == 0 {
			b = b[1:]
			continue
		}
		n++
		b = b[min(len(b), 2+int(b[1])):]
	}
	return n
}

// cString is a BOOTP text field up to its first NUL.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
