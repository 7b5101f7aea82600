package e2e

// Real UEFI firmware booting over IPv6 from bootforge alone: OVMF's own
// PXE and HTTP boot clients on an IPv6-only lab (radvd for the prefix,
// bootforge's DHCPv6 for the address and the boot file URL, its TFTP and
// HTTP for the files).

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// boot6Lab is an IPv6-only lab with radvd and bootforge at 2001:db8:1::1.
type boot6Lab struct {
	Lab    *Lab
	Server *Server
	Root   string
	Marker string
	HTTP   string // http://[2001:db8:1::1]:8080
}

const boot6Addr = "2001:db8:1::1"

func newBoot6Lab(t *testing.T, v6 string, managed, autonomous bool) *boot6Lab {
	t.Helper()
	kernel, initrd := NetbootKernel(t)
	lab := NewLab6(t, boot6Addr+"/64")
	StartRadvd(t, lab, "2001:db8:1::/64", managed, true, autonomous)
	b := &boot6Lab{Lab: lab, Root: t.TempDir(), HTTP: "http://[" + boot6Addr + "]:8080"}
	copyFile(t, kernel, filepath.Join(b.Root, "vmlinuz"))
	copyFile(t, initrd, filepath.Join(b.Root, "initrd.gz"))
	copyFile(t, "/usr/lib/ipxe/snponly.efi", filepath.Join(b.Root, "snponly.efi"))
	nonce := make([]byte, 6)
	rand.Read(nonce)
	b.Marker = "bfmark=" + hex.EncodeToString(nonce)
	b.Server = StartServer(t, ServerOptions{Netns: lab.Netns, Root: b.Root,
		Config: "dhcp:\n  http_port: 8080\n  v6:\n" + v6 + "\nlog:\n  level: debug\n",
		Args:   []string{"--tftp-addr", "[::]:69", "--http-addr", "[::]:8080"}})
	return b
}

func (b *boot6Lab) expectBoot() string {
	return regexp.QuoteMeta(BootMarker) + ` ([^\n]*` + regexp.QuoteMeta(b.Marker) + `[^\n]*)\n`
}

// TestBoot6 runs the two IPv6 boots one after the other (beside the rest
// of the suite): two TCG guests at once on CI's two cores would slow both.
func TestBoot6(t *testing.T) {
	t.Parallel()
	t.Run("UEFIPXEAuthoritative", testBoot6UEFIPXE)
	t.Run("UEFIHTTPProxyBesideDnsmasq", testBoot6ProxyBesideDnsmasq)
}

const boot6Authoritative = `    mode: authoritative
    interfaces: [br0]
    subnets:
      - subnet: 2001:db8:1::/64
        pools: ["2001:db8:1::100-2001:db8:1::1ff"]
`

// OVMF's IPv6 PXE client (PXEv4 off, so PXEv6 is the first boot option)
// gets an address and tftp://[2001:db8:1::1]/snponly.efi from bootforge's
// DHCPv6, fetches snponly.efi over TFTP/IPv6; iPXE then does DHCPv6 itself,
// gets the script URL (not the loader again), and fetches the script,
// kernel and initrd over HTTP/IPv6, to the marker.
func testBoot6UEFIPXE(t *testing.T) {
	b := newBoot6Lab(t, boot6Authoritative, true, false)
	b.writeScript(t)
	vm, m := BootVM(t, VMOptions{Lab: b.Lab, Firmware: "uefi", Timeout: 240 * time.Second, Expect: b.expectBoot(),
		Args: []string{"-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=no"}})
	t.Logf("marker after %s: %s", vm.Elapsed().Round(time.Millisecond), m[0])
	for _, want := range []string{"Start PXE over IPv6", "NBP filename is snponly.efi", "Filename: http://[2001:db8:1::1]:8080/boot.ipxe"} {
		if !strings.Contains(vm.Console(), want) {
			t.Errorf("console lacks %q", want)
		}
	}
	// The firmware's lease names the loader; iPXE's names the script.
	var loader, script bool
	for _, r := range ServerRecords(b.Server, "dhcp6: lease") {
		dh6InPool(t, r["ip"], "2001:db8:1::100", "2001:db8:1::1ff")
		loader = loader || r["boot"] == "snponly.efi"
		script = script || r["boot"] == "http://[2001:db8:1::1]:8080/boot.ipxe"
	}
	if !loader || !script {
		t.Errorf("leases with the loader %v, with the script %v:\n%s", loader, script, b.Server.Log())
	}
	// The firmware releases its leases before it starts the loader; iPXE
	// keeps its own, which is in the leases table.
	if m := regexp.MustCompile(`net0: (2001:db8:1::[0-9a-f]+)/64`).FindStringSubmatch(vm.Console()); m == nil {
		t.Errorf("iPXE shows no address from the pool")
	} else {
		dh6StoredLease(t, b.Server, m[1])
	}
	b.requireFetch(t, "tftp transfer", "snponly.efi")
	for _, f := range []string{"boot.ipxe", "vmlinuz", "initrd.gz"} {
		b.requireFetch(t, "http request", f)
	}
}

// requireFetch asserts that bootforge logged a complete fetch of name
// (msg "tftp transfer" or "http request") by an address of the pool.
func (b *boot6Lab) requireFetch(t *testing.T, msg, name string) {
	t.Helper()
	for _, r := range ServerRecords(b.Server, msg) {
		client := strings.TrimPrefix(r["client"], "[")
		if i := strings.Index(client, "]"); i >= 0 {
			client = client[:i]
		}
		ok := r["result"] == "ok" || r["status"] == "200"
		if (r["file"] == name || r["path"] == "/"+name) && ok && strings.HasPrefix(client, "2001:db8:1::") {
			return
		}
	}
	t.Errorf("no complete %s of %s from a DHCPv6 client:\n%s", msg, name, b.Server.Log())
}

func (b *boot6Lab) writeScript(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(b.Root, "boot.ipxe"), []byte(fmt.Sprintf(`#!ipxe
kernel %[1]s/vmlinuz initrd=initrd.gz console=ttyS0 quiet panic=-1 %[2]s
initrd %[1]s/initrd.gz
boot
`, b.HTTP, b.Marker)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startDnsmasq6 runs dnsmasq as the network's DHCPv6 server (stateful,
// addresses from 2001:db8:1::200-2ff; no DNS, no RA, no TFTP) on h's eth0.
func startDnsmasq6(t *testing.T, h *LabHost, args ...string) *consoleLog {
	t.Helper()
	need(t, "dnsmasq")
	dir := t.TempDir()
	log := &consoleLog{update: make(chan struct{}), start: time.Now()}
	cmd := netnsCommand(h.Netns, "dnsmasq", append([]string{"--no-daemon", "--conf-file=/dev/null", "--port=0",
		"--interface=" + h.Iface, "--bind-interfaces", "--leasefile-ro", "--pid-file=" + filepath.Join(dir, "pid"),
		"--user=root", "--log-dhcp", "--log-facility=-", "--dhcp-range=2001:db8:1::200,2001:db8:1::2ff,64,1h"}, args...)...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			s, _ := log.snapshot()
			t.Logf("dnsmasq log:\n%s", s)
		}
	})
	waitUntil(t, 10*time.Second, "dnsmasq's DHCPv6 range", func() bool {
		s, _ := log.snapshot()
		return strings.Contains(s, "DHCPv6, IP range")
	})
	return log
}

// Proxy mode beside dnsmasq as the network's DHCPv6 server, with OVMF's
// UEFI HTTP boot over IPv6: the firmware takes dnsmasq's address and
// bootforge's http://[2001:db8:1::1]:8080/ipxe.efi (bootforge's
// advertisement has no address and vendor class HTTPClient), and fetches
// it over HTTP/IPv6 from bootforge.
//
// iPXE then asks DHCPv6 again. It ignores an advertisement without an
// address when it asked for one (the M flag is on), so it cannot take a
// proxy's answer: the network's server must send iPXE to bootforge's
// script, as dnsmasq does here by user class "iPXE". The script, kernel
// and initrd then come over HTTP/IPv6, to the marker.
func testBoot6ProxyBesideDnsmasq(t *testing.T) {
	b := newBoot6Lab(t, "    mode: proxy\n    interfaces: [br0]\n", true, false)
	b.writeScript(t)
	copyFile(t, "/usr/lib/ipxe/ipxe.efi", filepath.Join(b.Root, "ipxe.efi"))
	dns := startDnsmasq6(t, AddHost6(t, b.Lab, "2001:db8:1::2/64"), "--dhcp-userclass=set:ipxe,iPXE",
		"--dhcp-option=tag:ipxe,option6:bootfile-url,"+b.HTTP+"/boot.ipxe")
	// PXE off, so that HTTP boot comes first: HTTPv4 (unanswered here,
	// about 65 s under TCG), then HTTPv6. opt/org.tianocore/IPv4Support=no
	// would skip HTTPv4, but with it Debian's OVMF (2022.11) never sends
	// the HTTP boot's own DHCPv6 Solicit.
	vm, m := BootVM(t, VMOptions{Lab: b.Lab, Firmware: "uefi", Timeout: 240 * time.Second, Expect: b.expectBoot(),
		Args: []string{"-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=no",
			"-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=no"}})
	t.Logf("marker after %s: %s", vm.Elapsed().Round(time.Millisecond), m[0])
	station := regexp.MustCompile(`Station IPv6 address is (\S+)`).FindStringSubmatch(vm.Console())
	if station == nil || !strings.HasPrefix(station[1], "2001:DB8:1:0:0:0:0:2") {
		t.Errorf("the firmware's address %v is not dnsmasq's (2001:db8:1::200-2ff)", station)
	}
	for _, want := range []string{"Start HTTP Boot over IPv6", "URI: " + b.HTTP + "/ipxe.efi"} {
		if !strings.Contains(vm.Console(), want) {
			t.Errorf("console lacks %q", want)
		}
	}
	if recs := ServerRecords(b.Server, "dhcp6: lease"); len(recs) != 0 {
		t.Errorf("a proxy gave addresses: %v", recs)
	}
	var advertised bool
	for _, r := range ServerRecords(b.Server, "dhcp6: replied") {
		advertised = advertised || (r["type"] == "ADVERTISE" && r["url"] == b.HTTP+"/ipxe.efi" && r["addrs"] == "[]")
	}
	if !advertised {
		t.Errorf("bootforge advertised no ipxe.efi URL without an address")
	}
	log, _ := dns.snapshot()
	if !regexp.MustCompile(`DHCPREPLY\(eth0\) 2001:db8:1::2[0-9a-f]{2} `).MatchString(log) {
		t.Errorf("dnsmasq gave no address")
	}
	for _, f := range []string{"ipxe.efi", "boot.ipxe", "vmlinuz", "initrd.gz"} {
		b.requireFetch(t, "http request", f)
	}
}
