package e2e

import "testing"

// TestDHCPReservedHostname: ISC dhclient is told the hostname of its
// reservation (option 12).
func TestDHCPReservedHostname(t *testing.T) {
	t.Parallel()
	lab := NewLab(t)
	dhStart(t, lab, `dhcp:
  mode: authoritative
  interfaces: [br0]
  subnets:
    - subnet: 192.0.2.0/24
      pools: ["192.0.2.100-192.0.2.200"]
      reservations:
        - {mac: "52:54:00:aa:bb:0c", ip: 192.0.2.60, hostname: pc12}
`)
	h := dhAddHost(t, lab, "")
	dhSetMAC(t, h, "52:54:00:aa:bb:0c")
	l, _ := newDhclient(t, h, "").Get()
	if l["new_ip_address"] != "192.0.2.60" || l["new_host_name"] != "pc12" {
		t.Fatalf("dhclient got address %q and hostname %q, want 192.0.2.60 and pc12", l["new_ip_address"], l["new_host_name"])
	}
}
