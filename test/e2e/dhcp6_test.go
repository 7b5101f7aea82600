package e2e

// bootforge's DHCPv6 server against real peers on an IPv6-only lab:
// ISC dhclient -6 as the client, ISC dhcrelay -6 as the relay agent,
// radvd as the router. Where a peer cannot send what a test needs
// (garbage, a boot client's Solicit), a raw client written here (its own
// encoder, not the library the server uses) does.

import (
	"bytes"
	binenc "encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"bootforge/internal/store"
)

const dh6Conf = `dhcp:
  v6:
    mode: authoritative
    interfaces: [br0]
    lease_time: 10m
    subnets:
      - subnet: 2001:db8:1::/64
        pools: ["2001:db8:1::100-2001:db8:1::1ff"]
        dns: ["2001:db8:1::53"]
      - subnet: 2001:db8:2::/64
        pools: ["2001:db8:2::100-2001:db8:2::1ff"]
`

// dh6Start runs bootforge in the lab namespace with config and waits for
// its DHCPv6 server.
func dh6Start(t testing.TB, lab *Lab, config string) *Server {
	t.Helper()
	s := StartServer(t, ServerOptions{Netns: lab.Netns, Config: config})
	if !strings.Contains(s.Log(), "dhcp6_on=") {
		t.Fatalf("bootforge is ready but serves no DHCPv6:\n%s", s.Log())
	}
	return s
}

// dh6Client runs dhclient -6 once (-1: exit without a lease) on h's eth0,
// with a script that records what it is told and configures the address.
func dh6Client(t testing.TB, h *LabHost) (addr string, out string) {
	t.Helper()
	need(t, "dhclient")
	dir := t.TempDir()
	ev := filepath.Join(dir, "events")
	script := fmt.Sprintf(`#!/bin/sh
{ echo "reason=$reason"; env | grep -E '^(new|old)_' | sort; echo --; } >> %s
case "$reason" in
BOUND6|RENEW6|REBIND6) ip -6 addr add "$new_ip6_address/128" dev "$interface" nodad ;;
esac
exit 0
`, ev)
	conf := filepath.Join(dir, "dhclient6.conf")
	for path, text := range map[string]string{filepath.Join(dir, "s"): script, conf: "timeout 20;\n", filepath.Join(dir, "l"): ""} {
		if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out, err := h.Exec(40*time.Second, "dhclient", "-6", "-v", "-1", "-cf", conf, "-lf", filepath.Join(dir, "l"),
		"-pf", filepath.Join(dir, "pid"), "-sf", filepath.Join(dir, "s"), h.Iface)
	evs, _ := os.ReadFile(ev)
	m := regexp.MustCompile(`(?m)^new_ip6_address=(\S+)$`).FindSubmatch(evs)
	if err != nil || m == nil {
		t.Fatalf("dhclient -6 in %s got no address (err %v):\n%s\nscript calls:\n%s", h.Netns, err, out, evs)
	}
	return string(m[1]), out + string(evs)
}

// dh6StoredLease waits for the lease of addr in the server's store.
func dh6StoredLease(t testing.TB, s *Server, addr string) {
	t.Helper()
	db, err := store.OpenSQLite(filepath.Join(s.DataDir, "bootforge.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ls, err := db.LoadLeases()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.IP.String() == addr && l.State == "bound" && len(l.ClientID) > 4 {
			return
		}
	}
	t.Fatalf("no bound lease of %s in the leases table: %v", addr, ls)
}

func dh6InPool(t testing.TB, addr, first, last string) {
	t.Helper()
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Less(netip.MustParseAddr(first)) || netip.MustParseAddr(last).Less(a) {
		t.Fatalf("address %q is not in %s-%s", addr, first, last)
	}
}

// dhclient -6 on the lab link gets an address from bootforge's pool,
// which is in the leases table, and the DNS server of the subnet; radvd
// announces the link with the M flag, as the README says this mode needs.
func TestDHCP6ClientGetsAddress(t *testing.T) {
	t.Parallel()
	lab := NewLab6(t, "2001:db8:1::1/64")
	StartRadvd(t, lab, "2001:db8:1::/64", true, true, false)
	s := dh6Start(t, lab, dh6Conf)
	h := AddHost6(t, lab, "")
	addr, out := dh6Client(t, h)
	dh6InPool(t, addr, "2001:db8:1::100", "2001:db8:1::1ff")
	if !strings.Contains(out, "new_dhcp6_name_servers=2001:db8:1::53") {
		t.Errorf("no DNS server from the subnet:\n%s", out)
	}
	if got := h.MustExec("ip", "-6", "-o", "addr", "show", "dev", "eth0"); !strings.Contains(got, addr) {
		t.Errorf("%s is not on the client's interface:\n%s", addr, got)
	}
	dh6StoredLease(t, s, addr)
	// /metrics counts the exchange: Solicit and Request in, Advertise and
	// Reply out, at the least.
	m := scrapeMetrics(t, s, lab.Netns)
	if got := m.value(t, "bootforge_dhcp6_received_packets_total"); got < 2 {
		t.Errorf("bootforge_dhcp6_received_packets_total = %v, want at least 2", got)
	}
	if got := m.value(t, "bootforge_dhcp6_replies_total"); got < 2 {
		t.Errorf("bootforge_dhcp6_replies_total = %v, want at least 2", got)
	}
	// The client's router is radvd's: it learnt the lab's link-local
	// router from an RA (the M flag sent it to DHCPv6).
	waitUntil(t, 10*time.Second, "a default route from radvd", func() bool {
		r, _ := h.Exec(5*time.Second, "ip", "-6", "route", "show", "default")
		return strings.Contains(r, "via fe80::")
	})
}

// A client behind dhcrelay -6 gets an address from the relay's link
// (2001:db8:2::/64, the relay's link-address), and the Relay-reply comes
// back through the relay with its interface-id.
func TestDHCP6Relayed(t *testing.T) {
	t.Parallel()
	need(t, "dhcrelay")
	lab := NewLab6(t, "2001:db8:1::1/64")
	s := dh6Start(t, lab, dh6Conf)
	relay := AddHost6(t, lab, "2001:db8:1::2/64")
	client := Link6(t, lab, relay.Netns, "down0", "2001:db8:2::1/64", "")
	cmd := relay.Command("dhcrelay", "-6", "-d", "-I", "-l", "down0", "-u", "2001:db8:1::1%eth0")
	var rlog syncBuffer
	cmd.Stdout, cmd.Stderr = &rlog, &rlog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("dhcrelay log:\n%s", rlog.String())
		}
	})
	addr, _ := dh6Client(t, client)
	dh6InPool(t, addr, "2001:db8:2::100", "2001:db8:2::1ff")
	dh6StoredLease(t, s, addr)
	if !strings.Contains(s.Log(), "2001:db8:2::") {
		t.Errorf("the server log does not name the relayed address")
	}
}

// ---------------------------------------------------------------------------
// A raw DHCPv6 client: its own encoder, for what no real client sends.

type dh6Opt struct {
	code uint16
	data []byte
}

func dh6Msg(typ byte, xid uint32, opts ...dh6Opt) []byte {
	b := []byte{typ, byte(xid >> 16), byte(xid >> 8), byte(xid)}
	for _, o := range opts {
		b = binenc.BigEndian.AppendUint16(b, o.code)
		b = binenc.BigEndian.AppendUint16(b, uint16(len(o.data)))
		b = append(b, o.data...)
	}
	return b
}

// dh6BootSolicit is what OVMF's PXE client sends: a DUID-LL client id,
// arch 7, and vendor class 343 "PXEClient:...".
func dh6BootSolicit(xid uint32, mac net.HardwareAddr) []byte {
	duid := append([]byte{0, 3, 0, 1}, mac...)
	class := []byte{0, 0, 1, 0x57, 0, 32}
	class = append(class, "PXEClient:Arch:00007:UNDI:003001"...)
	return dh6Msg(1, xid, dh6Opt{1, duid}, dh6Opt{6, []byte{0, 59, 0, 60}}, dh6Opt{61, []byte{0, 7}}, dh6Opt{16, class})
}

// dh6Options splits a reply's options; nil if it is not a reply to xid.
func dh6Options(b []byte, xid uint32) map[uint16][]byte {
	if len(b) < 4 || uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3]) != xid {
		return nil
	}
	out := map[uint16][]byte{0: {b[0]}}
	for rest := b[4:]; len(rest) >= 4; {
		code, n := binenc.BigEndian.Uint16(rest), int(binenc.BigEndian.Uint16(rest[2:]))
		if len(rest) < 4+n {
			return nil
		}
		out[code] = rest[4 : 4+n]
		rest = rest[4+n:]
	}
	return out
}

// dh6AllServers is ff02::1:2 port 547 on the link of netns's eth0, the
// address a client sends its Solicit to. The zone by index: a name would
// be looked up in this process's namespace, not the host's.
func dh6AllServers(t testing.TB, netns string) string {
	t.Helper()
	var idx int
	if err := dhInNetns(netns, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err == nil {
			idx = ifi.Index
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("[ff02::1:2%%%d]:547", idx)
}

// dh6Socket opens udp/546 on every address in netns.
func dh6Socket(t testing.TB, netns string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := dhInNetns(netns, func() (err error) {
		c, err = net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6unspecified, Port: 546})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dh6Read returns the packets that arrive within wait.
func dh6Read(c *net.UDPConn, wait time.Duration) [][]byte {
	var out [][]byte
	buf := make([]byte, 65536)
	c.SetReadDeadline(time.Now().Add(wait))
	for {
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			return out
		}
		out = append(out, append([]byte(nil), buf[:n]...))
	}
}

// Garbage sent to ff02::1:2 and to the server's address, in both modes,
// gets no answer and costs the server nothing: a boot client's Solicit
// right after it is answered, and the server counts the garbage as
// malformed in its log.
func TestDHCP6HostilePackets(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"proxy", "authoritative"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			lab := NewLab6(t, "2001:db8:1::1/64")
			s := dh6Start(t, lab, strings.Replace(dh6Conf, "authoritative", mode, 1)+"log:\n  level: debug\n")
			h := AddHost6(t, lab, "2001:db8:1::9/64")
			c := dh6Socket(t, h.Netns)
			mac := net.HardwareAddr{0x52, 0x54, 0, 0x66, 0, 1}
			valid := dh6BootSolicit(0x123456, mac)
			relay := func(inner []byte, hops int) []byte {
				b := append([]byte{12, byte(hops)}, make([]byte, 32)...)
				b = binenc.BigEndian.AppendUint16(b, 9)
				b = binenc.BigEndian.AppendUint16(b, uint16(len(inner)))
				return append(b, inner...)
			}
			deep := valid
			for i := 0; i < 40; i++ {
				deep = relay(deep, i)
			}
			garbage := map[string][]byte{
				"empty":                nil,
				"one byte":             {1},
				"header only":          {1, 0, 0, 1},
				"option past the end":  append(valid[:len(valid):len(valid)], 0, 1, 0xff, 0xff, 1, 2),
				"truncated option":     valid[:len(valid)-3],
				"zero-length DUID":     dh6Msg(1, 7, dh6Opt{1, nil}, dh6Opt{61, []byte{0, 7}}),
				"odd arch option":      dh6Msg(1, 8, dh6Opt{1, []byte{0, 3, 0, 1, 1, 2, 3, 4, 5, 6}}, dh6Opt{61, []byte{7}}),
				"bad vendor class":     dh6Msg(1, 9, dh6Opt{1, []byte{0, 3, 0, 1, 1, 2, 3, 4, 5, 6}}, dh6Opt{16, []byte{0, 0, 1, 0x57, 0xff, 0xff}}),
				"bad IA_NA":            dh6Msg(1, 10, dh6Opt{1, []byte{0, 3, 0, 1, 1, 2, 3, 4, 5, 6}}, dh6Opt{3, []byte{1, 2, 3}}),
				"relay nested 40 deep": deep,
				"relay-reply":          append([]byte{13}, relay(valid, 0)[1:]...),
				"advertise":            append([]byte{2}, valid[1:]...),
				"random":               bytes.Repeat([]byte{0xa5, 0x17, 0x00, 0xff}, 100),
			}
			dsts := []string{dh6AllServers(t, h.Netns), "[2001:db8:1::1]:547"}
			for name, b := range garbage {
				for _, dst := range dsts {
					if _, err := c.WriteToUDP(b, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(dst))); err != nil {
						t.Fatalf("%s to %s: %v", name, dst, err)
					}
				}
			}
			if got := dh6Read(c, 2*time.Second); len(got) != 0 {
				t.Errorf("%d replies to garbage: %x", len(got), got)
			}
			if _, err := c.WriteToUDP(valid, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(dsts[0]))); err != nil {
				t.Fatal(err)
			}
			var opts map[uint16][]byte
			for _, b := range dh6Read(c, 3*time.Second) {
				if opts = dh6Options(b, 0x123456); opts != nil {
					break
				}
			}
			if opts == nil || opts[0][0] != 2 {
				t.Fatalf("no Advertise to a boot client's Solicit after the garbage:\n%s", s.Log())
			}
			if url := string(opts[59]); url != "tftp://[2001:db8:1::1]/snponly.efi" {
				t.Errorf("boot file URL %q", url)
			}
			if _, exited := s.Exited(0); exited || !strings.Contains(s.Log(), "dhcp6: malformed packet") {
				t.Errorf("server exited (%v) or logged no malformed packet:\n%s", exited, s.Log())
			}
		})
	}
}

// In proxy mode a boot client that took another server's address asks
// bootforge again on udp/4011, as EDK2 does: a Request from port 4011
// naming bootforge's server id, answered with the boot file URL, after a
// short delay (EDK2 opens its reading socket only after sending).
func TestDHCP6ProxyBootServer(t *testing.T) {
	t.Parallel()
	lab := NewLab6(t, "2001:db8:1::1/64")
	dh6Start(t, lab, "dhcp:\n  v6:\n    mode: proxy\n    interfaces: [br0]\n")
	h := AddHost6(t, lab, "2001:db8:1::9/64")
	c := dh6Socket(t, h.Netns)
	mac := net.HardwareAddr{0x52, 0x54, 0, 0x66, 0, 2}
	to := func(s string) *net.UDPAddr { return net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	// To every server on the link, as EDK2 sends it: a Solicit sent to
	// the server's own address is discarded (RFC 8415 16).
	if _, err := c.WriteToUDP(dh6BootSolicit(0x42, mac), to(dh6AllServers(t, h.Netns))); err != nil {
		t.Fatal(err)
	}
	var adv map[uint16][]byte
	for _, b := range dh6Read(c, 3*time.Second) {
		if adv = dh6Options(b, 0x42); adv != nil {
			break
		}
	}
	if adv == nil || adv[0][0] != 2 || adv[2] == nil || adv[3] != nil {
		t.Fatalf("no Advertise with a server id and without IA_NA: %v", adv)
	}
	var bs *net.UDPConn
	if err := dhInNetns(h.Netns, func() (err error) {
		bs, err = net.ListenUDP("udp6", &net.UDPAddr{IP: net.ParseIP("2001:db8:1::9"), Port: 4011})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	duid := append([]byte{0, 3, 0, 1}, mac...)
	req := dh6Msg(3, 0x43, dh6Opt{2, adv[2]}, dh6Opt{1, duid}, dh6Opt{61, []byte{0, 7}})
	sent := time.Now()
	if _, err := bs.WriteToUDP(req, to("[2001:db8:1::1]:4011")); err != nil {
		t.Fatal(err)
	}
	var reply map[uint16][]byte
	var at time.Duration
	for _, b := range dh6Read(bs, 3*time.Second) {
		if reply = dh6Options(b, 0x43); reply != nil {
			at = time.Since(sent)
			break
		}
	}
	if reply == nil || reply[0][0] != 7 || string(reply[59]) != "tftp://[2001:db8:1::1]/snponly.efi" {
		t.Fatalf("udp/4011 reply %v", reply)
	}
	if at < 150*time.Millisecond {
		t.Errorf("udp/4011 answered after %s: EDK2 may not listen yet", at)
	}
	if cls := reply[16]; len(cls) < 15 || string(cls[6:15]) != "PXEClient" {
		t.Errorf("vendor class %x", cls)
	}
}
