package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestCheckDHCPRogueServer runs `bootforge check dhcp` on a segment with
// bootforge alone (passes), with a second authoritative server (dnsmasq:
// fails, naming both), and with bootforge as a proxy beside dnsmasq
// (passes: one gives addresses, one only boot files).
func TestCheckDHCPRogueServer(t *testing.T) {
	lab := NewLab(t)
	cfg := `dhcp:
  mode: authoritative
  interfaces: [br0]
  subnets:
    - subnet: 192.0.2.0/24
      pools: ["192.0.2.100-192.0.2.150"]
`
	srv := StartServer(t, ServerOptions{Netns: lab.Netns, Addr: "192.0.2.1", Config: cfg})
	probe := dhAddHost(t, lab, "")
	check := func(wantOK bool) checkResult {
		t.Helper()
		out, err := probe.Exec(30*time.Second, binary, "check", "dhcp", "--interface", probe.Iface, "--wait", "5s", "--json")
		if (err == nil) != wantOK {
			t.Fatalf("check dhcp: err %v, want ok=%v; output:\n%s\nserver log:\n%s", err, wantOK, out, srv.Log())
		}
		var res checkResult
		if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &res); err != nil {
			t.Fatalf("check dhcp --json: %v\n%s", err, out)
		}
		return res
	}

	alone := check(true)
	if len(alone.Servers) != 1 || alone.Servers[0].ServerID != "192.0.2.1" || alone.Servers[0].Kind != "authoritative" || alone.Conflict {
		t.Fatalf("bootforge alone: %+v", alone)
	}

	rogue := dhAddHost(t, lab, "192.0.2.2")
	StartDnsmasq(t, rogue.Netns, rogue.Iface, "--dhcp-range=192.0.2.200,192.0.2.220,1h")
	both := check(false)
	ids := map[string]string{}
	for _, s := range both.Servers {
		ids[s.ServerID] = s.Kind
	}
	if ids["192.0.2.1"] != "authoritative" || ids["192.0.2.2"] != "authoritative" || !both.Conflict {
		t.Fatalf("two servers: %+v", both)
	}

	// bootforge as a proxy beside dnsmasq is the intended layout: no conflict.
	srv.Stop()
	StartServer(t, ServerOptions{Netns: lab.Netns, Addr: "192.0.2.1", Config: "dhcp:\n  mode: proxy\n  interfaces: [br0]\n"})
	proxied := check(true)
	kinds := map[string]string{}
	for _, s := range proxied.Servers {
		kinds[s.ServerID] = s.Kind
	}
	if kinds["192.0.2.1"] != "proxy" || kinds["192.0.2.2"] != "authoritative" || proxied.Conflict {
		t.Fatalf("proxy beside dnsmasq: %+v", proxied)
	}
}

type checkResult struct {
	Servers []struct {
		ServerID  string `json:"server_id"`
		Kind      string `json:"kind"`
		OfferedIP string `json:"offered_ip"`
	} `json:"servers"`
	Conflict bool `json:"conflict"`
}
