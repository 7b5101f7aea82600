package lease

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// memStore is an in-memory Store for logic tests; the SQLite store has its
// own tests against a real database.
type memStore struct {
	mu     sync.Mutex
	m      map[netip.Addr]Lease
	fail   bool
	shared bool // as a store other servers use
}

func newMemStore() *memStore { return &memStore{m: map[netip.Addr]Lease{}} }

func (s *memStore) LoadLeases() ([]Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Lease
	for _, l := range s.m {
		out = append(out, l)
	}
	return out, nil
}

func (s *memStore) PutLease(l Lease) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("disk full")
	}
	s.m[l.IP] = l
	return nil
}

func (s *memStore) ClaimLease(l Lease) (Lease, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return Lease{}, false, errors.New("disk full")
	}
	if h, ok := s.m[l.IP]; ok && h.Expires.After(time.Now()) && (h.State == Declined || !sameClient(&h, l.MAC, l.ClientID)) {
		return h, false, nil
	}
	s.m[l.IP] = l
	return l, true, nil
}

func (s *memStore) ReleaseOffer(l Lease) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("disk full")
	}
	if h, ok := s.m[l.IP]; ok && h.State == Offered && h.MAC.String() == l.MAC.String() && h.Expires.Equal(l.Expires) {
		delete(s.m, l.IP)
	}
	return nil
}

func (s *memStore) Shared() bool { return s.shared }

func (s *memStore) LeaseOf(mac net.HardwareAddr, clientID []byte) (Lease, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return Lease{}, false, errors.New("disk full")
	}
	for _, l := range s.m {
		if l.State == Bound && l.Expires.After(time.Now()) && sameClient(&l, mac, clientID) {
			return l, true, nil
		}
	}
	return Lease{}, false, nil
}

func (s *memStore) DeleteLease(ip netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, ip)
	return nil
}

var (
	subnet = netip.MustParsePrefix("192.0.2.0/24")
	macA   = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0xa}
	macB   = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0xb}
	macR   = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0xf}
	ip     = netip.MustParseAddr
)

func newTestPool(t *testing.T, first, last string, st Store) *Pool {
	t.Helper()
	resv := []Reservation{{IP: ip("192.0.2.50"), MAC: macR, Hostname: "reserved"}}
	return NewPool(subnet, []Range{{ip(first), ip(last)}}, resv, st, nil)
}

func TestOfferThenBind(t *testing.T) {
	st := newMemStore()
	p := newTestPool(t, "192.0.2.100", "192.0.2.110", st)
	o, err := p.Offer(macA, nil, netip.Addr{}, time.Minute)
	if err != nil || o.IP != ip("192.0.2.100") || o.State != Offered {
		t.Fatalf("offer = %+v, %v", o, err)
	}
	if len(st.m) != 0 {
		t.Fatal("an offer was stored")
	}
	again, _ := p.Offer(macA, nil, netip.Addr{}, time.Minute)
	if again.IP != o.IP {
		t.Fatalf("second offer %s, first %s", again.IP, o.IP)
	}
	l, err := p.Bind(o.IP, macA, nil, "pc1", time.Hour)
	if err != nil || l.State != Bound || st.m[o.IP].Hostname != "pc1" {
		t.Fatalf("bind = %+v, %v; stored %+v", l, err, st.m[o.IP])
	}
	if _, err := p.Bind(o.IP, macB, nil, "", time.Hour); err == nil {
		t.Fatal("another client bound a held address")
	}
	ob, _ := p.Offer(macB, nil, o.IP, time.Minute) // asks for A's address
	if ob.IP == o.IP {
		t.Fatal("offered A's address to B")
	}
}

func TestReservation(t *testing.T) {
	p := newTestPool(t, "192.0.2.100", "192.0.2.110", newMemStore())
	if o, _ := p.Offer(macA, nil, ip("192.0.2.50"), time.Minute); o.IP == ip("192.0.2.50") {
		t.Fatal("reserved address offered to a stranger")
	}
	if _, err := p.Bind(ip("192.0.2.50"), macA, nil, "", time.Hour); err == nil {
		t.Fatal("stranger bound the reserved address")
	}
	o, err := p.Offer(macR, nil, netip.Addr{}, time.Minute)
	if err != nil || o.IP != ip("192.0.2.50") || o.Hostname != "reserved" {
		t.Fatalf("owner offered %+v, %v", o, err)
	}
	if _, err := p.Bind(ip("192.0.2.101"), macR, nil, "", time.Hour); err == nil {
		t.Fatal("owner bound an address other than its reservation")
	}
	if l, err := p.Bind(ip("192.0.2.50"), macR, nil, "", time.Hour); err != nil || l.Hostname != "reserved" {
		t.Fatalf("owner bind: %+v %v", l, err)
	}
}

func TestClientIDOverMAC(t *testing.T) {
	p := newTestPool(t, "192.0.2.100", "192.0.2.110", newMemStore())
	a, _ := p.Offer(macA, []byte{1, 2, 3}, netip.Addr{}, time.Minute)
	p.Bind(a.IP, macA, []byte{1, 2, 3}, "", time.Hour)
	// Same MAC, another client id: another client (RFC 2131 4.2).
	b, _ := p.Offer(macA, []byte{9}, netip.Addr{}, time.Minute)
	if a.IP == b.IP {
		t.Fatal("two client ids share an address")
	}
}

func TestExhaustionAndExpiry(t *testing.T) {
	p := newTestPool(t, "192.0.2.100", "192.0.2.101", newMemStore())
	now := time.Unix(1_000_000, 0)
	p.now = func() time.Time { return now }
	for i, mac := range []net.HardwareAddr{macA, macB} {
		o, err := p.Offer(mac, nil, netip.Addr{}, time.Minute)
		if err != nil {
			t.Fatal(i, err)
		}
		if _, err := p.Bind(o.IP, mac, nil, "", time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	third := net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0xc}
	if _, err := p.Offer(third, nil, netip.Addr{}, time.Minute); !errors.Is(err, ErrNoAddress) {
		t.Fatalf("full pool: %v", err)
	}
	now = now.Add(2 * time.Hour)
	if o, err := p.Offer(third, nil, netip.Addr{}, time.Minute); err != nil {
		t.Fatalf("after expiry: %v", err)
	} else if used := p.Used(); used != 1 {
		t.Fatalf("used = %d, want 1 (the new offer)", used)
	} else if !subnet.Contains(o.IP) {
		t.Fatal(o.IP)
	}
}

func TestReleaseAndDecline(t *testing.T) {
	st := newMemStore()
	p := newTestPool(t, "192.0.2.100", "192.0.2.100", st)
	o, _ := p.Offer(macA, nil, netip.Addr{}, time.Minute)
	p.Bind(o.IP, macA, nil, "", time.Hour)
	if err := p.Release(o.IP, macB, nil); err == nil {
		t.Fatal("B released A's lease")
	}
	if err := p.Release(o.IP, macA, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.m[o.IP]; ok {
		t.Fatal("released lease still stored")
	}
	ob, err := p.Offer(macB, nil, netip.Addr{}, time.Minute)
	if err != nil || ob.IP != o.IP {
		t.Fatalf("after release: %+v %v", ob, err)
	}
	if err := p.Decline(ob.IP, macB, nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Offer(macA, nil, netip.Addr{}, time.Minute); !errors.Is(err, ErrNoAddress) {
		t.Fatalf("declined address offered again: %v", err)
	}
}

func TestStoreFailureMeansNoLease(t *testing.T) {
	st := newMemStore()
	p := newTestPool(t, "192.0.2.100", "192.0.2.110", st)
	o, _ := p.Offer(macA, nil, netip.Addr{}, time.Minute)
	st.fail = true
	if _, err := p.Bind(o.IP, macA, nil, "", time.Hour); !errors.Is(err, ErrStore) {
		t.Fatalf("bind with failing store: %v", err)
	}
	if _, ok := p.Lookup(macA, nil); ok {
		t.Fatal("lease kept in memory although not stored")
	}
}

func TestRestartKeepsLeases(t *testing.T) {
	st := newMemStore()
	p := newTestPool(t, "192.0.2.100", "192.0.2.110", st)
	o, _ := p.Offer(macA, nil, netip.Addr{}, time.Minute)
	p.Bind(o.IP, macA, nil, "", time.Hour)
	existing, _ := st.LoadLeases()
	p2 := NewPool(subnet, []Range{{ip("192.0.2.100"), ip("192.0.2.110")}}, nil, st, existing)
	if l, ok := p2.Lookup(macA, nil); !ok || l.IP != o.IP {
		t.Fatalf("after restart: %+v %v", l, ok)
	}
	if ob, _ := p2.Offer(macB, nil, netip.Addr{}, time.Minute); ob.IP == o.IP {
		t.Fatal("restarted pool gave A's address to B")
	}
}

func TestConcurrentClientsNeverShare(t *testing.T) {
	p := NewPool(subnet, []Range{{ip("192.0.2.1"), ip("192.0.2.254")}}, nil, newMemStore(), nil)
	var mu sync.Mutex
	seen := map[netip.Addr]string{}
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			mac := net.HardwareAddr{2, 0, 0, 0, byte(i >> 8), byte(i)}
			o, err := p.Offer(mac, nil, netip.Addr{}, time.Minute)
			if err != nil {
				return // 254 addresses, 200 clients: should not happen
			}
			l, err := p.Bind(o.IP, mac, nil, "", time.Hour)
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if other, dup := seen[l.IP]; dup {
				t.Errorf("%s given to %s and %s", l.IP, other, mac)
			}
			seen[l.IP] = mac.String()
		}(i)
	}
	wg.Wait()
	if len(seen) != 200 {
		t.Fatalf("%d clients got leases, want 200", len(seen))
	}
}

func TestNetworkAndBroadcastNeverOffered(t *testing.T) {
	p := NewPool(subnet, []Range{{ip("192.0.2.0"), ip("192.0.2.255")}}, nil, newMemStore(), nil)
	for i := 0; i < 254; i++ {
		o, err := p.Offer(net.HardwareAddr{2, 0, 0, 0, 0, byte(i)}, nil, netip.Addr{}, time.Minute)
		if err != nil {
			t.Fatal(i, err)
		}
		if o.IP == ip("192.0.2.0") || o.IP == ip("192.0.2.255") {
			t.Fatalf("offered %s", o.IP)
		}
	}
	if _, err := p.Offer(net.HardwareAddr{2, 0, 0, 0, 1, 0}, nil, netip.Addr{}, time.Minute); err == nil {
		t.Fatal(fmt.Sprint("255th offer from a /24"))
	}
}

// UEFI firmware sends no client id; the iPXE it loads sends 01+MAC. One
// machine, one address.
func TestFirmwareThenIPXEKeepOneAddress(t *testing.T) {
	p := newTestPool(t, "192.0.2.100", "192.0.2.110", newMemStore())
	fw, _ := p.Offer(macA, nil, netip.Addr{}, time.Minute)
	if _, err := p.Bind(fw.IP, macA, nil, "", time.Hour); err != nil {
		t.Fatal(err)
	}
	id := append([]byte{1}, macA...)
	ipxe, _ := p.Offer(macA, id, netip.Addr{}, time.Minute)
	if ipxe.IP != fw.IP {
		t.Fatalf("iPXE offered %s, firmware holds %s", ipxe.IP, fw.IP)
	}
	if l, err := p.Bind(ipxe.IP, macA, id, "", time.Hour); err != nil || l.IP != fw.IP {
		t.Fatalf("iPXE bind: %+v %v", l, err)
	}
	if used := p.Used(); used != 1 {
		t.Fatalf("%d addresses used, want 1", used)
	}
	// Two different client ids on one MAC stay two clients.
	other, _ := p.Offer(macA, []byte{0xff, 1}, netip.Addr{}, time.Minute)
	if other.IP == fw.IP {
		t.Fatal("a second client id got the first one's address")
	}
}

// A range reads and writes "first-last" and refuses what is not one.
func TestRangeText(t *testing.T) {
	for in, out := range map[string]string{
		"192.0.2.1-192.0.2.9":       "192.0.2.1-192.0.2.9",
		" 192.0.2.1 -192.0.2.1":     "192.0.2.1-192.0.2.1",
		"2001:db8::10-2001:db8::1f": "2001:db8::10-2001:db8::1f",
	} {
		var r Range
		if err := r.UnmarshalText([]byte(in)); err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if text, _ := r.MarshalText(); string(text) != out {
			t.Errorf("%q wrote %q, want %q", in, text, out)
		}
		if !r.Contains(r.First) || !r.Contains(r.Last) || r.Contains(r.Last.Next()) || r.Contains(r.First.Prev()) {
			t.Errorf("%q: Contains is wrong at an end", in)
		}
	}
	for _, in := range []string{"", "192.0.2.1", "192.0.2.9-192.0.2.1", "192.0.2.1-2001:db8::1", "x-y"} {
		var r Range
		if err := r.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("%q accepted as %v", in, r)
		}
	}
}
