package inventory

// Writes to the inventory: hosts and one-shot next boots kept in the
// store. The CLI (`bootforge host ...`) and the management API both go
// through a Service, so that one set of rules decides what may be
// written, every write is a boot-log event naming who made it (committed
// in the write's own transaction: a write without its event is not
// made), and both show a host the same way.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/boot"
	"bootforge/internal/config"
)

// WriteStore is the part of the store a Service writes and reads back.
type WriteStore interface {
	Hosts() ([]boot.Host, error)
	// Every write takes its boot-log events and writes them in its own
	// transaction: both or neither.
	//
	// PutHost refuses, with a *boot.TakenError, a host whose MAC or UUID
	// another stored host has, checked in the transaction of the write:
	// the Service's own checks read before they write, and two writers
	// can both pass them.
	PutHost(boot.Host, ...audit.Event) error
	// DeleteHost reports whether the host was there when it was removed;
	// if it was not, the events are not written.
	DeleteHost(name string, events ...audit.Event) (bool, error)
	NextBoots() (map[string]*boot.NextBoot, error) // by lower-case MAC
	PutNextBoot(net.HardwareAddr, boot.NextBoot, ...audit.Event) error
	// DeleteNextBoot reports whether there was a one-shot; if there was
	// not, the events are not written.
	DeleteNextBoot(net.HardwareAddr, ...audit.Event) (bool, error)
}

// Actor says who makes a write, for the boot log.
type Actor struct {
	Protocol string // "api" or "cli": the event's protocol
	Who      string // the API client's address, the CLI's user
}

// Service writes hosts and one-shots and shows them.
type Service struct {
	Store WriteStore
	// Inventory returns the inventory in force. Hosts kept in the store
	// are read from Store on every call, so a write is seen at once even
	// before the server's watcher has reloaded.
	Inventory func() *boot.Inventory
	// Events, if set, says that every write is a boot-log event, which
	// the store writes in the write's transaction (audit.Changes): a
	// host is never stored without its line in the log. Nil records
	// nothing.
	Events audit.Changes
	// CheckKernel, if set, is asked about every Linux kernel of the
	// profile a Secure Boot host pins, as the inventory load does: a host
	// the load would refuse is refused when it is written.
	CheckKernel func(path string) error
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ErrorKind says what kind of refusal an Error is.
type ErrorKind int

// Kinds of Error.
const (
	Invalid  ErrorKind = iota + 1 // the request itself is wrong (HTTP 400)
	Conflict                      // it clashes with the inventory (HTTP 409)
	NotFound                      // what it names does not exist (HTTP 404)
)

// Error is a refused write or lookup: what kind, which field of the
// request is at fault (e.g. "macs[1]", "entry"; may be empty), and why.
type Error struct {
	Kind  ErrorKind
	Field string
	Msg   string
}

func (e *Error) Error() string { return e.Msg }

func invalid(field, format string, args ...any) *Error {
	return &Error{Kind: Invalid, Field: field, Msg: fmt.Sprintf(format, args...)}
}

func conflict(field, format string, args ...any) *Error {
	return &Error{Kind: Conflict, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// HostView is how the CLI and the API show a host: the record as written
// (profile is the pinned one, as in a host file or a PUT body), where it
// comes from, the profile it gets and why, and its one-shot.
type HostView struct {
	Name       string   `json:"name"`
	MACs       []string `json:"macs"`
	UUID       string   `json:"uuid,omitempty"`
	Labels     []string `json:"labels,omitempty"`
	Profile    string   `json:"profile,omitempty"` // pinned profile
	SecureBoot bool     `json:"secure_boot,omitempty"`
	Source     string   `json:"source"` // "file:line", "config: inventory.hosts[i]" or "store"
	// ChosenProfile is the profile the host gets (for a client known by
	// its first MAC and UUID, before its firmware is known), Why the rule.
	ChosenProfile string        `json:"chosen_profile,omitempty"`
	Why           string        `json:"why,omitempty"`
	NextBoot      *NextBootView `json:"next_boot,omitempty"`
}

// NextBootView is a one-shot as shown: State is "expired" once Expires
// has passed without a boot.
type NextBootView struct {
	MAC     string `json:"mac"`
	Entry   string `json:"entry"`
	State   string `json:"state"`
	Always  bool   `json:"always,omitempty"`
	Expires string `json:"expires,omitempty"` // RFC 3339
}

// NextBootRequest is a one-shot to set.
type NextBootRequest struct {
	Entry   string
	Expires time.Duration // forget it after this long, at most MaxExpires; 0: never
	Always  bool          // keep it after the boot
}

// MaxExpires is the longest a one-shot may wait: 10 years. Far enough for
// any plan; the store keeps the expiry in nanoseconds since 1970, which
// end in 2262, and a longer wait would be kept as a date long past.
const MaxExpires = 10 * 365 * 24 * time.Hour

// ParseExpires reads how long a one-shot waits, as the CLI's --expires and
// the API's "expires" give it: a Go duration such as 2h, positive and at
// most MaxExpires. Empty means never; "0s" is refused rather than taken
// for never, as it reads as "at once". The CLI and the API both read it
// here, so that a value means the same and is refused in the same words.
func ParseExpires(text string) (time.Duration, error) {
	if text == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(text)
	if err != nil {
		// Also what time.ParseDuration says of a wait past 292 years.
		return 0, invalid("expires", "expires %q is not a duration of at most %dh (10 years), like 2h", text, MaxExpires/time.Hour)
	}
	return d, checkExpires(d)
}

// checkExpires is the rule for a one-shot's wait, 0 (never) aside.
func checkExpires(d time.Duration) error {
	const how = "give how long the one-shot waits, e.g. 2h, or leave it out for one that never expires"
	switch {
	case d <= 0:
		return invalid("expires", "expires %s is not a positive duration; %s", d, how)
	case d > MaxExpires:
		return invalid("expires", "expires %s is more than %dh (10 years); %s", d, MaxExpires/time.Hour, how)
	}
	return nil
}

// MenuRef names one menu: a profile's main menu (Firmware "") or its
// variant for a firmware.
type MenuRef struct {
	Profile  string        `json:"profile"`
	Firmware boot.Firmware `json:"firmware,omitempty"`
}

func (m MenuRef) String() string {
	if m.Firmware == "" {
		return fmt.Sprintf("the menu of profile %q", m.Profile)
	}
	return fmt.Sprintf("the %s menu of profile %q", m.Firmware, m.Profile)
}

// NextBootResult is a one-shot as stored.
type NextBootResult struct {
	MAC      string
	Entry    string
	State    boot.OneShotState
	Always   bool
	Expires  time.Time // zero: never
	Profiles []string  // the profiles the MAC can get
	// OnlyIn lists the firmware variants holding the entry when no main
	// menu of those profiles does: only a client running one of those
	// firmwares boots it.
	OnlyIn []MenuRef
}

// Note says what is special about the one-shot, or "".
func (r NextBootResult) Note() string {
	if len(r.OnlyIn) == 0 {
		return ""
	}
	refs := make([]string, len(r.OnlyIn))
	for i, m := range r.OnlyIn {
		refs[i] = m.String()
	}
	return "only in " + strings.Join(refs, ", ")
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// event is the boot-log event of a write by by, stamped for the store;
// nil if writes are not events.
func (s *Service) event(by Actor, e audit.Event) []audit.Event {
	if s.Events == nil {
		return nil
	}
	e.Time, e.Protocol = s.now(), by.Protocol
	if by.Who != "" {
		e.Result += " by " + by.Who
	}
	return []audit.Event{s.Events.Stamp(e)}
}

// committed shows the events of a committed write to s.Events.
func (s *Service) committed(events []audit.Event) {
	if s.Events != nil && len(events) > 0 {
		s.Events.Committed(events)
	}
}

// current returns the inventory in force with the store's hosts as they
// are now, and those stored hosts. If that inventory would be refused
// (the store and the files disagree), it is the inventory in force.
func (s *Service) current() (*boot.Inventory, []boot.Host, error) {
	inv := s.Inventory()
	stored, err := s.Store.Hosts()
	if err != nil {
		return nil, nil, err
	}
	hosts := append(notStored(inv.Hosts()), stored...)
	if fresh, err := boot.NewInventory(inv.Profiles(), hosts, inv.Default); err == nil {
		return fresh, stored, nil
	}
	return inv, stored, nil
}

// notStored returns the hosts from the config and the inventory files.
func notStored(hosts []boot.Host) []boot.Host {
	out := hosts[:0:0]
	for _, h := range hosts {
		if h.Source != storeSource {
			out = append(out, h)
		}
	}
	return out
}

// storeSource is the Source of hosts kept in the store.
const storeSource = "store"

// PutHost checks h and adds or replaces it in the store. It is refused
// (an *Error) if it is malformed, pins a profile that does not exist,
// shares a MAC or UUID with another host, has the name of a host kept in
// the config or a file, or would make the inventory refused.
func (s *Service) PutHost(by Actor, h config.Host) (HostView, error) {
	bh, err := convertHost(h, "")
	if err != nil {
		return HostView{}, err
	}
	bh.Source = storeSource
	inv, stored, err := s.current()
	if err != nil {
		return HostView{}, err
	}
	if bh.Profile != "" {
		if _, ok := inv.Profile(bh.Profile); !ok {
			return HostView{}, invalid("profile", "host %q: profile %q does not exist", bh.Name, bh.Profile)
		}
	}
	// Host names are DNS labels, unique ignoring case: a host of the same
	// name but for case is another host, not this one to replace.
	others := notStored(inv.Hosts())
	for _, o := range others {
		if o.Name == bh.Name {
			return HostView{}, conflict("name", "host %q is defined in %s, not in the store; change it there", bh.Name, o.Source)
		}
		if strings.EqualFold(o.Name, bh.Name) {
			return HostView{}, sameName(bh.Name, o)
		}
	}
	for _, o := range stored {
		if o.Name == bh.Name {
			continue
		}
		if strings.EqualFold(o.Name, bh.Name) {
			return HostView{}, sameName(bh.Name, o)
		}
		others = append(others, o)
	}
	for i, m := range bh.MACs {
		for j, n := range bh.MACs[:i] {
			if bytes.Equal(m, n) {
				return HostView{}, invalid(fmt.Sprintf("macs[%d]", i), "host %q: MAC %s is listed twice (also macs[%d])", bh.Name, m, j)
			}
		}
		for _, o := range others {
			for _, n := range o.MACs {
				if bytes.Equal(m, n) {
					return HostView{}, conflict(fmt.Sprintf("macs[%d]", i), "host %q: MAC %s belongs to host %q (%s)", bh.Name, m, o.Name, o.Source)
				}
			}
		}
	}
	if bh.UUID != "" {
		for _, o := range others {
			if strings.EqualFold(o.UUID, bh.UUID) {
				return HostView{}, conflict("uuid", "host %q: UUID %s belongs to host %q (%s)", bh.Name, bh.UUID, o.Name, o.Source)
			}
		}
	}
	// The inventory with this host must load, as the server will load it.
	trial, err := boot.NewInventory(inv.Profiles(), append(others, bh), inv.Default)
	if err != nil {
		return HostView{}, conflict("", "host %q: the inventory with it would be refused: %v", bh.Name, err)
	}
	if bh.SecureBoot && s.CheckKernel != nil {
		// Every kernel this host can now be handed must be signed, as the
		// server's next load of the inventory will check.
		if err := checkSecureBootKernels(trial, nil, s.CheckKernel); err != nil {
			return HostView{}, invalid("secure_boot", "host %q: Secure Boot firmware would refuse a kernel it can get:\n%v", bh.Name, err)
		}
	}
	events := s.event(by, audit.Event{MAC: firstMAC(bh), Stage: "host", File: bh.Name, Result: "host stored"})
	if err := s.Store.PutHost(bh, events...); err != nil {
		var taken *boot.TakenError
		if errors.As(err, &taken) {
			field := "uuid"
			switch taken.What {
			case boot.TakenName:
				field = "name"
			case boot.TakenMAC:
				for i, m := range bh.MACs {
					if strings.EqualFold(m.String(), taken.Value) {
						field = fmt.Sprintf("macs[%d]", i)
					}
				}
			}
			return HostView{}, conflict(field, "%v (%s)", taken, storeSource)
		}
		return HostView{}, err
	}
	s.committed(events)
	shots, err := s.Store.NextBoots()
	if err != nil {
		return HostView{}, err
	}
	return viewOf(trial, bh, shots, s.now()), nil
}

// sameName refuses host name because host o has the same name but for
// case.
func sameName(name string, o boot.Host) *Error {
	return conflict("name", "host %q: host %q (%s) has the same name; host names are unique, ignoring case", name, o.Name, o.Source)
}

func firstMAC(h boot.Host) string {
	if len(h.MACs) > 0 {
		return h.MACs[0].String()
	}
	return ""
}

// DeleteHost removes a host from the store. A host that is not there is
// NotFound, or a Conflict if the config or a file defines it.
func (s *Service) DeleteHost(by Actor, name string) error {
	inv, stored, err := s.current()
	if err != nil {
		return err
	}
	// By name ignoring case, as every other lookup of a host name does;
	// the exact spelling first, for a store written before names were
	// unique ignoring case, which may hold both pc1 and PC1.
	var found *boot.Host
	for i := range stored {
		if stored[i].Name == name {
			found = &stored[i]
			break
		}
		if found == nil && strings.EqualFold(stored[i].Name, name) {
			found = &stored[i]
		}
	}
	notFound := &Error{Kind: NotFound, Field: "name", Msg: fmt.Sprintf("no host %q in the store", name)}
	if found == nil {
		for _, o := range notStored(inv.Hosts()) {
			if strings.EqualFold(o.Name, name) {
				return conflict("name", "host %q is defined in %s, not in the store; remove it there", o.Name, o.Source)
			}
		}
		return notFound
	}
	events := s.event(by, audit.Event{MAC: firstMAC(*found), Stage: "host", File: found.Name, Result: "host removed"})
	switch deleted, err := s.Store.DeleteHost(found.Name, events...); {
	case err != nil:
		return err
	case !deleted: // another writer removed it since it was read
		return notFound
	}
	s.committed(events)
	return nil
}

// clientMAC reads the client of a one-shot: a MAC address, or the name of
// a host with exactly one MAC.
func (s *Service) clientMAC(key string) (net.HardwareAddr, error) {
	if mac, err := net.ParseMAC(key); err == nil {
		return mac, nil
	}
	inv, _, err := s.current()
	if err != nil {
		return nil, err
	}
	// By name as DNS would look it up, ignoring case; the inventory holds
	// at most one host of a name, so the one-shot cannot go to another.
	h, ok := inv.HostNamed(key)
	if !ok {
		return nil, invalid("mac", "%q is neither a MAC address nor a host name", key)
	}
	switch len(h.MACs) {
	case 1:
		return h.MACs[0], nil
	case 0:
		return nil, invalid("mac", "host %q has no MAC address: give the MAC", h.Name)
	}
	macs := make([]string, len(h.MACs))
	for i, m := range h.MACs {
		macs[i] = m.String()
	}
	return nil, invalid("mac", "host %q has %d MAC addresses (%s): give the one to boot", h.Name, len(h.MACs), strings.Join(macs, ", "))
}

// SetNextBoot makes the next boot of mac take req.Entry. The entry must
// be in a menu — the main one or a firmware variant — of a profile the
// MAC can get (boot.Inventory.Reachable: its pinned profile, or every
// profile whose rules its MAC and labels do not rule out, and the default
// profile); otherwise the one-shot could never be delivered and is
// refused. An entry only in variants is accepted and the result says so.
func (s *Service) SetNextBoot(by Actor, macText string, req NextBootRequest) (NextBootResult, error) {
	mac, err := s.clientMAC(macText)
	if err != nil {
		return NextBootResult{}, err
	}
	if req.Entry == "" {
		return NextBootResult{}, invalid("entry", "name the menu entry to boot")
	}
	if req.Expires != 0 {
		if err := checkExpires(req.Expires); err != nil {
			return NextBootResult{}, err
		}
	}
	inv, _, err := s.current()
	if err != nil {
		return NextBootResult{}, err
	}
	res := NextBootResult{MAC: mac.String(), Entry: req.Entry, State: boot.OneShotPending, Always: req.Always}
	reach := inv.Reachable(boot.Selector{MAC: mac})
	if len(reach) == 0 {
		return NextBootResult{}, invalid("mac", "no profile can boot %s: no profile's rules can match it and there is no default profile, so entry %q can never be booted", mac, req.Entry)
	}
	inMain := false
	for _, p := range reach {
		res.Profiles = append(res.Profiles, p.Name)
		if !p.HasEntry(req.Entry) {
			continue
		}
		if _, ok := p.Menu.Entry(req.Entry); ok {
			inMain = true
			continue
		}
		fws := make([]string, 0, len(p.Variants))
		for fw := range p.Variants {
			fws = append(fws, string(fw))
		}
		sort.Strings(fws)
		for _, fw := range fws {
			if _, ok := p.Variants[boot.Firmware(fw)].Entry(req.Entry); ok {
				res.OnlyIn = append(res.OnlyIn, MenuRef{Profile: p.Name, Firmware: boot.Firmware(fw)})
			}
		}
	}
	if !inMain && len(res.OnlyIn) == 0 {
		if len(reach) == 1 {
			return NextBootResult{}, invalid("entry", "%s can get only profile %q, which has no entry %q in any menu", mac, reach[0].Name, req.Entry)
		}
		return NextBootResult{}, invalid("entry", "%s can get profiles %s; none has an entry %q in any menu", mac, quoteAll(res.Profiles), req.Entry)
	}
	if inMain {
		res.OnlyIn = nil
	}
	nb := boot.NextBoot{Entry: req.Entry, Always: req.Always, State: boot.OneShotPending}
	if req.Expires > 0 {
		nb.Expires = s.now().Add(req.Expires)
		res.Expires = nb.Expires
	}
	events := s.event(by, audit.Event{MAC: mac.String(), Stage: "one-shot", File: req.Entry, Result: "set", Reason: res.Note()})
	if err := s.Store.PutNextBoot(mac, nb, events...); err != nil {
		return NextBootResult{}, err
	}
	s.committed(events)
	return res, nil
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// ClearNextBoot removes the one-shot of mac and returns the MAC as
// stored; NotFound if mac has none.
func (s *Service) ClearNextBoot(by Actor, macText string) (string, error) {
	mac, err := s.clientMAC(macText)
	if err != nil {
		return "", err
	}
	shots, err := s.Store.NextBoots()
	if err != nil {
		return "", err
	}
	notFound := &Error{Kind: NotFound, Field: "mac", Msg: fmt.Sprintf("no next boot is set for %s", mac)}
	if shots[mac.String()] == nil { // nothing to clear: no 200, no event
		return "", notFound
	}
	events := s.event(by, audit.Event{MAC: mac.String(), Stage: "one-shot", Result: "cleared"})
	switch deleted, err := s.Store.DeleteNextBoot(mac, events...); {
	case err != nil:
		return "", err
	case !deleted: // another writer cleared it since it was read
		return "", notFound
	}
	s.committed(events)
	return mac.String(), nil
}

// Hosts shows every host: the config's, the inventory files' and the
// store's — the store's as they are stored, even when the inventory with
// them is refused, so that they can be seen and repaired.
func (s *Service) Hosts() ([]HostView, error) {
	inv, stored, err := s.current()
	if err != nil {
		return nil, err
	}
	return s.views(inv, append(notStored(inv.Hosts()), stored...))
}

// FindHosts shows the hosts named key or having the MAC key. A MAC that
// no host has is shown as "(not in inventory)" with the profile it gets;
// anything else that matches nothing is NotFound.
func (s *Service) FindHosts(key string) ([]HostView, error) {
	inv, stored, err := s.current()
	if err != nil {
		return nil, err
	}
	mac, macErr := net.ParseMAC(key)
	var found []boot.Host
	for _, h := range append(notStored(inv.Hosts()), stored...) {
		// Names ignoring case, as a one-shot finds its host; a store
		// holding two such names from before they were refused shows both.
		if strings.EqualFold(h.Name, key) || (macErr == nil && hasMAC(h, mac)) {
			found = append(found, h)
		}
	}
	if len(found) == 0 {
		if macErr != nil {
			return nil, &Error{Kind: NotFound, Field: "name", Msg: fmt.Sprintf("no host %q", key)}
		}
		found = append(found, boot.Host{Name: "(not in inventory)", MACs: []net.HardwareAddr{mac}})
	}
	return s.views(inv, found)
}

func hasMAC(h boot.Host, mac net.HardwareAddr) bool {
	for _, m := range h.MACs {
		if bytes.Equal(m, mac) {
			return true
		}
	}
	return false
}

func (s *Service) views(inv *boot.Inventory, hosts []boot.Host) ([]HostView, error) {
	shots, err := s.Store.NextBoots()
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := make([]HostView, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, viewOf(inv, h, shots, now))
	}
	return out, nil
}

func viewOf(inv *boot.Inventory, h boot.Host, shots map[string]*boot.NextBoot, now time.Time) HostView {
	v := HostView{Name: h.Name, MACs: []string{}, UUID: h.UUID, Labels: h.Labels, Profile: h.Profile, SecureBoot: h.SecureBoot, Source: h.Source}
	for _, m := range h.MACs {
		v.MACs = append(v.MACs, m.String())
		if nb, ok := shots[strings.ToLower(m.String())]; ok && v.NextBoot == nil {
			nv := nextBootView(m.String(), nb, now)
			v.NextBoot = &nv
		}
	}
	var first net.HardwareAddr
	if len(h.MACs) > 0 {
		first = h.MACs[0]
	}
	if c, ok := inv.Choose(boot.Client{MAC: first, UUID: h.UUID}); ok {
		v.ChosenProfile, v.Why = c.Profile.Name, c.Why
	}
	return v
}

func nextBootView(mac string, nb *boot.NextBoot, now time.Time) NextBootView {
	v := NextBootView{MAC: mac, Entry: nb.Entry, State: string(nb.State), Always: nb.Always}
	if !nb.Expires.IsZero() {
		v.Expires = nb.Expires.Format(time.RFC3339)
		if now.After(nb.Expires) && nb.State != boot.OneShotBooted {
			v.State = string(boot.OneShotExpired)
		}
	}
	return v
}

// NextBoots shows every stored one-shot, by MAC.
func (s *Service) NextBoots() ([]NextBootView, error) {
	shots, err := s.Store.NextBoots()
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := make([]NextBootView, 0, len(shots))
	for mac, nb := range shots {
		out = append(out, nextBootView(mac, nb, now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MAC < out[j].MAC })
	return out, nil
}
