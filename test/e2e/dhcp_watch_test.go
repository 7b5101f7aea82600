package e2e

import (
	"strings"
	"testing"
	"time"
)

const watchConfig = `dhcp:
  mode: authoritative
  interfaces: [br0]
  subnets:
    - subnet: 192.0.2.0/24
      pools: ["192.0.2.100-192.0.2.150"]
`

// watchCheckItem runs the full `bootforge check` beside srv, with its
// config, and returns the "dhcp watch" item.
func watchCheckItem(t *testing.T, lab *Lab, srv *Server, cfg string) string {
	t.Helper()
	item, _ := checkItem(t, lab.Exec, srv, writeConfig(t, cfg), "dhcp watch")
	return item
}

// watchCheckFails runs check until its dhcp watch item fails, for up to
// 2 s: the watch's finding reaches the store through the boot log's
// recorder, a few milliseconds after the log line. It returns the last item.
func watchCheckFails(t *testing.T, lab *Lab, srv *Server, cfg string) string {
	t.Helper()
	item := watchCheckItem(t, lab, srv, cfg)
	for deadline := time.Now().Add(2 * time.Second); !strings.HasPrefix(item, "fail") && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		item = watchCheckItem(t, lab, srv, cfg)
	}
	return item
}

// waitLogWithin waits up to d for substr in srv's log and returns how long
// it took, failing the test if it never came.
func waitLogWithin(t *testing.T, srv *Server, substr string, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		if strings.Contains(srv.Log(), substr) {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no %q in the server log within %s:\n%s", substr, d, srv.Log())
	return 0
}

// TestDHCPWatchRogueServer: bootforge, authoritative on a bridge, sees
// dnsmasq start giving addresses on the same bridge — passively, from the
// broadcast OFFER a client's DISCOVER draws — within 10 s, logs an error,
// and `check` fails naming it. Before dnsmasq, check passes.
func TestDHCPWatchRogueServer(t *testing.T) {
	lab := NewLab(t)
	srv := StartServer(t, ServerOptions{Netns: lab.Netns, Addr: "192.0.2.1", Config: watchConfig})
	srv.WaitLog("dhcp watch: looking for other DHCP servers", 5*time.Second)
	client := dhAddHost(t, lab, "")
	dhMustUdhcpc(t, client, "-B") // bootforge alone
	if item := watchCheckItem(t, lab, srv, watchConfig); !strings.HasPrefix(item, "pass: no other DHCP server seen") {
		t.Fatalf("bootforge alone: %s", item)
	}

	rogue := dhAddHost(t, lab, "192.0.2.2")
	StartDnsmasq(t, rogue.Netns, rogue.Iface, "--dhcp-range=192.0.2.200,192.0.2.220,1h")
	start := time.Now()
	// -B asks for broadcast replies, as many PXE ROMs do; both servers offer.
	dhUdhcpc(t, client, 2, "-B")
	waitLogWithin(t, srv, "dhcp watch: a second authoritative DHCP server", 10*time.Second-time.Since(start))
	t.Logf("the watch reported dnsmasq %.1f s after dnsmasq started", time.Since(start).Seconds())
	if !strings.Contains(srv.Log(), "server=192.0.2.2") {
		t.Errorf("the log does not name dnsmasq's address:\n%s", srv.Log())
	}
	if item := watchCheckFails(t, lab, srv, watchConfig); !strings.HasPrefix(item, "fail") || !strings.Contains(item, "authoritative server 192.0.2.2") {
		t.Errorf("check with dnsmasq on the segment: %s", item)
	}
}

// TestDHCPWatchProbe: with dhcp.watch.probe, bootforge finds dnsmasq on
// its own, with no client on the segment.
func TestDHCPWatchProbe(t *testing.T) {
	lab := NewLab(t)
	rogue := dhAddHost(t, lab, "192.0.2.2")
	StartDnsmasq(t, rogue.Netns, rogue.Iface, "--dhcp-range=192.0.2.200,192.0.2.220,1h")
	cfg := watchConfig + "  watch:\n    probe: 5s\n"
	srv := StartServer(t, ServerOptions{Netns: lab.Netns, Addr: "192.0.2.1", Config: cfg})
	waitLogWithin(t, srv, "dhcp watch: a second authoritative DHCP server", 10*time.Second)
	if item := watchCheckFails(t, lab, srv, cfg); !strings.HasPrefix(item, "fail") || !strings.Contains(item, "192.0.2.2") {
		t.Errorf("check: %s", item)
	}
}
