package vmtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"bootforge/internal/boot"
	"bootforge/internal/config"
	"bootforge/internal/dhcp/lease"
	"bootforge/internal/image"
)

// Firmware is the VM's firmware and, with it, the boot chain it takes.
type Firmware string

// Firmwares.
const (
	// BIOS is SeaBIOS with QEMU's iPXE option ROM on an e1000: iPXE asks
	// for its script over HTTP and boots the image.
	BIOS Firmware = "bios"
	// UEFI is OVMF with its own PXE client on virtio-net (no option ROM):
	// DHCP and TFTP fetch snponly.efi, which is iPXE.
	UEFI Firmware = "uefi"
	// SecureBoot is OVMF with Secure Boot enforced and Microsoft's keys
	// enrolled: Debian's Microsoft-signed shim, then Debian's signed
	// GRUB, then bootforge's grub.cfg; the kernel must be signed.
	SecureBoot Firmware = "secboot"
)

// Firmwares lists them in the order the flag names them.
var Firmwares = []Firmware{BIOS, UEFI, SecureBoot}

// ParseFirmware reads bios, uefi or secboot.
func ParseFirmware(s string) (Firmware, error) {
	for _, f := range Firmwares {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("firmware %q: use bios, uefi or secboot", s)
}

// ReadManifest reads the manifest of version id below root, the served
// root, and checks that it describes that version and a boot this
// package knows.
func ReadManifest(root string, id image.ID) (*image.Manifest, error) {
	p := filepath.Join(root, filepath.FromSlash(id.Dir()), image.ManifestName)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no built version %s: %s does not exist (build it with bootforge image build)", id, p)
	}
	if err != nil {
		return nil, err
	}
	var m image.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %v", p, err)
	}
	got, err := m.ID()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", p, err)
	}
	if got.String() != id.String() {
		return nil, fmt.Errorf("%s describes %s, not %s", p, got, id)
	}
	switch m.Boot.Kind {
	case boot.KindLinux, boot.KindWimboot:
	default:
		return nil, fmt.Errorf("%s: boot.kind %q: image test boots linux and wimboot images", p, m.Boot.Kind)
	}
	return &m, nil
}

// profileName and entryName name the private server's only profile and
// its only entry.
const (
	profileName = "vmtest"
	entryName   = "image"
)

// plan is what the private server serves: the menu entry that boots the
// image, with paths in the private root, and the image's files it needs,
// relative to the version's directory.
type plan struct {
	Entry config.Entry
	Files []string
}

// planFor turns a manifest into the menu entry. The files keep their
// place below images/NAME/VERSION/, so that the private root is laid out
// as the real one is. A kernel command line gets console=ttyS0, where the
// test reads the console.
func planFor(m *image.Manifest, id image.ID, fw Firmware) (plan, error) {
	dir := id.Dir()
	var files []string
	var bad []string
	at := func(field, p string) string {
		if p == "" {
			bad = append(bad, field+" is empty")
			return ""
		}
		if !filepath.IsLocal(filepath.FromSlash(p)) {
			bad = append(bad, fmt.Sprintf("%s %q is not a path inside the version's directory", field, p))
			return ""
		}
		if !slices.Contains(files, p) {
			files = append(files, p)
		}
		return path.Join(dir, p)
	}
	b := m.Boot
	e := config.Entry{Name: entryName, Label: "image " + id.String(), Kind: b.Kind}
	switch b.Kind {
	case boot.KindLinux:
		e.Kernel = at("boot.kernel", b.Kernel)
		for i, p := range b.Initrds {
			e.Initrds = append(e.Initrds, at(fmt.Sprintf("boot.initrds[%d]", i), p))
		}
		e.Cmdline = serialCmdline(b.Cmdline)
	case boot.KindWimboot:
		if fw == SecureBoot {
			return plan{}, errors.New("a wimboot image boots through iPXE, which Secure Boot cannot run: use --firmware bios or uefi")
		}
		e.Wimboot = at("boot.wimboot", b.Wimboot)
		e.BCD = at("boot.bcd", b.BCD)
		e.BootSDI = at("boot.boot_sdi", b.BootSDI)
		e.BootWIM = at("boot.boot_wim", b.BootWIM)
		if b.Bootmgr != "" {
			at("boot.bootmgr", b.Bootmgr)
		}
	default:
		return plan{}, fmt.Errorf("boot.kind %q: image test boots linux and wimboot images", b.Kind)
	}
	if len(bad) > 0 {
		return plan{}, fmt.Errorf("manifest of %s: %s", id, strings.Join(bad, "; "))
	}
	return plan{Entry: e, Files: files}, nil
}

// serialConsole is what the test adds to a kernel command line.
const serialConsole = "console=ttyS0"

// serialCmdline appends console=ttyS0 unless the command line has it.
func serialCmdline(cmdline string) string {
	if slices.Contains(strings.Fields(cmdline), serialConsole) {
		return cmdline
	}
	return strings.TrimSpace(cmdline + " " + serialConsole)
}

// network is the private boot network inside the namespace.
type network struct {
	Netns  string
	Bridge string           // the bridge the server listens on
	Tap    string           // the VM's tap device on the bridge
	Server netip.Prefix     // the bridge's address and prefix
	VMIP   netip.Addr       // reserved for the VM's MAC
	Pool   lease.Range      // for anything else that asks
	MAC    net.HardwareAddr // the VM's
}

// newNetwork is the fixed layout in 192.0.2.0/24 (TEST-NET-1, RFC 5737):
// the namespace is private, so every test can use the same addresses.
func newNetwork(netns string, mac net.HardwareAddr) network {
	return network{
		Netns:  netns,
		Bridge: "br0",
		Tap:    "tap0",
		Server: netip.MustParsePrefix("192.0.2.1/24"),
		VMIP:   netip.MustParseAddr("192.0.2.10"),
		Pool:   lease.Range{First: netip.MustParseAddr("192.0.2.100"), Last: netip.MustParseAddr("192.0.2.199")},
		MAC:    mac,
	}
}

// testNets are the only networks the private network may use.
var testNets = []netip.Prefix{
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
}

// check refuses addresses outside the test networks.
func (n network) check() error {
	for _, a := range []netip.Addr{n.Server.Addr(), n.VMIP, n.Pool.First, n.Pool.Last} {
		ok := false
		for _, t := range testNets {
			if t.Contains(a) && n.Server.Bits() >= t.Bits() {
				ok = true
			}
		}
		if !ok {
			return fmt.Errorf("address %s (prefix /%d) is outside 192.0.2.0/24 and 198.18.0.0/15", a, n.Server.Bits())
		}
		if !n.Server.Contains(a) {
			return fmt.Errorf("address %s is outside the bridge's %s", a, n.Server.Masked())
		}
	}
	return nil
}

// workDirs are the private server's directories.
type workDirs struct {
	Root      string // served
	Data      string // data_dir: store, never served
	Inventory string // inventory.dir: none, so nothing but the config's profile loads
}

// Ports inside the namespace. They are the server's only listeners.
const (
	tftpPort = 69
	httpPort = 8080
)

// serverConfig is the private server's configuration: authoritative DHCP
// on the bridge with an address reserved for the VM, TFTP and HTTP on the
// bridge address, no HTTPS and no management API, and an inventory of one
// profile whose only entry boots the image, by default after a second.
// With Secure Boot the subnet says secure_boot, so DHCP hands the VM shim.
func serverConfig(n network, fw Firmware, d workDirs, e config.Entry) config.Config {
	c := config.Default()
	c.Root, c.DataDir = d.Root, d.Data
	c.StoreSync = "normal"
	c.Log = config.Log{Level: "debug", Format: "text"}
	c.API.Enabled = false
	c.HTTP.TLS.Enabled = false
	host := n.Server.Addr().String()
	c.TFTP.Listen = net.JoinHostPort(host, fmt.Sprint(tftpPort))
	c.HTTP.Listen = net.JoinHostPort(host, fmt.Sprint(httpPort))
	c.DHCP.Mode = "authoritative"
	c.DHCP.Interfaces = []string{n.Bridge}
	c.DHCP.LeaseTime = config.Duration(10 * time.Minute)
	c.DHCP.Subnets = []config.Subnet{{
		Subnet: config.Prefix{Prefix: n.Server.Masked()},
		Pools:  []lease.Range{n.Pool},
		Reservations: []config.Reservation{
			{MAC: config.MAC(n.MAC), IP: n.VMIP, Hostname: "vmtest"},
		},
		SecureBoot: fw == SecureBoot,
	}}
	c.Inventory = config.Inventory{
		Dir:            d.Inventory,
		DefaultProfile: profileName,
		Profiles: []config.Profile{{
			Name:  profileName,
			Match: []config.Selector{{MAC: n.MAC.String()}},
			Menu: config.Menu{
				Title:   "bootforge image test",
				Default: e.Name,
				Timeout: config.Duration(time.Second),
				Entries: []config.Entry{e},
			},
		}},
	}
	return c
}

// configYAML writes c as the YAML file serve reads, and reads it back as
// serve will, so that a config serve would refuse never gets that far.
func configYAML(c config.Config) ([]byte, error) {
	b, err := yaml.Marshal(c)
	if err != nil {
		return nil, err
	}
	header := []byte("# The private server of bootforge image test; removed when the test ends.\n")
	b = append(header, b...)
	if _, err := config.Parse("vmtest config", b); err != nil {
		return nil, fmt.Errorf("the generated server config is invalid: %w", err)
	}
	return b, nil
}
