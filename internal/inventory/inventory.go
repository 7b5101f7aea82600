// Package inventory builds the boot.Inventory from where operators keep
// it: profiles and hosts in the main config, YAML files in the inventory
// directory (profiles/*.yaml, hosts/*.yaml), and hosts added at run time
// with `bootforge host`, which live in the store.
//
// A Watcher keeps the current inventory and rebuilds it when a file or the
// store changes. A rebuild that fails — a typo, a duplicate priority — is
// logged with file, line and field, and the last good inventory stays in
// use, so a bad edit never takes the boot service down.
package inventory

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"bootforge/internal/boot"
	"bootforge/internal/config"
)

// HostStore is the part of the store the inventory reads.
type HostStore interface {
	Hosts() ([]boot.Host, error)
	Generation() (int64, error)
}

// Source says where the inventory comes from.
type Source struct {
	Config     config.Inventory
	ConfigFile string    // for messages; may be empty
	Dir        string    // holds profiles/ and hosts/; may be empty
	Store      HostStore // may be nil
	// CheckKernel, if set, is asked about the kernel of every Linux entry
	// that a Secure Boot client can be handed: in profiles with
	// secure_boot, and in every profile a host with secure_boot, or an x64
	// UEFI client on a SecureBootSubnet, can get. An error refuses the
	// inventory: the firmware would refuse the kernel at boot time.
	CheckKernel func(path string) error
	// SecureBootSubnets are the DHCP subnets with secure_boot.
	SecureBootSubnets []netip.Prefix
	// Images resolves menu entries that name a built image; nil: such
	// entries refuse the inventory.
	Images Images
	// Root, if set, is where the files of profiles in the inventory
	// directory are looked up (as the config's own profiles are when it
	// loads): a path that leaves root refuses the inventory, a missing
	// file is a warning to Warn (nil: dropped).
	Root            string
	CaseInsensitive bool
	Warn            func(msg string)
	// LeaveOut are files of Dir that Read skips. The host commands leave
	// out the files that cannot be read (Unreadable), which have no last
	// good version to fall back on as the server's Watcher has.
	LeaveOut []string
}

// checkFiles applies config.CheckProfile to a profile from the inventory
// directory: its errors refuse the inventory, its warnings go to Warn.
func checkFiles(src Source, w Written[config.Profile]) []string {
	if src.Root == "" {
		return nil
	}
	errs, warns := config.CheckProfile(src.Root, src.CaseInsensitive, w.Value)
	if src.Warn != nil {
		for _, e := range warns {
			src.Warn(fmt.Sprintf("%s: profile %q: %s", w.Source, w.Value.Name, e))
		}
	}
	var out []string
	for _, e := range errs {
		out = append(out, fmt.Sprintf("%s: profile %q: %s", w.Source, w.Value.Name, e))
	}
	return out
}

// Written is a profile or host as its file says it, with where it was
// written ("file:line", or the config's key).
type Written[T any] struct {
	Value  T
	Source string
}

// Read returns the profiles and hosts of the config and the inventory
// directory as written, before any conversion; errs are the files that
// could not be read. Load converts them; `profile show` prints them.
func Read(src Source) (profiles []Written[config.Profile], hosts []Written[config.Host], errs []string) {
	where := src.ConfigFile
	if where == "" {
		where = "config"
	}
	for i, p := range src.Config.Profiles {
		profiles = append(profiles, Written[config.Profile]{p, fmt.Sprintf("%s: inventory.profiles[%d]", where, i)})
	}
	for i, h := range src.Config.Hosts {
		hosts = append(hosts, Written[config.Host]{h, fmt.Sprintf("%s: inventory.hosts[%d]", where, i)})
	}
	if src.Dir == "" {
		return profiles, hosts, errs
	}
	for _, f := range files(filepath.Join(src.Dir, "profiles")) {
		if slices.Contains(src.LeaveOut, f) {
			continue
		}
		items, err := readItems[config.Profile](f)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		for _, it := range items {
			if it.Value.Name == "" && len(items) == 1 {
				it.Value.Name = strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
			}
			profiles = append(profiles, Written[config.Profile]{it.Value, fmt.Sprintf("%s:%d", f, it.Line)})
		}
	}
	for _, f := range files(filepath.Join(src.Dir, "hosts")) {
		if slices.Contains(src.LeaveOut, f) {
			continue
		}
		items, err := readItems[config.Host](f)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		for _, it := range items {
			hosts = append(hosts, Written[config.Host]{it.Value, fmt.Sprintf("%s:%d", f, it.Line)})
		}
	}
	return profiles, hosts, errs
}

// FileError is an inventory file that cannot be read, and why.
type FileError struct {
	File string
	Err  error
}

// Unreadable returns the files of the inventory directory that cannot be
// read (not YAML, unreadable): each refuses the whole inventory.
func Unreadable(src Source) []FileError {
	if src.Dir == "" {
		return nil
	}
	var out []FileError
	for _, f := range files(filepath.Join(src.Dir, "profiles")) {
		if _, err := readItems[config.Profile](f); err != nil {
			out = append(out, FileError{File: f, Err: err})
		}
	}
	for _, f := range files(filepath.Join(src.Dir, "hosts")) {
		if _, err := readItems[config.Host](f); err != nil {
			out = append(out, FileError{File: f, Err: err})
		}
	}
	return out
}

func readItems[T any](file string) ([]config.Item[T], error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return config.DecodeItems[T](file, data)
}

// Load reads and checks the whole inventory.
func Load(src Source) (*boot.Inventory, error) {
	var profiles []boot.Profile
	var hosts []boot.Host
	written, writtenHosts, errs := Read(src)
	for i, w := range written {
		if i >= len(src.Config.Profiles) { // the config's own were checked when it loaded
			errs = append(errs, checkFiles(src, w)...)
		}
		bp, err := convertProfile(w.Value, w.Source)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		profiles = append(profiles, bp)
	}
	for _, w := range writtenHosts {
		bh, err := convertHost(w.Value, w.Source)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		hosts = append(hosts, bh)
	}
	if src.Store != nil {
		stored, err := src.Store.Hosts()
		if err != nil {
			errs = append(errs, fmt.Sprintf("store: %v", err))
		}
		hosts = append(hosts, stored...)
	}
	errs = append(errs, resolveImages(profiles, src.Images)...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	inv, err := boot.NewInventory(profiles, hosts, src.Config.DefaultProfile)
	if err != nil && strings.Contains(err.Error(), storeSource+": ") {
		return nil, fmt.Errorf("%w\n(hosts from the store are listed by `bootforge host list` and removed with `bootforge host rm NAME`)", err)
	}
	if err != nil || src.CheckKernel == nil {
		return inv, err
	}
	if err := checkSecureBootKernels(inv, src.SecureBootSubnets, src.CheckKernel); err != nil {
		return nil, err
	}
	return inv, nil
}

// checkSecureBootKernels asks check about every kernel a Secure Boot client
// can be handed, and names profile, entry and file for each refusal. Only
// x64 UEFI clients take the Secure Boot chain, so the menu checked is the
// one they get: the efi-x64 variant, or the main menu.
func checkSecureBootKernels(inv *boot.Inventory, subnets []netip.Prefix, check func(string) error) error {
	why := map[string]string{} // profile → why its kernels must be signed
	mark := func(ps []boot.Profile, reason string) {
		for _, p := range ps {
			if _, ok := why[p.Name]; !ok {
				why[p.Name] = reason
			}
		}
	}
	for _, p := range inv.Profiles() {
		if p.SecureBoot {
			why[p.Name] = "Secure Boot"
		}
	}
	for _, h := range inv.Hosts() {
		if !h.SecureBoot {
			continue
		}
		reason := fmt.Sprintf("reachable by Secure Boot host %q", h.Name)
		if len(h.MACs) == 0 {
			mark(inv.Reachable(boot.Selector{UUID: h.UUID, Arch: boot.FirmwareEFIx64}), reason)
		}
		for _, mac := range h.MACs {
			mark(inv.Reachable(boot.Selector{MAC: mac, UUID: h.UUID, Arch: boot.FirmwareEFIx64}), reason)
		}
	}
	for _, sn := range subnets {
		mark(inv.Reachable(boot.Selector{Arch: boot.FirmwareEFIx64, Subnet: sn}), fmt.Sprintf("reachable from Secure Boot subnet %s", sn))
	}
	var errs []string
	for _, p := range inv.Profiles() {
		reason, ok := why[p.Name]
		if !ok {
			continue
		}
		for _, e := range p.MenuFor(boot.FirmwareEFIx64).Entries {
			if e.Kind != boot.KindLinux {
				continue
			}
			if err := check(e.Kernel); err != nil {
				errs = append(errs, fmt.Sprintf("%s: profile %q (%s): entry %q: kernel %q: %v", p.Source, p.Name, reason, e.Name, e.Kernel, err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

// files lists *.yaml and *.yml in dir, sorted; none if dir is missing.
func files(dir string) []string {
	var out []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		out = append(out, m...)
	}
	sort.Strings(out)
	return out
}

func convertProfile(p config.Profile, src string) (boot.Profile, error) {
	bp := boot.Profile{Name: p.Name, Priority: p.Priority, SecureBoot: p.SecureBoot, Signed: p.Signed, Source: src}
	fail := func(field, format string, args ...any) (boot.Profile, error) {
		return boot.Profile{}, fmt.Errorf("%s: profile %q: %s: %s", src, p.Name, field, fmt.Sprintf(format, args...))
	}
	if p.Name == "" {
		return fail("name", "a profile needs a name")
	}
	if p.Priority < 0 {
		return fail("priority", "%d is negative", p.Priority)
	}
	for i, s := range p.Match {
		sel, err := convertSelector(s)
		if err != nil {
			return fail(fmt.Sprintf("match[%d]", i), "%v", err)
		}
		bp.Match = append(bp.Match, sel)
	}
	bp.Menu = convertMenu(p.Menu)
	for fw, m := range p.Variants {
		kind, err := boot.ParseFirmware(fw)
		if err != nil {
			return fail("variants."+fw, "unknown firmware: %v", err)
		}
		if bp.Variants == nil {
			bp.Variants = map[boot.Firmware]boot.Menu{}
		}
		bp.Variants[kind] = convertMenu(m)
	}
	return bp, nil
}

func convertSelector(s config.Selector) (boot.Selector, error) {
	out := boot.Selector{Vendor: s.Vendor, Manufacturer: s.Manufacturer, Product: s.Product, Serial: s.Serial, Labels: s.Labels,
		CircuitID: s.CircuitID, RemoteID: s.RemoteID}
	empty := true
	if s.MAC != "" {
		m, err := net.ParseMAC(s.MAC)
		if err != nil {
			return out, fmt.Errorf("mac %q is not a MAC address", s.MAC)
		}
		out.MAC = m
	}
	if s.OUI != "" {
		b, err := hex.DecodeString(strings.NewReplacer(":", "", "-", "").Replace(s.OUI))
		if err != nil || len(b) < 1 || len(b) > 5 {
			return out, fmt.Errorf("oui %q is not a MAC prefix like 52:54:00", s.OUI)
		}
		out.OUI = b
	}
	if s.UUID != "" {
		u, err := boot.ParseUUID(s.UUID)
		if err != nil {
			return out, fmt.Errorf("uuid %v", err)
		}
		out.UUID = u
	}
	for _, l := range s.Labels {
		if err := boot.CheckLabel(l); err != nil {
			return out, err
		}
	}
	if s.Arch != "" {
		fw, err := boot.ParseFirmware(s.Arch)
		if err != nil {
			return out, fmt.Errorf("arch %v", err)
		}
		out.Arch = fw
	}
	if s.Subnet != "" {
		p, err := netip.ParsePrefix(s.Subnet)
		if err != nil {
			return out, fmt.Errorf("subnet %q is not like 192.0.2.0/24 or 2001:db8:10::/48", s.Subnet)
		}
		if p.Addr().Is4In6() {
			// Clients are matched by their plain IPv4 address: this would
			// never match.
			return out, fmt.Errorf("subnet %q is an IPv4-mapped IPv6 prefix; write the IPv4 subnet (%s/%d)", s.Subnet,
				p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		out.Subnet = p.Masked()
	}
	for _, v := range []string{s.MAC, s.OUI, s.UUID, s.Arch, s.Vendor, s.Manufacturer, s.Product, s.Serial, s.Subnet, s.CircuitID, s.RemoteID} {
		if v != "" {
			empty = false
		}
	}
	if empty && len(s.Labels) == 0 {
		return out, fmt.Errorf("an empty rule would match every client; use default_profile for that")
	}
	return out, nil
}

func convertMenu(m config.Menu) boot.Menu {
	out := boot.Menu{Title: m.Title, Default: m.Default, Timeout: m.Timeout.D()}
	for _, e := range m.Entries {
		out.Entries = append(out.Entries, boot.Entry{
			Name: e.Name, Label: e.Label, Kind: e.Kind, Kernel: e.Kernel, Initrds: e.Initrds, Cmdline: e.Cmdline,
			Wimboot: e.Wimboot, Bootmgr: e.Bootmgr, BCD: e.BCD, BootSDI: e.BootSDI, BootWIM: e.BootWIM, ISO: e.ISO, URL: e.URL, Image: e.Image,
		})
	}
	return out
}

// convertHost turns a host as written (in the config, a hosts file, or a
// write through the API or CLI) into a boot.Host. src says where it comes
// from, for messages; it may be empty. An error is an *Error naming the
// field at fault.
func convertHost(h config.Host, src string) (boot.Host, error) {
	bh := boot.Host{Name: h.Name, Labels: h.Labels, Profile: h.Profile, SecureBoot: h.SecureBoot, Source: src}
	fail := func(field, format string, args ...any) (boot.Host, error) {
		who := "host"
		if h.Name != "" {
			who = fmt.Sprintf("host %q", h.Name)
		}
		return bh, &Error{Kind: Invalid, Field: field, Msg: fmt.Sprintf("%s%s: %s: %s", prefix(src), who, field, fmt.Sprintf(format, args...))}
	}
	if err := boot.CheckHostName(h.Name); err != nil {
		return fail("name", "%v", err)
	}
	if len(h.MACs) == 0 && h.UUID == "" {
		return fail("macs", "a host needs a MAC or a UUID")
	}
	for i, m := range h.MACs {
		hw, err := net.ParseMAC(m)
		if err != nil {
			return fail(fmt.Sprintf("macs[%d]", i), "%q is not a MAC address", m)
		}
		bh.MACs = append(bh.MACs, hw)
	}
	if h.UUID != "" {
		u, err := boot.ParseUUID(h.UUID)
		if err != nil {
			return fail("uuid", "%v", err)
		}
		bh.UUID = u
	}
	for i, l := range h.Labels {
		if err := boot.CheckLabel(l); err != nil {
			return fail(fmt.Sprintf("labels[%d]", i), "%v", err)
		}
	}
	return bh, nil
}

func prefix(src string) string {
	if src == "" {
		return ""
	}
	return src + ": "
}

// Watcher holds the current inventory and reloads it on change.
type Watcher struct {
	src atomic.Pointer[Source]
	cur atomic.Pointer[boot.Inventory]
	log *slog.Logger

	// mu serialises reloads (the poller in Run, SetSource on SIGHUP), so
	// that a load from an older source never replaces a newer one's, and
	// guards stamp and lastErr.
	mu      sync.Mutex
	stamp   string
	lastErr string
}

// NewWatcher loads the inventory; it fails if the first load does.
func NewWatcher(src Source, log *slog.Logger) (*Watcher, error) {
	w := &Watcher{log: log}
	w.src.Store(&src)
	inv, err := Load(src)
	if err != nil {
		return nil, err
	}
	w.cur.Store(inv)
	w.stamp = w.fingerprint()
	return w, nil
}

// Current returns the inventory in force.
func (w *Watcher) Current() *boot.Inventory { return w.cur.Load() }

// SetSource replaces where the inventory comes from (config reload) and
// reloads; on error the old inventory stays.
func (w *Watcher) SetSource(src Source) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.src.Store(&src)
	w.stamp = w.fingerprint()
	return w.reload()
}

// Run polls for changes until ctx ends.
func (w *Watcher) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.mu.Lock()
			if s := w.fingerprint(); s != w.stamp {
				w.stamp = s
				w.reload()
			}
			w.mu.Unlock()
		}
	}
}

// reload loads the inventory from the current source; the caller holds
// w.mu (or is the only goroutine using w, as in NewWatcher and tests).
func (w *Watcher) reload() error {
	inv, err := Load(*w.src.Load())
	if err != nil {
		if err.Error() != w.lastErr {
			w.log.Error("inventory refused, keeping the last good one", "err", err.Error())
			w.lastErr = err.Error()
		}
		return err
	}
	w.lastErr = ""
	w.cur.Store(inv)
	w.log.Info("inventory loaded", "profiles", len(inv.Profiles()), "hosts", len(inv.Hosts()))
	return nil
}

// fingerprint summarises what a reload would read: file names, sizes and
// times, and the store's generation.
func (w *Watcher) fingerprint() string {
	src := w.src.Load()
	var b strings.Builder
	if src.Dir != "" {
		for _, sub := range []string{"profiles", "hosts"} {
			for _, f := range files(filepath.Join(src.Dir, sub)) {
				if st, err := os.Stat(f); err == nil {
					fmt.Fprintf(&b, "%s %d %d\n", f, st.Size(), st.ModTime().UnixNano())
				}
			}
		}
	}
	if src.Store != nil {
		g, _ := src.Store.Generation()
		fmt.Fprintf(&b, "store %d\n", g)
	}
	if src.Images != nil {
		// A new build, or a version promoted, changes what image entries
		// resolve to.
		vs, _ := src.Images.Versions()
		for _, v := range vs {
			fmt.Fprintf(&b, "image %s %s\n", v.ID, v.State)
		}
	}
	return b.String()
}
