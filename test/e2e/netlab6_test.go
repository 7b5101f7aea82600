package e2e

// The IPv6-only boot network: the lab of netlab_test.go (a namespace with
// br0) without any IPv4 address, its bridge at an address of
// 2001:db8::/32 (the documentation prefix, the only one these tests use),
// and radvd announcing the link's prefix as a router of the lab would.
//
// Duplicate address detection is off in every namespace here: an address
// stays "tentative" for a second or more after it is added, and nothing
// can bind it meanwhile; in a namespace of our own no other node can hold
// it. Multicast snooping is off on the bridge, so ff02::1:2 reaches the
// server without an MLD querier on the link.

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// docNet6 is the only IPv6 network a lab may use.
var docNet6 = netip.MustParsePrefix("2001:db8::/32")

func checkAllowed6(t testing.TB, p netip.Prefix) {
	t.Helper()
	if !docNet6.Contains(p.Addr()) || p.Bits() < docNet6.Bits() {
		t.Fatalf("address %s is outside the IPv6 test network %s", p, docNet6)
	}
}

// noDAD turns duplicate address detection off in netns, for interfaces
// made from now on (default) and those there already (all).
func noDAD(t testing.TB, netns string) {
	t.Helper()
	for _, k := range []string{"net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0"} {
		if out, err := netnsRun(netns, 10*time.Second, "sysctl", "-qw", k); err != nil {
			t.Fatalf("in %s: sysctl %s: %v\n%s", netns, k, err, out)
		}
	}
}

// NewLab6 creates an IPv6-only lab: br0 at addr (e.g. "2001:db8:1::1/64").
func NewLab6(t testing.TB, addr string) *Lab {
	t.Helper()
	need(t, "ip", "sysctl")
	if os.Geteuid() != 0 {
		t.Fatal("the network lab needs root (network namespaces, bridges, taps)")
	}
	p := netip.MustParsePrefix(addr)
	checkAllowed6(t, p)
	labSweepOnce.Do(sweepStaleLabs)
	l := &Lab{t: t, Netns: newNetnsName(), Bridge: "br0", Prefix: p}
	addNetns(t, l.Netns)
	noDAD(t, l.Netns)
	l.MustExec("ip", "link", "set", "lo", "up")
	l.MustExec("ip", "link", "add", l.Bridge, "type", "bridge", "forward_delay", "0", "stp_state", "0", "mcast_snooping", "0")
	l.MustExec("ip", "-6", "addr", "add", p.String(), "dev", l.Bridge, "nodad")
	l.MustExec("ip", "link", "set", l.Bridge, "up")
	return l
}

// AddHost6 is lab.AddHost for an IPv6 lab: a neighbour namespace with DAD
// off and, if addr is not "", that address on eth0.
func AddHost6(t testing.TB, lab *Lab, addr string) *LabHost {
	t.Helper()
	h := lab.AddHost(t, "")
	noDAD(t, h.Netns)
	h.MustExec("sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0")
	if addr != "" {
		h.Addr = netip.MustParsePrefix(addr)
		checkAllowed6(t, h.Addr)
		h.MustExec("ip", "-6", "addr", "add", addr, "dev", "eth0", "nodad")
	}
	dhWaitLink(t, h.Netns, h.Iface, lab.Netns)
	waitLinkLocal(t, h.Netns, h.Iface)
	return h
}

// Link6 creates a namespace joined to the namespace from by a veth pair:
// fromIface with fromAddr there, eth0 with addr (either may be "") in the
// new one. It is deleted when the test ends.
func Link6(t testing.TB, lab *Lab, from, fromIface, fromAddr, addr string) *LabHost {
	t.Helper()
	for _, a := range []string{fromAddr, addr} {
		if a != "" {
			checkAllowed6(t, netip.MustParsePrefix(a))
		}
	}
	h := &LabHost{Lab: lab, Netns: newNetnsName(), Iface: "eth0"}
	addNetns(t, h.Netns)
	noDAD(t, h.Netns)
	in := func(ns string, args ...string) {
		t.Helper()
		if out, err := netnsRun(ns, 30*time.Second, "ip", args...); err != nil {
			t.Fatalf("in %s: ip %s: %v\n%s", ns, strings.Join(args, " "), err, out)
		}
	}
	in(from, "link", "add", fromIface, "type", "veth", "peer", "name", "eth0", "netns", h.Netns)
	if fromAddr != "" {
		in(from, "-6", "addr", "add", fromAddr, "dev", fromIface, "nodad")
	}
	in(from, "link", "set", fromIface, "up")
	in(h.Netns, "link", "set", "lo", "up")
	if addr != "" {
		h.Addr = netip.MustParsePrefix(addr)
		in(h.Netns, "-6", "addr", "add", addr, "dev", "eth0", "nodad")
	}
	in(h.Netns, "link", "set", "eth0", "up")
	dhWaitLink(t, h.Netns, "eth0", from)
	waitLinkLocal(t, h.Netns, "eth0")
	waitLinkLocal(t, from, fromIface)
	return h
}

// waitLinkLocal waits until iface in netns has a usable fe80:: address:
// DHCPv6 clients and relays send from it.
func waitLinkLocal(t testing.TB, netns, iface string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var out string
	for time.Now().Before(deadline) {
		out, _ = netnsRun(netns, 10*time.Second, "ip", "-6", "-o", "addr", "show", "dev", iface, "scope", "link")
		if strings.Contains(out, "fe80::") && !strings.Contains(out, "tentative") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no link-local address on %s in %s:\n%s", iface, netns, out)
}

// StartRadvd runs radvd on the lab bridge, announcing prefix with the
// managed (M) and other-config (O) flags as given, and the prefix as on
// link, for SLAAC only if autonomous. It is stopped with the namespace.
func StartRadvd(t testing.TB, lab *Lab, prefix string, managed, other, autonomous bool) {
	t.Helper()
	need(t, "radvd")
	onoff := func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "radvd.conf")
	text := fmt.Sprintf(`interface %s {
	AdvSendAdvert on;
	MinRtrAdvInterval 3;
	MaxRtrAdvInterval 4;
	AdvManagedFlag %s;
	AdvOtherConfigFlag %s;
	prefix %s {
		AdvOnLink on;
		AdvAutonomous %s;
	};
};
`, lab.Bridge, onoff(managed), onoff(other), prefix, onoff(autonomous))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// A router of the lab: forwarding on, in the lab's namespace only.
	lab.MustExec("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
	cmd := lab.Command("radvd", "--nodaemon", "--config", conf, "--pidfile", filepath.Join(dir, "radvd.pid"), "--logmethod", "stderr")
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("radvd log:\n%s", log.String())
		}
	})
	select {
	case <-done:
		t.Fatalf("radvd exited at once:\n%s", log.String())
	case <-time.After(300 * time.Millisecond):
	}
}
