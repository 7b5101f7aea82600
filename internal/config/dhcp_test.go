package config

import (
	"errors"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"bootforge/internal/boot"
	"bootforge/internal/dhcp/lease"
)

// dhcpBase is an authoritative DHCP config whose subnet list is open: a
// case appends the rest of dhcp.subnets[0] (indented six spaces) from line 8.
const dhcpBase = siblingPaths + `dhcp:
  mode: authoritative
  interfaces: [eth1]
  subnets:
    - subnet: 192.0.2.0/24
`

func TestParseDHCPTyped(t *testing.T) {
	cfg, err := Parse("d.yaml", []byte(siblingPaths+`dhcp:
  mode: authoritative
  interfaces: [eth1]
  allow: [192.0.2.0/24]
  server_address: 192.0.2.2
  subnets:
    - subnet: 192.0.2.0/24
      pools: ["192.0.2.100-192.0.2.200", " 192.0.2.20 - 192.0.2.29 "]
      router: 192.0.2.1
      dns: [192.0.2.53, 192.0.2.54]
      ntp: [192.0.2.123]
      reservations:
        - {mac: "52-54-00-12-34-56", ip: 192.0.2.50, hostname: pc1}
        - {client_id: "01:52:54:00:12:34:57", ip: 192.0.2.51}
        - {client_id: "ff00aB", ip: 192.0.2.52}
`))
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr
	d := cfg.DHCP
	if d.ServerAddress != a("192.0.2.2") || d.Allow[0].Prefix != netip.MustParsePrefix("192.0.2.0/24") {
		t.Errorf("server_address %v, allow %v", d.ServerAddress, d.Allow)
	}
	s := d.Subnets[0]
	want := Subnet{
		Subnet: Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		Pools:  []lease.Range{{First: a("192.0.2.100"), Last: a("192.0.2.200")}, {First: a("192.0.2.20"), Last: a("192.0.2.29")}},
		Router: a("192.0.2.1"),
		DNS:    []netip.Addr{a("192.0.2.53"), a("192.0.2.54")},
		NTP:    []netip.Addr{a("192.0.2.123")},
		Reservations: []Reservation{
			{MAC: MAC{0x52, 0x54, 0, 0x12, 0x34, 0x56}, IP: a("192.0.2.50"), Hostname: "pc1"},
			{ClientID: ClientID{1, 0x52, 0x54, 0, 0x12, 0x34, 0x57}, IP: a("192.0.2.51")},
			{ClientID: ClientID{0xff, 0, 0xab}, IP: a("192.0.2.52")},
		},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("subnet\n got %+v\nwant %+v", s, want)
	}
	// Unset addresses stay the zero Addr: "use the default".
	if def := Default().DHCP; def.ServerAddress.IsValid() {
		t.Errorf("default server_address %v, want unset", def.ServerAddress)
	}
	cfg, err = Parse("d.yaml", []byte(dhcpBase+"      router: \"\"\n"))
	if err != nil || cfg.DHCP.Subnets[0].Router.IsValid() {
		t.Errorf(`router: "" gave %v, %v; want no router`, cfg.DHCP.Subnets[0].Router, err)
	}
}

func TestParseDHCPErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string // appended to dhcpBase unless it starts with "data_dir"
		line int
		key  string
		msg  string
	}{
		{"router not an address", "      router: 192.0.2.300\n",
			8, "dhcp.subnets[0].router", `"192.0.2.300" is not an IP address like 192.0.2.1`},
		{"router IPv6", "      router: 2001:db8::1\n",
			8, "dhcp.subnets[0].router", `"2001:db8::1" is not an IPv4 address`},
		{"dns element", "      dns: [192.0.2.53, nameserver]\n",
			8, "dhcp.subnets[0].dns[1]", `"nameserver" is not an IP address`},
		{"ntp IPv6", "      ntp:\n        - 192.0.2.1\n        - \"::1\"\n",
			10, "dhcp.subnets[0].ntp[1]", `"::1" is not an IPv4 address`},
		{"pool without dash", "      pools: [192.0.2.100]\n",
			8, "dhcp.subnets[0].pools[0]", `"192.0.2.100" is not a range like 192.0.2.100-192.0.2.200`},
		{"pool bad address", "      pools: [\"192.0.2.100-192.0.2.x\"]\n",
			8, "dhcp.subnets[0].pools[0]", `"192.0.2.100-192.0.2.x" is not a range of addresses`},
		{"pool of IPv6", "      pools: [\"2001:db8::1-2001:db8::9\"]\n",
			8, "dhcp.subnets[0].pools[0]", `"2001:db8::1-2001:db8::9" is not a range of IPv4 addresses`},
		{"pool mixing families", "      pools: [\"192.0.2.1-2001:db8::9\"]\n",
			8, "dhcp.subnets[0].pools[0]", `"192.0.2.1-2001:db8::9" mixes an IPv4 and an IPv6 address`},
		{"pool backwards", "      pools:\n        - 192.0.2.10-192.0.2.200\n        - 192.0.2.9-192.0.2.1\n",
			10, "dhcp.subnets[0].pools[1]", `"192.0.2.9-192.0.2.1": the last address is before the first`},
		{"pool outside the subnet", "      pools: [192.0.2.100-192.0.3.5]\n",
			8, "dhcp.subnets[0].pools[0]", `"192.0.2.100-192.0.3.5" is not inside 192.0.2.0/24`},
		{"server_address", "  server_address: boot.example\n",
			0, "", ""}, // replaced below: a top-level dhcp key
		{"reservation mac", "      reservations:\n        - {mac: \"52:54:00:zz:34:56\", ip: 192.0.2.50}\n",
			9, "dhcp.subnets[0].reservations[0].mac", `"52:54:00:zz:34:56" is not a MAC address`},
		{"reservation client id", "      reservations:\n        - {client_id: \"01:5\", ip: 192.0.2.50}\n",
			9, "dhcp.subnets[0].reservations[0].client_id", `"01:5" is not hex bytes like 01:52:54:00:12:34:56`},
		{"reservation ip outside", "      reservations:\n        - {mac: \"52:54:00:12:34:56\", ip: 192.0.3.50}\n",
			9, "dhcp.subnets[0].reservations[0].ip", `"192.0.3.50" is not an address in 192.0.2.0/24`},
		{"reservation without ip", "      reservations:\n        - mac: \"52:54:00:12:34:56\"\n",
			9, "dhcp.subnets[0].reservations[0].ip", `an address in 192.0.2.0/24 is required`},
		{"reservation without client", "      reservations:\n        - {ip: 192.0.2.50}\n",
			9, "dhcp.subnets[0].reservations[0]", `a reservation needs mac or client_id`},
		{"reservation ip twice", "      reservations:\n        - {mac: \"52:54:00:12:34:56\", ip: 192.0.2.50}\n        - {mac: \"52:54:00:12:34:57\", ip: 192.0.2.50}\n",
			10, "dhcp.subnets[0].reservations[1].ip", `192.0.2.50 is also reserved at dhcp.subnets[0].reservations[0]`},
		{"reservation mac twice", "      reservations:\n        - {mac: \"52:54:00:12:34:56\", ip: 192.0.2.50}\n        - {mac: \"52-54-00-12-34-56\", ip: 192.0.2.51}\n",
			10, "dhcp.subnets[0].reservations[1].mac", `52:54:00:12:34:56 is also reserved at dhcp.subnets[0].reservations[0]`},
		{"overlapping subnets", "    - subnet: 192.0.2.128/25\n",
			8, "dhcp.subnets[1].subnet", `192.0.2.128/25 overlaps dhcp.subnets[0] 192.0.2.0/24`},
	}
	for _, tt := range tests {
		text := dhcpBase + tt.yaml
		if tt.name == "server_address" {
			text = siblingPaths + "dhcp:\n  mode: proxy\n  interfaces: [eth1]\n  server_address: boot.example\n"
			tt.line, tt.key, tt.msg = 6, "dhcp.server_address", `"boot.example" is not an IP address like 192.0.2.1`
		}
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bootforge.yaml", []byte(text))
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("want config.Errors, got %T: %v", err, err)
			}
			if len(es) != 1 {
				t.Fatalf("want exactly one error, got %d:\n%v", len(es), err)
			}
			e := es[0]
			if e.File != "bootforge.yaml" || e.Line != tt.line || e.Key != tt.key || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("got %v\nwant bootforge.yaml:%d: %s: ...%s...", e, tt.line, tt.key, tt.msg)
			}
		})
	}
}

// The environment sets typed DHCP keys as the file does, and clears them
// with an empty value.
func TestSetDHCPTyped(t *testing.T) {
	cfg := Default()
	if err := cfg.Set("dhcp.server_address", "192.0.2.9"); err != nil || cfg.DHCP.ServerAddress != netip.MustParseAddr("192.0.2.9") {
		t.Errorf("Set server_address: %v, %v", cfg.DHCP.ServerAddress, err)
	}
	if err := cfg.Set("dhcp.server_address", ""); err != nil || cfg.DHCP.ServerAddress.IsValid() {
		t.Errorf("Set server_address to empty: %v, %v", cfg.DHCP.ServerAddress, err)
	}
	err := cfg.Apply([]Override{{Key: "dhcp.server_address", Value: "192.0.2", Source: "BOOTFORGE_DHCP_SERVER_ADDRESS"}})
	if err == nil || !strings.Contains(err.Error(), `dhcp.server_address: from BOOTFORGE_DHCP_SERVER_ADDRESS: "192.0.2" is not an IP address`) {
		t.Errorf("a bad server address from the environment: %v", err)
	}
	if err := cfg.Set("dhcp.loaders.efi_x64", "x/snp.efi"); err != nil || cfg.DHCP.Loaders.TFTP()[boot.FirmwareEFIx64] != "x/snp.efi" {
		t.Errorf("Set loaders.efi_x64: %v, %v", cfg.DHCP.Loaders, err)
	}
}

func TestLoadersByFirmware(t *testing.T) {
	l := Default().DHCP.Loaders
	tftp := map[boot.Firmware]string{
		boot.FirmwareBIOS:     "undionly.kpxe",
		boot.FirmwareEFIx64:   "snponly.efi",
		boot.FirmwareEFIia32:  "ipxe-ia32.efi",
		boot.FirmwareEFIarm64: "arm64/snponly.efi",
		boot.FirmwareEFIarm32: "arm32/snponly.efi",
	}
	http := map[boot.Firmware]string{boot.FirmwareEFIx64: "ipxe.efi", boot.FirmwareEFIarm64: "arm64/ipxe.efi"}
	if got := l.TFTP(); !reflect.DeepEqual(got, tftp) {
		t.Errorf("TFTP() = %v, want %v", got, tftp)
	}
	if got := l.HTTP(); !reflect.DeepEqual(got, http) {
		t.Errorf("HTTP() = %v, want %v", got, http)
	}
	l.EFIarm32 = ""
	if _, ok := l.TFTP()[boot.FirmwareEFIarm32]; ok {
		t.Errorf("an empty loader is listed: %v", l.TFTP())
	}

	// Every loader key but the Secure Boot shim is reached from exactly one
	// firmware: a key the rule does not produce would be read by nobody.
	v := reflect.ValueOf(&l).Elem()
	for i := range v.NumField() {
		v.Field(i).SetString(v.Type().Field(i).Tag.Get("yaml"))
	}
	reached := map[string]int{}
	for _, m := range []map[boot.Firmware]string{l.TFTP(), l.HTTP()} {
		for fw, key := range m {
			if !fw.Known() {
				t.Errorf("loader %s is for firmware %q, not in boot's table", key, fw)
			}
			reached[key]++
		}
	}
	for i := range v.NumField() {
		key := v.Type().Field(i).Tag.Get("yaml")
		if want := map[bool]int{true: 0, false: 1}[key == "secure_boot_x64"]; reached[key] != want {
			t.Errorf("dhcp.loaders.%s is read for %d firmware kinds, want %d", key, reached[key], want)
		}
	}
}

func TestTextTypesRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		in, out string
		v       interface {
			UnmarshalText([]byte) error
		}
	}{
		{"52:54:00:AB:cd:ef", "52:54:00:ab:cd:ef", new(MAC)},
		{"5254.00ab.cdef", "52:54:00:ab:cd:ef", new(MAC)},
		{"", "", new(MAC)},
		{"01-52-54-00-AB-cd-ef", "01:52:54:00:ab:cd:ef", new(ClientID)},
		{"ff", "ff", new(ClientID)},
		{"", "", new(ClientID)},
	} {
		if err := tt.v.UnmarshalText([]byte(tt.in)); err != nil {
			t.Errorf("%T.UnmarshalText(%q): %v", tt.v, tt.in, err)
			continue
		}
		text, err := reflect.ValueOf(tt.v).Elem().Interface().(interface{ MarshalText() ([]byte, error) }).MarshalText()
		if err != nil || string(text) != tt.out {
			t.Errorf("%T %q wrote %q, %v; want %q", tt.v, tt.in, text, err, tt.out)
		}
	}
	for _, in := range []string{"0", "x1", ":", "01:5", "0g"} {
		var c ClientID
		if err := c.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("ClientID %q accepted as %v", in, c)
		}
	}
	if m := (MAC{1, 2, 3, 4, 5, 6}); net.HardwareAddr(m).String() != m.String() {
		t.Errorf("MAC prints %s", m)
	}
}

// The port of DHCP's URLs: dhcp.http_port, else http.listen's, which must
// then be valid even with HTTP off (another server may serve it).
func TestURLPort(t *testing.T) {
	for _, tt := range []struct {
		listen string
		port   int
		want   int
	}{
		{":8080", 0, 8080},
		{"127.0.0.1:80", 0, 80},
		{":http", 0, 80},
		{":8080", 8081, 8081},
		{"nonsense", 0, 0},
	} {
		cfg := Default()
		cfg.HTTP.Listen, cfg.DHCP.HTTPPort = tt.listen, tt.port
		if got := cfg.URLPort(); got != tt.want {
			t.Errorf("http.listen %q, dhcp.http_port %d: URLPort %d, want %d", tt.listen, tt.port, got, tt.want)
		}
	}
	off := siblingPaths + "http:\n  enabled: false\n  listen: nonsense\n"
	if _, err := Parse("u.yaml", []byte(off)); err != nil {
		t.Errorf("HTTP and DHCP off: http.listen is not read, but: %v", err)
	}
	_, err := Parse("u.yaml", []byte(off+"dhcp:\n  mode: proxy\n  interfaces: [eth1]\n"))
	if err == nil || !strings.Contains(err.Error(), `u.yaml:5: http.listen: "nonsense" is not host:port`) {
		t.Errorf("DHCP on with http_port 0 and a bad http.listen: %v", err)
	}
	if _, err := Parse("u.yaml", []byte(off+"dhcp:\n  mode: proxy\n  interfaces: [eth1]\n  http_port: 80\n")); err != nil {
		t.Errorf("DHCP on with its own http_port: %v", err)
	}
}
