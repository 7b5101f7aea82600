package boot

import (
	"net"
	"net/netip"
	"testing"
)

// Profiles match the relay agent information a relay added (option 82):
// by circuit (the switch port) and by remote id (the switch), as globs;
// a later step (iPXE's script request) sees them through its sighting.
func TestRelayAgentSelectors(t *testing.T) {
	disk := Menu{Default: "disk", Entries: []Entry{{Name: "disk", Kind: KindLocal}}}
	// The two rules can match one client equally: that needs a priority.
	if _, err := NewInventory([]Profile{
		{Name: "rack7", Match: []Selector{{CircuitID: "Gi1/0/7"}}, Menu: disk},
		{Name: "core", Match: []Selector{{RemoteID: "sw-core-*"}}, Menu: disk},
	}, nil, ""); err == nil {
		t.Fatal("a tie between a circuit and a remote id rule was accepted")
	}
	inv, err := NewInventory([]Profile{
		{Name: "rack7", Priority: 10, Match: []Selector{{CircuitID: "Gi1/0/7"}}, Menu: disk},
		{Name: "core", Match: []Selector{{RemoteID: "sw-core-*"}}, Menu: disk},
		{Name: "other", Menu: disk},
	}, nil, "other")
	if err != nil {
		t.Fatal(err)
	}
	mac := net.HardwareAddr{0x52, 0x54, 0, 0, 0, 7}
	relay := netip.MustParseAddr("198.51.100.1")
	for _, tt := range []struct {
		circuit, remote, want string
	}{
		{"gi1/0/7", "", "rack7"}, // case does not matter
		{"Gi1/0/8", "sw-core-02", "core"},
		{"Gi1/0/7", "sw-core-02", "rack7"}, // both match: the priority decides
		{"", "sw-edge-01", "other"},
		{"", "", "other"},
	} {
		c := Client{MAC: mac, Relay: relay, VendorClass: "PXEClient"}
		if tt.circuit != "" {
			c.CircuitID = []byte(tt.circuit)
		}
		if tt.remote != "" {
			c.RemoteID = []byte(tt.remote)
		}
		ch, ok := inv.Choose(c)
		if !ok || ch.Profile.Name != tt.want {
			t.Errorf("circuit %q remote %q: profile %q, want %q", tt.circuit, tt.remote, ch.Profile.Name, tt.want)
		}
	}
	// iPXE's request has no option 82; its sighting from DHCP does.
	dhcp := Client{MAC: mac, Relay: relay, CircuitID: []byte("Gi1/0/7")}
	ipxe := Client{MAC: mac, IPXE: true}.With(dhcp)
	if ch, _ := inv.Choose(ipxe); ch.Profile.Name != "rack7" {
		t.Errorf("the menu stage lost the circuit id: profile %q", ch.Profile.Name)
	}
}
