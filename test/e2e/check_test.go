package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
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

// TestCheckChecklist runs `bootforge check` against a healthy server (every
// item passes), then against one whose TFTP service is off while the
// config says it runs (the tftp item fails and says why, exit non-zero).
func TestCheckChecklist(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "undionly.kpxe"), bytes.Repeat([]byte("L"), 1500), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "snponly.efi"), bytes.Repeat([]byte("E"), 2000), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := "inventory:\n  default_profile: lab\n  profiles:\n    - {name: lab, menu: {entries: [{name: disk, kind: local}]}}\n" +
		"    - {name: uefi, match: [{arch: efi-x64}], menu: {entries: [{name: disk, kind: local}]}}\n"
	s := StartServer(t, ServerOptions{Root: root, Config: cfg})
	args := func(extra ...string) []string {
		return append([]string{"check", "--json", "--root", root, "--data-dir", s.DataDir, "--tftp-addr", s.TFTPAddr,
			"--http-addr", s.HTTPAddr, "--api-addr", s.APIAddr}, extra...)
	}
	items := func(out string) map[string]string {
		var list []struct{ Name, Status, Detail string }
		if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "]")+1]), &list); err != nil {
			t.Fatalf("check --json: %v\n%s", err, out)
		}
		m := map[string]string{}
		for _, it := range list {
			m[it.Name] = it.Status + ": " + it.Detail
		}
		return m
	}
	out, err := run(t, 30*time.Second, binary, args("--expect-profile", "lab")...)
	if err != nil {
		t.Fatalf("check on a healthy server: %v\n%s", err, out)
	}
	got := items(out)
	for _, name := range []string{"tftp", "menu", "dhcp config", "health"} {
		if !strings.HasPrefix(got[name], "pass") {
			t.Errorf("%s: %s", name, got[name])
		}
	}
	if !strings.Contains(got["tftp"], "1500 bytes") {
		t.Errorf("tftp item: %s", got["tftp"])
	}
	// --arch asks as that firmware would: its loader, and its iPXE's menu.
	out, err = run(t, 30*time.Second, binary, args("--arch", "efi-x64", "--expect-profile", "uefi")...)
	if got := items(out); err != nil || !strings.Contains(got["tftp"], "snponly.efi") || !strings.Contains(got["tftp"], "2000 bytes") {
		t.Errorf("check --arch efi-x64: %v\n%s", err, out)
	}
	if out, err := run(t, 30*time.Second, binary, args("--arch", "pc")...); err == nil || !strings.Contains(out, `"pc" is not one of bios`) {
		t.Errorf("check --arch pc: %v\n%s", err, out)
	}
	// A wrong expectation fails the menu item.
	if out, err := run(t, 30*time.Second, binary, args("--expect-profile", "other")...); err == nil || !strings.HasPrefix(items(out)["menu"], "fail") {
		t.Errorf("expecting another profile passed:\n%s", out)
	}

	// The same server without TFTP: the checklist fails, naming the cause.
	s.Stop()
	s2 := StartServer(t, ServerOptions{Root: root, Config: cfg + "tftp:\n  enabled: false\n"})
	out, err = run(t, 30*time.Second, binary, "check", "--json", "--root", root, "--data-dir", s2.DataDir,
		"--tftp-addr", s.TFTPAddr, "--http-addr", s2.HTTPAddr, "--api-addr", s2.APIAddr)
	if err == nil {
		t.Fatalf("check passed with TFTP stopped:\n%s", out)
	}
	got = items(out)
	if !strings.HasPrefix(got["tftp"], "fail") || !strings.Contains(got["tftp"], "no answer") {
		t.Errorf("tftp item with TFTP stopped: %s", got["tftp"])
	}
	if !strings.HasPrefix(got["health"], "pass") {
		t.Errorf("health should still pass: %s", got["health"])
	}
}
