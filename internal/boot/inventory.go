package boot

import (
	"bytes"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"path"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Host is an inventory record: one machine, known by its MACs or UUID.
type Host struct {
	Name    string // hostname
	MACs    []net.HardwareAddr
	UUID    string // lower-case, with dashes, as iPXE prints ${uuid}
	Labels  []string
	Profile string // pinned profile, or ""
	// SecureBoot sends this host, if it is x64 UEFI, down the shim →
	// signed GRUB chain whatever its profile says.
	SecureBoot bool
	NextBoot   *NextBoot // one-shot, or nil
	Source     string    // "file:line" or "store", for messages
}

// MaxHostName is the longest host name: one DNS label (RFC 1035 2.3.4).
const MaxHostName = 63

// CheckHostName is the one rule for host names, wherever a host comes
// from (config, host files, the store, the CLI, the API): a DNS label as
// RFC 1123 2.1 allows it — 1 to 63 letters, digits and hyphens, neither
// first nor last a hyphen. Names end up in terminals, logs, file names and
// DHCP answers; a label is safe in all of them.
func CheckHostName(name string) error {
	const rule = "a host name is a DNS label (letters, digits, inner hyphens)"
	if name == "" {
		return fmt.Errorf("a host needs a name")
	}
	// Characters first, named as the operator typed them: "пк" has 'п'
	// at character 1, not the byte 0xd0 at byte 0. A byte that is not
	// UTF-8 is shown escaped.
	for i, pos := 0, 1; i < len(name); pos++ {
		r, n := utf8.DecodeRuneInString(name[i:])
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-') {
			ch := fmt.Sprintf("%q", r)
			if r == utf8.RuneError && n == 1 {
				ch = fmt.Sprintf("%q", name[i:i+1])
			}
			return fmt.Errorf("has %s at character %d; %s", ch, pos, rule)
		}
		i += n
	}
	switch {
	case name[0] == '-' || name[len(name)-1] == '-':
		return fmt.Errorf("starts or ends with a hyphen; %s", rule)
	case len(name) > MaxHostName:
		return fmt.Errorf("is %d characters long; a host name is a DNS label of at most %d", len(name), MaxHostName)
	}
	return nil
}

// MaxLabel is the longest host label.
const MaxLabel = 63

// CheckLabel is the one rule for host labels, in hosts and in profile
// rules alike, wherever they come from: a single word of 1 to MaxLabel
// bytes of printable characters. The store keeps a host's labels space
// separated, and labels end up in terminals and logs.
func CheckLabel(l string) error {
	switch {
	case l == "":
		return fmt.Errorf("a label is empty")
	case len(l) > MaxLabel:
		return fmt.Errorf("label %q is %d bytes long; at most %d", l, len(l), MaxLabel)
	case !utf8.ValidString(l) || strings.ContainsFunc(l, func(r rune) bool { return !unicode.IsGraphic(r) || unicode.IsSpace(r) }):
		return fmt.Errorf("label %q is not a single word of printable characters", l)
	}
	return nil
}

// ParseUUID reads an SMBIOS UUID as operators copy it — with or without
// dashes, braces or a urn:uuid: prefix, in either case — and returns it
// as clients are matched by it: lower case, with dashes, as iPXE prints
// ${uuid} and FormatUUID writes option 97. Any other form would silently
// never match, so it is refused.
func ParseUUID(s string) (string, error) {
	u, err := uuid.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a UUID like 4c4c4544-0042-3510-8052-b4c04f4a4d32", s)
	}
	return u.String(), nil
}

// TakenError refuses a host whose MAC or UUID already belongs to another
// host, or whose name another host has but for case: a client, and a host
// name, must lead to one host. Stores return it from the same transaction
// as the write, so two writers cannot both take a MAC or a name.
type TakenError struct {
	Host  string // the host being written
	What  string // TakenMAC, TakenUUID or TakenName
	Value string
	Owner string // the host it belongs to
}

// What a TakenError finds taken.
const (
	TakenMAC  = "MAC"
	TakenUUID = "UUID"
	TakenName = "name"
)

func (e *TakenError) Error() string {
	if e.What == TakenName {
		return fmt.Sprintf("host %q: host %q has the same name; host names are unique, ignoring case", e.Host, e.Owner)
	}
	return fmt.Sprintf("host %q: %s %s belongs to host %q", e.Host, e.What, e.Value, e.Owner)
}

// NextBoot is a one-shot boot action: the next boot takes Entry instead of
// the menu's default.
type NextBoot struct {
	Entry   string
	Expires time.Time // zero: never
	Always  bool      // keep it after use (a standing override)
	State   OneShotState
	// Updated is when the one-shot was set; its state changes keep it.
	// With Entry it names this one-shot: the store moves a one-shot's
	// state only if it is still the one that was read (not replaced).
	Updated time.Time
}

// OneShotState tracks a one-shot through a boot. It is delivered when a
// menu carrying it is served, and booted — consumed — only when the boot
// has clearly started (the kernel or the wimboot files were fetched). A
// firmware retry of the menu therefore still sees it.
type OneShotState string

// One-shot states.
const (
	OneShotPending   OneShotState = "pending"
	OneShotDelivered OneShotState = "delivered"
	OneShotBooted    OneShotState = "booted"
	OneShotExpired   OneShotState = "expired"
)

// Active reports whether the one-shot still applies at now.
func (n *NextBoot) Active(now time.Time) bool {
	if n == nil {
		return false
	}
	if !n.Expires.IsZero() && now.After(n.Expires) {
		return false
	}
	return n.State == OneShotPending || n.State == OneShotDelivered || (n.Always && n.State == OneShotBooted)
}

// Profile is a hardware profile: which clients it is for, and their menu.
type Profile struct {
	Name string
	// Priority orders profiles; higher wins. Zero means "no explicit
	// priority": such profiles are ordered by how specific their match is.
	Priority int
	// Match is an OR of selectors, each an AND of conditions. An empty
	// match never matches: the profile is used only when pinned or as the
	// default.
	Match []Selector
	Menu  Menu
	// Variants replace the menu for one firmware kind, e.g. efi-x64.
	Variants map[Firmware]Menu
	// SecureBoot sends x64 UEFI clients down the shim → signed GRUB chain.
	SecureBoot bool
	// Signed: GRUB menus, kernels and initrds come with detached OpenPGP
	// signatures, and GRUB menus enforce them and stop when a load fails.
	Signed bool
	Source string // "file:line", for messages
}

// Selector is an AND of conditions; an empty field is no condition. Text
// conditions (vendor, manufacturer, product, serial) are shell globs.
type Selector struct {
	MAC          net.HardwareAddr
	OUI          []byte // a MAC prefix, 1..5 bytes
	UUID         string
	Arch         Firmware
	Vendor       string
	Manufacturer string
	Product      string
	Serial       string
	Subnet       netip.Prefix // the client's address or its relay's
	// CircuitID and RemoteID are patterns on the relay agent information
	// (option 82.1 and 82.2) a relay added: which switch port, which
	// switch.
	CircuitID string
	RemoteID  string
	Labels    []string // all must be on the host
}

// Menu is what a profile offers.
type Menu struct {
	Title   string
	Default string // entry name
	Timeout time.Duration
	Entries []Entry
}

// Entry kinds.
const (
	KindLinux   = "linux"
	KindWimboot = "wimboot"
	KindISO     = "iso"
	KindChain   = "chain"
	KindLocal   = "local"
	KindShell   = "shell"
)

// Entry is one menu item. Paths are below the HTTP root unless they are
// URLs.
type Entry struct {
	Name    string // identifier, used by default and next-boot
	Label   string // what the menu shows
	Kind    string
	Kernel  string
	Initrds []string
	Cmdline string
	// wimboot
	Wimboot string
	Bootmgr string // optional
	BCD     string
	BootSDI string
	BootWIM string
	// iso and chain
	ISO string
	URL string
	// Image is the built image the entry boots, as written (NAME or
	// NAME@CONSTRAINT); ImageVersion is the version it resolved to when
	// the inventory was loaded (NAME@VERSION), whose files fill the
	// fields above.
	Image        string
	ImageVersion string
}

// Entry returns the named entry.
func (m Menu) Entry(name string) (Entry, bool) {
	for _, e := range m.Entries {
		if e.Name == name {
			return e, true
		}
	}
	return Entry{}, false
}

// specificity ranks a selector: exact identities count most, then
// hardware facts, then broad conditions.
func (s Selector) specificity() int {
	n := 0
	if s.MAC != nil {
		n += 100
	}
	if s.UUID != "" {
		n += 100
	}
	if s.Serial != "" {
		n += 50
	}
	if len(s.OUI) > 0 {
		n += 10 + len(s.OUI)
	}
	for _, v := range []string{s.Manufacturer, s.Product, s.Vendor, s.CircuitID, s.RemoteID} {
		if v != "" {
			n += 10
		}
	}
	if s.Subnet.IsValid() {
		n += 5 + s.Subnet.Bits()/8
	}
	if s.Arch != "" {
		n += 5
	}
	n += 3 * len(s.Labels)
	return n
}

// matches reports whether every condition holds. c's text facts must be
// lower-cased already (Choose does it once per client).
func (s *Selector) matches(c *Client, labels []string) bool {
	if s.MAC != nil && !bytes.Equal(s.MAC, c.MAC) {
		return false
	}
	if len(s.OUI) > 0 && (len(c.MAC) < len(s.OUI) || string(c.MAC[:len(s.OUI)]) != string(s.OUI)) {
		return false
	}
	if s.UUID != "" && s.UUID != c.UUID {
		return false
	}
	if s.Arch != "" && s.Arch != c.Firmware {
		return false
	}
	if !glob(s.Vendor, c.VendorClass) || !glob(s.Manufacturer, c.Manufacturer) || !glob(s.Product, c.Product) || !glob(s.Serial, c.Serial) {
		return false
	}
	if (s.CircuitID != "" && !glob(s.CircuitID, strings.ToLower(string(c.CircuitID)))) ||
		(s.RemoteID != "" && !glob(s.RemoteID, strings.ToLower(string(c.RemoteID)))) {
		return false
	}
	if s.Subnet.IsValid() && !c.OnNetwork(s.Subnet) {
		return false
	}
	return hasAll(labels, s.Labels)
}

// glob matches a lower-cased shell pattern against a lower-cased value;
// an empty pattern is no condition, a bad pattern matches only itself.
func glob(pattern, value string) bool {
	if pattern == "" {
		return true
	}
	ok, err := path.Match(pattern, value)
	if err != nil {
		return pattern == value
	}
	return ok
}

// disjoint reports whether no client can satisfy both selectors, judging
// by conditions whose values plainly differ. It errs towards "may overlap".
func disjoint(a, b Selector) bool {
	if a.MAC != nil && b.MAC != nil && a.MAC.String() != b.MAC.String() {
		return true
	}
	if a.UUID != "" && b.UUID != "" && !strings.EqualFold(a.UUID, b.UUID) {
		return true
	}
	if a.Arch != "" && b.Arch != "" && a.Arch != b.Arch {
		return true
	}
	if a.Subnet.IsValid() && b.Subnet.IsValid() && !a.Subnet.Overlaps(b.Subnet) {
		return true
	}
	if len(a.OUI) > 0 && len(b.OUI) > 0 {
		n := min(len(a.OUI), len(b.OUI))
		if string(a.OUI[:n]) != string(b.OUI[:n]) {
			return true
		}
	}
	if a.MAC != nil && len(b.OUI) > 0 && (len(a.MAC) < len(b.OUI) || string(a.MAC[:len(b.OUI)]) != string(b.OUI)) {
		return true
	}
	if b.MAC != nil && len(a.OUI) > 0 && (len(b.MAC) < len(a.OUI) || string(b.MAC[:len(a.OUI)]) != string(a.OUI)) {
		return true
	}
	for _, c := range [][2]string{{a.Vendor, b.Vendor}, {a.Manufacturer, b.Manufacturer}, {a.Product, b.Product}, {a.Serial, b.Serial},
		{a.CircuitID, b.CircuitID}, {a.RemoteID, b.RemoteID}} {
		if c[0] != "" && c[1] != "" && literal(c[0]) && literal(c[1]) && !strings.EqualFold(c[0], c[1]) {
			return true
		}
	}
	return false
}

func literal(p string) bool { return !strings.ContainsAny(p, `*?[\`) }

// Inventory is the hosts and profiles, checked for consistency. It is
// immutable once built: a reload builds a new one.
type Inventory struct {
	profiles []Profile // sorted: explicit priority first (high to low), then by name
	byName   map[string]*Profile
	hosts    []Host
	byMAC    map[string]*Host
	byUUID   map[string]*Host
	byHost   map[string]*Host // by lower-case name
	Default  string           // the default profile's name
}

// NewInventory checks hosts and profiles and builds the lookup tables. It
// refuses what would otherwise surprise at boot time: duplicate names
// (host names ignoring case), MACs or priorities, a pinned or default profile that does not exist, a
// default entry missing from its menu, and two profiles that could match
// the same client with nothing to choose between them.
func NewInventory(profiles []Profile, hosts []Host, defaultProfile string) (*Inventory, error) {
	inv := &Inventory{byName: map[string]*Profile{}, byMAC: map[string]*Host{}, byUUID: map[string]*Host{}, byHost: map[string]*Host{},
		Default: defaultProfile}
	var errs []string
	bad := func(src, format string, args ...any) {
		errs = append(errs, prefix(src)+fmt.Sprintf(format, args...))
	}
	inv.profiles = append([]Profile(nil), profiles...)
	sort.SliceStable(inv.profiles, func(i, j int) bool {
		if inv.profiles[i].Priority != inv.profiles[j].Priority {
			return inv.profiles[i].Priority > inv.profiles[j].Priority
		}
		return inv.profiles[i].Name < inv.profiles[j].Name
	})
	priorities := map[int]string{}
	for i := range inv.profiles {
		p := &inv.profiles[i]
		if p.Name == "" {
			bad(p.Source, "profile without a name")
			continue
		}
		if other, dup := inv.byName[p.Name]; dup {
			bad(p.Source, "profile %q is defined twice (also at %s)", p.Name, other.Source)
			continue
		}
		inv.byName[p.Name] = p
		if p.Priority != 0 {
			if other, dup := priorities[p.Priority]; dup {
				bad(p.Source, "profile %q: priority %d is also the priority of profile %q; priorities must be unique", p.Name, p.Priority, other)
			}
			priorities[p.Priority] = p.Name
		}
		p.Match = append([]Selector(nil), p.Match...) // lowered below: not the caller's copy
		for si := range p.Match {
			sel := &p.Match[si]
			sel.Vendor, sel.Manufacturer = strings.ToLower(sel.Vendor), strings.ToLower(sel.Manufacturer)
			sel.Product, sel.Serial, sel.UUID = strings.ToLower(sel.Product), strings.ToLower(sel.Serial), strings.ToLower(sel.UUID)
			sel.CircuitID, sel.RemoteID = strings.ToLower(sel.CircuitID), strings.ToLower(sel.RemoteID)
		}
		if err := p.Menu.check(); err != nil {
			bad(p.Source, "profile %q: %v", p.Name, err)
		}
		for _, fw := range slices.Sorted(maps.Keys(p.Variants)) {
			if err := p.Variants[fw].check(); err != nil {
				bad(p.Source, "profile %q, %s variant: %v", p.Name, fw, err)
			}
		}
	}
	// Profiles without a priority are ordered by specificity; two that tie
	// and may match the same client are ambiguous.
	for i := range inv.profiles {
		a := &inv.profiles[i]
		if a.Priority != 0 {
			continue
		}
		for j := i + 1; j < len(inv.profiles); j++ {
			b := &inv.profiles[j]
			if b.Priority != 0 {
				continue
			}
			for _, sa := range a.Match {
				for _, sb := range b.Match {
					if sa.specificity() == sb.specificity() && !disjoint(sa, sb) {
						bad(b.Source, "profiles %q and %q can match the same client with equal specificity; give one a priority", a.Name, b.Name)
					}
				}
			}
		}
	}
	if defaultProfile != "" && inv.byName[defaultProfile] == nil {
		bad("", "default profile %q does not exist", defaultProfile)
	}
	inv.hosts = append([]Host(nil), hosts...)
	for i := range inv.hosts {
		h := &inv.hosts[i]
		if err := CheckHostName(h.Name); err != nil {
			bad(h.Source, "host %q: %v", h.Name, err)
		}
		// Host names are DNS labels, which ignore case: pc1 and PC1 are one
		// name, and a one-shot set by name must find one host.
		k := strings.ToLower(h.Name)
		if other, dup := inv.byHost[k]; dup {
			bad(h.Source, "host %q: host %q%s has the same name; host names are unique, ignoring case", h.Name, other.Name, at(other.Source))
		} else {
			inv.byHost[k] = h
		}
		if h.Profile != "" && inv.byName[h.Profile] == nil {
			bad(h.Source, "host %q: profile %q does not exist", h.Name, h.Profile)
		}
		for _, mac := range h.MACs {
			k := strings.ToLower(mac.String())
			if other, dup := inv.byMAC[k]; dup {
				bad(h.Source, "host %q: MAC %s also belongs to host %q", h.Name, mac, other.Name)
			}
			inv.byMAC[k] = h
		}
		if h.UUID != "" {
			k := strings.ToLower(h.UUID)
			if other, dup := inv.byUUID[k]; dup {
				bad(h.Source, "host %q: UUID also belongs to host %q", h.Name, other.Name)
			}
			inv.byUUID[k] = h
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return inv, nil
}

// at says where a host is defined, for a message: " (SRC)", or "".
func at(src string) string {
	if src == "" {
		return ""
	}
	return " (" + src + ")"
}

func prefix(src string) string {
	if src == "" {
		return ""
	}
	return src + ": "
}

func variants(p *Profile) []Menu {
	var out []Menu
	for _, m := range p.Variants {
		out = append(out, m)
	}
	return out
}

func (m Menu) check() error {
	seen := map[string]bool{}
	labels := map[string]string{} // MenuLabel -> entry name
	for _, e := range m.Entries {
		if e.Name == "" {
			return fmt.Errorf("menu entry without a name")
		}
		if seen[e.Name] {
			return fmt.Errorf("menu entry %q appears twice", e.Name)
		}
		seen[e.Name] = true
		// Loaders find entries by label: two entries with one label make
		// the menu boot the first whichever is chosen.
		l := MenuLabel(e.Name)
		if other, dup := labels[l]; dup {
			return fmt.Errorf("menu entries %q and %q both have the label %q in iPXE, GRUB and pxelinux menus, "+
				"so choosing one would boot the other; rename one (a name of letters, digits, - and _ is its own label, "+
				"other names have their other bytes written as _XX)", other, e.Name, l)
		}
		labels[l] = e.Name
		if err := e.check(); err != nil {
			return fmt.Errorf("entry %q: %v", e.Name, err)
		}
	}
	if m.Default != "" && !seen[m.Default] {
		return fmt.Errorf("default entry %q is not in the menu", m.Default)
	}
	return nil
}

func (e Entry) check() error {
	need := func(field, v string) error {
		if v == "" {
			return fmt.Errorf("kind %s needs %s", e.Kind, field)
		}
		return nil
	}
	switch e.Kind {
	case KindLinux:
		return need("kernel", e.Kernel)
	case KindWimboot:
		for _, f := range [][2]string{{"wimboot", e.Wimboot}, {"bcd", e.BCD}, {"boot_sdi", e.BootSDI}, {"boot_wim", e.BootWIM}} {
			if err := need(f[0], f[1]); err != nil {
				return err
			}
		}
	case KindISO:
		return need("iso", e.ISO)
	case KindChain:
		return need("url", e.URL)
	case KindLocal, KindShell:
	default:
		return fmt.Errorf("unknown kind %q (linux, wimboot, iso, chain, local, shell)", e.Kind)
	}
	return nil
}

// Profile returns a profile by name.
func (inv *Inventory) Profile(name string) (Profile, bool) {
	p, ok := inv.byName[name]
	if !ok {
		return Profile{}, false
	}
	return *p, true
}

// HasProfiles reports whether any profile is defined, without copying them.
func (inv *Inventory) HasProfiles() bool { return len(inv.profiles) > 0 }

// Profiles returns every profile, in precedence order.
func (inv *Inventory) Profiles() []Profile { return append([]Profile(nil), inv.profiles...) }

// Hosts returns every host.
func (inv *Inventory) Hosts() []Host { return append([]Host(nil), inv.hosts...) }

// HostNamed finds a host by name, ignoring case as DNS does; there is at
// most one (NewInventory refuses two names that differ only in case).
func (inv *Inventory) HostNamed(name string) (Host, bool) {
	if h, ok := inv.byHost[strings.ToLower(name)]; ok {
		return *h, true
	}
	return Host{}, false
}

// Host finds a host by MAC, then by UUID.
func (inv *Inventory) Host(mac net.HardwareAddr, uuid string) (Host, bool) {
	if mac != nil {
		if h, ok := inv.byMAC[strings.ToLower(mac.String())]; ok {
			return *h, true
		}
	}
	if uuid != "" {
		if h, ok := inv.byUUID[strings.ToLower(uuid)]; ok {
			return *h, true
		}
	}
	return Host{}, false
}

// Choice is the profile chosen for a client, and why.
type Choice struct {
	Profile Profile
	Host    *Host
	Menu    Menu // the profile's menu or its variant for the client's firmware
	Why     string
}

// Choose picks the profile for a client: the host's pinned profile; else
// the matching profile with the highest explicit priority; else the most
// specific match; else the default profile. ok is false when nothing
// applies (no match and no default).
func (inv *Inventory) Choose(c Client) (Choice, bool) {
	f := &c // a copy: the text facts are lowered below
	f.UUID, f.VendorClass, f.Manufacturer = strings.ToLower(f.UUID), strings.ToLower(f.VendorClass), strings.ToLower(f.Manufacturer)
	f.Product, f.Serial = strings.ToLower(f.Product), strings.ToLower(f.Serial)
	var host *Host
	if h, ok := inv.Host(f.MAC, f.UUID); ok {
		host = &h
	}
	var labels []string
	if host != nil {
		labels = host.Labels
		if host.Profile != "" {
			p := inv.byName[host.Profile]
			return inv.choice(*p, host, f, fmt.Sprintf("host %q pins profile %q", host.Name, p.Name)), true
		}
	}
	var best *Profile
	bestSpec, bestSel := -1, -1
	for i := range inv.profiles {
		p := &inv.profiles[i]
		for si := range p.Match {
			s := &p.Match[si]
			if !s.matches(f, labels) {
				continue
			}
			if p.Priority != 0 {
				return inv.choice(*p, host, f, fmt.Sprintf("profile %q (priority %d) matched by rule %d", p.Name, p.Priority, si+1)), true
			}
			if sp := s.specificity(); sp > bestSpec {
				best, bestSpec, bestSel = p, sp, si
			}
		}
	}
	if best != nil {
		return inv.choice(*best, host, f, fmt.Sprintf("profile %q matched by rule %d (specificity %d)", best.Name, bestSel+1, bestSpec)), true
	}
	if p, ok := inv.byName[inv.Default]; ok {
		return inv.choice(*p, host, f, fmt.Sprintf("no profile matched: default profile %q", p.Name)), true
	}
	return Choice{}, false
}

func (inv *Inventory) choice(p Profile, host *Host, f *Client, why string) Choice {
	m := p.MenuFor(f.Firmware)
	if _, ok := p.Variants[f.Firmware]; ok {
		why += fmt.Sprintf(", %s variant", f.Firmware)
	}
	return Choice{Profile: p, Host: host, Menu: m, Why: why}
}

// MenuFor returns the menu a client running fw gets: the profile's variant
// for fw, or its main menu.
func (p *Profile) MenuFor(fw Firmware) Menu {
	if v, ok := p.Variants[fw]; ok {
		return v
	}
	return p.Menu
}

// HasEntry reports whether any of the profile's menus, the main one or a
// variant, has the named entry.
func (p *Profile) HasEntry(name string) bool {
	for _, m := range append([]Menu{p.Menu}, variants(p)...) {
		if _, ok := m.Entry(name); ok {
			return true
		}
	}
	return false
}

// Reachable lists the profiles a client can be given, judging by what is
// certain about it before it boots — known holds those facts as a rule:
// its MAC, its firmware, its subnet — and by its host record: a pinned
// profile is the only one; otherwise every profile with a rule those facts
// and the host's labels do not rule out, and the default profile. It errs
// towards "reachable": it is used to refuse what no boot could use (a
// one-shot entry in no such profile) and to check every kernel a Secure
// Boot client could be handed.
func (inv *Inventory) Reachable(known Selector) []Profile {
	var labels []string
	if h, ok := inv.Host(known.MAC, known.UUID); ok {
		if h.Profile != "" {
			return []Profile{*inv.byName[h.Profile]}
		}
		labels = h.Labels
	}
	var out []Profile
	for i := range inv.profiles {
		p := &inv.profiles[i]
		if p.Name == inv.Default || p.mayMatch(known, labels) {
			out = append(out, *p)
		}
	}
	return out
}

func (p *Profile) mayMatch(known Selector, labels []string) bool {
	for _, s := range p.Match {
		if !disjoint(s, known) && hasAll(labels, s.Labels) {
			return true
		}
	}
	return false
}

func hasAll(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if h == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
