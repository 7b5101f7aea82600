package boot

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// kept is what a sighting keeps of c: the fields With takes.
func kept(c Client) Client {
	return Client{MAC: c.MAC, UUID: c.UUID, Arch: c.Arch, HasArch: c.HasArch, Firmware: c.Firmware,
		VendorClass: c.VendorClass, IP: c.IP, Relay: c.Relay, Link: c.Link, CircuitID: c.CircuitID, RemoteID: c.RemoteID}
}

// TestSightingsAreWith checks the table against the rule it stores by:
// each client's sighting is With over its earlier ones, and an address
// names the client last seen there. Random steps from a few MACs,
// addresses and facts, with empty and missing relay IDs.
func TestSightingsAreWith(t *testing.T) {
	macs := []net.HardwareAddr{mustMAC("52:54:00:00:00:01"), mustMAC("52:54:00:00:00:02"), mustMAC("52:54:00:00:00:03"),
		make(net.HardwareAddr, 20)}
	ips := []netip.Addr{{}, netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.11"),
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("fe80::1%eth0"), netip.IPv4Unspecified()}
	texts := []string{"", "PXEClient:Arch:00007:UNDI:003016", "HTTPClient", "x"}
	ids := [][]byte{nil, {}, []byte("port 7"), []byte("sw1")}
	firmwares := []Firmware{FirmwareUnknown, FirmwareBIOS, FirmwareEFIx64}
	for seed := range uint64(50) {
		r := rand.New(rand.NewPCG(seed, 1))
		pick := func(n int) int { return r.IntN(n) }
		table := NewSightingTable()
		want := map[string]Client{}
		wantIP := map[netip.Addr]string{}
		for step := range 200 {
			c := Client{MAC: macs[pick(len(macs))], UUID: texts[pick(len(texts))], VendorClass: texts[pick(len(texts))],
				Firmware: firmwares[pick(len(firmwares))], IP: ips[pick(len(ips))], Relay: ips[pick(3)], Link: ips[pick(3)],
				CircuitID: ids[pick(len(ids))], RemoteID: ids[pick(len(ids))], Interface: "eth0", Serial: "not kept"}
			if pick(2) == 0 {
				c.Arch, c.HasArch = Arch(pick(12)), true
			}
			table.Seen(c)
			key := string(c.MAC)
			if old, ok := want[key]; ok {
				c = c.With(old)
				if old.IP != c.IP && wantIP[old.IP] == key {
					delete(wantIP, old.IP)
				}
			}
			want[key] = kept(c)
			if c.IP.IsValid() && !c.IP.IsUnspecified() {
				wantIP[c.IP] = key
			}
			for _, mac := range macs {
				got, ok := table.ByMAC(mac)
				w, wok := want[string(mac)]
				if ok != wok || !sameClient(got, w) {
					t.Fatalf("seed %d step %d: ByMAC(%s) = %+v %v, want %+v %v", seed, step, mac, got, ok, w, wok)
				}
			}
			for _, ip := range ips {
				got, ok := table.ByIP(ip)
				key, wok := wantIP[ip]
				if ok != wok || (ok && !sameClient(got, want[key])) {
					t.Fatalf("seed %d step %d: ByIP(%s) = %+v %v, want %+v %v", seed, step, ip, got, ok, want[key], wok)
				}
				if mac, ok := table.MACByIP(ip); ok != wok || string(mac) != key {
					t.Fatalf("seed %d step %d: MACByIP(%s) = %s %v, want %x %v", seed, step, ip, mac, ok, key, wok)
				}
			}
		}
	}
}

// sameClient compares two Clients as With does: a nil relay ID is not an
// empty one.
func sameClient(a, b Client) bool {
	if (a.CircuitID == nil) != (b.CircuitID == nil) || (a.RemoteID == nil) != (b.RemoteID == nil) {
		return false
	}
	return reflect.DeepEqual(normalized(a), normalized(b))
}

func normalized(c Client) Client {
	c.CircuitID, c.RemoteID = bytes.Clone(c.CircuitID), bytes.Clone(c.RemoteID)
	if len(c.CircuitID) == 0 {
		c.CircuitID = nil
	}
	if len(c.RemoteID) == 0 {
		c.RemoteID = nil
	}
	return c
}

// TestSightingsShareNothing: what ByMAC returns is the caller's to change.
func TestSightingsShareNothing(t *testing.T) {
	table := NewSightingTable()
	mac := mustMAC("52:54:00:00:00:01")
	table.Seen(Client{MAC: mac, CircuitID: []byte("port 7"), UUID: "u"})
	c, _ := table.ByMAC(mac)
	c.MAC[0], c.CircuitID[0] = 0xff, 'X'
	mac[1] = 0xff // the caller's MAC, after Seen
	again, ok := table.ByMAC(mustMAC("52:54:00:00:00:01"))
	if !ok || again.MAC.String() != "52:54:00:00:00:01" || string(again.CircuitID) != "port 7" {
		t.Fatalf("the table shares memory with its callers: %+v %v", again, ok)
	}
}

// TestSightingsBounded: a storm of new MACs, or of one MAC's changing
// facts, empties the table rather than grow it past its bounds.
func TestSightingsBounded(t *testing.T) {
	table := NewSightingTable()
	for i := range maxSightings + 10 {
		mac := net.HardwareAddr{2, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
		table.Seen(Client{MAC: mac, VendorClass: "PXEClient", IP: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})})
		if len(table.byMAC) > maxSightings || len(table.byIP) > maxSightings {
			t.Fatalf("after %d clients: %d by MAC, %d by IP", i+1, len(table.byMAC), len(table.byIP))
		}
	}
	if len(table.byMAC) != 10 {
		t.Fatalf("%d clients after the table emptied, want 10", len(table.byMAC))
	}
	mac := mustMAC("52:54:00:00:00:01")
	long := strings.Repeat("v", maxFact)
	for i := range 2 * maxFacts / maxFact {
		table.Seen(Client{MAC: mac, VendorClass: fmt.Sprint(i) + long[len(fmt.Sprint(i)):]})
		if len(table.facts) > maxFacts {
			t.Fatalf("after %d changes: %d bytes of facts", i+1, len(table.facts))
		}
	}
	if c, ok := table.ByMAC(mac); !ok || len(c.VendorClass) != maxFact {
		t.Fatalf("the last sighting was lost: %v, %d bytes", ok, len(c.VendorClass))
	}
	table.Seen(Client{MAC: mac, VendorClass: long + "v"}) // too long to keep: the earlier one stays
	if c, _ := table.ByMAC(mac); len(c.VendorClass) != maxFact {
		t.Fatalf("an oversized fact replaced the earlier one: %d bytes", len(c.VendorClass))
	}
}

// BenchmarkSightingsSeen is one DHCP exchange's sightings: a DISCOVER's
// facts, then the REQUEST's and the ACK's address, for ever new clients.
func BenchmarkSightingsSeen(b *testing.B) {
	table := NewSightingTable()
	relay := netip.MustParseAddr("198.19.0.1")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		mac := net.HardwareAddr{2, 0xbf, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
		c := Client{MAC: mac, UUID: "6b2b1c4e-7a0b-4e55-9d7c-0e5f2e3b1a01", Arch: 7, HasArch: true, Firmware: FirmwareEFIx64,
			VendorClass: "PXEClient:Arch:00007:UNDI:003016", Relay: relay, CircuitID: []byte("port 7")}
		table.Seen(c)
		table.Seen(c)
		c.IP = netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})
		table.Seen(c)
	}
}

// BenchmarkSightingsGC is a garbage collection with 50,000 clients'
// sightings live: what the table adds to every collection of a busy DHCP
// server.
func BenchmarkSightingsGC(b *testing.B) {
	table := NewSightingTable()
	relay := netip.MustParseAddr("198.19.0.1")
	for i := range 50000 {
		mac := net.HardwareAddr{2, 0xbf, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
		uuid := FormatUUID([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, byte(i >> 8), byte(i)})
		c := Client{MAC: mac, UUID: uuid, Arch: 7, HasArch: true, Firmware: FirmwareEFIx64,
			VendorClass: strings.Clone("PXEClient:Arch:00007:UNDI:003016"), Relay: relay, CircuitID: []byte("port 7")}
		table.Seen(c)
		c.IP = netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})
		table.Seen(c)
	}
	for b.Loop() {
		runtime.GC()
	}
	runtime.KeepAlive(table)
}
