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
// menufs decides nothing itself. It routes a path to the client it names
// (by MAC in the path or query, or by the address that asks), fills in
// what earlier steps saw of that client (boot.Sightings), asks
// boot.Decide, renders the decision with internal/menu, and then carries
// out the decision's side effects: the one-shot's new state, and, for
// the client's address, the files whose fetch proves its boot started.
// Only when the client has fetched one of them to its end
// (boot.Decision.ProvedBy) is the one-shot consumed, so a firmware that
// downloads its menu twice still gets the one-shot the second time, and
// a probe of a kernel's first bytes consumes nothing. menufs learns how
// far a fetch went by watching the reads of the file it hands to the
// TFTP or HTTP server (only for a pending proof file; every other file
// goes out untouched, keeping sendfile).
//
// The booted system may also report itself with GET
// /bootforge/booted?mac=M. That beacon carries no secret, so it is taken
// only from the address where M was last seen (boot.CheckBeacon); any
// other is refused, logged with address, MAC and reason.
//
// With a Signer (signing on), every generated path also has a detached
// signature at <path>.sig: the same request (path, query, client) renders
// the same menu, which is signed instead of served. Rendering it for a
// signature has no side effects: no sighting, no one-shot change, no
// boot-log event. Nor has a HEAD of a generated path (bootfs.Request.Peek):
// it gets the headers of the same menu, and only a GET is a boot.
package menufs

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/boot"
	"bootforge/internal/bootfs"
	"bootforge/internal/menu"
)

// IndexPath is the generated index of the active image versions that
// mirrors sync from (internal/mirror.Index).
const IndexPath = "bootforge/images.json"

// OneShots is the store of one-shot next boots.
type OneShots interface {
	NextBoot(mac net.HardwareAddr) (*boot.NextBoot, error)
	// AdvanceNextBoot moves mac's one-shot to state to if it is still
	// shot (not replaced since shot was read) and in one of from, and
	// writes events, its boot-log lines, in the same transaction if it
	// moved.
	AdvanceNextBoot(mac net.HardwareAddr, shot boot.NextBoot, to boot.OneShotState, from []boot.OneShotState, events ...audit.Event) (bool, error)
}

// FS serves generated menus over a directory.
type FS struct {
	disk      atomic.Pointer[bootfs.FS]
	Inventory func() *boot.Inventory
	OneShots  OneShots       // may be nil: no one-shots
	Sightings boot.Sightings // may be nil: nothing is known from earlier steps
	Log       *slog.Logger
	Now       func() time.Time
	// Events, if set, gets a boot-log event per menu and one-shot change.
	// If it is also audit.Changes (a boot log's recorder, or the metrics
	// sink in front of one), a one-shot change's event is written by the
	// store in the transaction of the change and then shown to Events
	// as committed (moveShot): never queued, so never dropped or lost to
	// a kill between the change and its line.
	Events audit.Sink
	// Signer, if set, answers <generated path>.sig with a detached
	// signature of what <generated path> returns.
	Signer Signer
	// IPXETrust (http.tls.ipxe_trust) says the iPXE served can do HTTPS
	// and image trust: iPXE scripts turn on imgtrust and verify every file
	// they load, and with a Signer the files that iPXE menus name get a
	// detached CMS signature at <path>.sig too (SignedFiles).
	IPXETrust bool
	// Mirrors, if set, returns the configured mirrors with what the last
	// check verified on each: iPXE menus for their clients name the
	// mirror for the files of image entries (boot.ChooseMirror).
	Mirrors func() []boot.Mirror
	// Index, if set, answers IndexPath: the active image versions, for
	// mirrors to sync from (internal/mirror).
	Index func() ([]byte, error)

	fileSigs sync.Map // path → fileSig, signatures of files on disk

	mu      sync.Mutex
	started map[netip.Addr]*pendingBoot // by client address: the last menu's one-shot
	picks   map[string]boot.Pick        // by MAC: choices made in pxelinux for iPXE to boot
}

// Signer makes a detached signature (CMS, DER) of data.
type Signer interface {
	Sign(data []byte) ([]byte, error)
}

// pendingBoot is a delivered one-shot waiting for its boot to start.
type pendingBoot struct {
	d       boot.Decision // the menu served; its OneShot is what a proof consumes
	expires time.Time
}

// New returns an FS over disk.
func New(disk bootfs.FS, inventory func() *boot.Inventory, shots OneShots, sightings boot.Sightings, log *slog.Logger) *FS {
	m := &FS{Inventory: inventory, OneShots: shots, Sightings: sightings, Log: log}
	m.SetDisk(disk)
	return m
}

// SetDisk replaces the directory underneath (a new root on reload).
func (m *FS) SetDisk(disk bootfs.FS) { m.disk.Store(&disk) }

// Open serves a disk file, or else a generated one.
func (m *FS) Open(req bootfs.Request) (bootfs.File, error) {
	req.Client = plainClient(req.Client)
	f, err := (*m.disk.Load()).Open(req)
	if err == nil {
		return m.observe(req, f), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err // a refusal stays a refusal
	}
	name, cerr := bootfs.Clean(req.Path)
	if cerr != nil {
		return nil, err
	}
	if m.Signer != nil && strings.HasSuffix(name, ".sig") {
		return m.openSig(name, req, err)
	}
	if mac, entry, ok := menu.ParsePickPath(name); ok && m.Inventory().HasProfiles() {
		return m.openPick(mac, entry, req)
	}
	// A peek (HTTP HEAD) renders as a signature does: the same text, so
	// the same headers, and no side effects. This is the one place that
	// decides it; generate and menu only follow dry.
	g, ok, gerr := m.generate(name, req, req.Peek)
	if !ok {
		return nil, err
	}
	if gerr != nil {
		if errors.Is(gerr, bootfs.ErrRefused) {
			return nil, gerr
		}
		m.Log.Warn("menu: not generated", "client", req.Client.Addr().String(), "path", name, "err", gerr.Error())
		return nil, err
	}
	v := bootfs.NewVirtual(name, []byte(g.text), m.now())
	v.MAC = g.mac
	return v, nil
}

// plainClient is the client's address as sightings, one-shots and the
// boot log know it: an IPv4 client of a dual-stack socket as IPv4, an
// IPv6 client without the zone of our interface it came in on.
func plainClient(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}

// openSig answers NAME.sig for a generated NAME: it renders NAME for the
// same request, without side effects, and signs the bytes. notFound is the
// disk's answer for NAME.sig, returned when NAME is not generated.
func (m *FS) openSig(name string, req bootfs.Request, notFound error) (bootfs.File, error) {
	base := strings.TrimSuffix(name, ".sig")
	if base == "" {
		return nil, notFound
	}
	breq := req
	breq.Path = base
	// A NAME on disk is served as is, not generated: it has no generated
	// signature (an operator may put NAME.sig beside it), unless iPXE
	// verifies it (IPXETrust) because a menu names it.
	if f, derr := (*m.disk.Load()).Open(breq); derr == nil {
		defer f.Close()
		if m.IPXETrust && SignedFiles(m.Inventory())[base] {
			return m.signFile(name, base, f, req)
		}
		return nil, notFound
	} else if !errors.Is(derr, fs.ErrNotExist) {
		return nil, notFound
	}
	g, ok, gerr := m.generate(base, breq, true)
	if !ok {
		return nil, notFound
	}
	if gerr != nil {
		m.Log.Warn("menu: signature not generated", "client", req.Client.Addr().String(), "path", name, "err", gerr.Error())
		return nil, notFound
	}
	sig, err := m.Signer.Sign([]byte(g.text))
	if err != nil {
		m.Log.Error("menu: signing failed", "client", req.Client.Addr().String(), "path", name, "err", err.Error())
		return nil, notFound
	}
	v := bootfs.NewVirtual(name, sig, m.now())
	v.MAC = g.mac
	return v, nil
}

func (m *FS) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// generated is a generated file and the client it was made for.
type generated struct {
	text string
	mac  net.HardwareAddr // nil when not made for one client
}

// generate answers the generated paths; ok is false for any other. dry
// renders only, for a signature or a peek: no sighting, one-shot change
// or event. A booted beacon is nothing but its side effect, so a dry one
// is not generated at all.
func (m *FS) generate(name string, req bootfs.Request, dry bool) (generated, bool, error) {
	base := path.Base(name)
	ip := req.Client.Addr()
	switch {
	case name == IndexPath && m.Index != nil:
		data, err := m.Index()
		return generated{text: string(data)}, true, err
	case !m.Inventory().HasProfiles():
		return generated{}, false, nil // no profiles: nothing to generate
	case name == "boot.ipxe":
		return generated{text: chainScript(req, m.IPXETrust)}, true, nil
	case name == "bootforge/ipxe":
		c, err := ipxeClient(req)
		if err != nil {
			return generated{}, true, err
		}
		c = m.known(c)
		if !dry && m.Sightings != nil {
			m.Sightings.Seen(c) // so that later steps by address know it
		}
		return m.menu(c, req, menu.FormatIPXE, dry)
	case name == "bootforge/booted":
		if dry {
			return generated{}, false, nil // a beacon, not a menu: nothing to sign
		}
		mac, err := parseMAC(req.Query.Get("mac"))
		if err != nil {
			return generated{}, true, fmt.Errorf("booted beacon without a MAC")
		}
		if err := m.checkBeacon(mac, ip); err != nil {
			return generated{}, true, err
		}
		m.beacon(mac, ip)
		return generated{text: "ok\n", mac: mac}, true, nil
	case strings.HasPrefix(name, "pxelinux.cfg/") || strings.Contains(name, "/pxelinux.cfg/"):
		// Any directory: syslinux.efi looks beside itself (efi64/pxelinux.cfg/).
		return m.pxelinux(name[strings.LastIndex(name, "pxelinux.cfg/")+len("pxelinux.cfg/"):], req, dry)
	case strings.HasPrefix(name, "bootforge/grub/") || strings.HasPrefix(base, "grub.cfg"):
		c, forward, ok := grubRequest(name, ip)
		switch {
		case !ok:
			return generated{}, false, nil
		case forward:
			return generated{text: menu.GRUBForward, mac: c.MAC}, true, nil
		}
		return m.menu(m.known(c), req, menu.FormatGRUB, dry)
	}
	return generated{}, false, nil
}

// checkBeacon refuses a booted beacon for mac from an address where mac
// was not last seen: anyone on the boot network could send it.
func (m *FS) checkBeacon(mac net.HardwareAddr, from netip.Addr) error {
	var seen boot.Client
	found := false
	if m.Sightings != nil {
		seen, found = m.Sightings.ByMAC(mac)
	}
	err := boot.CheckBeacon(mac, from, seen, found)
	if err == nil {
		return nil
	}
	m.Log.Warn("one-shot: booted beacon refused", "client", from.String(), "mac", mac.String(), "reason", err.Error())
	if m.Events != nil {
		m.Events.Record(audit.Event{MAC: mac.String(), IP: from.String(), Stage: "one-shot", Protocol: "menu",
			Result: "beacon refused", Reason: err.Error()})
	}
	return fmt.Errorf("%w: booted beacon: %v", bootfs.ErrRefused, err)
}

// parseMAC reads a MAC written with colons or, as iPXE's ${mac:hexhyp}
// and pxelinux write it, with hyphens.
func parseMAC(s string) (net.HardwareAddr, error) {
	return net.ParseMAC(strings.ReplaceAll(s, "-", ":"))
}

// known fills in what earlier steps saw of the client.
func (m *FS) known(c boot.Client) boot.Client {
	if m.Sightings == nil {
		return c
	}
	if earlier, ok := m.Sightings.ByMAC(c.MAC); ok {
		return c.With(earlier)
	}
	return c
}

// chainScript is what iPXE fetches first: it asks again with everything
// iPXE knows about the machine, so one URL serves every client. The client
// stays on the listener it came by (http or https). With trust, image
// trust goes on here and the client's own script is verified against its
// signature before it runs.
func chainScript(req bootfs.Request, trust bool) string {
	host := req.Host
	if host == "" {
		host = "${next-server}" // fetched over TFTP: IPv4 (DHCPv6 has no next-server)
	}
	base := menu.BaseURL(req.Protocol, host)
	query := "?mac=${mac:hexhyp}&uuid=${uuid}&buildarch=${buildarch}&platform=${platform}" +
		"&manufacturer=${manufacturer:uristring}&product=${product:uristring}&serial=${serial:uristring}&ip=${ip}"
	fail := "echo bootforge: could not fetch the boot script\nsleep 10\nreboot\n"
	if trust {
		return "#!ipxe\nimgtrust --permanent\n" +
			"imgfetch --name menu " + base + "/bootforge/ipxe" + query + " || goto failed\n" +
			"imgverify menu " + base + "/bootforge/ipxe.sig" + query + " || goto failed\n" +
			"chain menu ||\n:failed\n" + fail
	}
	return "#!ipxe\n" +
		"chain " + base + "/bootforge/ipxe" + query + " ||\n" + fail
}

// ipxeClient reads the client from the chain script's request.
func ipxeClient(req bootfs.Request) (boot.Client, error) {
	q := req.Query
	mac, err := parseMAC(q.Get("mac"))
	if err != nil {
		return boot.Client{}, fmt.Errorf("iPXE script request without a valid mac")
	}
	c := boot.Client{MAC: mac, UUID: strings.ToLower(q.Get("uuid")), IPXE: true,
		Firmware:     boot.FirmwareOfIPXE(q.Get("buildarch"), q.Get("platform")),
		Manufacturer: q.Get("manufacturer"), Product: q.Get("product"), Serial: q.Get("serial")}
	if ip, err := netip.ParseAddr(q.Get("ip")); err == nil {
		c.IP = ip
	} else {
		c.IP = req.Client.Addr()
	}
	return c, nil
}

// pxelinux answers pxelinux's lookups, in the order it makes them: the
// client's UUID (lower case, with dashes), 01-<mac>, then the hex IP
// shortened digit by digit, then default. A lookup by UUID, hex IP or
// default learns the MAC from what DHCP saw at the asking address — in
// proxy mode, the proxy exchange — so the client gets its own menu.
// pxelinux is IPv4 only (its hex names are IPv4 addresses): an IPv6
// client gets 01-<mac> and default, never a hex-address menu.
func (m *FS) pxelinux(file string, req bootfs.Request, dry bool) (generated, bool, error) {
	c := boot.Client{IP: req.Client.Addr()}
	if m.Sightings != nil {
		if seen, ok := m.Sightings.ByIP(c.IP); ok {
			c = c.With(seen)
		}
	}
	switch {
	case strings.HasPrefix(file, "01-"):
		mac, err := parseMAC(strings.TrimPrefix(file, "01-"))
		if err != nil {
			return generated{}, false, nil
		}
		if !slices.Equal(c.MAC, mac) {
			c = boot.Client{IP: c.IP} // what we saw at this address was another machine
		}
		c.MAC = mac
	case isUUID(file):
		// Asked first. A client without a MAC seen here still gets a menu
		// when a rule or host names its UUID; else pxelinux moves on.
		if c.UUID != "" && c.UUID != file {
			c = boot.Client{IP: c.IP}
		}
		c.UUID = file
		if c.MAC == nil && !m.Inventory().ChosenByUUID(c) {
			return generated{}, false, nil
		}
	case file != "default" && !isHex(file):
		return generated{}, false, nil // anything else: not found, pxelinux moves on
	default:
		if c.MAC == nil && file != "default" {
			return generated{}, false, nil
		}
	}
	c = m.known(c)
	if c.Firmware == boot.FirmwareUnknown {
		c.Firmware = boot.FirmwareBIOS // pxelinux.0; syslinux.efi clients were seen by DHCP
	}
	return m.menu(c, req, menu.FormatPXELinux, dry)
}

// isUUID reports whether s is a UUID as pxelinux asks for it: 36
// characters, lower-case hex with dashes at 8, 13, 18 and 23.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdef", r) {
				return false
			}
		}
	}
	return true
}

// openPick serves PickLoader (iPXE) from disk for a path that pxelinux's
// menu wrote for an entry only iPXE can boot, and notes the choice for
// the client: the iPXE menu it asks for next boots that entry
// (boot.Decision.Keep). Like the booted beacon, the path carries no
// secret, so the choice is taken only from the address where the MAC was
// last seen; iPXE is served either way, and then shows the menu.
func (m *FS) openPick(macText, entry string, req bootfs.Request) (bootfs.File, error) {
	lreq := req
	lreq.Path = menu.PickLoader
	f, err := (*m.disk.Load()).Open(lreq)
	if err != nil {
		return nil, err
	}
	client := req.Client.Addr()
	mac, err := parseMAC(macText)
	if err != nil || req.Peek {
		return f, nil // a peek at the loader keeps no choice
	}
	var seen boot.Client
	found := false
	if m.Sightings != nil {
		seen, found = m.Sightings.ByMAC(mac)
	}
	if err := boot.CheckBeacon(mac, client, seen, found); err != nil {
		m.Log.Warn("pxelinux: choice not kept", "client", client.String(), "mac", mac.String(), "entry", entry, "reason", err.Error())
		return f, nil
	}
	now := m.now()
	m.mu.Lock()
	if m.picks == nil {
		m.picks = map[string]boot.Pick{}
	}
	for k, p := range m.picks {
		if now.Sub(p.At) > boot.PickLifetime {
			delete(m.picks, k)
		}
	}
	m.picks[mac.String()] = boot.Pick{Entry: entry, At: now}
	m.mu.Unlock()
	m.Log.Info("pxelinux: choice kept for iPXE", "client", client.String(), "mac", mac.String(), "entry", entry)
	if m.Events != nil {
		m.Events.Record(audit.Event{MAC: mac.String(), IP: client.String(), Stage: "menu", Protocol: "pxelinux",
			Result: "chose " + entry + ", chaining iPXE"})
	}
	return f, nil
}

// pick returns the choice mac made in pxelinux, or nil.
func (m *FS) pick(mac net.HardwareAddr) *boot.Pick {
	if mac == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.picks[mac.String()]
	if !ok {
		return nil
	}
	return &p
}

// spend removes mac's choice once a menu has booted it.
func (m *FS) spend(mac net.HardwareAddr, p *boot.Pick) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.picks[mac.String()]; ok && cur == *p {
		delete(m.picks, mac.String())
	}
}

// grubRequest reads what a GRUB file name asks for: menu.GRUBForward (for
// grub.cfg, and for grub.cfg-01-<mac> with its MAC, in any directory), or
// a client's menu, by bootforge/grub/<mac>.cfg or by the path menu.GRUBForward
// makes, bootforge/grub/<mac>/key=value/.../grub.cfg. A value there may
// hold "/": a component that does not start with a known key continues
// the value before it. ok is false for any other name.
func grubRequest(name string, ip netip.Addr) (c boot.Client, forward, ok bool) {
	c.IP = ip
	base := path.Base(name)
	rest, isMenu := strings.CutPrefix(name, "bootforge/grub/")
	switch {
	case isMenu && strings.HasSuffix(rest, "/grub.cfg"):
		mac, facts, _ := strings.Cut(strings.TrimSuffix(rest, "/grub.cfg"), "/")
		if c.MAC, ok = grubMAC(mac); !ok || !readFacts(&c, facts) {
			return c, false, false
		}
		c.UUID = strings.ToLower(c.UUID)
		return c, false, true
	case isMenu && strings.HasSuffix(rest, ".cfg") && !strings.Contains(rest, "/"):
		c.MAC, ok = grubMAC(strings.TrimSuffix(rest, ".cfg"))
		return c, false, ok
	case strings.HasPrefix(base, "grub.cfg-01-"):
		c.MAC, ok = grubMAC(strings.TrimPrefix(base, "grub.cfg-01-"))
		return c, true, ok
	case base == "grub.cfg":
		return c, true, true
	}
	return c, false, false
}

func grubMAC(s string) (net.HardwareAddr, bool) {
	mac, err := parseMAC(s)
	return mac, err == nil
}

// readFacts fills c's SMBIOS facts from key=value/... as menu.GRUBForward
// writes them; false if a component is neither a fact nor part of one.
func readFacts(c *boot.Client, facts string) bool {
	var last *string
	for _, part := range strings.Split(facts, "/") {
		k, v, _ := strings.Cut(part, "=")
		var field *string
		switch k {
		case "uuid":
			field = &c.UUID
		case "manufacturer":
			field = &c.Manufacturer
		case "product":
			field = &c.Product
		case "serial":
			field = &c.Serial
		}
		switch {
		case field != nil:
			*field, last = v, field
		case last != nil:
			*last += "/" + part
		default:
			return false
		}
	}
	return true
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

// menu decides and renders c's menu, and carries out the decision unless
// dry.
func (m *FS) menu(c boot.Client, req bootfs.Request, ft menu.Format, dry bool) (generated, bool, error) {
	var shot *boot.NextBoot
	if m.OneShots != nil && c.MAC != nil {
		var err error
		if shot, err = m.OneShots.NextBoot(c.MAC); err != nil {
			return generated{}, true, err
		}
	}
	d, err := boot.Decide(c, m.Inventory(), shot, m.now())
	if err != nil {
		return generated{}, true, err
	}
	var kept *boot.Pick
	if ft == menu.FormatIPXE {
		// iPXE chained by pxelinux for an entry pxelinux could not boot.
		p := m.pick(c.MAC)
		var used bool
		if d, used = d.Keep(p, m.now()); used {
			kept = p
		}
	}
	site := menu.Site{BaseURL: menu.BaseURL(req.Protocol, req.Host), Trust: m.IPXETrust && ft == menu.FormatIPXE}
	if ft == menu.FormatIPXE && m.Mirrors != nil {
		// Only iPXE menus name URLs; pxelinux and GRUB load over TFTP.
		var why string
		var ok bool
		if site.Mirror, why, ok = boot.ChooseMirror(d, m.Mirrors()); ok || why != "" {
			d.Reason += "; files: " + why
		}
	}
	made, err := menu.Make(d, ft, site)
	if err != nil {
		return generated{}, true, err
	}
	text := made.Text
	if len(made.LeftOut) > 0 {
		// Said as a refused menu is: the operator wrote an entry this
		// client's loader cannot boot as written (config load warned).
		why := errors.Join(made.LeftOut...).Error()
		d.Reason += "; left out: " + strings.ReplaceAll(why, "\n", "; ")
		if !dry {
			m.Log.Warn("menu: entry left out", "client", req.Client.Addr().String(), "mac", macString(c.MAC),
				"format", ft.String(), "profile", d.Choice.Profile.Name, "err", why)
		}
	}
	if dry {
		return generated{text: text, mac: c.MAC}, true, nil
	}
	if kept != nil {
		m.spend(c.MAC, kept)
	}
	client := req.Client.Addr()
	m.carryOut(d, client)
	if m.Events != nil {
		result := "ok"
		switch {
		case kept != nil && d.OneShot == nil:
			result = "pxelinux choice " + d.Boot
		case d.Boot != "":
			result = "one-shot " + d.Boot
		}
		m.Events.Record(audit.Event{MAC: macString(c.MAC), IP: client.String(), Arch: string(c.Firmware),
			Stage: "menu", Protocol: ft.String(), Profile: d.Choice.Profile.Name, Result: result, Reason: d.Reason,
			Image: bootsImage(d)})
	}
	m.Log.Info("menu", "client", client.String(), "mac", macString(c.MAC), "format", ft.String(),
		"profile", d.Choice.Profile.Name, "boot", d.Boot, "why", d.Reason)
	return generated{text: text, mac: c.MAC}, true, nil
}

// bootsImage is the image version the menu boots without a choice: the
// one-shot's entry, else the default entry.
func bootsImage(d boot.Decision) string {
	name := d.Boot
	if name == "" {
		name = d.Choice.Menu.Default
	}
	e, _ := d.Choice.Menu.Entry(name)
	return e.ImageVersion
}

func macString(mac net.HardwareAddr) string {
	if mac == nil {
		return ""
	}
	return mac.String()
}

// carryOut applies a served decision: the one-shot's new state, and the
// fetches from this client that will prove its boot started. The menu
// served last to an address is the one whose files prove a boot there: a
// menu without a one-shot, for this MAC or another behind the same
// address, leaves nothing for a later fetch to consume.
func (m *FS) carryOut(d boot.Decision, client netip.Addr) {
	if d.OneShot != nil && m.OneShots != nil {
		mac := d.Client.MAC
		switch d.Advance {
		case boot.OneShotExpired:
			m.advance(mac, client, *d.OneShot, boot.OneShotExpired, boot.OneShotPending, boot.OneShotDelivered)
		case boot.OneShotDelivered:
			m.advance(mac, client, *d.OneShot, boot.OneShotDelivered, boot.OneShotPending)
		}
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for ip, pb := range m.started {
		if now.After(pb.expires) {
			delete(m.started, ip)
		}
	}
	if d.OneShot == nil || m.OneShots == nil || len(d.Proof) == 0 {
		delete(m.started, client)
		return
	}
	if m.started == nil {
		m.started = map[netip.Addr]*pendingBoot{}
	}
	m.started[client] = &pendingBoot{d: d, expires: now.Add(30 * time.Minute)}
}

// advance moves shot, mac's one-shot as the menu found it, to state to;
// a one-shot set since then is left as it is.
func (m *FS) advance(mac net.HardwareAddr, client netip.Addr, shot boot.NextBoot, to boot.OneShotState, from ...boot.OneShotState) {
	moved, err := m.moveShot(mac, client, shot, to, from, string(to)+" "+shot.Entry)
	if err != nil {
		m.Log.Error("one-shot: state not stored", "mac", mac.String(), "to", string(to), "err", err)
		return
	}
	if moved {
		m.Log.Info("one-shot "+string(to), "mac", mac.String(), "entry", shot.Entry, "client", client.String())
	}
}

// moveShot moves mac's one-shot shot to state to from one of from, with
// the boot-log event result. With a boot log (Events is audit.Changes)
// the store writes the event in the transaction of the move, and Events
// is shown it once that has committed; otherwise (no boot log: only
// metrics, or nothing) Events is told of the move after it.
func (m *FS) moveShot(mac net.HardwareAddr, client netip.Addr, shot boot.NextBoot, to boot.OneShotState, from []boot.OneShotState, result string) (bool, error) {
	e := audit.Event{MAC: mac.String(), IP: client.String(), Stage: "one-shot", Protocol: "menu", Result: result}
	changes, logged := m.Events.(audit.Changes)
	var events []audit.Event
	if logged {
		events = []audit.Event{changes.Stamp(e)}
	}
	moved, err := m.OneShots.AdvanceNextBoot(mac, shot, to, from, events...)
	if !moved || err != nil {
		return false, err
	}
	if logged {
		changes.Committed(events)
	} else if m.Events != nil {
		m.Events.Record(e)
	}
	return true, nil
}

// observe returns f, the disk file req opens, as it is, or, when it is a
// proof file of the one-shot this client was served, wrapped so that the
// one-shot is consumed once the client has read it to its end.
func (m *FS) observe(req bootfs.Request, f bootfs.File) bootfs.File {
	client := req.Client.Addr()
	m.mu.Lock()
	pb := m.started[client]
	m.mu.Unlock()
	if pb == nil {
		return f
	}
	name, err := bootfs.Clean(req.Path)
	if err != nil || !slices.Contains(pb.d.Proof, name) {
		return f
	}
	st, err := f.Stat()
	if err != nil {
		return f
	}
	return &watched{File: f, fetch: boot.Fetch{Path: name, Size: st.Size()}, proved: func(fe boot.Fetch) bool {
		if !pb.d.ProvedBy(fe) {
			return false
		}
		m.consume(client, pb, fmt.Sprintf("%s, bytes %d-%d of %d", name, fe.From, fe.To, fe.Size))
		return true
	}}
}

// watched is a proof file on its way to the client: it notes the run of
// bytes read and asks proved after each read, until it says yes.
type watched struct {
	bootfs.File
	mu     sync.Mutex
	pos    int64 // for Read: where the next one starts
	read   bool  // fetch holds a run
	fetch  boot.Fetch
	done   bool
	proved func(boot.Fetch) bool
}

func (w *watched) Read(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.File.Read(p)
	w.saw(w.pos, n)
	w.pos += int64(n)
	return n, err
}

func (w *watched) ReadAt(p []byte, off int64) (int, error) {
	n, err := w.File.ReadAt(p, off)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.saw(off, n)
	return n, err
}

func (w *watched) Seek(offset int64, whence int) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	pos, err := w.File.Seek(offset, whence)
	if err == nil {
		w.pos = pos
	}
	return pos, err
}

// saw notes that bytes [off, off+n) were read: they extend the current
// run if they touch it, else start a new one. The caller holds w.mu.
func (w *watched) saw(off int64, n int) {
	if w.done {
		return
	}
	end := off + int64(n)
	if w.read && off >= w.fetch.From && off <= w.fetch.To {
		w.fetch.To = max(w.fetch.To, end)
	} else {
		w.fetch.From, w.fetch.To, w.read = off, end, true
	}
	w.done = w.proved(w.fetch)
}

// consume marks booted the one-shot that pb's menu served to client, as
// a fetch or beacon proves its boot started; a one-shot set since that
// menu was served is another one, which stays pending for the next menu.
func (m *FS) consume(client netip.Addr, pb *pendingBoot, why string) {
	m.mu.Lock()
	if m.started[client] == pb {
		delete(m.started, client)
	}
	m.mu.Unlock()
	mac, shot := pb.d.Client.MAC, *pb.d.OneShot
	moved, err := m.moveShot(mac, client, shot, boot.OneShotBooted,
		[]boot.OneShotState{boot.OneShotPending, boot.OneShotDelivered}, "booted (fetched "+why+")")
	switch {
	case err != nil:
		m.Log.Error("one-shot: could not mark booted", "mac", mac.String(), "err", err)
	case moved:
		m.Log.Info("one-shot booted", "mac", mac.String(), "entry", shot.Entry, "client", client.String(), "fetched", why)
	default:
		m.Log.Info("one-shot: not marked booted, it was replaced or consumed since its menu was served",
			"mac", mac.String(), "served", shot.Entry, "client", client.String(), "fetched", why)
	}
}

// beacon takes a booted beacon for mac from client (checked by
// checkBeacon): it consumes the one-shot of the menu served there, or,
// when this server has no record of that menu (it restarted, the record
// expired, or another server on the same store served it), the stored
// one-shot if it is delivered. A pending one-shot was never served, so
// the boot that sends the beacon is not its boot.
func (m *FS) beacon(mac net.HardwareAddr, client netip.Addr) {
	if m.OneShots == nil {
		return
	}
	m.mu.Lock()
	pb := m.started[client]
	m.mu.Unlock()
	if pb != nil && slices.Equal(pb.d.Client.MAC, mac) {
		m.consume(client, pb, "beacon")
		return
	}
	shot, err := m.OneShots.NextBoot(mac)
	if err != nil {
		m.Log.Error("one-shot: could not mark booted", "mac", mac.String(), "err", err)
		return
	}
	if shot == nil || shot.State != boot.OneShotDelivered {
		return
	}
	m.consume(client, &pendingBoot{d: boot.Decision{Client: boot.Client{MAC: mac}, OneShot: shot}}, "beacon")
}
