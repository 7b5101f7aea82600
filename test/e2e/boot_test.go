package e2e

// Real firmware booting from bootforge. Until bootforge has its own DHCP
// server, dnsmasq (DHCP only: --port=0, no --enable-tftp) runs beside it in
// a neighbour namespace at 192.0.2.2 and points the clients at bootforge on
// 192.0.2.1 (TFTP :69, HTTP :8080), which serves everything the firmware
// downloads.

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Dnsmasq is a running dnsmasq with its log.
type Dnsmasq struct {
	t    testing.TB
	log  *consoleLog
	done chan struct{}
}

// StartDnsmasq runs dnsmasq as a DHCP server only (no DNS, no TFTP) on
// iface inside netns, with --log-dhcp, plus args. It is killed when the
// test ends.
func StartDnsmasq(t testing.TB, netns, iface string, args ...string) *Dnsmasq {
	t.Helper()
	need(t, "dnsmasq")
	for _, a := range args {
		if strings.HasPrefix(a, "--enable-tftp") {
			t.Fatal("StartDnsmasq: bootforge is the TFTP server here, not dnsmasq")
		}
	}
	dir := t.TempDir()
	base := []string{"--no-daemon", "--conf-file=/dev/null", "--port=0",
		"--interface=" + iface, "--bind-interfaces", "--leasefile-ro",
		"--pid-file=" + filepath.Join(dir, "dnsmasq.pid"), "--user=root",
		"--log-dhcp", "--log-facility=-", "--no-ping"}
	d := &Dnsmasq{t: t, log: &consoleLog{update: make(chan struct{}), start: time.Now()}, done: make(chan struct{})}
	cmd := netnsCommand(netns, "dnsmasq", append(base, args...)...)
	cmd.Stdout, cmd.Stderr = d.log, d.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting dnsmasq: %v", err)
	}
	go func() { cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			t.Logf("dnsmasq log:\n%s", d.Log())
		}
	})
	// dnsmasq logs "DHCP, IP range ..." once its socket is bound.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(d.Log(), "DHCP, IP range") {
		select {
		case <-d.done:
			t.Fatalf("dnsmasq exited at start:\n%s", d.Log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("dnsmasq did not start:\n%s", d.Log())
		}
	}
	return d
}

// Log returns what dnsmasq logged so far.
func (d *Dnsmasq) Log() string { s, _ := d.log.snapshot(); return s }

// Lines returns dnsmasq's log lines with their times since its start.
func (d *Dnsmasq) Lines() []TimedLine {
	d.log.mu.Lock()
	defer d.log.mu.Unlock()
	return append([]TimedLine(nil), d.log.lines...)
}

// LogRecord is one logfmt line of bootforge's text log.
type LogRecord map[string]string

var logfmtRE = regexp.MustCompile(`([A-Za-z0-9_.]+)=("(?:[^"\\]|\\.)*"|\S*)`)

// ServerRecords returns the log lines of s whose msg is msg, parsed.
func ServerRecords(s *Server, msg string) []LogRecord {
	var recs []LogRecord
	sc := bufio.NewScanner(strings.NewReader(s.Log()))
	for sc.Scan() {
		rec := LogRecord{}
		for _, m := range logfmtRE.FindAllStringSubmatch(sc.Text(), -1) {
			v := m[2]
			if u, err := strconv.Unquote(v); err == nil && strings.HasPrefix(v, `"`) {
				v = u
			}
			rec[m[1]] = v
		}
		if rec["msg"] == msg {
			recs = append(recs, rec)
		}
	}
	return recs
}

// bootLab is a lab with bootforge on 192.0.2.1 and dnsmasq on 192.0.2.2.
type bootLab struct {
	Lab    *Lab
	Server *Server
	DHCP   *Dnsmasq
	Root   string
	Kernel string // size-checked copies in Root: vmlinuz, initrd.gz
	Marker string // unique cmdline marker, bfmark=<hex>
	HTTP   string // http://192.0.2.1:8080
}

// newBootLab builds the network, fills bootforge's root with the test
// kernel and initrd, and starts bootforge and then dnsmasq with dhcpArgs.
func newBootLab(t *testing.T, dhcpArgs ...string) *bootLab {
	t.Helper()
	kernel, initrd := NetbootKernel(t)
	lab := NewLab(t)
	b := &bootLab{Lab: lab, Root: t.TempDir(), HTTP: "http://" + lab.IP() + ":8080"}
	copyFile(t, kernel, filepath.Join(b.Root, "vmlinuz"))
	copyFile(t, initrd, filepath.Join(b.Root, "initrd.gz"))
	nonce := make([]byte, 6)
	rand.Read(nonce)
	b.Marker = "bfmark=" + hex.EncodeToString(nonce)
	b.Server = StartServer(t, ServerOptions{
		Netns: lab.Netns, Addr: lab.IP(), Root: b.Root,
		Args: []string{"--tftp-addr", lab.IP() + ":69", "--http-addr", lab.IP() + ":8080"},
	})
	dhcp := lab.AddHost(t, "192.0.2.2/24")
	b.DHCP = StartDnsmasq(t, dhcp.Netns, dhcp.Iface,
		append([]string{"--dhcp-range=192.0.2.100,192.0.2.199,255.255.255.0,1h"}, dhcpArgs...)...)
	return b
}

// writeRoot writes a file into bootforge's root.
func (b *bootLab) writeRoot(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(b.Root, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// expectBoot returns the Expect regexp for this lab's marker: the whole
// line, so the trailing \n (the console streams in chunks).
func (b *bootLab) expectBoot() string {
	return regexp.QuoteMeta(BootMarker) + ` ([^\n]*` + regexp.QuoteMeta(b.Marker) + `[^\n]*)\n`
}

// requireHTTPGet asserts that bootforge logged a complete GET of name.
func (b *bootLab) requireHTTPGet(t *testing.T, name string) {
	t.Helper()
	st, err := os.Stat(filepath.Join(b.Root, name))
	if err != nil {
		t.Fatal(err)
	}
	want := strconv.FormatInt(st.Size(), 10)
	var seen []string
	for _, r := range ServerRecords(b.Server, "http request") {
		if r["path"] != "/"+name {
			continue
		}
		if r["method"] == "GET" && r["status"] == "200" && r["bytes"] == want && dhcpClientRE.MatchString(r["client"]) {
			return
		}
		seen = append(seen, fmt.Sprint(r))
	}
	t.Errorf("bootforge logged no complete GET /%s (status 200, bytes %s) from a DHCP client; lines for it: %v",
		name, want, seen)
}

// dhcpClientRE matches the addresses dnsmasq hands out (192.0.2.100-199).
var dhcpClientRE = regexp.MustCompile(`^192\.0\.2\.1\d\d$`)

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBootBIOSiPXEviaBootforgeFiles: QEMU's iPXE ROM (BIOS, e1000) gets the
// script URL from DHCP and loads script, kernel and initrd from bootforge
// over HTTP.
func TestBootBIOSiPXEviaBootforgeFiles(t *testing.T) {
	t.Parallel()
	b := newBootLab(t,
		"--dhcp-match=set:ipxe,175",
		"--dhcp-boot=tag:ipxe,http://192.0.2.1:8080/boot.ipxe")
	b.writeRoot(t, "boot.ipxe", fmt.Sprintf(`#!ipxe
echo bootforge-e2e: loading kernel
kernel %[1]s/vmlinuz console=ttyS0 quiet panic=-1 %[2]s profile=bios
initrd %[1]s/initrd.gz
boot
`, b.HTTP, b.Marker))

	vm, m := BootVM(t, VMOptions{Lab: b.Lab, Firmware: "bios", Timeout: 180 * time.Second, Expect: b.expectBoot()})
	t.Logf("marker after %s: %s", vm.Elapsed().Round(time.Millisecond), m[0])
	for _, want := range []string{b.Marker, "profile=bios", "console=ttyS0"} {
		if !strings.Contains(" "+m[1]+" ", " "+want+" ") {
			t.Errorf("booted cmdline %q lacks %q", m[1], want)
		}
	}
	b.requireHTTPGet(t, "boot.ipxe")
	b.requireHTTPGet(t, "vmlinuz")
	b.requireHTTPGet(t, "initrd.gz")
	if !strings.Contains(b.DHCP.Log(), strings.ToLower(vm.MAC)) {
		t.Errorf("dnsmasq never saw the VM's MAC %s", vm.MAC)
	}
}

// TestBootUEFIPXEviaBootforgeTFTP: OVMF's own PXE client (arch 7) loads
// snponly.efi from bootforge's TFTP; that iPXE DHCPs again, gets the script
// URL and loads kernel and initrd over HTTP.
func TestBootUEFIPXEviaBootforgeTFTP(t *testing.T) {
	t.Parallel()
	b := newBootLab(t,
		"--dhcp-match=set:ipxe,175",
		"--dhcp-match=set:efi64,option:client-arch,7",
		"--dhcp-boot=tag:ipxe,http://192.0.2.1:8080/boot.ipxe",
		"--dhcp-boot=tag:efi64,tag:!ipxe,snponly.efi,,192.0.2.1")
	copyFile(t, "/usr/lib/ipxe/snponly.efi", filepath.Join(b.Root, "snponly.efi"))
	// Debian's iPXE boots Linux on EFI only with initrd=<name> (LAB.md).
	b.writeRoot(t, "boot.ipxe", fmt.Sprintf(`#!ipxe
echo bootforge-e2e: loading kernel
kernel %[1]s/vmlinuz initrd=initrd.gz console=ttyS0 quiet panic=-1 %[2]s profile=uefi
initrd %[1]s/initrd.gz
boot
`, b.HTTP, b.Marker))

	vm, m := BootVM(t, VMOptions{Lab: b.Lab, Firmware: "uefi", Timeout: 240 * time.Second, Expect: b.expectBoot()})
	t.Logf("marker after %s: %s", vm.Elapsed().Round(time.Millisecond), m[0])
	for _, want := range []string{b.Marker, "profile=uefi", "initrd=initrd.gz"} {
		if !strings.Contains(" "+m[1]+" ", " "+want+" ") {
			t.Errorf("booted cmdline %q lacks %q", m[1], want)
		}
	}

	st, err := os.Stat(filepath.Join(b.Root, "snponly.efi"))
	if err != nil {
		t.Fatal(err)
	}
	ok := false
	var seen []string
	for _, r := range ServerRecords(b.Server, "tftp transfer") {
		seen = append(seen, fmt.Sprint(r))
		if r["file"] == "snponly.efi" && r["result"] == "ok" && r["bytes"] == strconv.FormatInt(st.Size(), 10) {
			ok = true
		}
	}
	if !ok {
		t.Errorf("bootforge logged no complete TFTP transfer of snponly.efi (result=ok, bytes=%d); TFTP lines: %v", st.Size(), seen)
	}
	t.Logf("tftp log: %v", seen)
	b.requireHTTPGet(t, "boot.ipxe")
	b.requireHTTPGet(t, "vmlinuz")
	b.requireHTTPGet(t, "initrd.gz")
	// EDK2's PXE says so in its DHCP request: arch 7 (x86-64 UEFI).
	if !regexp.MustCompile(`(?m)client-arch.*\b7\b|PXEClient:Arch:00007`).MatchString(b.DHCP.Log()) {
		t.Errorf("dnsmasq saw no DHCP request from a UEFI x64 (arch 7) PXE client")
	}
}

// TestBootUEFIHTTPviaBootforge: OVMF's own UEFI HTTP boot client (PXE and
// IPv6 turned off through fw_cfg) asks DHCP as HTTPClient, arch 16, gets
// the URL of snponly.efi with option 60 HTTPClient echoed, and loads it
// from bootforge's HTTP server (HEAD, then GET); that iPXE then boots the
// script as in the PXE test.
func TestBootUEFIHTTPviaBootforge(t *testing.T) {
	t.Parallel()
	b := newBootLab(t,
		"--dhcp-match=set:ipxe,175",
		"--dhcp-match=set:efihttp,option:client-arch,16",
		"--dhcp-vendorclass=set:httpclient,HTTPClient",
		"--dhcp-boot=tag:ipxe,http://192.0.2.1:8080/boot.ipxe",
		"--dhcp-boot=tag:efihttp,tag:httpclient,tag:!ipxe,http://192.0.2.1:8080/snponly.efi",
		// UEFI HTTP boot ignores offers that do not echo vendor class HTTPClient.
		"--dhcp-option-force=tag:efihttp,tag:httpclient,60,HTTPClient")
	copyFile(t, "/usr/lib/ipxe/snponly.efi", filepath.Join(b.Root, "snponly.efi"))
	b.writeRoot(t, "boot.ipxe", fmt.Sprintf(`#!ipxe
kernel %[1]s/vmlinuz initrd=initrd.gz console=ttyS0 quiet panic=-1 %[2]s profile=uefi-http
initrd %[1]s/initrd.gz
boot
`, b.HTTP, b.Marker))

	vm, m := BootVM(t, VMOptions{Lab: b.Lab, Firmware: "uefi", HTTPBootOnly: true,
		Timeout: 240 * time.Second, Expect: b.expectBoot()})
	t.Logf("marker after %s: %s", vm.Elapsed().Round(time.Millisecond), m[0])
	if !strings.Contains(" "+m[1]+" ", " profile=uefi-http ") {
		t.Errorf("booted cmdline %q lacks profile=uefi-http", m[1])
	}
	if !strings.Contains(vm.Console(), "Start HTTP Boot over IPv4") {
		t.Errorf("the firmware did not say it started HTTP boot; console tail:\n%s", vm.Tail(30))
	}
	// The firmware's request: vendor class HTTPClient, client-arch (93) 16.
	if !regexp.MustCompile(`(?m)vendor class: HTTPClient:Arch:00016`).MatchString(b.DHCP.Log()) ||
		!regexp.MustCompile(`(?m)tags: .*\befihttp\b`).MatchString(b.DHCP.Log()) {
		t.Errorf("dnsmasq saw no DHCP request with vendor class HTTPClient and client-arch 16")
	}
	b.requireHTTPGet(t, "snponly.efi")
	b.requireHTTPGet(t, "boot.ipxe")
	b.requireHTTPGet(t, "vmlinuz")
	b.requireHTTPGet(t, "initrd.gz")
	if n := b.Server.CountLog(`msg="tftp`); n != 0 {
		t.Errorf("HTTP boot used TFTP (%d log lines):\n%s", n, b.Server.Log())
	}
}
