package main

import (
	"net"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

func TestMix24IsBijective(t *testing.T) {
	seen := make([]bool, 1<<24)
	for i := uint64(0); i < 1<<24; i++ {
		v := mix24(i)
		if v >= 1<<24 || seen[v] {
			t.Fatalf("mix24(%d) = %d: out of range or repeated", i, v)
		}
		seen[v] = true
	}
}

func TestMACsUniqueAndKeepPrefix(t *testing.T) {
	for _, seq := range []bool{false, true} {
		l := &loader{cfg: config{macBase: 0x02bf03fffff0, macSeq: seq}}
		seen := map[uint64]bool{}
		for i := 0; i < 100000; i++ {
			m := l.mac(i)
			if seen[m] {
				t.Fatalf("seq=%v: client %d repeats MAC %012x", seq, i, m)
			}
			seen[m] = true
			if !seq && m>>24 != 0x02bf03 {
				t.Fatalf("scatter: client %d MAC %012x lost the base prefix", i, m)
			}
		}
	}
}

func TestPercentile(t *testing.T) {
	d := make([]time.Duration, 100)
	for i := range d {
		d[i] = time.Duration(i+1) * time.Millisecond
	}
	if got := percentile(d, 50); got != 50*time.Millisecond {
		t.Errorf("p50 = %v", got)
	}
	if got := percentile(d, 99); got != 99*time.Millisecond {
		t.Errorf("p99 = %v", got)
	}
	if got := percentile(d[:1], 99); got != time.Millisecond {
		t.Errorf("p99 of one = %v", got)
	}
}

// The DISCOVER on the wire is a relayed PXE request.
func TestDiscoverWire(t *testing.T) {
	l := &loader{cfg: config{relay: net.IPv4(198, 19, 0, 1).To4()}}
	mac := net.HardwareAddr{2, 0xbf, 0, 0, 0, 1}
	d, err := dhcpv4.NewDiscovery(mac, l.clientOpts(1, mac)...)
	if err != nil {
		t.Fatal(err)
	}
	raw := d.ToBytes()
	p, err := dhcpv4.FromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	if p.HopCount != 1 || !p.GatewayIPAddr.Equal(l.cfg.relay) || p.MessageType() != dhcpv4.MessageTypeDiscover {
		t.Errorf("hops %d giaddr %v type %v", p.HopCount, p.GatewayIPAddr, p.MessageType())
	}
	if a := p.ClientArch(); len(a) != 1 || a[0] != iana.EFI_X86_64 {
		t.Errorf("arch %v", a)
	}
	if p.ClassIdentifier() != "PXEClient:Arch:00007:UNDI:003016" {
		t.Errorf("option 60 %q", p.ClassIdentifier())
	}
	if u := p.GetOneOption(dhcpv4.OptionClientMachineIdentifier); len(u) != 17 || u[0] != 0 {
		t.Errorf("option 97 %x", u)
	}
	rai := p.RelayAgentInfo()
	if rai == nil || string(rai.Get(dhcpv4.AgentCircuitIDSubOption)) != "sw1/0/2" {
		t.Errorf("option 82 %v", rai)
	}
	// Option 82 is the last option before End (RFC 3046 2.1).
	opts := raw[240:]
	last := -1
	for i := 0; i < len(opts) && opts[i] != 255; {
		if opts[i] == 0 {
			i++
			continue
		}
		last = int(opts[i])
		i += 2 + int(opts[i+1])
	}
	if last != 82 {
		t.Errorf("last option is %d, want 82", last)
	}
}
