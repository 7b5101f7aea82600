package e2e

// IPv6 transport: TFTP, HTTP and HTTPS, menus, allow-lists, the boot log
// and `check dhcp` over an IPv6 link in a namespace, with clients other
// people wrote (tftp-hpa, atftp, busybox, curl, dnsmasq). No QEMU.
//
// The lab's bridge keeps its IPv4 address (NewLab); IPv6 addresses come
// from 2001:db8::/32 only, added without duplicate address detection so
// that they are usable at once.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// v6TestNet is the only IPv6 network a lab may use.
var v6TestNet = netip.MustParsePrefix("2001:db8::/32")

// v6Addrs adds IPv6 addresses (with prefix length) to dev in netns.
func v6Addrs(t testing.TB, netns, dev string, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a)
		if err != nil || !p.Addr().Is6() || !v6TestNet.Contains(p.Addr()) || p.Bits() < v6TestNet.Bits() {
			t.Fatalf("address %q is outside the test network %s", a, v6TestNet)
		}
		if out, err := netnsRun(netns, 10*time.Second, "ip", "-6", "addr", "add", a, "dev", dev, "nodad"); err != nil {
			t.Fatalf("in %s: ip -6 addr add %s dev %s: %v\n%s", netns, a, dev, err, out)
		}
	}
}

// v6Lab is a lab whose bridge also has 2001:db8::1/64 and 2001:db8::2/64.
func v6Lab(t testing.TB) *Lab {
	t.Helper()
	lab := NewLab(t)
	v6Addrs(t, lab.Netns, lab.Bridge, "2001:db8::1/64", "2001:db8::2/64")
	return lab
}

// v6Host joins a namespace to the lab with the IPv6 address addr and no
// IPv4 address.
func v6Host(t testing.TB, lab *Lab, addr string) *LabHost {
	t.Helper()
	h := lab.AddHost(t, "")
	v6Addrs(t, h.Netns, h.Iface, addr)
	dhWaitLink(t, h.Netns, h.Iface, lab.Netns)
	return h
}

// linkLocal waits until dev's link-local address is usable (duplicate
// address detection done) and returns it.
func linkLocal(t testing.TB, netns, dev string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := netnsRun(netns, 10*time.Second, "ip", "-6", "-o", "addr", "show", "dev", dev, "scope", "link")
		if f := strings.Fields(out); len(f) >= 4 && !strings.Contains(out, "tentative") {
			return strings.Split(f[3], "/")[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no usable link-local address on %s in %s:\n%s", dev, netns, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// v6Curl runs curl -6 in h and returns the status code and body.
func v6Curl(t testing.TB, h *LabHost, args ...string) (int, []byte) {
	t.Helper()
	body := filepath.Join(t.TempDir(), "body")
	full := append([]string{"-6", "-sS", "--max-time", "10", "-o", body, "-w", "%{http_code}"}, args...)
	out, err := h.Exec(30*time.Second, "curl", full...)
	if err != nil {
		t.Fatalf("curl %q: %v\n%s", full, err, out)
	}
	var code int
	fmt.Sscanf(strings.TrimSpace(out), "%d", &code)
	b, _ := os.ReadFile(body)
	return code, b
}

const v6Inventory = `inventory:
  default_profile: lab
  profiles:
    - name: lab
      menu: {entries: [{name: disk, kind: local}]}
    - name: v6
      match: [{subnet: "2001:db8::/64"}]
      menu: {default: linux, entries: [{name: linux, kind: linux, kernel: vmlinuz, initrds: [initrd.gz], cmdline: "marker=v6"}]}
`

// TestIPv6Transport serves an IPv6 link from bootforge listening on [::]
// (dual-stack): tftp-hpa, atftp, busybox and curl fetch a loader over
// TFTP from both of the server's addresses and its link-local one, with
// the blksize the IPv6 rule gives on a 1500 MTU link (1448, not IPv4's
// 1468); curl fetches it over HTTP and HTTPS with ranges; a menu fetched
// from http://[2001:db8::1]:PORT has bracketed URLs and the profile of
// the client's IPv6 subnet; a client outside the IPv6 allow-list gets
// no TFTP answer and HTTP 403; and `bootforge log --ip` finds the IPv6
// clients however the address is written.
func TestIPv6Transport(t *testing.T) {
	t.Parallel()
	need(t, "tftp", "atftp", "busybox", "curl")
	lab := v6Lab(t)
	root := t.TempDir()
	loader := htRandomFile(t, filepath.Join(root, "snponly.efi"), 200000, 6)
	for _, f := range []string{"vmlinuz", "initrd.gz"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// 2001:db8::1:66 is on the link, in the /64, but outside the list.
	s := StartServer(t, ServerOptions{Netns: lab.Netns, Addr: "[::]", Root: root,
		Config: "allow: [192.0.2.0/24, \"2001:db8::/112\", \"fe80::/10\"]\n" + v6Inventory})
	tftpPort, httpPort, httpsPort := Port(s.TFTPAddr), Port(s.HTTPAddr), Port(s.HTTPSAddr)
	client := v6Host(t, lab, "2001:db8::10/64")
	brLL := linkLocal(t, lab.Netns, lab.Bridge)

	// check reads a download and the server's log line of its transfer.
	check := func(t *testing.T, out, peerOutput, client string, blksize int) {
		t.Helper()
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(got, loader) {
			t.Fatalf("download: %d bytes (want %d), %v; client said:\n%s", len(got), len(loader), err, peerOutput)
		}
		tfWaitLine(t, s, 5*time.Second, `msg="tftp transfer"`, "client=["+client, " file=snponly.efi ",
			fmt.Sprintf(" blksize=%d ", blksize), "result=ok")
	}
	t.Run("tftp-hpa", func(t *testing.T) {
		for _, host := range []string{"2001:db8::1", "[2001:db8::2]"} {
			out := filepath.Join(t.TempDir(), "out")
			o, err := client.Exec(30*time.Second, "tftp", "-6", host, tftpPort, "-m", "binary", "-c", "get", "snponly.efi", out)
			if err != nil {
				t.Fatalf("tftp -6 %s: %v\n%s", host, err, o)
			}
			check(t, out, o, "2001:db8::10]", 512)
		}
	})
	t.Run("atftp", func(t *testing.T) {
		// From the second address: atftp drops packets from any other.
		out := filepath.Join(t.TempDir(), "out")
		o, err := client.Exec(30*time.Second, "atftp", "--option", "blksize 1468", "-g", "-r", "snponly.efi", "-l", out, "2001:db8::2", tftpPort)
		if err != nil {
			t.Fatalf("atftp: %v\n%s", err, o)
		}
		check(t, out, o, "2001:db8::10]", 1448)
	})
	t.Run("busybox", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		o, err := client.Exec(30*time.Second, "busybox", "tftp", "-b", "1468", "-g", "-r", "snponly.efi", "-l", out, "2001:db8::1", tftpPort)
		if err != nil {
			t.Fatalf("busybox tftp: %v\n%s", err, o)
		}
		check(t, out, o, "2001:db8::10]", 1448)
	})
	t.Run("curl-tftp", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		url := "tftp://[2001:db8::1]:" + tftpPort + "/snponly.efi"
		o, err := client.Exec(30*time.Second, "curl", "-6", "-sS", "--tftp-blksize", "9000", "-o", out, url)
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", url, err, o)
		}
		check(t, out, o, "2001:db8::10]", 1448)
	})
	t.Run("link-local", func(t *testing.T) {
		// The client asks the bridge's link-local address through its eth0:
		// the reply must leave from that address, scoped to the link.
		clientLL := linkLocal(t, client.Netns, client.Iface)
		out := filepath.Join(t.TempDir(), "out")
		o, err := client.Exec(30*time.Second, "atftp", "--option", "blksize 1468", "-g", "-r", "snponly.efi", "-l", out,
			brLL+"%"+client.Iface, tftpPort)
		if err != nil {
			t.Fatalf("atftp to %s%%%s: %v\n%s", brLL, client.Iface, err, o)
		}
		check(t, out, o, clientLL+"%br0]", 1448)
	})

	t.Run("http", func(t *testing.T) {
		base := "http://[2001:db8::1]:" + httpPort
		if code, body := v6Curl(t, client, base+"/snponly.efi"); code != 200 || !bytes.Equal(body, loader) {
			t.Fatalf("GET: %d, %d bytes", code, len(body))
		}
		if code, body := v6Curl(t, client, "-r", "100-199", base+"/snponly.efi"); code != 206 || !bytes.Equal(body, loader[100:200]) {
			t.Fatalf("GET bytes 100-199: %d, %d bytes", code, len(body))
		}
	})
	t.Run("https", func(t *testing.T) {
		cert := filepath.Join(s.DataDir, "tls", "cert.pem")
		base := "https://[2001:db8::2]:" + httpsPort
		if code, body := v6Curl(t, client, "--cacert", cert, base+"/snponly.efi"); code != 200 || !bytes.Equal(body, loader) {
			t.Fatalf("GET: %d, %d bytes", code, len(body))
		}
		if code, body := v6Curl(t, client, "--cacert", cert, "-r", "150000-", base+"/snponly.efi"); code != 206 || !bytes.Equal(body, loader[150000:]) {
			t.Fatalf("GET bytes 150000-: %d, %d bytes", code, len(body))
		}
	})

	t.Run("menu", func(t *testing.T) {
		base := "http://[2001:db8::1]:" + httpPort
		code, chain := v6Curl(t, client, base+"/boot.ipxe")
		if code != 200 || !strings.Contains(string(chain), "chain "+base+"/bootforge/ipxe?mac=") {
			t.Fatalf("boot.ipxe: %d\n%s", code, chain)
		}
		code, script := v6Curl(t, client, base+"/bootforge/ipxe?mac=52-54-00-00-06-10&buildarch=x86_64&platform=efi")
		text := string(script)
		for _, want := range []string{"# bootforge profile v6\n", "kernel " + base + "/vmlinuz", "initrd " + base + "/initrd.gz", "marker=v6"} {
			if code != 200 || !strings.Contains(text, want) {
				t.Errorf("menu lacks %q: %d\n%s", want, code, text)
			}
		}
		if strings.Contains(text, "http://2001:") {
			t.Errorf("an unbracketed IPv6 URL:\n%s", text)
		}
		// iPXE then fetches the kernel from the URL the menu gave.
		if code, body := v6Curl(t, client, base+"/vmlinuz"); code != 200 || string(body) != "vmlinuz" {
			t.Errorf("kernel: %d %q", code, body)
		}
	})

	t.Run("not allowed", func(t *testing.T) {
		stranger := v6Host(t, lab, "2001:db8::1:66/64")
		out := filepath.Join(t.TempDir(), "out")
		o, err := stranger.Exec(30*time.Second, "curl", "-6", "-sS", "--max-time", "3", "-o", out, "tftp://[2001:db8::1]:"+tftpPort+"/snponly.efi")
		if err == nil || !strings.Contains(err.Error(), "exit status 28") { // curl's "operation timed out"
			t.Errorf("TFTP from outside the allow-list: want silence (curl times out), got %v\n%s", err, o)
		}
		tfWaitLine(t, s, 5*time.Second, `msg="tftp: refused, not answered"`, "2001:db8::1:66 is not in allow")
		if code, body := v6Curl(t, stranger, "http://[2001:db8::1]:"+httpPort+"/snponly.efi"); code != 403 || bytes.Equal(body, loader) {
			t.Errorf("HTTP from outside the allow-list: %d, want 403", code)
		}
	})

	t.Run("boot log", func(t *testing.T) {
		// However the address is written, the log finds the client.
		var events []logEvent
		deadline := time.Now().Add(15 * time.Second)
		for {
			events = v6Log(t, s, root, "--ip", "2001:DB8:0::10")
			if (hasStage(events, "https", "loader") && hasStage(events, "ipxe", "menu")) || time.Now().After(deadline) {
				break
			}
			time.Sleep(300 * time.Millisecond)
		}
		for _, want := range []struct{ proto, stage string }{{"tftp", "loader"}, {"http", "loader"}, {"https", "loader"}, {"ipxe", "menu"}, {"http", "kernel"}} {
			if !hasStage(events, want.proto, want.stage) {
				t.Errorf("no %s %s event for 2001:db8::10:\n%s", want.proto, want.stage, dump(events))
			}
		}
		for _, e := range events {
			if e.IP != "2001:db8::10" {
				t.Errorf("event of another client: %+v", e)
			}
			// The menu names the MAC; the kernel fetched after it from the
			// same IPv6 address is credited to it (the IP→MAC sightings).
			if (e.Protocol == "ipxe" || e.Stage == "kernel") && e.MAC != "52:54:00:00:06:10" {
				t.Errorf("%s %s event without the client's MAC: %+v", e.Protocol, e.Stage, e)
			}
		}
		refused := v6Log(t, s, root, "--ip", "2001:db8::1:66")
		if len(refused) == 0 || refused[0].Result != "refused" {
			t.Errorf("no refusal of 2001:db8::1:66 in the boot log:\n%s", dump(refused))
		}
	})
}

// v6Log runs `bootforge log --json` with args against s's store.
func v6Log(t testing.TB, s *Server, root string, args ...string) []logEvent {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"log", "--json"}, args...)...)
	cmd.Env = append(cmd.Environ(), "BOOTFORGE_DATA_DIR="+s.DataDir, "BOOTFORGE_ROOT="+root)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bootforge log %q: %v\n%s", args, err, out)
	}
	var events []logEvent
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		var e logEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		events = append(events, e)
	}
	return events
}

// TestCheckDHCPv6 runs `bootforge check dhcp` on an IPv6 link: with one
// DHCPv6 server (dnsmasq, addresses and a boot file URL) it passes and
// lists it with its DUID, link-local address, offered address and URL;
// with a second one offering addresses it fails, naming both.
func TestCheckDHCPv6(t *testing.T) {
	t.Parallel()
	lab := v6Lab(t)
	// dnsmasq logs "DHCP, IP range" once bound; a DHCPv4 range on a
	// subnet the link does not have makes it log that and answer DHCPv6
	// only.
	noV4 := "--dhcp-range=198.18.0.100,198.18.0.110,1h"
	first := v6Host(t, lab, "2001:db8::2:1/64")
	StartDnsmasq(t, first.Netns, first.Iface, noV4, "--dhcp-range=2001:db8::2:100,2001:db8::2:1ff,64,1h",
		"--dhcp-option=option6:bootfile-url,tftp://[2001:db8::1]/snponly.efi")
	firstLL := linkLocal(t, first.Netns, first.Iface)
	probe := lab.AddHost(t, "")
	dhWaitLink(t, probe.Netns, probe.Iface, lab.Netns)

	type v6Server struct {
		DUID        string   `json:"duid"`
		Source      string   `json:"source"`
		Addresses   []string `json:"addresses"`
		BootFileURL string   `json:"boot_file_url"`
		Kind        string   `json:"kind"`
	}
	type result struct {
		Conflict bool `json:"conflict"`
		DHCPv6   struct {
			Servers  []v6Server `json:"servers"`
			Conflict bool       `json:"conflict"`
		} `json:"dhcpv6"`
		V6Error string `json:"dhcpv6_error"`
	}
	check := func(wantOK bool) (result, string) {
		t.Helper()
		out, err := probe.Exec(30*time.Second, binary, "check", "dhcp", "--interface", probe.Iface, "--wait", "3s", "--json")
		if (err == nil) != wantOK {
			t.Fatalf("check dhcp: err %v, want ok=%v; output:\n%s", err, wantOK, out)
		}
		var res result
		if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &res); err != nil {
			t.Fatalf("check dhcp --json: %v\n%s", err, out)
		}
		return res, out
	}

	one, out := check(true)
	if one.V6Error != "" || len(one.DHCPv6.Servers) != 1 || one.DHCPv6.Conflict || one.Conflict {
		t.Fatalf("one DHCPv6 server: %s", out)
	}
	s := one.DHCPv6.Servers[0]
	if s.Source != firstLL || s.Kind != "authoritative" || len(s.Addresses) != 1 || !strings.HasPrefix(s.Addresses[0], "2001:db8::2:1") ||
		s.BootFileURL != "tftp://[2001:db8::1]/snponly.efi" || len(s.DUID) < 8 {
		t.Errorf("dnsmasq as listed: %+v, want from %s with an address of its range and its URL", s, firstLL)
	}
	// The text form lists the same.
	text, err := probe.Exec(30*time.Second, binary, "check", "dhcp", "--interface", probe.Iface, "--wait", "3s")
	if err != nil || !strings.Contains(text, "DHCPv6 servers answering on eth0") || !strings.Contains(text, firstLL) ||
		!strings.Contains(text, `boot-file-url "tftp://[2001:db8::1]/snponly.efi"`) {
		t.Errorf("check dhcp text: %v\n%s", err, text)
	}

	second := v6Host(t, lab, "2001:db8::3:1/64")
	StartDnsmasq(t, second.Netns, second.Iface, noV4, "--dhcp-range=2001:db8::3:100,2001:db8::3:1ff,64,1h")
	secondLL := linkLocal(t, second.Netns, second.Iface)
	two, out := check(false)
	sources := map[string]string{}
	for _, s := range two.DHCPv6.Servers {
		sources[s.Source] = s.Kind
	}
	if !two.DHCPv6.Conflict || sources[firstLL] != "authoritative" || sources[secondLL] != "authoritative" || two.Conflict {
		t.Fatalf("two DHCPv6 servers: %s", out)
	}
	if !strings.Contains(out, "more than one DHCPv6 server offering addresses on eth0") {
		t.Errorf("the failure does not say why:\n%s", out)
	}
}
