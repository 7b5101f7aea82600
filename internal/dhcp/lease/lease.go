// Package lease allocates IPv4 addresses from a subnet's pools and keeps
// track of who holds which.
//
// The allocator picks in memory, under one lock per subnet, because a DHCP
// exchange must be answered in microseconds. The store decides: a binding
// is claimed there (Store.ClaimLease: one statement that takes the address
// only if it is free or already this client's) before its ACK is sent, so
// an ACKed lease survives a crash, and two servers sharing one database
// never bind one address to two clients. The in-memory pool is a cache of
// the store: a lost claim teaches it the winner's lease, and it tries the
// next address. On a store several servers share (Store.Shared), offers
// are claimed too, for the offer hold, so that two servers do not offer
// one address to two clients; on a store of its own, a server keeps offers
// in memory only (a crash forgets them and the client asks again).
//
// When the store cannot be reached, a client renewing a lease the cache
// holds and that has not expired is answered from the cache (ErrCached:
// the lease is not extended), and nothing new is offered or bound.
package lease

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"bootforge/internal/audit"
)

// State is a lease's state.
type State string

// Lease states. Only bound and declined leases are stored.
const (
	Offered  State = "offered"
	Bound    State = "bound"
	Declined State = "declined" // the address is in use by someone else: quarantined until Expires
)

// Lease is one address held by one client.
type Lease struct {
	IP       netip.Addr
	MAC      net.HardwareAddr
	ClientID []byte
	Hostname string
	Expires  time.Time
	State    State
}

// Store persists leases.
type Store interface {
	// LoadLeases returns every stored lease.
	LoadLeases() ([]Lease, error)
	// PutLease stores a lease durably: when it returns nil, the lease
	// survives a crash.
	PutLease(l Lease) error
	// DeleteLease forgets the lease of ip.
	DeleteLease(ip netip.Addr) error
	// ClaimLease stores l durably only if its address is free in the
	// store: no lease, an expired one, or one of the same client that is
	// not declined. Otherwise it returns the lease that holds the address
	// and false. Two concurrent claims of one address for two clients
	// never both win.
	ClaimLease(l Lease) (held Lease, won bool, err error)
	// ReleaseOffer forgets l, an offer this server claimed, if the store
	// still holds that claim: the same address, client and expiry, still
	// offered. A row written since (a bind, another claim) stays.
	ReleaseOffer(l Lease) error
	// Shared reports whether other servers allocate from the same store.
	Shared() bool
	// LeaseOf returns the client's bound, unexpired lease in the store,
	// or false: on a shared store, another server may have made it.
	LeaseOf(mac net.HardwareAddr, clientID []byte) (Lease, bool, error)
}

// Hostname is a client's name as a lease keeps it: the boot log's text
// (audit.Text), valid UTF-8 without NUL, a bad byte written as \xNN. A
// client's option 12 is whatever bytes it sent, and PostgreSQL refuses
// such text, which would cost the client its ACK; cleaned here, before
// any store sees it, every backend keeps the same name.
func Hostname(s string) string { return audit.Text(s) }

// Reservation is a fixed address for one client.
type Reservation struct {
	IP       netip.Addr
	MAC      net.HardwareAddr // either or both
	ClientID []byte
	Hostname string
}

// Range is an inclusive range of addresses, written "first-last" as in
// "192.0.2.100-192.0.2.200" (configuration, API, logs). Both ends are of
// one address family and Last is not before First; which family a pool
// needs is for validation to say. DHCPv4 and DHCPv6 pools share it.
type Range struct{ First, Last netip.Addr }

// Contains reports whether a is in the range.
func (r Range) Contains(a netip.Addr) bool { return !a.Less(r.First) && !r.Last.Less(a) }

// UnmarshalText parses "first-last"; spaces around either address are
// allowed.
func (r *Range) UnmarshalText(b []byte) error {
	s := string(b)
	a, z, ok := strings.Cut(s, "-")
	if !ok {
		return fmt.Errorf("%q is not a range like 192.0.2.100-192.0.2.200", s)
	}
	first, err1 := netip.ParseAddr(strings.TrimSpace(a))
	last, err2 := netip.ParseAddr(strings.TrimSpace(z))
	if err1 != nil || err2 != nil {
		return fmt.Errorf("%q is not a range of addresses", s)
	}
	if first.Is4() != last.Is4() {
		return fmt.Errorf("%q mixes an IPv4 and an IPv6 address", s)
	}
	if last.Less(first) {
		return fmt.Errorf("%q: the last address is before the first", s)
	}
	*r = Range{First: first, Last: last}
	return nil
}

// MarshalText writes "first-last".
func (r Range) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

func (r Range) String() string { return r.First.String() + "-" + r.Last.String() }

// ErrNoAddress means the pool is exhausted.
var ErrNoAddress = errors.New("no free address in the pool")

// ErrStore wraps a failure to store a lease: the client must not get an ACK.
var ErrStore = errors.New("storing lease")

// ErrCached says the store could not be reached and the returned lease is
// the client's unexpired one from the cache, not extended: it may be
// ACKed for the time it has left.
var ErrCached = errors.New("store unreachable, lease answered from the cache")

// ErrTaken says the store gave the address to another client (another
// server's, or an exchange this server had not seen).
var ErrTaken = errors.New("held by another client")

// Pool hands out the addresses of one subnet. The leases it keeps hold
// copies of the MACs and client identifiers they are given, which may be
// parts of a request's buffer.
type Pool struct {
	Subnet netip.Prefix

	mu       sync.Mutex
	ranges   []Range
	size     int
	cursor   int // index of the next address to try, across ranges
	byIP     map[netip.Addr]*Lease
	byClient map[string]*Lease
	byMAC    map[string]*Lease          // the latest record for a hardware address
	resv     map[string]Reservation     // by client key
	resvIP   map[netip.Addr]Reservation // by address
	store    Store
	now      func() time.Time
}

// NewPool makes a pool for subnet with the given ranges and reservations,
// loading current leases from store.
func NewPool(subnet netip.Prefix, ranges []Range, resv []Reservation, store Store, existing []Lease) *Pool {
	p := &Pool{
		Subnet:   subnet,
		ranges:   ranges,
		byIP:     map[netip.Addr]*Lease{},
		byClient: map[string]*Lease{},
		byMAC:    map[string]*Lease{},
		resv:     map[string]Reservation{},
		resvIP:   map[netip.Addr]Reservation{},
		store:    store,
		now:      time.Now,
	}
	for _, r := range ranges {
		p.size += int(ipToU32(r.Last)-ipToU32(r.First)) + 1
	}
	if store != nil && store.Shared() && p.size > 0 {
		// Servers sharing a store start looking at different places, so
		// that they seldom claim the same address at once.
		p.cursor = rand.IntN(p.size)
	}
	for _, r := range resv {
		if r.MAC != nil {
			p.resv[macKey(r.MAC)] = r
		}
		if r.ClientID != nil {
			p.resv[idKey(r.ClientID)] = r
		}
		p.resvIP[r.IP] = r
	}
	for _, l := range existing {
		if !subnet.Contains(l.IP) {
			continue
		}
		l := l
		p.byIP[l.IP] = &l
		if l.State == Bound {
			p.byClient[clientKey(l.MAC, l.ClientID)] = &l
			if l.MAC != nil {
				p.byMAC[string(l.MAC)] = &l
			}
		}
	}
	return p
}

// Size is the number of addresses in the pool's ranges.
func (p *Pool) Size() int { return p.size }

// Used counts the addresses bound or held now.
func (p *Pool) Used() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	n := 0
	for _, l := range p.byIP {
		if l.Expires.After(now) {
			n++
		}
	}
	return n
}

// Free counts the addresses of the pool's ranges that a new client could
// get now: neither held by a lease that has not expired nor reserved.
func (p *Pool) Free() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	taken := 0
	for ip, l := range p.byIP {
		if l.Expires.After(now) && p.inRanges(ip) {
			taken++
		}
	}
	for ip := range p.resvIP {
		if l, held := p.byIP[ip]; (!held || !l.Expires.After(now)) && p.inRanges(ip) {
			taken++
		}
	}
	return p.size - taken
}

// Offer picks an address for a client and holds it for hold. It prefers,
// in order: the client's reservation, its current lease, the address it
// asked for, and then the next free one.
//
// On a shared store, a client this server does not know is looked up
// there first (it keeps a lease another server gave it), the offer is
// claimed there for hold, and an address another server holds is learnt
// and another one tried, from a random place. An unreachable store gets
// no offer: a server that cannot claim offers nothing new.
func (p *Pool) Offer(mac net.HardwareAddr, clientID []byte, requested netip.Addr, hold time.Duration) (Lease, error) {
	key := clientKey(mac, clientID)
	p.mu.Lock()
	_, resv := p.reservation(mac, clientID)
	unknown := !resv && p.store.Shared() && p.holding(key, mac, clientID) == nil
	p.mu.Unlock()
	var found *Lease
	if unknown {
		// A client new to this server may hold a lease from another one
		// (which may have died): it keeps that address. The lookup is a
		// read, made without the pool's lock so that other clients'
		// offers do not wait for it.
		l, ok, err := p.store.LeaseOf(mac, clientID)
		if err != nil {
			return Lease{}, fmt.Errorf("%w: %w", ErrStore, err)
		}
		if ok {
			found = &l
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if found != nil && p.inRanges(found.IP) && p.holding(key, mac, clientID) == nil {
		p.learn(*found)
	}
	for tries := 0; ; tries++ {
		ip, err := p.pick(key, mac, clientID, requested, now)
		if err != nil {
			return Lease{}, err
		}
		l := p.byIP[ip]
		if l != nil && l.State == Bound && l.Expires.After(now) {
			return *l, nil // already bound to this client: offer it as it is
		}
		nl := &Lease{IP: ip, MAC: bytes.Clone(mac), ClientID: bytes.Clone(clientID), Expires: now.Add(hold), State: Offered}
		if r, ok := p.resvIP[ip]; ok {
			nl.Hostname = Hostname(r.Hostname)
		}
		prevIP, prevClient := p.byIP[ip], p.byClient[key]
		p.byIP[ip] = nl // held: other offers pick around it meanwhile
		p.byClient[key] = nl
		if p.store.Shared() {
			// The claim's round trip is made without the pool's lock,
			// as Bind's is, so that one client's wait on the database
			// does not hold up every other client of the subnet.
			p.mu.Unlock()
			held, won, err := p.store.ClaimLease(*nl)
			p.mu.Lock()
			if err != nil || !won {
				if p.byIP[ip] == nl {
					restore(p.byIP, ip, prevIP)
				}
				if p.byClient[key] == nl {
					restore(p.byClient, key, prevClient)
				}
			}
			if err != nil {
				return Lease{}, fmt.Errorf("%w: %w", ErrStore, err)
			}
			if !won {
				p.learn(held)
				// The other server is likely handing out the addresses
				// after this one too, which this pool has not seen:
				// walking on would lose every claim of that run, one
				// round trip each. Go on from somewhere else.
				p.cursor = rand.IntN(p.size)
				if tries < 64 {
					now = p.now()
					continue
				}
				return Lease{}, fmt.Errorf("%s: %w", ip, ErrTaken)
			}
		}
		p.byMAC[string(mac)] = nl
		return *nl, nil
	}
}

// learn records a lease another server holds, as the store showed it.
// Caller holds p.mu.
func (p *Pool) learn(l Lease) {
	if !p.Subnet.Contains(l.IP) {
		return
	}
	if old := p.byIP[l.IP]; old != nil {
		if c := p.byClient[clientKey(old.MAC, old.ClientID)]; c == old {
			delete(p.byClient, clientKey(old.MAC, old.ClientID))
		}
	}
	nl := l
	p.byIP[l.IP] = &nl
	if l.State == Bound {
		p.byClient[clientKey(l.MAC, l.ClientID)] = &nl
		if l.MAC != nil {
			p.byMAC[string(l.MAC)] = &nl
		}
	}
}

// holding returns the client's live record: by its key, or, when the
// client and the record differ only in whether option 61 was sent, by its
// MAC. UEFI firmware sends no client id and the iPXE it loads sends one;
// they are one machine and should keep one address (Kea matches the same
// way).
func (p *Pool) holding(key string, mac net.HardwareAddr, clientID []byte) *Lease {
	if l, ok := p.byClient[key]; ok && p.byIP[l.IP] == l {
		return l
	}
	if l, ok := p.byMAC[string(mac)]; ok && p.byIP[l.IP] == l && sameClient(l, mac, clientID) {
		return l
	}
	return nil
}

// pick chooses the address for a client. Caller holds p.mu.
func (p *Pool) pick(key string, mac net.HardwareAddr, clientID []byte, requested netip.Addr, now time.Time) (netip.Addr, error) {
	if r, ok := p.reservation(mac, clientID); ok {
		if p.freeFor(r.IP, mac, clientID, now, true) {
			return r.IP, nil
		}
		return netip.Addr{}, fmt.Errorf("reserved address %s is held by another client", r.IP)
	}
	if l := p.holding(key, mac, clientID); l != nil && p.inRanges(l.IP) && p.freeFor(l.IP, mac, clientID, now, false) {
		return l.IP, nil
	}
	if requested.IsValid() && p.inRanges(requested) && p.freeFor(requested, mac, clientID, now, false) {
		return requested, nil
	}
	for i := 0; i < p.size; i++ {
		ip := p.at((p.cursor + i) % p.size)
		if p.freeFor(ip, mac, clientID, now, false) {
			p.cursor = (p.cursor + i + 1) % p.size
			return ip, nil
		}
	}
	return netip.Addr{}, ErrNoAddress
}

// Bind commits the lease of ip to a client for d, durably. It fails if the
// address is not this client's to take. The hostname (the client's, else
// its reservation's) is kept as Hostname cleans it. The store write happens outside
// the pool's lock, so that concurrent binds share one disk sync.
func (p *Pool) Bind(ip netip.Addr, mac net.HardwareAddr, clientID []byte, hostname string, d time.Duration) (Lease, error) {
	p.mu.Lock()
	now := p.now()
	if err := p.canBind(ip, mac, clientID, now); err != nil {
		p.mu.Unlock()
		return Lease{}, err
	}
	if hostname == "" {
		if r, ok := p.resvIP[ip]; ok {
			hostname = r.Hostname
		}
	}
	hostname = Hostname(hostname)
	key := clientKey(mac, clientID)
	nl := &Lease{IP: ip, MAC: bytes.Clone(mac), ClientID: bytes.Clone(clientID), Hostname: hostname, Expires: now.Add(d), State: Bound}
	prevIP, prevClient := p.byIP[ip], p.holding(key, mac, clientID)
	p.byIP[ip] = nl // claimed: a concurrent Bind of ip by another client now fails
	p.byClient[key] = nl
	p.byMAC[string(mac)] = nl // a hint: checked against byIP on use
	p.mu.Unlock()

	held, won, err := p.store.ClaimLease(*nl)

	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil || !won {
		if p.byIP[ip] == nl {
			restore(p.byIP, ip, prevIP)
		}
		if p.byClient[key] == nl {
			delete(p.byClient, key)
			if prevClient != nil {
				p.byClient[clientKey(prevClient.MAC, prevClient.ClientID)] = prevClient
			}
		}
	}
	switch {
	case err != nil:
		// A renewal of a lease the cache holds and that has not expired is
		// answered from the cache, unchanged.
		if prevIP != nil && prevIP == prevClient && prevIP.State == Bound && prevIP.Expires.After(now) {
			return *prevIP, fmt.Errorf("%w: %w", ErrCached, err)
		}
		return Lease{}, fmt.Errorf("%w: %w", ErrStore, err)
	case !won:
		p.learn(held)
		return Lease{}, fmt.Errorf("%s: %w", ip, ErrTaken)
	}
	if prevClient != nil && prevClient.IP != ip && p.byIP[prevClient.IP] == prevClient {
		delete(p.byIP, prevClient.IP) // the client moved: its old address is free
		// Only an unexpired lease is surely still this client's in the
		// store: an expired one may have gone to another client since.
		if prevClient.State == Bound && prevClient.Expires.After(now) {
			p.store.DeleteLease(prevClient.IP)
		}
	}
	return *nl, nil
}

func (p *Pool) canBind(ip netip.Addr, mac net.HardwareAddr, clientID []byte, now time.Time) error {
	if !p.Subnet.Contains(ip) {
		return fmt.Errorf("%s is not in %s", ip, p.Subnet)
	}
	r, hasResv := p.reservation(mac, clientID)
	if hasResv && r.IP != ip {
		return fmt.Errorf("client has reservation %s, asked for %s", r.IP, ip)
	}
	own := hasResv && r.IP == ip
	if _, reserved := p.resvIP[ip]; reserved && !own {
		return fmt.Errorf("%s is reserved for another client", ip)
	}
	if !own && !p.inRanges(ip) {
		return fmt.Errorf("%s is outside the pools", ip)
	}
	if !p.freeFor(ip, mac, clientID, now, own) {
		return fmt.Errorf("%s is held by another client", ip)
	}
	return nil
}

func restore[K comparable](m map[K]*Lease, k K, prev *Lease) {
	if prev == nil {
		delete(m, k)
	} else {
		m[k] = prev
	}
}

// Lookup returns the client's current lease.
func (p *Pool) Lookup(mac net.HardwareAddr, clientID []byte) (Lease, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.holding(clientKey(mac, clientID), mac, clientID)
	if l == nil || l.State != Bound {
		return Lease{}, false
	}
	return *l, true
}

// Release frees ip if this client holds it.
func (p *Pool) Release(ip netip.Addr, mac net.HardwareAddr, clientID []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.byIP[ip]
	if !ok || !sameClient(l, mac, clientID) {
		return fmt.Errorf("%s is not held by this client", ip)
	}
	// An expired lease may have gone to another client through another
	// server: it is not this client's to delete.
	if l.Expires.After(p.now()) {
		if err := p.store.DeleteLease(ip); err != nil {
			return err
		}
	}
	delete(p.byIP, ip)
	if c, ok := p.byClient[clientKey(mac, clientID)]; ok && c == l {
		delete(p.byClient, clientKey(mac, clientID))
	}
	return nil
}

// Decline quarantines ip, which the client found in use, for d.
func (p *Pool) Decline(ip netip.Addr, mac net.HardwareAddr, clientID []byte, d time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.byIP[ip]
	if !ok || !sameClient(l, mac, clientID) {
		return fmt.Errorf("%s was not offered to this client", ip)
	}
	nl := Lease{IP: ip, Expires: p.now().Add(d), State: Declined}
	if err := p.store.PutLease(nl); err != nil {
		return err
	}
	p.byIP[ip] = &nl
	delete(p.byClient, clientKey(mac, clientID))
	return nil
}

// Forget drops an outstanding offer (the client chose another server).
// On a shared store the offer's claim is released there too: left until
// its hold ran out, it kept from every server an address no client would
// take, one for each client that two servers answered.
func (p *Pool) Forget(mac net.HardwareAddr, clientID []byte) error {
	p.mu.Lock()
	l := p.holding(clientKey(mac, clientID), mac, clientID)
	if l == nil || l.State != Offered {
		p.mu.Unlock()
		return nil
	}
	delete(p.byIP, l.IP)
	offer := *l
	p.mu.Unlock()
	if !p.store.Shared() {
		return nil
	}
	if err := p.store.ReleaseOffer(offer); err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err) // the claim lapses after its hold anyway
	}
	return nil
}

// Leases returns a snapshot of the current leases.
func (p *Pool) Leases() []Lease {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Lease, 0, len(p.byIP))
	for _, l := range p.byIP {
		out = append(out, *l)
	}
	return out
}

// ReservedName is the hostname the client's reservation gives it, if any.
func (p *Pool) ReservedName(mac net.HardwareAddr, clientID []byte) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, _ := p.reservation(mac, clientID)
	return r.Hostname
}

func (p *Pool) reservation(mac net.HardwareAddr, clientID []byte) (Reservation, bool) {
	if clientID != nil {
		if r, ok := p.resv[idKey(clientID)]; ok {
			return r, true
		}
	}
	r, ok := p.resv[macKey(mac)]
	return r, ok
}

// freeFor reports whether ip can go to this client now. A reserved address
// goes only to its owner (reserved says the caller already checked that).
func (p *Pool) freeFor(ip netip.Addr, mac net.HardwareAddr, clientID []byte, now time.Time, reserved bool) bool {
	if _, isResv := p.resvIP[ip]; isResv && !reserved {
		return false
	}
	if ip == p.Subnet.Addr() || ip == lastAddr(p.Subnet) {
		return false // network and broadcast addresses
	}
	l, ok := p.byIP[ip]
	if !ok || !l.Expires.After(now) {
		return true
	}
	return l.State != Declined && sameClient(l, mac, clientID)
}

func (p *Pool) inRanges(ip netip.Addr) bool {
	for _, r := range p.ranges {
		if r.Contains(ip) {
			return true
		}
	}
	return false
}

// at returns the i-th address across the ranges.
func (p *Pool) at(i int) netip.Addr {
	for _, r := range p.ranges {
		n := int(ipToU32(r.Last)-ipToU32(r.First)) + 1
		if i < n {
			return u32ToIP(ipToU32(r.First) + uint32(i))
		}
		i -= n
	}
	panic("lease: index past the pool")
}

// sameClient: two client ids must be equal (RFC 2131 4.2: a client id
// beats the MAC); without one on either side, the MACs decide.
func sameClient(l *Lease, mac net.HardwareAddr, clientID []byte) bool {
	if l.ClientID != nil && clientID != nil {
		return string(l.ClientID) == string(clientID)
	}
	return string(l.MAC) == string(mac)
}

// clientKey identifies a client: option 61 if it sent one, else its MAC
// (RFC 2131 4.2).
func clientKey(mac net.HardwareAddr, clientID []byte) string {
	if clientID != nil {
		return idKey(clientID)
	}
	return macKey(mac)
}

func idKey(id []byte) string             { return "id:" + string(id) }
func macKey(mac net.HardwareAddr) string { return "mac:" + string(mac) }

func ipToU32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func u32ToIP(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func lastAddr(p netip.Prefix) netip.Addr {
	v := ipToU32(p.Addr()) | (1<<(32-p.Bits()) - 1)
	return u32ToIP(v)
}
