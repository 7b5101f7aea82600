package config

import (
	"errors"
	"testing"
)

// dhcp.boot_server_discovery needs the boot server on udp/4011, which only
// proxy mode runs: elsewhere it is refused at load, by its own key.
func TestBootServerDiscoveryOnlyInProxyMode(t *testing.T) {
	for mode, ok := range map[string]bool{"proxy": true, "authoritative": false, "off": false} {
		yaml := siblingPaths + "dhcp:\n  mode: " + mode + "\n  interfaces: [br0]\n  boot_server_discovery: true\n" +
			"  subnets: [{subnet: 192.0.2.0/24, pools: [\"192.0.2.100-192.0.2.200\"]}]\n"
		c, err := Parse("b.yaml", []byte(yaml))
		var es Errors
		switch {
		case ok && err != nil:
			t.Errorf("%s: refused: %v", mode, err)
		case ok && !c.DHCP.BootServerDiscovery:
			t.Errorf("%s: the setting was not read", mode)
		case !ok && (!errors.As(err, &es) || len(es) != 1 || es[0].Key != "dhcp.boot_server_discovery"):
			t.Errorf("%s: want one error on dhcp.boot_server_discovery, got %v", mode, err)
		}
	}
}
