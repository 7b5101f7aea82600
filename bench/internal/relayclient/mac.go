package relayclient

import (
	"errors"
	"net"
)

// MACs numbers the clients of one run: client i's MAC is a 48-bit number
// derived from Base and i.
//
// In scatter order (Seq false) the low 24 bits are Base's low 24 bits plus
// a bijective mix of i, mod 2^24, and the top 24 bits are Base's: unique
// for up to 2^24 clients, but not in sequence, as the MACs of a real fleet
// are not. Sequential MACs are a worst case for servers that pick the
// address by hashing the MAC (dnsmasq): neighbouring clients probe to the
// same free address. In Seq order client i is Base plus i.
type MACs struct {
	Base uint64
	Seq  bool
}

// Num is client i's MAC as a number.
func (p MACs) Num(i int) uint64 {
	if p.Seq {
		return p.Base + uint64(i)
	}
	const mask = 1<<24 - 1
	return p.Base&^mask | (p.Base+mix24(uint64(i)))&mask
}

// Addr is client i's MAC.
func (p MACs) Addr(i int) net.HardwareAddr { return HardwareAddr(p.Num(i)) }

// HardwareAddr is the 6-byte address of the 48-bit number m.
func HardwareAddr(m uint64) net.HardwareAddr {
	return net.HardwareAddr{byte(m >> 40), byte(m >> 32), byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}
}

// ParseMAC parses a 6-byte MAC (as net.ParseMAC does) into a 48-bit number.
func ParseMAC(s string) (uint64, error) {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return 0, err
	}
	if len(hw) != 6 {
		return 0, errors.New("not a 6-byte MAC")
	}
	var m uint64
	for _, b := range hw {
		m = m<<8 | uint64(b)
	}
	return m, nil
}

// mix24 is a bijection on 24-bit numbers (odd multiplies and xor-shifts).
func mix24(x uint64) uint64 {
	const mask = 1<<24 - 1
	x &= mask
	x = x * 0x9e3779 & mask
	x ^= x >> 12
	x = x * 0x5bd1e9 & mask
	x ^= x >> 11
	return x
}
