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

func newBoot6Lab(t *testing.T, v6 string) *boot6Lab {
	t.Helper()
	kernel, initrd := NetbootKernel(t)
	lab := NewLab6(t, boot6Addr+"/64")
	StartRadvd(t, lab, "2001:db8:1::/64", true, true, false)
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
func TestBoot6UEFIPXE(t *testing.T) {
	t.Parallel()
	b := newBoot6Lab(t, boot6Authoritative)
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
		dh6StoredLease(t, b.Server, r["ip"])
	}
	if !loader || !script {
		t.Errorf("leases with the loader %v, with the script %v:\n%s", loader, script, b.Server.Log())
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
