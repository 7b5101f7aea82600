package e2e

// PXE boot server discovery with real firmware (issue #18.4). dnsmasq is
// the network's DHCP server and gives the address only; bootforge, in proxy
// mode with dhcp.boot_server_discovery, answers EDK2's DISCOVER with an
// offer that names no boot file and carries the PXE 2.1 discovery options
// (one boot server, a one-item menu, prompt timeout 0). OVMF then asks the
// boot server on udp/4011 by unicast, and bootforge's ACK there names
// snponly.efi, which OVMF loads over TFTP; that iPXE DHCPs again, gets the
// script URL from the proxy and boots kernel and initrd to the marker.

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// bsConfig is bdProxyConfig with boot server discovery on.
const bsConfig = `log: {level: debug, format: text}
dhcp:
  mode: proxy
  interfaces: [br0]
  boot_server_discovery: true
`

func TestBootServer4011UEFI(t *testing.T) {
	t.Parallel()
	need(t, "dnsmasq")
	b := newDHCPBootLab(t, bsConfig, "--tftp-addr", "192.0.2.1:69")
	if !strings.Contains(b.Server.Log(), "br0:4011") {
		t.Fatalf("proxy mode does not listen on port 4011: %s", b.Server.Log())
	}
	b.copyLoader(t, "snponly.efi")
	b.writeScript(t, "bootserver-4011", true)
	dh := b.Lab.AddHost(t, "192.0.2.2/24")
	dnsmasq := StartDnsmasq(t, dh.Netns, dh.Iface,
		"--dhcp-range="+bdDnsmasqFirst+","+bdDnsmasqLast+",255.255.255.0,1h")
	mac := bdMAC(11)

	vm, m := BootVM(t, VMOptions{Lab: b.Lab, Firmware: "uefi", MAC: mac, Timeout: bdBootTimeout, Expect: b.expectBoot()})
	t.Logf("marker after %s: %s", vm.Elapsed().Round(time.Millisecond), m[0])
	bdCheckCmdline(t, m[1], b.Marker, "profile=bootserver-4011", "initrd=initrd.gz")
	// EDK2 says where its NBP came from: the boot server, which is bootforge.
	if c := CleanConsole(vm.Console()); !strings.Contains(c, "Server IP address is 192.0.2.1") || !strings.Contains(c, "NBP filename is snponly.efi") {
		t.Errorf("the firmware did not report snponly.efi from 192.0.2.1:\n%s", vm.Tail(40))
	}

	// dnsmasq gave the address.
	ackRE := regexp.MustCompile(`(?m)DHCPACK\([^)]*\) (\S+) ` + regexp.QuoteMeta(strings.ToLower(mac)) + `\b`)
	ips := map[string]bool{}
	for _, a := range ackRE.FindAllStringSubmatch(dnsmasq.Log(), -1) {
		if bdInRange(a[1], bdDnsmasqFirst, bdDnsmasqLast) {
			ips[a[1]] = true
		}
	}
	if len(ips) == 0 {
		t.Fatalf("dnsmasq logged no DHCPACK in its range for the VM's MAC %s", mac)
	}

	// bootforge's exchanges with this MAC, in log order: the discovery
	// offer on 67 (no file), then the REQUEST on 4011 and its ACK naming
	// snponly.efi, sent back to the client's address on port 4011.
	offer, ack := -1, -1
	for i, r := range b.replies(mac) {
		switch {
		case r["port"] == "67" && r["type"] == "OFFER" && r["discovery"] == "true" && r["file"] == "" && offer < 0:
			offer = i
		case r["port"] == "4011" && r["request"] == "REQUEST" && r["type"] == "ACK" && r["file"] == "snponly.efi":
			if !ips[Host(r["to"])] || Port(r["to"]) != "4011" {
				t.Errorf("the 4011 ACK went to %s, want port 4011 at the VM's address %v", r["to"], bdKeys(ips))
			}
			if ack < 0 {
				ack = i
			}
		case r["port"] == "67" && r["file"] == "snponly.efi":
			t.Errorf("the proxy offer named the loader, so the firmware had no need of 4011: %v", r)
		}
	}
	if offer < 0 || ack < offer {
		t.Fatalf("bootforge logged no discovery offer followed by a 4011 ACK with snponly.efi for %s (offer #%d, ack #%d); replies: %v",
			mac, offer, ack, b.replies(mac))
	}
	// iPXE then got the script URL from the proxy, as without discovery.
	b.requireReply(t, mac, b.HTTP+"/boot.ipxe", "")

	// The loader came over TFTP to that client, after the 4011 ACK.
	b.requireTFTP(t, "snponly.efi", ips)
	if a, l := bsLogIndex(b.Server.Log(), func(r LogRecord) bool {
		return r["msg"] == "dhcp: replied" && r["port"] == "4011" && strings.EqualFold(r["mac"], mac)
	}), bsLogIndex(b.Server.Log(), func(r LogRecord) bool {
		return r["msg"] == "tftp transfer" && r["file"] == "snponly.efi" && r["result"] == "ok"
	}); a < 0 || l < a {
		t.Errorf("snponly.efi was not fetched after the 4011 ACK (log lines %d and %d)", a, l)
	}
	b.requireGetFrom(t, "boot.ipxe", ips)
	b.requireGetFrom(t, "vmlinuz", ips)
	b.requireGetFrom(t, "initrd.gz", ips)

	// The boot log tells the same story: the boot server's ACK on 4011.
	var events []logEvent
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		cmd := exec.Command(binary, "log", "--mac", mac, "--json")
		cmd.Env = append(cmd.Environ(), "BOOTFORGE_DATA_DIR="+b.Server.DataDir, "BOOTFORGE_ROOT="+b.Root)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bootforge log: %v\n%s", err, out)
		}
		events = events[:0]
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var e logEvent
			if line != "" && json.Unmarshal([]byte(line), &e) == nil {
				events = append(events, e)
			}
		}
		if hasStage(events, "dhcp", "bootserver-ack") || time.Now().After(deadline) {
			break
		}
	}
	found := false
	for _, e := range events {
		if e.Protocol == "dhcp" && e.Stage == "bootserver-ack" && e.File == "snponly.efi" && e.Result == "ok" {
			found = true
		}
	}
	if !found {
		t.Errorf("the boot log has no dhcp bootserver-ack with snponly.efi for %s:\n%s", mac, dump(events))
	}
}

// bsLogIndex is the line number of the first log line that match accepts,
// or -1.
func bsLogIndex(log string, match func(LogRecord) bool) int {
	sc := bufio.NewScanner(strings.NewReader(log))
	for i := 0; sc.Scan(); i++ {
		rec := LogRecord{}
		for _, m := range logfmtRE.FindAllStringSubmatch(sc.Text(), -1) {
			rec[m[1]] = strings.Trim(m[2], `"`)
		}
		if match(rec) {
			return i
		}
	}
	return -1
}
