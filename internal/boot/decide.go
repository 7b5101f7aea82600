package boot

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"strings"
	"time"
)

// Decision is the menu-stage answer for one client: which profile and
// menu it gets, the entry it boots without a menu (a one-shot) if any,
// what the one-shot's state becomes, and which fetches prove that this
// boot has started. Reason says all of it in words, for logs, the boot log
// and previews.
type Decision struct {
	Client Client
	Choice Choice
	// OneShot is the client's one-shot as it was found, or nil.
	OneShot *NextBoot
	// Boot is the entry booted without the menu, or "".
	Boot string
	// Advance is the state the one-shot moves to now that this menu is
	// served: delivered, expired, or "" for no change.
	Advance OneShotState
	// Proof are the paths (below the root, cleaned) whose fetch by this
	// client proves that the one-shot's boot has started: its kernel,
	// wimboot, ISO or WIM. Empty without a one-shot.
	Proof  []string
	Reason string
}

// Decide answers the menu stage for client c: the profile by inv.Choose,
// then the one-shot shot (the client's, or nil) as it stands at now. It
// does no I/O: the caller reads the one-shot, and applies Advance and
// Proof. The error says that no profile applies to the client.
func Decide(c Client, inv *Inventory, shot *NextBoot, now time.Time) (Decision, error) {
	choice, ok := inv.Choose(c)
	if !ok {
		return Decision{Client: c}, fmt.Errorf("no profile matches %s and there is no default profile", describe(c))
	}
	d := Decision{Client: c, Choice: choice, OneShot: shot, Reason: choice.Why}
	switch {
	case shot == nil:
	case shot.Active(now):
		e, ok := choice.Menu.Entry(shot.Entry)
		if !ok {
			d.Reason += fmt.Sprintf("; one-shot %q is not in this menu, so the menu is shown", shot.Entry)
			break
		}
		d.Boot, d.Proof = e.Name, proof(e)
		if shot.State == OneShotPending {
			d.Advance = OneShotDelivered
		}
		d.Reason += fmt.Sprintf("; one-shot boots %q", e.Name)
	case shot.expired(now):
		d.Advance = OneShotExpired
		d.Reason += fmt.Sprintf("; one-shot %q expired at %s", shot.Entry, shot.Expires.Format(time.RFC3339))
	}
	return d, nil
}

// expired reports whether a one-shot that was still waiting ran out of
// time before now.
func (n *NextBoot) expired(now time.Time) bool {
	return !n.Expires.IsZero() && now.After(n.Expires) && (n.State == OneShotPending || n.State == OneShotDelivered)
}

// proof lists the files whose fetch shows that entry e is booting.
func proof(e Entry) []string {
	var out []string
	for _, p := range []string{e.Kernel, e.Wimboot, e.ISO, e.BootWIM} {
		if p = ProofPath(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Fetch is what one transfer of a file gave a client: the bytes From up
// to To (exclusive) of a file of Size bytes, read in one run.
type Fetch struct {
	Path     string // cleaned, below the root
	Size     int64
	From, To int64
}

// ProvedBy reports whether fetch f, by the client d was served to, proves
// that d's one-shot boot started: f is of one of d's proof files and
// reached the file's end — a whole download, or the range that finishes a
// resumed one. A probe (the first bytes of a kernel, a HEAD, a TFTP size
// query) proves nothing: the boot may never follow.
func (d Decision) ProvedBy(f Fetch) bool {
	if f.To < f.Size || f.From > f.To || (f.From == f.To && f.Size != 0) {
		return false
	}
	for _, p := range d.Proof {
		if p == f.Path {
			return true
		}
	}
	return false
}

// CheckBeacon decides whether a "booted" beacon for mac, sent from the
// address from, may consume mac's one-shot. The beacon carries no secret,
// so the only proof that the booted system sends it is where it comes
// from: the address the MAC was last seen at (seen, found). The error says
// why a beacon is refused.
func CheckBeacon(mac net.HardwareAddr, from netip.Addr, seen Client, found bool) error {
	switch {
	case !found:
		return fmt.Errorf("%s has not been seen by DHCP or a menu request", mac)
	case !seen.IP.IsValid() || seen.IP.IsUnspecified():
		return fmt.Errorf("%s was seen without an address", mac)
	case seen.IP.Unmap() != from.Unmap():
		return fmt.Errorf("%s was last seen at %s, not at %s", mac, seen.IP, from)
	}
	return nil
}

// ProofPath reduces a file reference in a menu — a path below the root or
// a URL on our server — to the cleaned path a TFTP or HTTP request for it
// names: no scheme, host or query, no leading slash, "\" read as "/".
func ProofPath(p string) string {
	if i := strings.Index(p, "://"); i >= 0 {
		rest := p[i+3:]
		j := strings.Index(rest, "/")
		if j < 0 {
			return ""
		}
		p = rest[j:]
	}
	p, _, _ = strings.Cut(p, "?")
	p = strings.ReplaceAll(p, `\`, "/")
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	return p
}

func describe(c Client) string {
	if c.MAC != nil {
		return c.MAC.String()
	}
	if c.IP.IsValid() {
		return c.IP.String()
	}
	return "this client"
}

// With fills what c does not know from an earlier sighting of the same
// client: the menu stage learns the vendor class, UUID and network from
// the DHCP exchange that came before it.
func (c Client) With(earlier Client) Client {
	if c.MAC == nil {
		c.MAC = earlier.MAC
	}
	if c.UUID == "" {
		c.UUID = earlier.UUID
	}
	if !c.HasArch {
		c.Arch, c.HasArch = earlier.Arch, earlier.HasArch
	}
	if c.Firmware == FirmwareUnknown {
		c.Firmware = earlier.Firmware
	}
	if c.VendorClass == "" {
		c.VendorClass = earlier.VendorClass
	}
	if !c.IP.IsValid() {
		c.IP = earlier.IP
	}
	if !c.Relay.IsValid() {
		c.Relay = earlier.Relay
	}
	if !c.Link.IsValid() {
		c.Link = earlier.Link
	}
	if c.CircuitID == nil && c.RemoteID == nil { // only a relayed DHCP packet carries them
		c.CircuitID, c.RemoteID = earlier.CircuitID, earlier.RemoteID
	}
	return c
}

// Pick is an entry a client chose in a menu of a loader that cannot boot
// it: pxelinux, for an iso, chain or shell entry, which only iPXE runs.
// pxelinux then chains iPXE, and iPXE asks for the client's menu again;
// the pick makes that menu boot the chosen entry instead of showing the
// menu a second time, so the choice is kept.
type Pick struct {
	Entry string
	At    time.Time
}

// PickLifetime bounds how long a pick waits for the iPXE menu request that
// carries it out. Loading iPXE and its DHCP take seconds; an older pick
// belongs to a boot that never got there, and a later boot must show the
// menu.
const PickLifetime = 5 * time.Minute

// Keep applies the client's pick p (nil for none) to d, as it stands at
// now. A one-shot already booting an entry wins; a pick that is too old or
// names no entry of d's menu is ignored, and the reason says so. used
// reports whether the menu now boots the pick, which is then spent.
func (d Decision) Keep(p *Pick, now time.Time) (kept Decision, used bool) {
	switch {
	case p == nil:
		return d, false
	case now.Sub(p.At) > PickLifetime || now.Before(p.At.Add(-time.Minute)):
		d.Reason += fmt.Sprintf("; the choice %q made in pxelinux at %s is too old to keep", p.Entry, p.At.Format(time.RFC3339))
		return d, false
	case d.Boot != "":
		if d.Boot != p.Entry {
			d.Reason += fmt.Sprintf("; the choice %q made in pxelinux gives way to the one-shot", p.Entry)
		}
		return d, d.Boot == p.Entry
	}
	e, ok := d.Choice.Menu.Entry(p.Entry)
	if !ok {
		d.Reason += fmt.Sprintf("; the choice %q made in pxelinux is not in this menu, so the menu is shown", p.Entry)
		return d, false
	}
	d.Boot = e.Name
	d.Reason += fmt.Sprintf("; boots %q, chosen in pxelinux's menu", e.Name)
	return d, true
}

// ChosenByUUID reports whether c's UUID decides its menu: a host has the
// UUID, or the profile chosen for c differs from the one chosen without
// it. pxelinux asks for pxelinux.cfg/<uuid> before 01-<mac>, so a menu by
// a UUID that decides nothing would hide the one the MAC chooses.
func (inv *Inventory) ChosenByUUID(c Client) bool {
	with, ok := inv.Choose(c)
	if !ok || c.UUID == "" {
		return false
	}
	if with.Host != nil {
		return true
	}
	c.UUID = ""
	without, ok := inv.Choose(c)
	return !ok || without.Profile.Name != with.Profile.Name
}
