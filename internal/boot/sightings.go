package boot

import (
	"net"
	"net/netip"
	"sync"
)

// Sightings remember what earlier steps of a boot showed of each client,
// so that a later step can tell who asks and fill in what it cannot see:
// pxelinux asks for pxelinux.cfg/C000025A by address only, and iPXE's
// script request carries no DHCP vendor class.
type Sightings interface {
	// Seen records c, by its MAC and, if it has one, its address.
	Seen(c Client)
	// ByMAC returns the last sighting of mac.
	ByMAC(mac net.HardwareAddr) (Client, bool)
	// ByIP returns the last client seen at ip.
	ByIP(ip netip.Addr) (Client, bool)
}

// SightingTable is Sightings in memory. It holds at most maxSightings
// clients: a storm of spoofed MACs empties it rather than grow it.
type SightingTable struct {
	mu    sync.Mutex
	byMAC map[string]Client
	byIP  map[netip.Addr]string // address → MAC key
}

const maxSightings = 100000

// NewSightingTable returns an empty table.
func NewSightingTable() *SightingTable {
	return &SightingTable{byMAC: map[string]Client{}, byIP: map[netip.Addr]string{}}
}

// Seen records c; a client without a MAC records nothing.
func (t *SightingTable) Seen(c Client) {
	if t == nil || c.MAC == nil {
		return
	}
	key := string(c.MAC)
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.byMAC) >= maxSightings {
		t.byMAC, t.byIP = map[string]Client{}, map[netip.Addr]string{}
	}
	if old, ok := t.byMAC[key]; ok {
		c = c.With(old) // keep what this step could not see
	}
	t.byMAC[key] = c
	if c.IP.IsValid() && !c.IP.IsUnspecified() {
		t.byIP[c.IP] = key
	}
}

// ByMAC returns the last sighting of mac.
func (t *SightingTable) ByMAC(mac net.HardwareAddr) (Client, bool) {
	if t == nil || mac == nil {
		return Client{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.byMAC[string(mac)]
	return c, ok
}

// ByIP returns the last client seen at ip.
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
	c, ok := t.byMAC[key]
	return c, ok
}
