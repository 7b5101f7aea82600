package e2e

// Real firmware booting from bootforge alone: its own DHCP server tells the
// firmware what to load, its TFTP and HTTP servers serve it. Three paths:
//
//   - BIOS, QEMU's iPXE ROM (e1000): bootforge authoritative, no other DHCP
//     server on the wire; iPXE gets the script URL, then kernel and initrd
//     over HTTP.
//   - UEFI PXE, EDK2's own client (arch 7): dnsmasq gives the address only
//     (no PXE options, no dhcp-boot), bootforge in proxy mode gives the boot
//     file: snponly.efi over bootforge's TFTP, then that iPXE DHCPs again and
//     gets the script URL from the proxy.
//   - UEFI HTTP boot (arch 16, vendor class HTTPClient): bootforge
//     authoritative answers with the loader's URL and an echoed HTTPClient.
//
// Each boot ends at the test initrd's serial marker (BootMarker), whose
// cmdline carries a per-test nonce, and the test checks from bootforge's
// log (and dnsmasq's, for the proxy test) who handed out the address and
// that every download came from the address the VM was given.

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// bdBootTimeout bounds one boot to the marker: 25-60 s under TCG when the
// machine is idle, much more when other jobs share its two cores.
const bdBootTimeout = 300 * time.Second

// bdPool is bootforge's pool in authoritative mode; dnsmasq's range in the
// proxy test is different, so a log line tells who gave an address.
const (
	bdPoolFirst    = "192.0.2.100"
	bdPoolLast     = "192.0.2.150"
	bdDnsmasqFirst = "192.0.2.160"
	bdDnsmasqLast  = "192.0.2.199"
)

// bdAuthConfig is bootforge's config in authoritative mode. Debug level
// logs every DHCP reply ("dhcp: replied"), which the tests read.
var bdAuthConfig = fmt.Sprintf(`log: {level: debug, format: text}
dhcp:
  mode: authoritative
  interfaces: [br0]
  subnets:
    - subnet: 192.0.2.0/24
      pools: ["%s-%s"]
      router: 192.0.2.1
      lease_time: 10m
`, bdPoolFirst, bdPoolLast)

// bdProxyConfig is bootforge's config in proxy mode (loaders: defaults,
// so EDK2's arch 7 gets snponly.efi).
const bdProxyConfig = `log: {level: debug, format: text}
dhcp:
  mode: proxy
  interfaces: [br0]
`

// dhcpBootLab is a lab with bootforge on 192.0.2.1 serving DHCP itself.
type dhcpBootLab struct {
	Lab    *Lab
	Server *Server
	Root   string
	Marker string // unique cmdline marker, bfmark=<hex>
	HTTP   string // http://192.0.2.1:PORT, bootforge's HTTP server
}

// newDHCPBootLab builds the network, fills bootforge's root with the test
// kernel and initrd, and starts bootforge with config and args.
func newDHCPBootLab(t *testing.T, config string, args ...string) *dhcpBootLab {
	t.Helper()
	kernel, initrd := NetbootKernel(t)
	lab := NewLab(t)
	b := &dhcpBootLab{Lab: lab, Root: t.TempDir()}
	copyFile(t, kernel, filepath.Join(b.Root, "vmlinuz"))
	copyFile(t, initrd, filepath.Join(b.Root, "initrd.gz"))
	nonce := make([]byte, 6)
	rand.Read(nonce)
	b.Marker = "bfmark=" + hex.EncodeToString(nonce)
	b.Server = StartServer(t, ServerOptions{Netns: lab.Netns, Addr: lab.IP(), Root: b.Root, Config: config, Args: args})
	if !strings.Contains(b.Server.Log(), "dhcp_on=") {
		t.Fatalf("bootforge is ready but serves no DHCP:\n%s", b.Server.Log())
	}
	b.HTTP = "http://" + b.Server.HTTPAddr
	if Host(b.Server.HTTPAddr) != lab.IP() {
		t.Fatalf("bootforge's HTTP listens on %s, not on the lab address %s", b.Server.HTTPAddr, lab.IP())
	}
	return b
}

// writeScript writes a static boot.ipxe into the root (a file on disk wins
// over the generated one) that boots the test kernel with the marker and
// profile=<profile> in its cmdline; efi adds initrd=initrd.gz, without
// which Debian's iPXE can't boot Linux on EFI (LAB.md).
func (b *dhcpBootLab) writeScript(t *testing.T, profile string, efi bool) {
	t.Helper()
	extra := ""
	if efi {
		extra = "initrd=initrd.gz "
	}
	script := fmt.Sprintf(`#!ipxe
echo bootforge-e2e: loading kernel for %[4]s
kernel %[1]s/vmlinuz %[3]sconsole=ttyS0 quiet panic=-1 %[2]s profile=%[4]s
initrd %[1]s/initrd.gz
boot
`, b.HTTP, b.Marker, extra, profile)
	if err := os.WriteFile(filepath.Join(b.Root, "boot.ipxe"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyLoader copies an iPXE binary from Debian's ipxe package into the root.
func (b *dhcpBootLab) copyLoader(t *testing.T, name string) {
	t.Helper()
	src := filepath.Join("/usr/lib/ipxe", name)
	if _, err := os.Stat(src); err != nil {
		t.Fatalf("iPXE loader missing (package ipxe): %v", err)
	}
	copyFile(t, src, filepath.Join(b.Root, name))
}

// expectBoot matches the marker line (the whole line: the console streams
// in chunks) and captures the booted cmdline.
func (b *dhcpBootLab) expectBoot() string {
	return regexp.QuoteMeta(BootMarker) + ` ([^\n]*` + regexp.QuoteMeta(b.Marker) + `[^\n]*)\n`
}

// bdCheckCmdline asserts that the booted cmdline holds each word of want.
func bdCheckCmdline(t *testing.T, cmdline string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(" "+cmdline+" ", " "+w+" ") {
			t.Errorf("booted cmdline %q lacks %q", cmdline, w)
		}
	}
}

// size returns the size of a file in the root, as the access log writes it.
func (b *dhcpBootLab) size(t *testing.T, name string) string {
	t.Helper()
	st, err := os.Stat(filepath.Join(b.Root, name))
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(st.Size(), 10)
}

// requireGetFrom asserts that bootforge logged a complete GET of name
// (status 200, the whole file) from one of the addresses in from.
func (b *dhcpBootLab) requireGetFrom(t *testing.T, name string, from map[string]bool) {
	t.Helper()
	want := b.size(t, name)
	var seen []string
	for _, r := range ServerRecords(b.Server, "http request") {
		if r["path"] != "/"+name {
			continue
		}
		if r["method"] == "GET" && r["status"] == "200" && r["bytes"] == want && from[r["client"]] {
			return
		}
		seen = append(seen, fmt.Sprint(r))
	}
	t.Errorf("bootforge logged no complete GET /%s (status 200, bytes %s) from the VM's address %v; lines for it: %v",
		name, want, bdKeys(from), seen)
}

// leases returns bootforge's "dhcp: lease" records for mac.
func (b *dhcpBootLab) leases(mac string) []LogRecord {
	var out []LogRecord
	for _, r := range ServerRecords(b.Server, "dhcp: lease") {
		if strings.EqualFold(r["mac"], mac) {
			out = append(out, r)
		}
	}
	return out
}

// replies returns bootforge's "dhcp: replied" records (debug level) for mac.
func (b *dhcpBootLab) replies(mac string) []LogRecord {
	var out []LogRecord
	for _, r := range ServerRecords(b.Server, "dhcp: replied") {
		if strings.EqualFold(r["mac"], mac) {
			out = append(out, r)
		}
	}
	return out
}

// requireLeases asserts that bootforge leased mac an address from its pool
// with boot file wantBoot (the "dhcp: lease" line is written as the ACK is
// sent) and returns the addresses of those leases.
//
// EDK2 sends no client identifier (option 61), iPXE sends 01:<MAC>, and
// bootforge keys leases by client identifier when there is one (RFC 2131
// 4.2), so the firmware's lease and iPXE's lease may be different addresses
// for the same MAC: each stage's downloads are checked against its own.
func (b *dhcpBootLab) requireLeases(t *testing.T, mac, wantBoot string) map[string]bool {
	t.Helper()
	recs := b.leases(mac)
	ips := map[string]bool{}
	for _, r := range recs {
		if !bdInRange(r["ip"], bdPoolFirst, bdPoolLast) {
			t.Errorf("bootforge leased %s to %s, outside its pool %s-%s: %v", r["ip"], mac, bdPoolFirst, bdPoolLast, r)
			continue
		}
		if r["boot"] == wantBoot {
			ips[r["ip"]] = true
		}
	}
	if len(ips) == 0 {
		t.Fatalf("bootforge logged no \"dhcp: lease\" (DHCPACK) for the VM's MAC %s with boot=%s; its leases: %v; its DHCP replies: %v",
			mac, wantBoot, recs, b.replies(mac))
	}
	return ips
}

// requireReply asserts that bootforge sent mac a reply with boot file file
// (and, if yiaddr is not empty, that address).
func (b *dhcpBootLab) requireReply(t *testing.T, mac, file, yiaddr string) {
	t.Helper()
	recs := b.replies(mac)
	for _, r := range recs {
		if r["file"] == file && (yiaddr == "" || r["yiaddr"] == yiaddr) {
			return
		}
	}
	t.Errorf("bootforge sent %s no DHCP reply with file=%s (yiaddr %q); its replies: %v", mac, file, yiaddr, recs)
}

// requireTFTP asserts a complete TFTP transfer of name (result=ok, every
// byte) to one of the addresses in from.
func (b *dhcpBootLab) requireTFTP(t *testing.T, name string, from map[string]bool) {
	t.Helper()
	want := b.size(t, name)
	var seen []string
	for _, r := range ServerRecords(b.Server, "tftp transfer") {
		seen = append(seen, fmt.Sprint(r))
		if r["file"] == name && r["result"] == "ok" && r["bytes"] == want && from[Host(r["client"])] {
			return
		}
	}
	t.Errorf("bootforge logged no complete TFTP transfer of %s (result=ok, bytes=%s) to %v; TFTP lines: %v",
		name, want, bdKeys(from), seen)
}

func bdInRange(ip, first, last string) bool {
	a, b, c := bdIP4(ip), bdIP4(first), bdIP4(last)
	return a != 0 && b <= a && a <= c
}

func bdIP4(s string) uint32 {
	var o [4]uint32
	if n, err := fmt.Sscanf(s, "%d.%d.%d.%d", &o[0], &o[1], &o[2], &o[3]); err != nil || n != 4 {
		return 0
	}
	return o[0]<<24 | o[1]<<16 | o[2]<<8 | o[3]
}

func bdKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// bdMAC is a distinct MAC per test (each test has its own lab, but distinct
// MACs keep logs and failures unambiguous).
func bdMAC(n int) string { return fmt.Sprintf("52:54:00:bd:%02x:%02x", os.Getpid()&0xff, n) }

// TestBootDHCPAuthoritativeBIOSiPXE: QEMU's iPXE ROM (BIOS, e1000) on a
// network whose only DHCP server is bootforge. iPXE DHCPs (user class
// iPXE), gets an address from the pool and the script URL, and loads
// script, kernel and initrd from bootforge over HTTP.
func TestBootDHCPAuthoritativeBIOSiPXE(t *testing.T) {
	t.Parallel()
	b := newDHCPBootLab(t, bdAuthConfig)
	b.writeScript(t, "bios-dhcp", false)
	mac := bdMAC(1)

	vm, m := BootVM(t, VMOptions{Lab: b.Lab, Firmware: "bios", MAC: mac, Timeout: bdBootTimeout, Expect: b.expectBoot()})
	t.Logf("marker after %s: %s", vm.Elapsed().Round(time.Millisecond), m[0])
	bdCheckCmdline(t, m[1], b.Marker, "profile=bios-dhcp", "console=ttyS0")

	script := b.HTTP + "/boot.ipxe"
	ips := b.requireLeases(t, mac, script)
	t.Logf("bootforge leased %s to %s with boot=%s", bdKeys(ips), mac, script)
	if all := b.leases(mac); len(all) != 1 {
		t.Errorf("iPXE DHCPs once, but bootforge logged %d leases for %s: %v", len(all), mac, all)
	}
	// Authoritative: the OFFER carried the address and the script URL.
	for ip := range ips {
		b.requireReply(t, mac, script, ip)
	}
	b.requireGetFrom(t, "boot.ipxe", ips)
	b.requireGetFrom(t, "vmlinuz", ips)
	b.requireGetFrom(t, "initrd.gz", ips)
	if n := b.Server.CountLog(`msg="tftp`); n != 0 {
		t.Errorf("the iPXE boot used TFTP (%d log lines)", n)
	}
}

// TestBootDHCPProxyUEFI: OVMF with EDK2's own PXE client (arch 7) on a
// network where dnsmasq gives addresses only and bootforge is the
// proxyDHCP server. EDK2 takes its address from dnsmasq and its boot file
// (snponly.efi) from bootforge's proxy offer, loads it over bootforge's
// TFTP; that iPXE DHCPs again, the proxy hands it the script URL, and the
// script boots kernel and initrd over HTTP.
func TestBootDHCPProxyUEFI(t *testing.T) {
	t.Parallel()
	need(t, "dnsmasq")
	b := newDHCPBootLab(t, bdProxyConfig, "--tftp-addr", "192.0.2.1:69")
	if !strings.Contains(b.Server.Log(), "br0:4011") {
		t.Errorf("proxy mode does not listen on port 4011: %s", b.Server.Log())
	}
	b.copyLoader(t, "snponly.efi")
	b.writeScript(t, "uefi-proxy", true)
	// The plain DHCP server: addresses only, no PXE options, no boot file.
	dh := b.Lab.AddHost(t, "192.0.2.2/24")
	dnsmasq := StartDnsmasq(t, dh.Netns, dh.Iface,
		"--dhcp-range="+bdDnsmasqFirst+","+bdDnsmasqLast+",255.255.255.0,1h")
	mac := bdMAC(2)

	vm, m := BootVM(t, VMOptions{Lab: b.Lab, Firmware: "uefi", MAC: mac, Timeout: bdBootTimeout, Expect: b.expectBoot()})
	t.Logf("marker after %s: %s", vm.Elapsed().Round(time.Millisecond), m[0])
	bdCheckCmdline(t, m[1], b.Marker, "profile=uefi-proxy", "initrd=initrd.gz")

	// dnsmasq, not bootforge, gave the address.
	ackRE := regexp.MustCompile(`(?m)DHCPACK\([^)]*\) (\S+) ` + regexp.QuoteMeta(strings.ToLower(mac)) + `\b`)
	ips := map[string]bool{}
	for _, a := range ackRE.FindAllStringSubmatch(dnsmasq.Log(), -1) {
		ips[a[1]] = true
	}
	if len(ips) == 0 {
		t.Fatalf("dnsmasq logged no DHCPACK for the VM's MAC %s", mac)
	}
	for ip := range ips {
		if !bdInRange(ip, bdDnsmasqFirst, bdDnsmasqLast) {
			t.Errorf("dnsmasq ACKed %s, outside its range", ip)
		}
	}
	t.Logf("dnsmasq leased %s to %s", bdKeys(ips), mac)
	if recs := ServerRecords(b.Server, "dhcp: lease"); len(recs) != 0 {
		t.Errorf("bootforge in proxy mode leased addresses: %v", recs)
	}
	// bootforge's answers: snponly.efi to EDK2, the script URL to iPXE,
	// never an address.
	b.requireReply(t, mac, "snponly.efi", "")
	b.requireReply(t, mac, b.HTTP+"/boot.ipxe", "")
	for _, r := range b.replies(mac) {
		if r["yiaddr"] != "0.0.0.0" && r["yiaddr"] != "" {
			t.Errorf("bootforge in proxy mode offered an address: %v", r)
		}
	}
	// EDK2's PXE said so in its DISCOVER: arch 7 (x86-64 UEFI).
	if !strings.Contains(dnsmasq.Log(), "PXEClient:Arch:00007") {
		t.Errorf("dnsmasq saw no DHCP request from a UEFI x64 (arch 7) PXE client")
	}

	b.requireTFTP(t, "snponly.efi", ips)
	b.requireGetFrom(t, "boot.ipxe", ips)
	b.requireGetFrom(t, "vmlinuz", ips)
	b.requireGetFrom(t, "initrd.gz", ips)
}

// TestBootDHCPUEFIHTTPBoot: OVMF's UEFI HTTP boot client (PXE and IPv6
// turned off through fw_cfg) asks as HTTPClient, arch 16; bootforge,
// authoritative, gives it an address, the URL of ipxe.efi (the default
// dhcp.loaders.http_x64) and an echoed vendor class HTTPClient. The
// firmware loads ipxe.efi over HTTP; that iPXE DHCPs again, gets the script
// URL and boots kernel and initrd over HTTP.
func TestBootDHCPUEFIHTTPBoot(t *testing.T) {
	t.Parallel()
	b := newDHCPBootLab(t, bdAuthConfig)
	b.copyLoader(t, "ipxe.efi")
	b.writeScript(t, "uefi-http", true)
	mac := bdMAC(3)
	// A neighbour without an address that captures the broadcast DHCP
	// traffic on the bridge.
	watcher := b.Lab.AddHost(t, "")
	sniff := dhSniff(t, watcher.Netns, watcher.Iface)

	vm, m := BootVM(t, VMOptions{Lab: b.Lab, Firmware: "uefi", HTTPBootOnly: true, MAC: mac,
		Timeout: bdBootTimeout, Expect: b.expectBoot()})
	t.Logf("marker after %s: %s", vm.Elapsed().Round(time.Millisecond), m[0])
	bdCheckCmdline(t, m[1], b.Marker, "profile=uefi-http", "initrd=initrd.gz")
	if !strings.Contains(vm.Console(), "Start HTTP Boot over IPv4") {
		t.Errorf("the firmware did not say it started HTTP boot; console tail:\n%s", vm.Tail(30))
	}

	loader, script := b.HTTP+"/ipxe.efi", b.HTTP+"/boot.ipxe"
	fwIPs := b.requireLeases(t, mac, loader)
	ipxeIPs := b.requireLeases(t, mac, script)
	t.Logf("bootforge leased %s to the firmware (boot=%s) and %s to iPXE (boot=%s)", bdKeys(fwIPs), loader, bdKeys(ipxeIPs), script)
	if fmt.Sprint(bdKeys(fwIPs)) != fmt.Sprint(bdKeys(ipxeIPs)) {
		// The firmware sends no client identifier and iPXE sends 01:<MAC>:
		// one machine, which must keep one address (as dnsmasq and Kea do).
		t.Errorf("one MAC, two addresses: firmware %s, iPXE %s", bdKeys(fwIPs), bdKeys(ipxeIPs))
	}
	b.requireGetFrom(t, "ipxe.efi", fwIPs)
	b.requireGetFrom(t, "boot.ipxe", ipxeIPs)
	b.requireGetFrom(t, "vmlinuz", ipxeIPs)
	b.requireGetFrom(t, "initrd.gz", ipxeIPs)

	// On the wire: the firmware asked as HTTPClient, arch 16, and
	// bootforge's OFFER and ACK to it (broadcast: EDK2 sets the flag)
	// carried the loader URL and echoed vendor class HTTPClient, without
	// which EDK2 ignores an offer.
	var asked bool
	answered := map[byte]bool{}
	var seen []string
	for _, c := range sniff.Packets() {
		p, err := dhParse(c.Payload)
		if err != nil || !strings.EqualFold(p.CHAddr.String(), mac) {
			continue
		}
		p.From = c.Src
		seen = append(seen, p.String()+fmt.Sprintf(" 60=%q", p.Str(60)))
		arch, _ := p.Opt(93)
		switch {
		case p.Op == 1 && strings.HasPrefix(p.Str(60), "HTTPClient:Arch:00016") && string(arch) == "\x00\x10":
			asked = true
		case p.Op == 2 && c.Src.Addr().String() == b.Lab.IP() && p.Str(60) == "HTTPClient" &&
			(p.File == loader || p.Str(67) == loader) && fwIPs[p.YIAddr]:
			answered[p.Type()] = true
		}
	}
	if !asked {
		t.Errorf("captured no DISCOVER/REQUEST from %s with vendor class HTTPClient:Arch:00016 and arch 16: %v", mac, seen)
	}
	if !answered[dhOffer] || !answered[dhAck] {
		t.Errorf("captured no OFFER and ACK from bootforge to %s with vendor class HTTPClient, boot file %s and its address (got %v): %v",
			mac, loader, answered, seen)
	}
	if n := b.Server.CountLog(`msg="tftp`); n != 0 {
		t.Errorf("HTTP boot used TFTP (%d log lines)", n)
	}
}
