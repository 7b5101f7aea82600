package vmtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"bootforge/internal/boot"
	"bootforge/internal/config"
	"bootforge/internal/dhcp/lease"
	"bootforge/internal/image"
)

func mustID(t *testing.T, s string) image.ID {
	t.Helper()
	id, err := image.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func linuxManifest() *image.Manifest {
	return &image.Manifest{Name: "deb", Version: "1.0.0", Template: image.TemplateLinux,
		Boot: image.Boot{Kind: boot.KindLinux, Kernel: "vmlinuz", Initrds: []string{"initrd.gz", "extra/fw.cpio"},
			Cmdline: "panic=-1 bfmarker=deb-1.0.0"}}
}

func wimbootManifest() *image.Manifest {
	return &image.Manifest{Name: "winpe", Version: "2.0.0", Template: image.TemplateWinPE,
		Boot: image.Boot{Kind: boot.KindWimboot, Wimboot: "wimboot", BCD: "boot/bcd", BootSDI: "boot/boot.sdi",
			BootWIM: "sources/boot.wim", Bootmgr: "bootmgr"}}
}

func TestPlanLinux(t *testing.T) {
	p, err := planFor(linuxManifest(), mustID(t, "deb@1.0.0"), BIOS)
	if err != nil {
		t.Fatal(err)
	}
	e := p.Entry
	if e.Name != entryName || e.Kind != boot.KindLinux {
		t.Errorf("entry %+v", e)
	}
	if e.Kernel != "images/deb/1.0.0/vmlinuz" {
		t.Errorf("kernel %q", e.Kernel)
	}
	if !slices.Equal(e.Initrds, []string{"images/deb/1.0.0/initrd.gz", "images/deb/1.0.0/extra/fw.cpio"}) {
		t.Errorf("initrds %q", e.Initrds)
	}
	if e.Cmdline != "panic=-1 bfmarker=deb-1.0.0 console=ttyS0" {
		t.Errorf("cmdline %q", e.Cmdline)
	}
	if !slices.Equal(p.Files, []string{"vmlinuz", "initrd.gz", "extra/fw.cpio"}) {
		t.Errorf("files %q", p.Files)
	}
}

func TestPlanWimboot(t *testing.T) {
	p, err := planFor(wimbootManifest(), mustID(t, "winpe@2.0.0"), UEFI)
	if err != nil {
		t.Fatal(err)
	}
	e := p.Entry
	if e.Kind != boot.KindWimboot || e.Wimboot != "images/winpe/2.0.0/wimboot" || e.BCD != "images/winpe/2.0.0/boot/bcd" ||
		e.BootSDI != "images/winpe/2.0.0/boot/boot.sdi" || e.BootWIM != "images/winpe/2.0.0/sources/boot.wim" || e.Cmdline != "" {
		t.Errorf("entry %+v", e)
	}
	if !slices.Contains(p.Files, "bootmgr") || len(p.Files) != 5 {
		t.Errorf("files %q", p.Files)
	}
	if _, err := planFor(wimbootManifest(), mustID(t, "winpe@2.0.0"), SecureBoot); err == nil || !strings.Contains(err.Error(), "Secure Boot") {
		t.Errorf("wimboot with Secure Boot: %v", err)
	}
}

func TestPlanRefusesBadPaths(t *testing.T) {
	for _, k := range []string{"../../etc/shadow", "/etc/shadow", ""} {
		m := linuxManifest()
		m.Boot.Kernel = k
		if _, err := planFor(m, mustID(t, "deb@1.0.0"), BIOS); err == nil {
			t.Errorf("kernel %q accepted", k)
		}
	}
	m := linuxManifest()
	m.Boot.Kind = "iso"
	if _, err := planFor(m, mustID(t, "deb@1.0.0"), BIOS); err == nil {
		t.Error("kind iso accepted")
	}
}

func TestSerialCmdline(t *testing.T) {
	for in, want := range map[string]string{
		"":                                    "console=ttyS0",
		"quiet":                               "quiet console=ttyS0",
		"console=ttyS0,115200 x":              "console=ttyS0,115200 x console=ttyS0",
		"console=tty0 console=ttyS0 bfmarker": "console=tty0 console=ttyS0 bfmarker",
	} {
		if got := serialCmdline(in); got != want {
			t.Errorf("serialCmdline(%q) = %q, want %q", in, got, want)
		}
	}
}

func testNetwork() network {
	return newNetwork("bfvmtest-1-abcdef", net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56})
}

// TestServerConfig checks the generated config as serve reads it.
func TestServerConfig(t *testing.T) {
	n := testNetwork()
	d := workDirs{Root: "/tmp/w/root", Data: "/tmp/w/data", Inventory: "/tmp/w/inventory"}
	p, err := planFor(linuxManifest(), mustID(t, "deb@1.0.0"), BIOS)
	if err != nil {
		t.Fatal(err)
	}
	for _, fw := range Firmwares {
		text, err := configYAML(serverConfig(n, fw, d, p.Entry))
		if err != nil {
			t.Fatalf("%s: %v", fw, err)
		}
		c, err := config.Parse("generated", text)
		if err != nil {
			t.Fatalf("%s: %v\n%s", fw, err, text)
		}
		if c.Root != d.Root || c.DataDir != d.Data || c.Inventory.Dir != d.Inventory {
			t.Errorf("%s: root %q data %q inventory %q", fw, c.Root, c.DataDir, c.Inventory.Dir)
		}
		if c.TFTP.Listen != "192.0.2.1:69" || c.HTTP.Listen != "192.0.2.1:8080" || c.HTTP.TLS.Enabled || c.API.Enabled {
			t.Errorf("%s: listeners tftp %q http %q tls %v api %v", fw, c.TFTP.Listen, c.HTTP.Listen, c.HTTP.TLS.Enabled, c.API.Enabled)
		}
		if c.DHCP.Mode != "authoritative" || !slices.Equal(c.DHCP.Interfaces, []string{"br0"}) || len(c.DHCP.Subnets) != 1 {
			t.Fatalf("%s: dhcp %+v", fw, c.DHCP)
		}
		s := c.DHCP.Subnets[0]
		if s.Subnet.String() != "192.0.2.0/24" || s.SecureBoot != (fw == SecureBoot) {
			t.Errorf("%s: subnet %s secure_boot %v", fw, s.Subnet, s.SecureBoot)
		}
		if len(s.Reservations) != 1 || s.Reservations[0].MAC.String() != "52:54:00:12:34:56" || s.Reservations[0].IP != netip.MustParseAddr("192.0.2.10") {
			t.Errorf("%s: reservations %+v", fw, s.Reservations)
		}
		if c.DHCP.Loaders.BIOS != "undionly.kpxe" || c.DHCP.Loaders.EFIx64 != "snponly.efi" || c.DHCP.Loaders.SecureBootX64 != "shimx64.efi" {
			t.Errorf("%s: loaders %+v", fw, c.DHCP.Loaders)
		}
		inv := c.Inventory
		if inv.DefaultProfile != profileName || len(inv.Profiles) != 1 || len(inv.Hosts) != 0 {
			t.Fatalf("%s: inventory %+v", fw, inv)
		}
		prof := inv.Profiles[0]
		if len(prof.Match) != 1 || prof.Match[0].MAC != "52:54:00:12:34:56" {
			t.Errorf("%s: match %+v", fw, prof.Match)
		}
		if prof.Menu.Default != entryName || prof.Menu.Timeout.D() != time.Second || len(prof.Menu.Entries) != 1 {
			t.Errorf("%s: menu %+v", fw, prof.Menu)
		}
		if e := prof.Menu.Entries[0]; e.Kernel != "images/deb/1.0.0/vmlinuz" || e.Cmdline != "panic=-1 bfmarker=deb-1.0.0 console=ttyS0" ||
			!slices.Equal(e.Initrds, p.Entry.Initrds) {
			t.Errorf("%s: entry %+v", fw, e)
		}
	}
}

func TestNetworkCheck(t *testing.T) {
	if err := testNetwork().check(); err != nil {
		t.Fatal(err)
	}
	n := testNetwork()
	n.Server = netip.MustParsePrefix("198.18.0.1/15")
	n.VMIP = netip.MustParseAddr("198.18.0.10")
	n.Pool = lease.Range{First: netip.MustParseAddr("198.18.1.0"), Last: netip.MustParseAddr("198.18.1.255")}
	if err := n.check(); err != nil {
		t.Errorf("198.18.0.0/15: %v", err)
	}
	for _, bad := range []func(*network){
		func(n *network) { n.Server = netip.MustParsePrefix("10.0.0.1/24") },
		func(n *network) { n.Server = netip.MustParsePrefix("192.0.2.1/16") },
		func(n *network) { n.VMIP = netip.MustParseAddr("198.51.100.10") },
		func(n *network) { n.Pool.Last = netip.MustParseAddr("192.168.0.1") },
	} {
		n := testNetwork()
		bad(&n)
		if err := n.check(); err == nil {
			t.Errorf("%+v accepted", n)
		}
	}
}

func TestReadManifest(t *testing.T) {
	root := t.TempDir()
	id := mustID(t, "deb@1.0.0")
	if _, err := ReadManifest(root, id); err == nil || !strings.Contains(err.Error(), "no built version deb@1.0.0") {
		t.Errorf("missing: %v", err)
	}
	dir := filepath.Join(root, "images", "deb", "1.0.0")
	os.MkdirAll(dir, 0o755)
	write := func(m *image.Manifest) {
		b, _ := json.Marshal(m)
		os.WriteFile(filepath.Join(dir, image.ManifestName), b, 0o644)
	}
	write(linuxManifest())
	m, err := ReadManifest(root, id)
	if err != nil || m.Boot.Kernel != "vmlinuz" {
		t.Fatalf("%v %+v", err, m)
	}
	other := linuxManifest()
	other.Version = "1.0.1"
	write(other)
	if _, err := ReadManifest(root, id); err == nil || !strings.Contains(err.Error(), "describes deb@1.0.1") {
		t.Errorf("wrong version: %v", err)
	}
	os.WriteFile(filepath.Join(dir, image.ManifestName), []byte("{"), 0o644)
	if _, err := ReadManifest(root, id); err == nil {
		t.Error("broken JSON accepted")
	}
}

func TestPreflight(t *testing.T) {
	all := system{
		Geteuid:  func() int { return 0 },
		LookPath: func(p string) (string, error) { return "/usr/bin/" + p, nil },
		Exists:   func(string) bool { return true },
	}
	for _, fw := range Firmwares {
		if err := all.preflight(fw); err != nil {
			t.Errorf("%s: %v", fw, err)
		}
	}
	none := system{
		Geteuid:  func() int { return 1000 },
		LookPath: func(p string) (string, error) { return "", errors.New("not found") },
		Exists:   func(string) bool { return false },
	}
	err := none.preflight(SecureBoot)
	if err == nil {
		t.Fatal("nothing there, and preflight passed")
	}
	for _, want := range []string{"root", "qemu-system-x86_64", "qemu-system-x86", "iproute2",
		"OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd", "ovmf", "shim-signed", "grub-efi-amd64-signed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %q:\n%v", want, err)
		}
	}
	if err := none.preflight(BIOS); !strings.Contains(err.Error(), "ipxe-qemu") || strings.Contains(err.Error(), "ovmf") {
		t.Errorf("BIOS: %v", err)
	}
	// Only the root check fails: the message says so.
	notRoot := all
	notRoot.Geteuid = func() int { return 1000 }
	if err := notRoot.preflight(UEFI); err == nil || !strings.Contains(err.Error(), "as root") {
		t.Errorf("not root: %v", err)
	}
}

// TestRunRefusesBeforeSetup: what is wrong is said before anything is made.
func TestRunRefusesBeforeSetup(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "images", "deb", "1.0.0")
	os.MkdirAll(dir, 0o755)
	b, _ := json.Marshal(linuxManifest())
	os.WriteFile(filepath.Join(dir, image.ManifestName), b, 0o644)
	tmp := t.TempDir()
	none := system{
		Geteuid:  func() int { return 1000 },
		LookPath: func(p string) (string, error) { return "", errors.New("not found") },
		Exists:   func(string) bool { return false },
	}
	o := Options{Root: root, ID: mustID(t, "deb@1.0.0"), TempDir: tmp}
	if _, err := run(context.Background(), o, none); err == nil || !strings.Contains(err.Error(), "vmlinuz") {
		t.Errorf("missing kernel file: %v", err)
	}
	for _, f := range []string{"vmlinuz", "initrd.gz", "extra/fw.cpio"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
		os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644)
	}
	if _, err := run(context.Background(), o, none); err == nil || !strings.Contains(err.Error(), "as root") {
		t.Errorf("not root: %v", err)
	}
	o.Expect = "("
	if _, err := run(context.Background(), o, none); err == nil || !strings.Contains(err.Error(), "--expect") {
		t.Errorf("bad --expect: %v", err)
	}
	o.Expect, o.Firmware = "", "coreboot"
	if _, err := run(context.Background(), o, none); err == nil || !strings.Contains(err.Error(), "bios, uefi or secboot") {
		t.Errorf("bad firmware: %v", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left behind in the temp dir: %v", left)
	}
}

func TestQEMUArgs(t *testing.T) {
	base := vmSpec{Tap: "tap0", MAC: "52:54:00:12:34:56", Memory: 1024}
	has := func(args []string, seq ...string) bool {
		for i := 0; i+len(seq) <= len(args); i++ {
			if slices.Equal(args[i:i+len(seq)], seq) {
				return true
			}
		}
		return false
	}
	bios := base
	bios.Firmware, bios.ROM = BIOS, "/usr/lib/ipxe/qemu/pxe-e1000.rom"
	a := qemuArgs(bios)
	for _, seq := range [][]string{{"-accel", "tcg"}, {"-nographic"}, {"-serial", "stdio"}, {"-monitor", "none"}, {"-no-reboot"},
		{"-m", "1024"}, {"-boot", "n"}, {"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no"},
		{"-device", "e1000,netdev=n0,mac=52:54:00:12:34:56,romfile=/usr/lib/ipxe/qemu/pxe-e1000.rom"}} {
		if !has(a, seq...) {
			t.Errorf("BIOS: no %q in %q", seq, a)
		}
	}
	if slices.Contains(a, "kvm") || has(a, "-drive") {
		t.Errorf("BIOS: %q", a)
	}
	uefi := base
	uefi.Firmware, uefi.Code, uefi.Vars = UEFI, "/usr/share/OVMF/OVMF_CODE_4M.fd", "/tmp/w/OVMF_VARS_4M.fd"
	a = qemuArgs(uefi)
	for _, seq := range [][]string{{"-drive", "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd"},
		{"-drive", "if=pflash,format=raw,file=/tmp/w/OVMF_VARS_4M.fd"},
		{"-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,romfile="}} {
		if !has(a, seq...) {
			t.Errorf("UEFI: no %q in %q", seq, a)
		}
	}
	if has(a, "-machine", "q35,smm=on") {
		t.Errorf("UEFI without Secure Boot on q35 with SMM: %q", a)
	}
	sb := uefi
	sb.Firmware = SecureBoot
	if a := qemuArgs(sb); !has(a, "-machine", "q35,smm=on") || !has(a, "-global", "ICH9-LPC.disable_s3=1") {
		t.Errorf("Secure Boot: %q", a)
	}
}

func TestLogLinesFor(t *testing.T) {
	log := []string{
		`time=1 level=INFO msg="bootforge ready" root=/tmp/x`,
		`time=2 level=DEBUG msg="dhcp: replied" type=OFFER mac=52:54:00:12:34:56 yiaddr=192.0.2.10`,
		`time=3 level=INFO msg="tftp transfer" client=192.0.2.10:1849 file=snponly.efi`,
		`time=4 level=INFO msg="http request" client=192.0.2.100 path=/boot.ipxe`,
		`time=5 level=INFO msg="http request" client=192.0.2.101:4000 path=/x`,
		`time=6 level=WARN msg="inventory: reload failed"`,
		`time=7 level=INFO msg=menu mac=52:54:00:AB:CD:EF`,
	}
	got := logLinesFor(log, "52:54:00:12:34:56", "192.0.2.10")
	want := []string{log[1], log[2], log[5]}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := logLinesFor(log, "52:54:00:ab:cd:ef", ""); len(got) != 2 || got[1] != log[6] {
		t.Errorf("MAC case: %q", got)
	}
}

func TestLineLog(t *testing.T) {
	l := newLineLog(3)
	l.Write([]byte("a\nb\nc"))
	if got := l.Lines(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("%q", got)
	}
	l.Write([]byte("\nd\ne\n"))
	if got := l.Lines(); !slices.Equal(got, []string{"a", "b", "c", "(2 more lines not kept)"}) {
		t.Errorf("%q", got)
	}
}

func TestChildEnvDropsBootforgeSettings(t *testing.T) {
	t.Setenv("BOOTFORGE_ROOT", "/somewhere/else")
	t.Setenv("BOOTFORGE_DHCP_MODE", "proxy")
	for _, kv := range childEnv() {
		if strings.HasPrefix(kv, "BOOTFORGE_") {
			t.Errorf("%s reaches the private server", kv)
		}
	}
}

func TestParseFirmware(t *testing.T) {
	for _, s := range []string{"bios", "uefi", "secboot"} {
		if f, err := ParseFirmware(s); err != nil || string(f) != s {
			t.Errorf("%s: %v", s, err)
		}
	}
	if _, err := ParseFirmware("efi"); err == nil {
		t.Error("efi accepted")
	}
}

func TestOwnerGone(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	for s, want := range map[string]bool{
		fmt.Sprintf("%d-abc", os.Getpid()): false, // this process
		fmt.Sprintf("%d-abc", dead):        true,
		"1-abc":                            false,
		"x-abc":                            false,
		fmt.Sprint(dead):                   false, // no "-": not one of ours
	} {
		if got := ownerGone(s); got != want {
			t.Errorf("ownerGone(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestLinkFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.WriteFile(src, []byte("kernel"), 0o600)
	dst := filepath.Join(dir, "root", "images", "deb", "1.0.0", "vmlinuz")
	if err := linkFile(src, dst); err != nil {
		t.Fatal(err)
	}
	a, _ := os.Stat(src)
	b, err := os.Stat(dst)
	if err != nil || !os.SameFile(a, b) {
		t.Errorf("not a hard link: %v", err)
	}
	// Where a link cannot be made, a copy readable by all.
	cp := filepath.Join(dir, "copy")
	if err := copyFile(src, cp); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(cp); st.Mode().Perm() != 0o644 || os.SameFile(a, st) {
		t.Errorf("copy: %v", st.Mode())
	}
	if err := copyFile(src, cp); err == nil {
		t.Error("copyFile overwrote an existing file")
	}
}
