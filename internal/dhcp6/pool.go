package dhcp6

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"bootforge/internal/dhcp/lease"
)

// ErrNoAddress means every address of the pool is held.
var ErrNoAddress = errors.New("no free address in the pool")

// ErrNoBinding means the IA does not hold the address it releases or
// declines.
var ErrNoBinding = errors.New("not held by this client")

// Pool hands out the addresses of one /64 to IAs. A client's IA is named
// by its DUID and IAID together (RFC 8415 §12), which is what the lease's
// ClientID holds; the lease's MAC is the one a link-layer DUID carries, if
// any. Offers are held in memory; a binding is claimed in the store
// (ClaimLease won) before the Reply that carries it is built.
type Pool struct {
	Subnet netip.Prefix

	mu     sync.Mutex
	ranges []lease.Range
	byIP   map[netip.Addr]*lease.Lease
	byIA   map[string]*lease.Lease
	cursor netip.Addr
	store  lease.Store
	now    func() time.Time
}

// NewPool makes the pool of subnet with ranges, holding the leases of
// existing that are inside subnet.
func NewPool(subnet netip.Prefix, ranges []lease.Range, store lease.Store, existing []lease.Lease) *Pool {
	p := &Pool{Subnet: subnet, ranges: ranges, byIP: map[netip.Addr]*lease.Lease{}, byIA: map[string]*lease.Lease{},
		store: store, now: time.Now}
	if len(ranges) > 0 {
		p.cursor = ranges[0].First
	}
	for _, l := range existing {
		if !subnet.Contains(l.IP) {
			continue
		}
		l := l
		p.byIP[l.IP] = &l
		if l.State == lease.Bound && l.ClientID != nil {
			p.byIA[string(l.ClientID)] = &l
		}
	}
	return p
}

// IAKey is the lease ClientID of one IA: the client's DUID, then its IAID.
func IAKey(duid []byte, iaid [4]byte) []byte {
	return append(append([]byte(nil), duid...), iaid[:]...)
}

// Offer picks an address for the IA ia and holds it for hold: the IA's
// current one, else hint if it is free, else the next free one.
func (p *Pool) Offer(ia []byte, mac net.HardwareAddr, hint netip.Addr, hold time.Duration) (lease.Lease, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	ip, err := p.pick(ia, hint, now)
	if err != nil {
		return lease.Lease{}, err
	}
	if l := p.byIP[ip]; l != nil && l.State == lease.Bound && l.Expires.After(now) {
		return *l, nil
	}
	l := &lease.Lease{IP: ip, MAC: mac, ClientID: ia, Expires: now.Add(hold), State: lease.Offered}
	p.byIP[ip], p.byIA[string(ia)] = l, l
	return *l, nil
}

// pick chooses an address for ia. The ranges of a /64 are too large to
// count, so the search walks from a cursor: among n held addresses, n+1
// steps find a free one if a range has room. Caller holds p.mu.
func (p *Pool) pick(ia []byte, hint netip.Addr, now time.Time) (netip.Addr, error) {
	if l, ok := p.byIA[string(ia)]; ok && p.byIP[l.IP] == l && p.inRanges(l.IP) && p.freeFor(l.IP, ia, now) {
		return l.IP, nil
	}
	if hint.IsValid() && p.inRanges(hint) && p.freeFor(hint, ia, now) {
		return hint, nil
	}
	if len(p.ranges) == 0 {
		return netip.Addr{}, ErrNoAddress
	}
	a := p.cursor
	for range len(p.byIP) + 1 {
		if !p.inRanges(a) {
			a = p.after(a)
		}
		if p.freeFor(a, ia, now) {
			p.cursor = p.after(a)
			return a, nil
		}
		a = p.after(a)
	}
	return netip.Addr{}, ErrNoAddress
}

// after is the address after a in the ranges, wrapping to the first.
func (p *Pool) after(a netip.Addr) netip.Addr {
	for i, r := range p.ranges {
		if r.Contains(a) {
			if n := a.Next(); n.IsValid() && r.Contains(n) {
				return n
			}
			return p.ranges[(i+1)%len(p.ranges)].First
		}
	}
	for _, r := range p.ranges {
		if a.Less(r.First) {
			return r.First
		}
	}
	return p.ranges[0].First
}

func (p *Pool) inRanges(a netip.Addr) bool {
	for _, r := range p.ranges {
		if r.Contains(a) {
			return true
		}
	}
	return false
}

// freeFor reports whether a can go to ia now.
func (p *Pool) freeFor(a netip.Addr, ia []byte, now time.Time) bool {
	l, ok := p.byIP[a]
	if !ok || !l.Expires.After(now) {
		return true
	}
	return l.State != lease.Declined && string(l.ClientID) == string(ia)
}

// Bind gives ip to ia for d, durably: the lease is stored before Bind
// returns, and a store failure (lease.ErrStore) leaves the pool as it was.
// The write happens under the pool's lock: DHCPv6 on a boot network is a
// few clients a second, and one lock keeps two binds of one address apart.
func (p *Pool) Bind(ia []byte, mac net.HardwareAddr, ip netip.Addr, d time.Duration) (lease.Lease, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	switch {
	case !p.inRanges(ip):
		return lease.Lease{}, fmt.Errorf("%s is outside the pools of %s", ip, p.Subnet)
	case !p.freeFor(ip, ia, now):
		return lease.Lease{}, fmt.Errorf("%s is held by another client", ip)
	}
	l := &lease.Lease{IP: ip, MAC: mac, ClientID: ia, Expires: now.Add(d), State: lease.Bound}
	// Claimed, not just written: on a store several servers share, the
	// store decides who gets an address, as for DHCPv4.
	held, won, err := p.store.ClaimLease(*l)
	if err != nil {
		return lease.Lease{}, fmt.Errorf("%w: %w", lease.ErrStore, err)
	}
	if !won {
		h := held
		p.byIP[ip] = &h // learnt: another server's client holds it
		return lease.Lease{}, fmt.Errorf("%s is held by another client", ip)
	}
	if prev, ok := p.byIA[string(ia)]; ok && prev.IP != ip && p.byIP[prev.IP] == prev {
		delete(p.byIP, prev.IP) // the IA moved: its old address is free
		if prev.State == lease.Bound {
			p.store.DeleteLease(prev.IP)
		}
	}
	p.byIP[ip], p.byIA[string(ia)] = l, l
	return *l, nil
}

// Holds reports whether ia holds ip now (bound or offered).
func (p *Pool) Holds(ia []byte, ip netip.Addr) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.byIP[ip]
	return ok && l.Expires.After(p.now()) && string(l.ClientID) == string(ia) && l.State != lease.Declined
}

// Release frees ip if ia holds it.
func (p *Pool) Release(ia []byte, ip netip.Addr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.byIP[ip]
	if !ok || string(l.ClientID) != string(ia) {
		return fmt.Errorf("%s: %w", ip, ErrNoBinding)
	}
	if err := p.store.DeleteLease(ip); err != nil {
		return err
	}
	delete(p.byIP, ip)
	if p.byIA[string(ia)] == l {
		delete(p.byIA, string(ia))
	}
	return nil
}

// Decline quarantines ip, which ia found in use on the link, for d.
func (p *Pool) Decline(ia []byte, ip netip.Addr, d time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.byIP[ip]
	if !ok || string(l.ClientID) != string(ia) {
		return fmt.Errorf("%s: %w", ip, ErrNoBinding)
	}
	nl := lease.Lease{IP: ip, Expires: p.now().Add(d), State: lease.Declined}
	if err := p.store.PutLease(nl); err != nil {
		return err
	}
	p.byIP[ip] = &nl
	delete(p.byIA, string(ia))
	return nil
}
