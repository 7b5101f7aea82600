package e2e

// Issue #14, items 2, 4, 6 and 8 (the CLI's flags), against the real
// binary with curl as the client: a one-shot is consumed only by its own
// client and only by a boot that really started; host names are DNS
// labels and nothing a client sends reaches the terminal raw; hosts
// written at once keep a MAC to one host, with a clear refusal for every
// loser; and negative durations and limits are refused.

import (
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite" // to age a store as a bootforge before host_macs left it
)

// hiConfig is a site with one profile for every client: "install" boots
// vmlinuz, "disk" is the default; "other" can be pinned.
const hiConfig = `inventory:
  default_profile: lab
  profiles:
    - name: lab
      menu:
        default: disk
        entries:
          - {name: disk, kind: local}
          - {name: install, kind: linux, kernel: vmlinuz, initrds: [initrd.gz], cmdline: "marker=install"}
    - name: other
      priority: 5
      match:
        - labels: [never]
      menu:
        entries:
          - {name: rescue, kind: local}
`

// hiStart starts bootforge on hiConfig with a 64 KiB kernel in its root
// and returns it and a CLI config for the same root, store and inventory.
func hiStart(t *testing.T, st ...e2eStore) (*Server, string) {
	t.Helper()
	need(t, "curl")
	root := t.TempDir()
	kernel := make([]byte, 64<<10)
	rand.Read(kernel)
	if err := os.WriteFile(filepath.Join(root, "vmlinuz"), kernel, 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "initrd.gz"), []byte("initrd"), 0o644)
	cfg := hiConfig
	if len(st) > 0 {
		cfg += st[0].yaml()
	}
	s := StartServer(t, ServerOptions{Root: root, Config: cfg})
	return s, dcCLIConfig(t, s, cfg)
}

// hiCurl runs curl with args and returns the HTTP status and the body.
func hiCurl(t *testing.T, args ...string) (int, string) {
	t.Helper()
	out, err := run(t, 20*time.Second, "curl", append([]string{"-s", "-o", "-", "-w", "\n%{http_code}"}, args...)...)
	if err != nil {
		t.Fatalf("curl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	i := strings.LastIndex(out, "\n")
	var code int
	fmt.Sscanf(out[i+1:], "%d", &code)
	return code, out[:i]
}

// hiState is the one-shot state of mac as `host show --json` prints it.
func hiState(t *testing.T, cli, mac string) string {
	t.Helper()
	out, code := dcCLI(t, cli, "host", "show", mac, "--json")
	if code != 0 {
		t.Fatalf("host show %s: exit %d\n%s", mac, code, out)
	}
	var views []struct {
		NextBoot *struct{ State string } `json:"next_boot"`
	}
	if err := json.Unmarshal([]byte(out), &views); err != nil || len(views) != 1 {
		t.Fatalf("host show %s --json: %v\n%s", mac, err, out)
	}
	if views[0].NextBoot == nil {
		return "none"
	}
	return views[0].NextBoot.State
}

// hiDeliver sets a one-shot "install" for mac and fetches its iPXE script
// from 127.0.0.1, as the client's iPXE would: the one-shot is delivered
// and its client is 127.0.0.1.
func hiDeliver(t *testing.T, s *Server, cli, mac string) {
	t.Helper()
	if out, code := dcCLI(t, cli, "host", "next-boot", mac, "install"); code != 0 {
		t.Fatalf("host next-boot: exit %d\n%s", code, out)
	}
	code, body := hiCurl(t, "http://"+s.HTTPAddr+"/bootforge/ipxe?mac="+pxeMAC(mac)+"&buildarch=x86_64&platform=efi")
	if code != 200 || !strings.Contains(body, "marker=install") {
		t.Fatalf("iPXE script for %s: %d, want the one-shot's kernel:\n%s", mac, code, body)
	}
	if st := hiState(t, cli, mac); st != "delivered" {
		t.Fatalf("one-shot of %s after its menu: %s, want delivered", mac, st)
	}
}

// #14.2: the booted beacon counts only from where the MAC was seen, and a
// kernel probe is not a boot.
func TestHostsIntegrityOneShot(t *testing.T) { eachStore(t, testHostsIntegrityOneShot) }

func testHostsIntegrityOneShot(t *testing.T, st e2eStore) {
	s, cli := hiStart(t, st)
	kernel := "http://" + s.HTTPAddr + "/vmlinuz"
	mac := "52:54:00:14:02:01"
	hiDeliver(t, s, cli, mac)

	// Another machine on the network (127.0.0.2) sends the beacon.
	code, body := hiCurl(t, "--interface", "127.0.0.2", "http://"+s.HTTPAddr+"/bootforge/booted?mac="+mac)
	if code == 200 {
		t.Errorf("beacon for %s from 127.0.0.2 (seen at 127.0.0.1): %d %q, want a refusal", mac, code, body)
	}
	if st := hiState(t, cli, mac); st != "delivered" {
		t.Errorf("one-shot after a beacon from another address: %s, want still delivered", st)
	}
	if !strings.Contains(s.Log(), "booted beacon refused") || s.CountLog("client=127.0.0.2 mac="+mac) == 0 {
		t.Errorf("the refused beacon is not logged with its address and MAC:\n%s", s.Log())
	}

	// The client's own firmware probes the first 100 bytes of the kernel.
	if code, body := hiCurl(t, "-r", "0-99", kernel); code != 206 || len(body) != 100 {
		t.Fatalf("range 0-99 of the kernel: %d, %d bytes", code, len(body))
	}
	if st := hiState(t, cli, mac); st != "delivered" {
		t.Errorf("one-shot after a 100-byte range of the kernel: %s, want still delivered", st)
	}
	// The whole kernel: the boot has started.
	if code, body := hiCurl(t, kernel); code != 200 || len(body) != 64<<10 {
		t.Fatalf("the kernel: %d, %d bytes", code, len(body))
	}
	if st := hiState(t, cli, mac); st != "booted" {
		t.Errorf("one-shot after the whole kernel: %s, want booted", st)
	}

	// A resumed download: the range that reaches the end proves the boot.
	hiDeliver(t, s, cli, mac)
	if code, _ := hiCurl(t, "-r", "32768-", kernel); code != 206 {
		t.Fatalf("range 32768- of the kernel: %d", code)
	}
	if st := hiState(t, cli, mac); st != "booted" {
		t.Errorf("one-shot after the range to the kernel's end: %s, want booted", st)
	}

	// The booted system's own beacon, from the address it was seen at.
	hiDeliver(t, s, cli, mac)
	if code, body := hiCurl(t, "http://"+s.HTTPAddr+"/bootforge/booted?mac="+mac); code != 200 || body != "ok\n" {
		t.Errorf("beacon from 127.0.0.1, where %s was seen: %d %q, want 200 ok", mac, code, body)
	}
	if st := hiState(t, cli, mac); st != "booted" {
		t.Errorf("one-shot after its client's beacon: %s, want booted", st)
	}
}

// A one-shot set while its machine is mid-boot is not consumed by the
// boot of the menu served before it: it stays pending and the next menu
// serves it. A plain menu for another MAC at the same address leaves
// nothing for a later kernel fetch there to consume.
func TestHostsIntegrityOneShotReplacedMidBoot(t *testing.T) {
	eachStore(t, testHostsIntegrityOneShotReplacedMidBoot)
}

func testHostsIntegrityOneShotReplacedMidBoot(t *testing.T, st e2eStore) {
	s, cli := hiStart(t, st)
	kernel := "http://" + s.HTTPAddr + "/vmlinuz"
	script := func(mac string) string {
		t.Helper()
		code, body := hiCurl(t, "http://"+s.HTTPAddr+"/bootforge/ipxe?mac="+pxeMAC(mac)+"&buildarch=x86_64&platform=efi")
		if code != 200 {
			t.Fatalf("iPXE script for %s: %d\n%s", mac, code, body)
		}
		return body
	}
	shown := func(mac string) string {
		t.Helper()
		out, code := dcCLI(t, cli, "host", "show", mac)
		if code != 0 {
			t.Fatalf("host show %s: exit %d\n%s", mac, code, out)
		}
		return out
	}
	mac := "52:54:00:12:34:56"
	hiDeliver(t, s, cli, mac) // "install" served
	if out, code := dcCLI(t, cli, "host", "next-boot", mac, "disk"); code != 0 {
		t.Fatalf("host next-boot %s disk: exit %d\n%s", mac, code, out)
	}
	if code, body := hiCurl(t, kernel); code != 200 || len(body) != 64<<10 {
		t.Fatalf("the kernel of the menu served: %d, %d bytes", code, len(body))
	}
	if out := shown(mac); !strings.Contains(out, "disk (pending)") {
		t.Errorf("host show after the old menu's kernel: want disk (pending):\n%s", out)
	}
	if !strings.Contains(s.Log(), "not marked booted") {
		t.Errorf("the fetch that consumed nothing is not logged:\n%s", s.Log())
	}
	if body := script(mac); strings.Contains(body, "marker=install") || strings.Contains(body, "choose") {
		t.Errorf("the next menu does not boot the one-shot disk:\n%s", body)
	}
	if st := hiState(t, cli, mac); st != "delivered" {
		t.Errorf("disk after the next menu: %s, want delivered", st)
	}

	// Another MAC fetches a menu without a one-shot from the same address.
	hiDeliver(t, s, cli, mac)
	if body := script("52:54:00:12:34:57"); !strings.Contains(body, "choose --default disk") {
		t.Fatalf("the other MAC did not get the plain menu:\n%s", body)
	}
	hiCurl(t, kernel)
	if st := hiState(t, cli, mac); st != "delivered" {
		t.Errorf("install after another MAC's plain menu and a kernel fetch from the same address: %s, want still delivered", st)
	}
	script(mac)
	hiCurl(t, kernel)
	if out := shown(mac); !strings.Contains(out, "install (booted)") {
		t.Errorf("after its own menu and kernel: want install (booted):\n%s", out)
	}
}

// A broken inventory file does not stop the host commands, as it does not
// stop the server (which keeps its last good inventory): they warn, naming
// file and line, and go on without it, refusing writes (but removals)
// until it is fixed.
func TestHostsIntegrityBrokenFile(t *testing.T) { eachStore(t, testHostsIntegrityBrokenFile) }

func testHostsIntegrityBrokenFile(t *testing.T, st e2eStore) {
	need(t, "curl")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "hosts"), 0o755)
	os.MkdirAll(filepath.Join(dir, "profiles"), 0o755)
	os.WriteFile(filepath.Join(dir, "hosts", "good.yaml"), []byte("- {name: pc1, macs: [\"52:54:00:aa:00:01\"]}\n"), 0o644)
	cfg := strings.Replace(hiConfig, "inventory:\n", "inventory:\n  dir: "+dir+"\n", 1) + st.yaml()
	s := StartServer(t, ServerOptions{Config: cfg})
	cli := dcCLIConfig(t, s, cfg)
	api := dcAdminAPI(t, s, cli)
	broken := filepath.Join(dir, "hosts", "broken.yaml")
	os.WriteFile(broken, []byte("- {name: t1, macs: [\"52:54:00:aa:00:09\"]\n"), 0o644)

	out, code := dcCLI(t, cli, "host", "list")
	if code != 0 || !strings.Contains(out, "pc1") || !strings.Contains(out, "warning") || !strings.Contains(out, broken+":1") {
		t.Errorf("host list with a broken host file: exit %d, want pc1 and a warning naming %s:1:\n%s", code, broken, out)
	}
	// Writes wait for the fix, naming the file; the API, with the
	// server's last good inventory, takes them; removals go on.
	for _, args := range [][]string{
		{"host", "next-boot", "pc1", "install"},
		{"host", "add", "pc2", "--mac", "52:54:00:aa:00:02"},
		{"host", "add", "t1", "--mac", "52:54:00:aa:00:10"},
		{"host", "next-boot", "52:54:00:aa:00:09", "install"},
	} {
		if out, code := dcCLI(t, cli, args...); code == 0 || !strings.Contains(out, broken+" cannot be read") {
			t.Errorf("%s: exit %d, want a refusal naming %s:\n%s", strings.Join(args, " "), code, broken, out)
		}
	}
	if code, body := api.call("PUT", "/api/v1/next-boot/52:54:00:aa:00:01", `{"entry": "install"}`); code != 200 {
		t.Errorf("the same through the API: %d %s", code, body)
	}
	if out, _ := dcCLI(t, cli, "host", "list"); strings.Contains(out, "pc2") || strings.Contains(out, "t1 ") {
		t.Errorf("a refused write was stored:\n%s", out)
	}
	if out, code := dcCLI(t, cli, "host", "next-boot", "pc1", "--clear"); code != 0 {
		t.Errorf("host next-boot --clear with a broken host file: exit %d\n%s", code, out)
	}

	// An unreadable profile file: which entries a MAC may boot depends on
	// it, so one-shots wait for the fix; reads go on.
	os.WriteFile(filepath.Join(dir, "profiles", "broken.yaml"), []byte("name: x\nmenu: {entries: [\n"), 0o644)
	if out, code := dcCLI(t, cli, "host", "show", "pc1"); code != 0 || !strings.Contains(out, "pc1") {
		t.Errorf("host show pc1 with a broken profile file: exit %d\n%s", code, out)
	}
	os.Remove(broken)
	if out, code := dcCLI(t, cli, "host", "next-boot", "pc1", "disk"); code == 0 || !strings.Contains(out, "profiles/broken.yaml cannot be read") {
		t.Errorf("host next-boot with a broken profile file: exit %d, want a refusal naming it:\n%s", code, out)
	}
	os.Remove(filepath.Join(dir, "profiles", "broken.yaml"))
	os.Remove(broken)
	if out, code := dcCLI(t, cli, "host", "next-boot", "pc1", "disk"); code != 0 || strings.Contains(out, "warning") {
		t.Errorf("host next-boot once the files are fixed: exit %d\n%s", code, out)
	}
}

// #14.4: host names are DNS labels everywhere, and the terminal never
// gets a raw escape from a client.
func TestHostsIntegrityNames(t *testing.T) {
	s, cli := hiStart(t)
	api := dcAdminAPI(t, s)
	for _, name := range []string{"%1b%5b31mRED", "nul%00byte", "dotted.name", strings.Repeat("a", 64)} {
		code, body := api.call("PUT", "/api/v1/hosts/"+name, `{"macs": ["52:54:00:14:04:01"]}`)
		if code != 400 || !strings.Contains(body, "DNS label") || !strings.Contains(body, `"field":"name"`) {
			t.Errorf("PUT /api/v1/hosts/%s: %d %s, want 400 naming the field and the rule", name, code, body)
		}
	}
	out, code := dcCLI(t, cli, "host", "add", "\x1b[31mRED", "--mac", "52:54:00:14:04:02")
	if code == 0 || !strings.Contains(out, "DNS label") || strings.Contains(out, "\x1b") {
		t.Errorf("host add ESC[31mRED: exit %d, want a refusal naming the rule, escaped:\n%q", code, out)
	}
	if code, body := api.call("PUT", "/api/v1/hosts/pc-1", `{"macs": ["52:54:00:14:04:03"]}`); code != 200 {
		t.Errorf("PUT a valid name: %d %s", code, body)
	}
	out, code = dcCLI(t, cli, "host", "list")
	if code != 0 || strings.Contains(out, "\x1b") || !strings.Contains(out, "pc-1") {
		t.Errorf("host list: exit %d, raw escape or pc-1 missing:\n%q", code, out)
	}

	// A host file with a bad name is refused at load, naming file and line.
	dir := filepath.Dir(cli)
	os.MkdirAll(filepath.Join(dir, "hosts"), 0o755)
	os.WriteFile(filepath.Join(dir, "hosts", "bad.yaml"), []byte("- {name: ok-host, macs: [\"52:54:00:14:04:04\"]}\n- {name: \"evil\\e[2J\", macs: [\"52:54:00:14:04:05\"]}\n"), 0o644)
	out, code = dcCLI(t, cli, "host", "list")
	if code == 0 || !strings.Contains(out, "bad.yaml:2") || !strings.Contains(out, "DNS label") || strings.Contains(out, "\x1b") {
		t.Errorf("host list with a bad name in a host file: exit %d, want the file, line and rule, escaped:\n%q", code, out)
	}
	os.Remove(filepath.Join(dir, "hosts", "bad.yaml"))

	// A client asks for a path with an escape in it; the boot log keeps it,
	// `bootforge log` shows it escaped.
	hiCurl(t, "http://"+s.HTTPAddr+"/%1b%5b31mRED%1b%5b0m")
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, code = dcCLI(t, cli, "log")
		if code != 0 {
			t.Fatalf("bootforge log: exit %d\n%s", code, out)
		}
		if strings.Contains(out, "31mRED") || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if !strings.Contains(out, `\x1b[31mRED\x1b[0m`) || strings.Contains(out, "\x1b") {
		t.Errorf("bootforge log: want the request's path with \\x1b escaped, no raw ESC:\n%q", out)
	}
}

// #14.6: writers racing for one MAC — one wins, the others are told, and
// the server keeps taking writes. An old store with duplicates is refused
// with their names and repaired with host rm.
func TestHostsIntegrityConcurrentWrites(t *testing.T) {
	s, cli := hiStart(t)
	api := dcAdminAPI(t, s)

	type result struct {
		out  string
		code int
	}
	race := func(n int, write func(i int) result) []result {
		res := make([]result, n)
		var wg sync.WaitGroup
		for i := range res {
			wg.Add(1)
			go func() { defer wg.Done(); res[i] = write(i) }()
		}
		wg.Wait()
		return res
	}

	// 10 CLI processes, one MAC.
	cliRes := race(10, func(i int) result {
		out, code := dcCLI(t, cli, "host", "add", fmt.Sprintf("cli-%d", i), "--mac", "52:54:00:14:06:01")
		return result{out, code}
	})
	stored := 0
	for _, r := range cliRes {
		switch {
		case r.code == 0 && strings.Contains(r.out, "stored"):
			stored++
		case r.code == 1 && strings.Contains(r.out, "MAC 52:54:00:14:06:01 belongs to host"):
		default:
			t.Errorf("host add: exit %d, neither stored nor a clear refusal:\n%s", r.code, r.out)
		}
	}
	if stored != 1 {
		t.Errorf("10 parallel host add with one MAC: %d stored, want exactly 1", stored)
	}

	// 10 API writers, one MAC, sent at once by one curl over 10 connections.
	args := []string{"-s", "--no-progress-meter", "--parallel", "--parallel-immediate", "--parallel-max", "10", "-X", "PUT",
		"-H", "Authorization: Bearer " + api.token, "-H", "Content-Type: application/json",
		"--data", `{"macs": ["52:54:00:14:06:02"]}`, "-w", "%{http_code}\n"}
	bodies := t.TempDir()
	for i := 0; i < 10; i++ {
		args = append(args, "-o", filepath.Join(bodies, fmt.Sprint(i)), fmt.Sprintf("%s/api/v1/hosts/api-%d", api.base, i))
	}
	out, err := run(t, 30*time.Second, "curl", args...)
	if err != nil {
		t.Fatalf("curl --parallel: %v\n%s", err, out)
	}
	codes := strings.Fields(out)
	ok, conflicts := 0, 0
	for _, c := range codes {
		switch c {
		case "200", "201":
			ok++
		case "409":
			conflicts++
		}
	}
	if len(codes) != 10 || ok != 1 || conflicts != 9 {
		t.Errorf("10 parallel PUTs with one MAC: statuses %v, want one 200/201 and nine 409", codes)
	}
	for i := 0; i < 10; i++ {
		b, _ := os.ReadFile(filepath.Join(bodies, fmt.Sprint(i)))
		if strings.Contains(string(b), `"conflict"`) && !strings.Contains(string(b), "belongs to host") {
			t.Errorf("PUT api-%d: a 409 that does not name the owner: %s", i, b)
		}
	}

	// The server still takes writes: a host pinned to "other" gets its menu.
	if code, body := api.call("PUT", "/api/v1/hosts/later", `{"macs": ["52:54:00:14:06:03"], "profile": "other"}`); code != 200 && code != 201 {
		t.Fatalf("a later PUT: %d %s", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := hiCurl(t, "http://"+s.HTTPAddr+"/bootforge/ipxe?mac=52-54-00-14-06-03&buildarch=x86_64&platform=efi")
		if strings.Contains(body, "# bootforge profile other") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server never took the later write (host pinned to profile other):\n%s\nserver log:\n%s", body, s.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if strings.Contains(s.Log(), "inventory refused") {
		t.Errorf("the server refused its inventory after the races:\n%s", s.Log())
	}
	out, code := dcCLI(t, cli, "host", "rm", "later")
	if code != 0 {
		t.Errorf("host rm later: exit %d\n%s", code, out)
	}

	// A store from before the unique indexes, holding two hosts with one
	// MAC: the server refuses it naming both; host list and rm still work.
	s.Stop()
	db, err := sql.Open("sqlite", filepath.Join(s.DataDir, "bootforge.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP INDEX IF EXISTS host_macs_one_host`,
		`INSERT INTO hosts (name, macs) VALUES ('dup-a', '52:54:00:14:06:09'), ('dup-b', '52:54:00:14:06:09')`,
		`INSERT INTO host_macs (mac, host) VALUES ('52:54:00:14:06:09', 'dup-a'), ('52:54:00:14:06:09', 'dup-b')`,
	} {
		if _, err := db.Exec(q); err != nil && !strings.Contains(err.Error(), "no such table: host_macs") {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	serve := []string{"serve", "--config", cli, "--tftp-addr", s.TFTPAddr, "--http-addr", s.HTTPAddr,
		"--https-addr", s.HTTPSAddr, "--api-addr", s.APIAddr}
	out, code = clRun(t, 20*time.Second, nil, serve...)
	if code == 0 || !strings.Contains(out, `MAC 52:54:00:14:06:09 also belongs to host "dup-a"`) || !strings.Contains(out, "host rm") {
		t.Fatalf("serve on a store with two hosts for one MAC: exit %d, want a refusal naming them and the repair:\n%s", code, out)
	}
	out, code = dcCLI(t, cli, "host", "list")
	if code != 0 || !strings.Contains(out, "dup-a") || !strings.Contains(out, "dup-b") || !strings.Contains(out, "refused") {
		t.Errorf("host list on the refused store: exit %d, want both hosts and a warning:\n%s", code, out)
	}
	if out, code := dcCLI(t, cli, "host", "rm", "dup-b"); code != 0 {
		t.Fatalf("host rm dup-b on the refused store: exit %d\n%s", code, out)
	}
	s2 := clStart(t, nil, serve...)
	if !strings.Contains(s2.Log(), "bootforge ready") {
		t.Fatal("server did not start after the repair")
	}
	if code, body := api.call("PUT", "/api/v1/hosts/dup-c", `{"macs": ["52:54:00:14:06:09"]}`); code != 409 {
		t.Errorf("after the repair, a third host with dup-a's MAC: %d %s, want 409", code, body)
	}
}

// #14.8 (the CLI's part): negative durations and limits are refused.
func TestHostsIntegrityNegativeFlags(t *testing.T) {
	_, cli := hiStart(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"host", "next-boot", "52:54:00:14:08:01", "install", "--expires", "-1h"}, "expires -1h0m0s is not a positive duration"},
		{[]string{"log", "--since", "-1h"}, "--since -1h0m0s is negative"},
		{[]string{"log", "--limit", "-5"}, "--limit -5 is not a positive number"},
		{[]string{"log", "--limit", "0"}, "--limit 0 is not a positive number"},
	} {
		out, code := dcCLI(t, cli, tt.args...)
		if code == 0 || !strings.Contains(out, tt.want) {
			t.Errorf("bootforge %s: exit %d, want a refusal with %q:\n%s", strings.Join(tt.args, " "), code, tt.want, out)
		}
	}
	if out, code := dcCLI(t, cli, "log", "--since", "1h", "--limit", "5"); code != 0 {
		t.Errorf("bootforge log --since 1h --limit 5: exit %d\n%s", code, out)
	}
}

// Labels are single words of printable characters, and a UUID is read in
// the forms operators copy it in (any case, dashes or none, braces) and
// kept as clients are matched by it: one rule for the API, the CLI and
// host files, on either store. A label with NUL used to pass the API's
// check and fail in PostgreSQL; a UUID in braces was kept as written and
// never matched a client.
func TestHostsIntegrityLabelsAndUUIDs(t *testing.T) { eachStore(t, testHostsIntegrityLabelsAndUUIDs) }

func testHostsIntegrityLabelsAndUUIDs(t *testing.T, st e2eStore) {
	s, cli := hiStart(t, st)
	api := dcAdminAPI(t, s, cli)
	for _, label := range []string{`a\u0000b`, `\u001b[31m`, `two words`, ``} {
		code, body := api.call("PUT", "/api/v1/hosts/pc-l", `{"macs": ["52:54:00:14:05:01"], "labels": ["`+label+`"]}`)
		if code != 400 || !strings.Contains(body, `"field":"labels[0]"`) {
			t.Errorf("PUT a host with label %s: %d %s, want 400 naming labels[0]", label, code, body)
		}
	}
	if code, body := api.call("PUT", "/api/v1/hosts/pc-l", `{"macs": ["52:54:00:14:05:01"], "labels": ["rack:4"]}`); code != 200 {
		t.Errorf("PUT a host with label rack:4: %d %s", code, body)
	}

	const want = "4c4c4544-0042-3510-8052-b4c04f4a4d32"
	if out, code := dcCLI(t, cli, "host", "add", "pc-u", "--uuid", "{4C4C4544-0042-3510-8052-B4C04F4A4D32}"); code != 0 {
		t.Fatalf("host add --uuid {…}: exit %d\n%s", code, out)
	}
	if out, code := dcCLI(t, cli, "host", "show", "pc-u", "--json"); code != 0 || !strings.Contains(out, `"uuid": "`+want+`"`) && !strings.Contains(out, `"uuid":"`+want+`"`) {
		t.Errorf("host show pc-u: exit %d, want uuid %s:\n%s", code, want, out)
	}
	if out, code := dcCLI(t, cli, "host", "add", "pc-v", "--uuid", "4c4c4544-0042"); code == 0 || !strings.Contains(out, "not a UUID") {
		t.Errorf("host add --uuid 4c4c4544-0042: exit %d, want a refusal:\n%s", code, out)
	}
	if code, body := api.call("PUT", "/api/v1/hosts/pc-w", `{"uuid": "4C4C4544004235108052B4C04F4A4D32"}`); code != 409 || !strings.Contains(body, "pc-u") {
		t.Errorf("PUT pc-w with pc-u's UUID written without dashes: %d %s, want 409 naming pc-u", code, body)
	}
}

// Host names are DNS labels, so pc1 and PC1 are one name: a second host
// of that name in another case is refused by the CLI and the API (409),
// a one-shot set by name in any case goes to the one host of that name,
// and two host files naming one host are refused at load, naming both,
// on either store. PC1 used to be stored beside pc1, and `host next-boot
// pc1` then set PC1's one-shot.
func TestHostsIntegrityNamesIgnoreCase(t *testing.T) { eachStore(t, testHostsIntegrityNamesIgnoreCase) }

func testHostsIntegrityNamesIgnoreCase(t *testing.T, st e2eStore) {
	s, cli := hiStart(t, st)
	api := dcAdminAPI(t, s, cli)
	if out, code := dcCLI(t, cli, "host", "add", "pc1", "--mac", "52:54:00:15:01:01"); code != 0 {
		t.Fatalf("host add pc1: exit %d\n%s", code, out)
	}
	out, code := dcCLI(t, cli, "host", "add", "PC1", "--mac", "52:54:00:15:01:02")
	if code == 0 || !strings.Contains(out, `host "PC1": host "pc1" (store) has the same name; host names are unique, ignoring case`) {
		t.Errorf("host add PC1 beside pc1: exit %d, want a refusal naming pc1:\n%s", code, out)
	}
	code, body := api.call("PUT", "/api/v1/hosts/Pc1", `{"macs": ["52:54:00:15:01:03"]}`)
	if code != 409 || !strings.Contains(body, `"field":"name"`) || !strings.Contains(body, `host \"pc1\" (store) has the same name`) {
		t.Errorf("PUT /api/v1/hosts/Pc1 beside pc1: %d %s, want 409 on the name naming pc1", code, body)
	}
	// Replacing pc1 under its own name still works.
	if code, body := api.call("PUT", "/api/v1/hosts/pc1", `{"macs": ["52:54:00:15:01:01"], "labels": ["rack1"]}`); code != 200 {
		t.Errorf("PUT pc1 again: %d %s", code, body)
	}

	out, code = dcCLI(t, cli, "host", "next-boot", "PC1", "install")
	if code != 0 || !strings.Contains(out, "next boot of 52:54:00:15:01:01: install (pending)") {
		t.Errorf("host next-boot PC1: exit %d, want pc1's MAC:\n%s", code, out)
	}
	if code, body := api.call("PUT", "/api/v1/next-boot/pC1", `{"entry": "install"}`); code != 200 || !strings.Contains(body, `"mac":"52:54:00:15:01:01"`) {
		t.Errorf("PUT /api/v1/next-boot/pC1: %d %s, want pc1's MAC", code, body)
	}
	out, code = dcCLI(t, cli, "host", "list", "--json")
	if code != 0 || strings.Count(out, `"name": "pc1"`) != 1 || strings.Contains(strings.ToLower(out), "52:54:00:15:01:02") ||
		strings.Contains(strings.ToLower(out), "52:54:00:15:01:03") {
		t.Errorf("host list: exit %d, want pc1 once and no refused host:\n%s", code, out)
	}

	// Two host files, one name (in two cases): refused, naming both.
	dir := filepath.Dir(cli)
	os.MkdirAll(filepath.Join(dir, "hosts"), 0o755)
	os.WriteFile(filepath.Join(dir, "hosts", "a.yaml"), []byte("- {name: srv, macs: [\"52:54:00:15:01:11\"]}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "hosts", "b.yaml"), []byte("- {name: SRV, macs: [\"52:54:00:15:01:12\"]}\n"), 0o644)
	for _, args := range [][]string{{"host", "list"}, {"host", "next-boot", "srv", "install"}} {
		out, code := dcCLI(t, cli, args...)
		if code == 0 || !strings.Contains(out, `b.yaml:1: host "SRV": host "srv" (`) || !strings.Contains(out, `a.yaml:1) has the same name`) {
			t.Errorf("bootforge %s with srv in a.yaml and SRV in b.yaml: exit %d, want a refusal naming both files:\n%s",
				strings.Join(args, " "), code, out)
		}
	}
}

// A one-shot's wait is read by one rule for the CLI and the API: a
// positive duration of at most 10 years, refused in the same words by
// both, on either store. --expires 2500000h used to say (pending) and be
// stored as a date in 1727, expired at once; 0s was "never" on the CLI
// and refused by the API.
func TestHostsIntegrityExpires(t *testing.T) { eachStore(t, testHostsIntegrityExpires) }

func testHostsIntegrityExpires(t *testing.T, st e2eStore) {
	s, cli := hiStart(t, st)
	api := dcAdminAPI(t, s, cli)
	const mac = "52:54:00:15:02:01"
	for _, tt := range []struct{ expires, want string }{
		{"2500000h", "expires 2500000h0m0s is more than 87600h (10 years)"},
		{"87600h1s", "expires 87600h0m1s is more than 87600h (10 years)"},
		{"0s", "expires 0s is not a positive duration"},
		{"-1h", "expires -1h0m0s is not a positive duration"},
		{"soon", `expires "soon" is not a duration`},
	} {
		out, code := dcCLI(t, cli, "host", "next-boot", mac, "install", "--expires", tt.expires)
		if code == 0 || !strings.Contains(out, tt.want) {
			t.Errorf("host next-boot --expires %s: exit %d, want a refusal with %q:\n%s", tt.expires, code, tt.want, out)
		}
		code, body := api.call("PUT", "/api/v1/next-boot/"+mac, `{"entry": "install", "expires": "`+tt.expires+`"}`)
		var e struct{ Field, Message string }
		json.Unmarshal([]byte(body), &e)
		if code != 400 || e.Field != "expires" || !strings.Contains(e.Message, tt.want) || !strings.Contains(out, e.Message) {
			t.Errorf("PUT expires %s: %d %s, want 400 on expires with the CLI's message %q", tt.expires, code, body, tt.want)
		}
	}
	if st := hiState(t, cli, mac); st != "none" {
		t.Fatalf("after refused one-shots, %s has one: %s", mac, st)
	}

	// The longest wait is stored as the date it is.
	if out, code := dcCLI(t, cli, "host", "next-boot", mac, "install", "--expires", "87600h"); code != 0 || !strings.Contains(out, "(pending)") {
		t.Fatalf("host next-boot --expires 87600h: exit %d\n%s", code, out)
	}
	out, code := dcCLI(t, cli, "host", "show", mac, "--json")
	var views []struct {
		NextBoot *struct{ State, Expires string } `json:"next_boot"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &views) != nil || len(views) != 1 || views[0].NextBoot == nil {
		t.Fatalf("host show %s: exit %d\n%s", mac, code, out)
	}
	nb := views[0].NextBoot
	exp, err := time.Parse(time.RFC3339, nb.Expires)
	if want := time.Now().Add(87600 * time.Hour); nb.State != "pending" || err != nil || exp.Sub(want).Abs() > time.Minute {
		t.Errorf("one-shot with --expires 87600h: %s, expires %s, want pending until about %s", nb.State, nb.Expires, want.Format(time.RFC3339))
	}
	if code, body := api.call("PUT", "/api/v1/next-boot/"+mac, `{"entry": "install", "expires": "87600h"}`); code != 200 || !strings.Contains(body, `"status":"pending"`) {
		t.Errorf("PUT expires 87600h: %d %s", code, body)
	}
}

// host add --label takes each label as written, as the API and host files
// do, and the one label rule decides: "rack,1" was split into two labels
// by the CLI alone, and a quote failed as CSV.
func TestHostsIntegrityLabelFlag(t *testing.T) {
	s, cli := hiStart(t)
	api := dcAdminAPI(t, s, cli)
	labels := func(name string) string {
		t.Helper()
		out, code := dcCLI(t, cli, "host", "show", name, "--json")
		var views []struct{ Labels []string }
		if code != 0 || json.Unmarshal([]byte(out), &views) != nil || len(views) != 1 {
			t.Fatalf("host show %s: exit %d\n%s", name, code, out)
		}
		b, _ := json.Marshal(views[0].Labels)
		return string(b)
	}
	if out, code := dcCLI(t, cli, "host", "add", "v3", "--mac", "52:54:00:15:03:01", "--label", "rack,1", "--label", `"x`); code != 0 {
		t.Fatalf("host add v3 --label rack,1 --label '\"x': exit %d\n%s", code, out)
	}
	if code, body := api.call("PUT", "/api/v1/hosts/v4", `{"macs": ["52:54:00:15:03:02"], "labels": ["rack,1", "\"x"]}`); code != 200 {
		t.Fatalf("PUT v4: %d %s", code, body)
	}
	if cl, ap := labels("v3"), labels("v4"); cl != `["rack,1","\"x"]` || ap != cl {
		t.Errorf("labels from the CLI %s, from the API %s; want both [\"rack,1\",\"\\\"x\"]", cl, ap)
	}
	// A label the rule refuses is refused as the API refuses it.
	out, code := dcCLI(t, cli, "host", "add", "v5", "--mac", "52:54:00:15:03:03", "--label", "a b")
	if code == 0 || !strings.Contains(out, "labels[0]") || !strings.Contains(out, "single word") {
		t.Errorf("host add --label 'a b': exit %d, want the label rule's refusal:\n%s", code, out)
	}
}
