package menufs

import (
	"io"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"bootforge/internal/boot"
	"bootforge/internal/bootfs"
)

// A menu fetched from an IPv6 literal Host points its client back at it,
// bracketed: the chain script, and the kernel and initrd of the menu.
func TestMenuURLsOverIPv6(t *testing.T) {
	m, db := setup(t)
	db.PutNextBoot(macA, boot.NextBoot{Entry: "b", State: boot.OneShotPending}) // the entry with a kernel
	v6 := netip.MustParseAddrPort("[2001:db8::50]:40000")
	open := func(path, host string, q url.Values) string {
		t.Helper()
		f, err := m.Open(bootfs.Request{Path: path, Client: v6, Protocol: "http", Query: q, Host: host})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		return string(b)
	}
	for _, host := range []string{"[2001:db8::1]:8080", "2001:db8::1"} {
		want := "http://[2001:db8::1]"
		if strings.HasSuffix(host, ":8080") {
			want += ":8080"
		}
		if s := open("boot.ipxe", host, nil); !strings.Contains(s, "chain "+want+"/bootforge/ipxe?mac=") {
			t.Errorf("Host %s: chain script:\n%s", host, s)
		}
	}
	s := open("bootforge/ipxe", "[2001:db8::1]:8080", url.Values{"mac": {"52-54-00-00-00-0a"}, "buildarch": {"x86_64"}, "platform": {"efi"}})
	for _, want := range []string{"kernel http://[2001:db8::1]:8080/vmlinuz", "initrd http://[2001:db8::1]:8080/initrd.gz"} {
		if !strings.Contains(s, want) {
			t.Errorf("menu lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "http://2001:") {
		t.Errorf("an unbracketed IPv6 URL:\n%s", s)
	}
	// The script request was seen at the client's IPv6 address.
	if c, ok := m.Sightings.ByIP(v6.Addr()); !ok || c.MAC.String() != macA.String() {
		t.Errorf("sighting at %s: %+v, %v", v6.Addr(), c, ok)
	}
}

// What one step saw of a client is found by the next whatever the socket
// made of its address: a link-local client's zone, an IPv4 client of a
// dual-stack socket as ::ffff:a.b.c.d.
func TestClientAddressSpellings(t *testing.T) {
	m, db := setup(t)
	// DHCPv6 saw the client at fe80::5 (no zone); it fetches over HTTP from
	// fe80::5 on br0. The booted beacon is taken from that address.
	m.Sightings.Seen(boot.Client{MAC: macA, IP: netip.MustParseAddr("fe80::5")})
	db.PutNextBoot(macA, boot.NextBoot{Entry: "b", State: boot.OneShotDelivered})
	f, err := m.Open(bootfs.Request{Path: "bootforge/booted", Client: netip.MustParseAddrPort("[fe80::5%br0]:4000"), Protocol: "http",
		Query: url.Values{"mac": {macA.String()}}})
	if err != nil {
		t.Fatalf("beacon from fe80::5%%br0 after a sighting at fe80::5: %v", err)
	}
	f.Close()
	if nb, _ := db.NextBoot(macA); nb.State != boot.OneShotBooted {
		t.Errorf("after the beacon: %s, want booted", nb.State)
	}

	// DHCP saw 192.0.2.60; pxelinux asks by hex address over a dual-stack socket.
	mac := net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0x60}
	m.Sightings.Seen(boot.Client{MAC: mac, IP: netip.MustParseAddr("192.0.2.60")})
	f, err = m.Open(bootfs.Request{Path: "pxelinux.cfg/C000023C", Client: netip.MustParseAddrPort("[::ffff:192.0.2.60]:2000"), Protocol: "tftp"})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got := bootfs.MadeFor(f); got != mac.String() {
		t.Errorf("pxelinux by address from ::ffff:192.0.2.60: made for %q, want %s", got, mac)
	}
}
