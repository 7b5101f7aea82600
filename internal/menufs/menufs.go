// Package menufs answers the boot files that bootforge generates instead
// of reading from disk: the iPXE chain script and per-client scripts over
// HTTP, pxelinux.cfg/* and grub.cfg* over TFTP. It wraps the root
// directory as a bootfs.FS, so the TFTP and HTTP servers need no idea of
// menus, and nothing is ever written to disk.
//
// A file that exists on disk always wins; only a missing one is generated.
// That keeps an operator's hand-written override simple: put the file in
// the root.
//
// menufs also moves one-shot next boots along. A menu that carries a
// one-shot marks it delivered and remembers, for the client's address,
// which files mean the boot has really started (the kernel, wimboot, the
// ISO). Only when the client fetches one of them is the one-shot consumed,
// so a firmware that downloads its menu twice still gets the one-shot the
// second time.
package menufs

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/boot"
	"bootforge/internal/bootfs"
	"bootforge/internal/menu"
)

// OneShots is the store of one-shot next boots.
type OneShots interface {
	NextBoot(mac net.HardwareAddr) (*boot.NextBoot, error)
	AdvanceNextBoot(mac net.HardwareAddr, to boot.OneShotState, from ...boot.OneShotState) (bool, error)
}

// FS serves generated menus over a directory.
type FS struct {
	disk      atomic.Pointer[bootfs.FS]
	Inventory func() *boot.Inventory
	OneShots  OneShots // may be nil: no one-shots
	Clients   *Clients
	Log       *slog.Logger
	Now       func() time.Time
	// Events, if set, gets a boot-log event per menu and one-shot change.
	Events audit.Sink

	mu      sync.Mutex
	started map[netip.Addr]pendingBoot
}

// pendingBoot is a delivered one-shot waiting for its boot to start.
type pendingBoot struct {
	mac     net.HardwareAddr
	paths   map[string]bool
	expires time.Time
}

// New returns an FS over disk.
func New(disk bootfs.FS, inventory func() *boot.Inventory, shots OneShots, clients *Clients, log *slog.Logger) *FS {
	m := &FS{Inventory: inventory, OneShots: shots, Clients: clients, Log: log}
	m.SetDisk(disk)
	return m
}

// SetDisk replaces the directory underneath (a new root on reload).
func (m *FS) SetDisk(disk bootfs.FS) { m.disk.Store(&disk) }

// Open serves a disk file, or else a generated one.
func (m *FS) Open(req bootfs.Request) (bootfs.File, error) {
	f, err := (*m.disk.Load()).Open(req)
	if err == nil {
		m.observe(req)
		return f, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err // a refusal stays a refusal
	}
	name, cerr := bootfs.Clean(req.Path)
	if cerr != nil {
		return nil, err
	}
	text, ok, gerr := m.generate(name, req)
	if !ok {
		return nil, err
	}
	if gerr != nil {
		m.Log.Warn("menu: not generated", "client", req.Client.Addr().String(), "path", name, "err", gerr.Error())
		return nil, err
	}
	return bootfs.NewVirtual(name, []byte(text), m.now()), nil
}

func (m *FS) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// generate answers the generated paths; ok is false for any other.
func (m *FS) generate(name string, req bootfs.Request) (string, bool, error) {
	base := path.Base(name)
	switch {
	case !m.Inventory().HasProfiles():
		return "", false, nil // no profiles: nothing to generate
	case name == "boot.ipxe":
		return chainScript(req), true, nil
	case name == "bootforge/ipxe":
		return m.ipxeFor(req)
	case name == "bootforge/booted":
		mac, err := net.ParseMAC(req.Query.Get("mac"))
		if err != nil {
			return "", true, fmt.Errorf("booted beacon without a MAC")
		}
		m.consume(mac, req.Client.Addr(), "beacon")
		return "ok\n", true, nil
	case strings.HasPrefix(name, "pxelinux.cfg/"):
		return m.pxelinuxFor(strings.TrimPrefix(name, "pxelinux.cfg/"), req)
	case strings.HasPrefix(base, "grub.cfg-01-"):
		mac, err := net.ParseMAC(strings.ReplaceAll(strings.TrimPrefix(base, "grub.cfg-01-"), "-", ":"))
		if err != nil {
			return "", false, nil
		}
		return m.render(mac, "", m.Clients.Firmware(mac), req, FormatGRUB)
	case strings.HasPrefix(name, "bootforge/grub/") && strings.HasSuffix(name, ".cfg"):
		mac, err := net.ParseMAC(strings.TrimSuffix(strings.TrimPrefix(name, "bootforge/grub/"), ".cfg"))
		if err != nil {
			return "", false, nil
		}
		return m.render(mac, "", m.Clients.Firmware(mac), req, FormatGRUB)
	case base == "grub.cfg":
		// GRUB asks for grub.cfg-01-<mac> first; this root config is the
		// fallback, and sends each client on to its own menu by MAC.
		return "# bootforge: per-client menus\nconfigfile /bootforge/grub/${net_default_mac}.cfg\n", true, nil
	}
	return "", false, nil
}

// chainScript is what iPXE fetches first: it asks again with everything
// iPXE knows about the machine, so one URL serves every client.
func chainScript(req bootfs.Request) string {
	host := req.Host
	if host == "" {
		host = "${next-server}"
	}
	return "#!ipxe\n" +
		"chain http://" + host + "/bootforge/ipxe?mac=${mac:hexhyp}&uuid=${uuid}&buildarch=${buildarch}&platform=${platform}" +
		"&manufacturer=${manufacturer:uristring}&product=${product:uristring}&serial=${serial:uristring}&ip=${ip} ||\n" +
		"echo bootforge: could not fetch the boot script\nsleep 10\nreboot\n"
}

func (m *FS) ipxeFor(req bootfs.Request) (string, bool, error) {
	q := req.Query
	mac, err := net.ParseMAC(strings.ReplaceAll(q.Get("mac"), "-", ":"))
	if err != nil {
		return "", true, fmt.Errorf("iPXE script request without a valid mac")
	}
	fw := boot.FirmwareOfIPXE(q.Get("buildarch"), q.Get("platform"))
	f := boot.Client{MAC: mac, UUID: strings.ToLower(q.Get("uuid")), Firmware: fw,
		Manufacturer: q.Get("manufacturer"), Product: q.Get("product"), Serial: q.Get("serial")}
	if ip, err := netip.ParseAddr(q.Get("ip")); err == nil {
		f.IP = ip
	} else {
		f.IP = req.Client.Addr()
	}
	m.Clients.Seen(mac, f.IP, fw)
	return m.renderFacts(f, req, FormatIPXE)
}

// pxelinuxFor answers pxelinux's lookups: 01-<mac>, then the hex IP
// shortened digit by digit, then default.
func (m *FS) pxelinuxFor(file string, req bootfs.Request) (string, bool, error) {
	if strings.HasPrefix(file, "01-") {
		mac, err := net.ParseMAC(strings.ReplaceAll(strings.TrimPrefix(file, "01-"), "-", ":"))
		if err != nil {
			return "", false, nil
		}
		return m.render(mac, "", boot.FirmwareBIOS, req, FormatPXELinux)
	}
	if file != "default" && !isHex(file) {
		return "", false, nil // a UUID lookup or anything else: not found, pxelinux moves on
	}
	if mac, ok := m.Clients.MAC(req.Client.Addr()); ok {
		return m.render(mac, "", boot.FirmwareBIOS, req, FormatPXELinux)
	}
	if file != "default" {
		return "", false, nil
	}
	return m.render(nil, "", boot.FirmwareBIOS, req, FormatPXELinux)
}

func isHex(s string) bool {
	if s == "" || len(s) > 8 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789ABCDEF", c) {
			return false
		}
	}
	return true
}

// Format is a menu language.
type Format int

// Menu formats.
const (
	FormatIPXE Format = iota
	FormatPXELinux
	FormatGRUB
)

func (m *FS) render(mac net.HardwareAddr, uuid string, fw boot.Firmware, req bootfs.Request, ft Format) (string, bool, error) {
	f := boot.Client{MAC: mac, UUID: uuid, Firmware: fw, IP: req.Client.Addr()}
	return m.renderFacts(f, req, ft)
}

func (m *FS) renderFacts(f boot.Client, req bootfs.Request, ft Format) (string, bool, error) {
	out, err := Render(m.Inventory(), f, m.OneShots, m.now(), ft, req.Host)
	if err != nil {
		return "", true, err
	}
	m.deliver(out, f, req.Client.Addr())
	if m.Events != nil {
		result := "ok"
		if out.Boot != "" {
			result = "one-shot " + out.Boot
		}
		m.Events.Record(audit.Event{MAC: macString(f.MAC), IP: req.Client.Addr().String(), Arch: string(f.Firmware),
			Stage: "menu", Protocol: ft.String(), Profile: out.Choice.Profile.Name, Result: result})
	}
	m.Log.Info("menu", "client", req.Client.Addr().String(), "mac", macString(f.MAC), "format", ft.String(),
		"profile", out.Choice.Profile.Name, "boot", out.Boot, "why", out.Choice.Why)
	return out.Text, true, nil
}

func macString(mac net.HardwareAddr) string {
	if mac == nil {
		return ""
	}
	return mac.String()
}

func (f Format) String() string {
	return [...]string{"ipxe", "pxelinux", "grub"}[f]
}

// Result is a rendered menu and how it was chosen.
type Result struct {
	Text    string
	Choice  boot.Choice
	Boot    string         // the one-shot entry booted, if any
	OneShot *boot.NextBoot // the one-shot as found, if any
	entry   boot.Entry
}

// Render chooses the profile and renders the menu for one client. It
// reads one-shots but does not change them: FS does that when it serves.
func Render(inv *boot.Inventory, f boot.Client, shots OneShots, now time.Time, ft Format, host string) (Result, error) {
	var res Result
	c, ok := inv.Choose(f)
	if !ok {
		return res, fmt.Errorf("no profile matches and there is no default profile")
	}
	res.Choice = c
	r := menu.Request{Menu: c.Menu, Profile: c.Profile.Name, EFI: f.Firmware != boot.FirmwareBIOS && f.Firmware != boot.FirmwareUnknown}
	if host != "" {
		r.BaseURL = "http://" + host
	}
	r.Vars = map[string]string{"profile": c.Profile.Name, "arch": string(f.Firmware), "uuid": f.UUID}
	if f.MAC != nil {
		r.Vars["mac"] = f.MAC.String()
	}
	if f.IP.IsValid() {
		r.Vars["ip"] = f.IP.String()
	}
	if c.Host != nil {
		r.Vars["hostname"] = c.Host.Name
	}
	if shots != nil && f.MAC != nil {
		nb, err := shots.NextBoot(f.MAC)
		if err != nil {
			return res, err
		}
		res.OneShot = nb
		if nb.Active(now) {
			if e, ok := c.Menu.Entry(nb.Entry); ok {
				r.Boot, res.Boot, res.entry = nb.Entry, nb.Entry, e
			}
		}
	}
	var err error
	switch ft {
	case FormatIPXE:
		res.Text, err = menu.IPXE(r)
	case FormatPXELinux:
		res.Text, err = menu.PXELinux(r)
	case FormatGRUB:
		res.Text, err = menu.GRUB(r)
	}
	return res, err
}

// ParseFormat names a menu format: "ipxe", "pxelinux" or "grub".
func ParseFormat(name string) (Format, error) {
	switch name {
	case "ipxe":
		return FormatIPXE, nil
	case "pxelinux":
		return FormatPXELinux, nil
	case "grub":
		return FormatGRUB, nil
	}
	return 0, fmt.Errorf("format %q is not one of ipxe, pxelinux, grub", name)
}

// deliver marks a served one-shot delivered and remembers which fetches
// from this client mean its boot has started.
func (m *FS) deliver(res Result, f boot.Client, client netip.Addr) {
	nb := res.OneShot
	if nb == nil || m.OneShots == nil {
		return
	}
	now := m.now()
	if res.Boot == "" {
		if !nb.Expires.IsZero() && now.After(nb.Expires) && (nb.State == boot.OneShotPending || nb.State == boot.OneShotDelivered) {
			m.OneShots.AdvanceNextBoot(f.MAC, boot.OneShotExpired, boot.OneShotPending, boot.OneShotDelivered)
			m.Log.Info("one-shot expired", "mac", f.MAC.String(), "entry", nb.Entry)
			m.oneShotEvent(f.MAC, client, "expired "+nb.Entry)
		}
		return
	}
	if nb.State == boot.OneShotPending {
		m.OneShots.AdvanceNextBoot(f.MAC, boot.OneShotDelivered, boot.OneShotPending)
		m.Log.Info("one-shot delivered", "mac", f.MAC.String(), "entry", nb.Entry, "client", client.String())
		m.oneShotEvent(f.MAC, client, "delivered "+nb.Entry)
	}
	paths := map[string]bool{}
	for _, p := range []string{res.entry.Kernel, res.entry.Wimboot, res.entry.ISO, res.entry.BootWIM} {
		if p == "" {
			continue
		}
		if i := strings.Index(p, "://"); i >= 0 { // a URL: compare its path
			if j := strings.Index(p[i+3:], "/"); j >= 0 {
				p = p[i+3+j:]
			}
		}
		if c, err := bootfs.Clean(strings.SplitN(p, "?", 2)[0]); err == nil {
			paths[c] = true
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started == nil {
		m.started = map[netip.Addr]pendingBoot{}
	}
	for ip, pb := range m.started {
		if now.After(pb.expires) {
			delete(m.started, ip)
		}
	}
	m.started[client] = pendingBoot{mac: f.MAC, paths: paths, expires: now.Add(30 * time.Minute)}
}

// observe consumes a one-shot when its client fetches a file that starts
// the boot.
func (m *FS) observe(req bootfs.Request) {
	client := req.Client.Addr()
	m.mu.Lock()
	pb, ok := m.started[client]
	m.mu.Unlock()
	if !ok {
		return
	}
	name, err := bootfs.Clean(req.Path)
	if err != nil || !pb.paths[name] {
		return
	}
	m.consume(pb.mac, client, name)
}

func (m *FS) consume(mac net.HardwareAddr, client netip.Addr, why string) {
	m.mu.Lock()
	delete(m.started, client)
	m.mu.Unlock()
	if m.OneShots == nil {
		return
	}
	moved, err := m.OneShots.AdvanceNextBoot(mac, boot.OneShotBooted, boot.OneShotPending, boot.OneShotDelivered)
	if err != nil {
		m.Log.Error("one-shot: could not mark booted", "mac", mac.String(), "err", err)
		return
	}
	if moved {
		m.Log.Info("one-shot booted", "mac", mac.String(), "client", client.String(), "fetched", why)
		m.oneShotEvent(mac, client, "booted (fetched "+why+")")
	}
}

func (m *FS) oneShotEvent(mac net.HardwareAddr, client netip.Addr, result string) {
	if m.Events != nil {
		m.Events.Record(audit.Event{MAC: mac.String(), IP: client.String(), Stage: "one-shot", Protocol: "menu", Result: result})
	}
}

// Clients remembers what DHCP and menu requests taught us about clients:
// which MAC has which address, and which firmware it runs.
type Clients struct {
	mu   sync.Mutex
	byIP map[netip.Addr]net.HardwareAddr
	fw   map[string]boot.Firmware
}

// NewClients returns an empty table.
func NewClients() *Clients {
	return &Clients{byIP: map[netip.Addr]net.HardwareAddr{}, fw: map[string]boot.Firmware{}}
}

// Seen records a client. An invalid ip or empty firmware records nothing
// for that part.
func (c *Clients) Seen(mac net.HardwareAddr, ip netip.Addr, fw boot.Firmware) {
	if c == nil || mac == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byIP) > 100000 { // bound memory under a storm of spoofed clients
		c.byIP = map[netip.Addr]net.HardwareAddr{}
		c.fw = map[string]boot.Firmware{}
	}
	if ip.IsValid() && !ip.IsUnspecified() {
		c.byIP[ip] = mac
	}
	if fw != boot.FirmwareUnknown {
		c.fw[mac.String()] = fw
	}
}

// MAC returns the MAC last seen at ip.
func (c *Clients) MAC(ip netip.Addr) (net.HardwareAddr, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.byIP[ip]
	return m, ok
}

// Firmware returns the firmware last seen for mac.
func (c *Clients) Firmware(mac net.HardwareAddr) boot.Firmware {
	if c == nil {
		return boot.FirmwareUnknown
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fw[mac.String()]
}
