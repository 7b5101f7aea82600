package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseDHCP6(t *testing.T) {
	cfg, err := Parse("d.yaml", []byte(siblingPaths+`dhcp:
  interfaces: [eth1]
  lease_time: 2h
  v6:
    mode: authoritative
    subnets:
      - subnet: 2001:db8:1::/64
        pools: ["2001:db8:1::100-2001:db8:1::1ff"]
        dns: [2001:db8:1::53]
      - subnet: 2001:db8:2::/64
        pools: ["2001:db8:2::100-2001:db8:2::1ff"]
        lease_time: 10m
`))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.DHCP
	if d.V6.Mode != "authoritative" || len(d.Interfaces6()) != 1 || d.Interfaces6()[0] != "eth1" {
		t.Errorf("v6 %+v interfaces %v", d.V6, d.Interfaces6())
	}
	s := d.V6.Subnets[0]
	if s.Subnet.Prefix != netip.MustParsePrefix("2001:db8:1::/64") || s.Pools[0].Last != netip.MustParseAddr("2001:db8:1::1ff") ||
		s.DNS[0] != netip.MustParseAddr("2001:db8:1::53") {
		t.Errorf("subnet %+v", s)
	}
	if d.LeaseTime6(s) != 2*time.Hour || d.LeaseTime6(d.V6.Subnets[1]) != 10*time.Minute {
		t.Errorf("lease times %s %s", d.LeaseTime6(s), d.LeaseTime6(d.V6.Subnets[1]))
	}
	if Default().DHCP.V6.Mode != "off" {
		t.Error("DHCPv6 is on by default")
	}
}

func TestDHCP6Refused(t *testing.T) {
	for _, tc := range []struct{ yaml, key string }{
		{"v6: {mode: stateful}", "dhcp.v6.mode"},
		{"v6: {mode: proxy}", "dhcp.v6.interfaces"},
		{"v6: {mode: authoritative, interfaces: [eth1]}", "dhcp.v6.subnets"},
		{"v6: {mode: proxy, interfaces: [eth1], server_address: 192.0.2.1}", "dhcp.v6.server_address"},
		{"v6: {mode: proxy, interfaces: [eth1], server_address: 'fe80::1'}", "dhcp.v6.server_address"},
		{"v6: {mode: proxy, interfaces: [eth1], preference: 300}", "dhcp.v6.preference"},
		{"v6: {subnets: [{subnet: 192.0.2.0/24}]}", "dhcp.v6.subnets[0].subnet"},
		{"v6: {subnets: [{subnet: '2001:db8::/48', pools: ['2001:db8::1-2001:db8::2']}]}", "dhcp.v6.subnets[0].subnet"},
		{"v6: {subnets: [{subnet: '2001:db8::/64'}]}", "dhcp.v6.subnets[0].pools"},
		{"v6: {subnets: [{subnet: '2001:db8::/64', pools: ['2001:db8:9::1-2001:db8:9::2']}]}", "dhcp.v6.subnets[0].pools[0]"},
		{"v6: {subnets: [{subnet: '2001:db8::/64', pools: ['2001:db8::1-2001:db8::9', '2001:db8::5-2001:db8::20']}]}", "dhcp.v6.subnets[0].pools[1]"},
		{"v6: {subnets: [{subnet: '2001:db8::/64', pools: ['2001:db8::1-2001:db8::2'], dns: [192.0.2.53]}]}", "dhcp.v6.subnets[0].dns[0]"},
		{"v6: {subnets: [{subnet: '2001:db8::/64', pools: ['2001:db8::1-2001:db8::2']}, {subnet: '2001:db8::/64', pools: ['2001:db8::3-2001:db8::4']}]}", "dhcp.v6.subnets[1].subnet"},
	} {
		_, err := Parse("d.yaml", []byte(siblingPaths+"dhcp:\n  "+tc.yaml+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: %v, want an error naming %s", tc.yaml, err, tc.key)
		}
	}
}
