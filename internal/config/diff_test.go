package config

import (
	"reflect"
	"testing"
)

func TestChanged(t *testing.T) {
	base := siblingPaths + `dhcp:
  mode: authoritative
  interfaces: [eth1]
  subnets:
    - subnet: 192.0.2.0/24
      pools: [192.0.2.100-192.0.2.200]
      router: 192.0.2.1
      dns: [192.0.2.53, 192.0.2.54]
      reservations:
        - {mac: "52:54:00:12:34:56", ip: 192.0.2.50}
inventory:
  profiles:
    - name: lab
      variants:
        efi-x64: {title: X}
        bios: {title: B}
`
	parse := func(text string) Config {
		t.Helper()
		cfg, err := Parse("c.yaml", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	old := parse(base)
	for _, tt := range []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"nothing", func(*Config) {}, nil},
		{"scalars, in schema order", func(c *Config) {
			c.Log.Level = "debug"
			c.Root = "/srv/other"
			c.HTTP.TLS.Listen = ":9443"
			c.TFTP.Timeout *= 2
		}, []string{"root", "log.level", "tftp.timeout", "http.tls.listen"}},
		{"the same value written otherwise", func(c *Config) {
			c.DHCP.Subnets[0].Reservations[0].MAC = MAC{0x52, 0x54, 0, 0x12, 0x34, 0x56}
			c.DHCP.Interfaces = append([]string(nil), c.DHCP.Interfaces...)
		}, nil},
		{"an address in a list element", func(c *Config) {
			c.DHCP.Subnets[0].Router = c.DHCP.Subnets[0].DNS[0]
			c.DHCP.Subnets[0].DNS[1] = c.DHCP.Subnets[0].DNS[0]
		}, []string{"dhcp.subnets[0].router", "dhcp.subnets[0].dns[1]"}},
		{"typed leaves", func(c *Config) {
			c.DHCP.Subnets[0].Pools[0].Last = c.DHCP.Subnets[0].Pools[0].First
			c.DHCP.Subnets[0].Reservations[0].MAC = MAC{2, 0, 0, 0, 0, 1}
			c.DHCP.ServerAddress = c.DHCP.Subnets[0].Router
		}, []string{"dhcp.server_address", "dhcp.subnets[0].pools[0]", "dhcp.subnets[0].reservations[0].mac"}},
		{"a list that grows is one key", func(c *Config) {
			c.DHCP.Subnets[0].DNS = append(c.DHCP.Subnets[0].DNS, c.DHCP.Subnets[0].Router)
			c.DHCP.Subnets = append(c.DHCP.Subnets, Subnet{})
		}, []string{"dhcp.subnets"}},
		{"map entries", func(c *Config) {
			p := &c.Inventory.Profiles[0]
			p.Variants = map[string]Menu{"efi-x64": {Title: "Y"}, "efi-arm64": {}}
		}, []string{"inventory.profiles[0].variants.bios", "inventory.profiles[0].variants.efi-arm64",
			"inventory.profiles[0].variants.efi-x64.title"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parse(base) // fresh slices and maps, not old's
			tt.edit(&cfg)
			if got := Changed(old, cfg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Changed = %q, want %q", got, tt.want)
			}
			if got := Changed(cfg, old); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Changed the other way = %q, want %q", got, tt.want)
			}
		})
	}
	// Every key of Keys() is reported by the name Keys() gives it.
	for _, key := range Keys() {
		cfg := Default()
		v, _ := valueOfKey(&cfg, key)
		val := map[string]string{"": "192.0.2.1", "true": "false", "false": "true"}[v]
		if val == "" {
			val = v + "1"
			if key == "tftp.timeout" || key == "audit.retention" || key == "dhcp.lease_time" || key == "dhcp.offer_hold" || key == "dhcp.watch.probe" ||
				key == "dhcp.v6.lease_time" {
				val = "1h2m"
			}
		}
		if key == "allow" || key == "tftp.allow" || key == "http.allow" || key == "dhcp.allow" || key == "api.allow" {
			val = "192.0.2.0/24"
		}
		if err := cfg.Set(key, val); err != nil {
			t.Errorf("Set(%q, %q): %v", key, val, err)
			continue
		}
		if got := Changed(Default(), cfg); !reflect.DeepEqual(got, []string{key}) {
			t.Errorf("after setting %s: Changed = %q", key, got)
		}
	}
}
