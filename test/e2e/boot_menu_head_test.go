package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBootMenuHead: curl -I of a client's menu answers the headers of the
// GET (Content-Length included) and takes no effect: the pending one-shot
// stays pending, no menu or one-shot event reaches the boot log, and
// bootforge_boots_total does not move. The GET after it delivers.
func TestBootMenuHead(t *testing.T) {
	need(t, "curl", "promtool")
	const mac = "52:54:00:aa:00:01"
	config := `inventory:
  hosts:
    - {name: pc, macs: ["` + mac + `"], profile: os}
  profiles:
    - name: os
      menu:
        default: a
        entries:
          - {name: a, kind: local}
          - {name: b, kind: linux, kernel: vmlinuz}
`
	conf := filepath.Join(t.TempDir(), "bootforge.yaml")
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	tfWriteFile(t, root, "vmlinuz", []byte("kernel"))
	s := StartServer(t, ServerOptions{Root: root, Args: []string{"--config", conf}})
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, append([]string{"--config", conf}, args...)...)
		cmd.Env = append(cmd.Environ(), "BOOTFORGE_DATA_DIR="+s.DataDir, "BOOTFORGE_ROOT="+root)
		out, err := runCmd(cmd, 30*time.Second)
		if err != nil {
			t.Fatalf("bootforge %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	state := func() string {
		t.Helper()
		var hosts []struct {
			NextBoot *struct{ State string } `json:"next_boot"`
		}
		out := cli("host", "show", mac, "--json")
		if err := json.Unmarshal([]byte(out), &hosts); err != nil || len(hosts) != 1 || hosts[0].NextBoot == nil {
			t.Fatalf("host show: %v\n%s", err, out)
		}
		return hosts[0].NextBoot.State
	}
	boots := func(sc scrape) float64 {
		n := 0.0
		for k, v := range sc.series {
			if strings.HasPrefix(k, "bootforge_boots_total") {
				n += v
			}
		}
		return n
	}
	cli("host", "next-boot", mac, "b")
	url := "http://" + s.HTTPAddr + "/bootforge/ipxe?mac=" + strings.ReplaceAll(mac, ":", "-")
	before := scrapeMetrics(t, s, "")

	head, err := run(t, 30*time.Second, "curl", "-sS", "-I", url)
	if err != nil || !strings.HasPrefix(head, "HTTP/1.1 200") {
		t.Fatalf("curl -I: %v\n%s", err, head)
	}
	length := -1
	for _, line := range strings.Split(head, "\n") {
		if v, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(line)), "content-length: "); ok {
			length, _ = strconv.Atoi(v)
		}
	}
	if length <= 0 {
		t.Fatalf("curl -I: no Content-Length:\n%s", head)
	}
	waitUntil(t, 10*time.Second, "the HEAD's access-log line", func() bool { return s.CountLog(`method=HEAD path=/bootforge/ipxe`) == 1 })
	if st := state(); st != "pending" {
		t.Errorf("after HEAD the one-shot is %s, want pending", st)
	}
	if n := s.CountLog(`msg=menu `) + s.CountLog(`msg="one-shot delivered"`); n != 0 {
		t.Errorf("HEAD logged a menu or a delivery:\n%s", s.Log())
	}
	if d := boots(scrapeMetrics(t, s, "")) - boots(before); d != 0 {
		t.Errorf("HEAD moved bootforge_boots_total by %g", d)
	}

	body, err := run(t, 30*time.Second, "curl", "-sS", "--fail", url)
	if err != nil || len(body) != length || !strings.Contains(body, "vmlinuz") {
		t.Fatalf("GET after HEAD: %v; %d bytes, HEAD said %d:\n%s", err, len(body), length, body)
	}
	if st := state(); st != "delivered" {
		t.Errorf("after GET the one-shot is %s, want delivered", st)
	}
	if d := boots(scrapeMetrics(t, s, "")) - boots(before); d != 1 {
		t.Errorf("GET moved bootforge_boots_total by %g, want 1", d)
	}
	// The boot log has the GET's menu and delivery, and nothing of the HEAD.
	var menus, delivered int
	waitUntil(t, 15*time.Second, "the menu and its delivery in the boot log", func() bool {
		out := cli("log", "--mac", mac, "--json")
		menus, delivered = 0, 0
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var e struct{ Stage, Protocol, Result string }
			if json.Unmarshal([]byte(line), &e) != nil {
				continue
			}
			if e.Protocol == "ipxe" && e.Stage == "menu" {
				menus++
			}
			if e.Stage == "one-shot" && strings.HasPrefix(e.Result, "delivered") {
				delivered++
			}
		}
		return menus > 0 && delivered > 0
	})
	if menus != 1 || delivered != 1 {
		t.Errorf("boot log: %d menu and %d delivery events, want 1 each (the GET's)", menus, delivered)
	}
}
