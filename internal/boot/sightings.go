package boot

import (
	"bytes"
	"net"
	"net/netip"
	"sync"
)

// Sightings remember what earlier steps of a boot showed of each client,
// so that a later step can tell who asks and fill in what it cannot see:
// pxelinux asks for pxelinux.cfg/C000025A by address only, and iPXE's
// script request carries no DHCP vendor class.
//
// A sighting is what Client.With takes from an earlier step — MAC, UUID,
// architecture, firmware, vendor class, address, relay, link and the relay
// agent's circuit and remote IDs — merged by With's rules over the sightings
// before it. The other fields of a Client describe one request only, and a
// sighting does not return them.
type Sightings interface {
	// Seen records c, by its MAC and, if it has one, its address.
	Seen(c Client)
	// ByMAC returns the sighting of mac.
	ByMAC(mac net.HardwareAddr) (Client, bool)
	// ByIP returns the sighting of the client last seen at ip.
	ByIP(ip netip.Addr) (Client, bool)
}

// SightingTable is Sightings in memory. It holds at most maxSightings
// clients and maxFacts bytes of their facts: a storm of spoofed MACs
// empties it rather than grow it.
//
// It is kept out of the garbage collector's way. Every DHCP client of a
// busy server has a sighting, and a table of whole Clients was most of the
// server's live heap: a dozen pointers and about six objects per client,
// all marked again by every collection, which a DHCP server under load
// runs several times a second. Here a MAC is a key without a pointer, and
// a client's text facts (UUID, vendor class, firmware, circuit and remote
// ID) are bytes appended to one shared slice, which the collector does not
// scan; only the addresses' netip zone handles, shared by every client,
// remain as pointers.
type SightingTable struct {
	mu    sync.Mutex
	byMAC map[hwKey]sighting
	byIP  map[netip.Addr]hwKey
	facts []byte // the sightings' text facts, appended; a changed fact is appended anew
	next  []byte // the facts of the sighting being recorded
}

const (
	maxSightings = 100000
	// maxFacts bounds the facts' bytes: 100,000 clients of 200 bytes each
	// fit, with room for facts that change.
	maxFacts = 32 << 20
	// maxFact is the longest fact kept; a longer one (no DHCP option is)
	// counts as unknown, and the earlier sighting's stays.
	maxFact = 1<<16 - 1
)

// hwKey is a hardware address as a map key without a pointer. DHCP's chaddr
// holds 16 bytes, and an IPoIB address, the longest net.ParseMAC reads,
// 20; a longer one is not recorded.
type hwKey struct {
	n    uint8
	addr [20]byte
}

func keyOf(mac net.HardwareAddr) (hwKey, bool) {
	var k hwKey
	if len(mac) == 0 || len(mac) > len(k.addr) {
		return k, false
	}
	k.n = uint8(copy(k.addr[:], mac))
	return k, true
}

func (k hwKey) mac() net.HardwareAddr {
	return append(net.HardwareAddr(nil), k.addr[:k.n]...)
}

// The text facts of a sighting, in the order they are stored.
const (
	factUUID = iota
	factVendorClass
	factFirmware
	factCircuitID
	factRemoteID
	nFacts
)

// sighting is one client's merged facts. Its text facts are
// facts[at:at+sum(size)], one after another in the fact* order.
type sighting struct {
	ip, relay, link netip.Addr
	arch            Arch
	hasArch         bool
	hasCircuit      bool // CircuitID is set, if only to empty
	hasRemote       bool
	at              uint32
	size            [nFacts]uint16
}

// NewSightingTable returns an empty table.
func NewSightingTable() *SightingTable {
	return &SightingTable{byMAC: map[hwKey]sighting{}, byIP: map[netip.Addr]hwKey{}}
}

// Seen records c, filling what c does not know from the client's sighting
// as Client.With does; a client without a MAC records nothing.
func (t *SightingTable) Seen(c Client) {
	if t == nil {
		return
	}
	key, ok := keyOf(c.MAC)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old, found := t.byMAC[key]
	s := merge(c, old)
	// The text facts, in their order: c's where it knows them, as With
	// takes them, else the earlier sighting's.
	was := t.textsOf(old)
	relayIDs := c.hasRelayIDs()
	t.next = t.next[:0]
	s.size[factUUID] = appendFact(&t.next, c.UUID, c.UUID != "", was[factUUID])
	s.size[factVendorClass] = appendFact(&t.next, c.VendorClass, c.VendorClass != "", was[factVendorClass])
	s.size[factFirmware] = appendFact(&t.next, c.Firmware, c.Firmware != FirmwareUnknown, was[factFirmware])
	s.size[factCircuitID] = appendFact(&t.next, c.CircuitID, relayIDs, was[factCircuitID])
	s.size[factRemoteID] = appendFact(&t.next, c.RemoteID, relayIDs, was[factRemoteID])
	if found && bytes.Equal(t.next, t.factsOf(old)) {
		s.at = old.at
	} else {
		if len(t.facts)+len(t.next) > maxFacts || (!found && len(t.byMAC) >= maxSightings) {
			t.byMAC, t.byIP, t.facts = map[hwKey]sighting{}, map[netip.Addr]hwKey{}, nil
			found = false
		}
		s.at = uint32(len(t.facts))
		t.facts = append(t.facts, t.next...)
	}
	t.byMAC[key] = s
	if found && old.ip != s.ip && t.byIP[old.ip] == key {
		delete(t.byIP, old.ip) // the client moved: its old address is no longer it
	}
	if s.ip.IsValid() && !s.ip.IsUnspecified() {
		t.byIP[s.ip] = key
	}
}

// appendFact appends fact to b if known, else earlier, and returns the
// size appended. A fact too long to keep counts as unknown.
func appendFact[T ~string | ~[]byte](b *[]byte, fact T, known bool, earlier []byte) uint16 {
	n := len(*b)
	if known && len(fact) <= maxFact {
		*b = append(*b, fact...)
	} else {
		*b = append(*b, earlier...)
	}
	return uint16(len(*b) - n)
}

// merge is Client.With for a sighting's fixed-size facts: c's, and old's
// where c does not know them. Seen merges the text facts.
func merge(c Client, old sighting) sighting {
	m := c.With(Client{IP: old.ip, Relay: old.relay, Link: old.link, Arch: old.arch, HasArch: old.hasArch,
		CircuitID: present(old.hasCircuit), RemoteID: present(old.hasRemote)})
	return sighting{ip: m.IP, relay: m.Relay, link: m.Link, arch: m.Arch, hasArch: m.HasArch,
		hasCircuit: m.CircuitID != nil, hasRemote: m.RemoteID != nil}
}

// present is an empty relay ID if the sighting had one, else none.
func present(had bool) []byte {
	if had {
		return []byte{}
	}
	return nil
}

// hasRelayIDs reports whether c carries a relay agent's IDs (option 82):
// With takes both from an earlier sighting only when c has neither.
func (c Client) hasRelayIDs() bool { return c.CircuitID != nil || c.RemoteID != nil }

// factsOf returns s's text facts, one after another; textsOf splits them.
// Both alias t.facts, which is only ever appended to.
func (t *SightingTable) factsOf(s sighting) []byte {
	n := 0
	for _, size := range s.size {
		n += int(size)
	}
	return t.facts[s.at : int(s.at)+n]
}

func (t *SightingTable) textsOf(s sighting) [nFacts][]byte {
	var texts [nFacts][]byte
	at := int(s.at)
	for i, size := range s.size {
		texts[i] = t.facts[at : at+int(size)]
		at += int(size)
	}
	return texts
}

// client returns the sighting of key as a Client that shares no memory
// with the table.
func (t *SightingTable) client(key hwKey, s sighting) Client {
	texts := t.textsOf(s)
	c := Client{MAC: key.mac(), IP: s.ip, Relay: s.relay, Link: s.link, Arch: s.arch, HasArch: s.hasArch,
		UUID: string(texts[factUUID]), VendorClass: string(texts[factVendorClass]), Firmware: Firmware(texts[factFirmware])}
	if s.hasCircuit {
		c.CircuitID = append([]byte{}, texts[factCircuitID]...)
	}
	if s.hasRemote {
		c.RemoteID = append([]byte{}, texts[factRemoteID]...)
	}
	return c
}

// ByMAC returns the sighting of mac.
func (t *SightingTable) ByMAC(mac net.HardwareAddr) (Client, bool) {
	if t == nil {
		return Client{}, false
	}
	key, ok := keyOf(mac)
	if !ok {
		return Client{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.byMAC[key]
	if !ok {
		return Client{}, false
	}
	return t.client(key, s), true
}

// ByIP returns the sighting of the client last seen at ip.
func (t *SightingTable) ByIP(ip netip.Addr) (Client, bool) {
	if t == nil {
		return Client{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	key, ok := t.byIP[ip]
	if !ok {
		return Client{}, false
	}
	s, ok := t.byMAC[key]
	if !ok {
		return Client{}, false
	}
	return t.client(key, s), true
}

// MACByIP returns the MAC of the client last seen at ip: ByIP's MAC,
// without the rest, for the boot log's events that lack one.
func (t *SightingTable) MACByIP(ip netip.Addr) (net.HardwareAddr, bool) {
	if t == nil {
		return nil, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	key, ok := t.byIP[ip]
	if !ok {
		return nil, false
	}
	return key.mac(), true
}
