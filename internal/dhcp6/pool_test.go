package dhcp6

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"bootforge/internal/dhcp/lease"
	"bootforge/internal/store"
)

func TestPoolWalksRangesAndRunsOut(t *testing.T) {
	db, err := store.OpenSQLite(filepath.Join(t.TempDir(), "l.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := netip.MustParseAddr
	pfx := netip.MustParsePrefix("2001:db8:1::/64")
	existing := []lease.Lease{
		{IP: a("2001:db8:1::10"), ClientID: []byte("old"), Expires: time.Now().Add(time.Hour), State: lease.Bound},
		{IP: a("192.0.2.10"), ClientID: []byte("v4"), Expires: time.Now().Add(time.Hour), State: lease.Bound},
	}
	p := NewPool(pfx, []lease.Range{{First: a("2001:db8:1::10"), Last: a("2001:db8:1::11")}, {First: a("2001:db8:1::20"), Last: a("2001:db8:1::20")}}, db, existing)
	got := map[netip.Addr]bool{}
	for _, ia := range []string{"a", "b"} {
		l, err := p.Offer([]byte(ia), nil, netip.Addr{}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		got[l.IP] = true
	}
	if !got[a("2001:db8:1::11")] || !got[a("2001:db8:1::20")] {
		t.Fatalf("offered %v; ::10 is held by a stored lease", got)
	}
	if _, err := p.Offer([]byte("c"), nil, netip.Addr{}, time.Minute); err != ErrNoAddress {
		t.Fatalf("a full pool: %v", err)
	}
	if l, _ := p.Offer([]byte("old"), nil, netip.Addr{}, time.Minute); l.IP != a("2001:db8:1::10") {
		t.Errorf("the stored lease's client got %s", l.IP)
	}
	if _, err := p.Bind([]byte("a"), nil, a("2001:db8:1::10"), time.Hour); err == nil {
		t.Error("bound another client's address")
	}
	if _, err := p.Bind([]byte("a"), nil, a("2001:db8:1::99"), time.Hour); err == nil {
		t.Error("bound an address outside the ranges")
	}
}

// Two servers' pools over one store: the second, which has not seen the
// first's binding, offers the same address to another IA, and its bind is
// refused by the store instead of taking the address.
func TestPoolBindClaimedInStore(t *testing.T) {
	db, err := store.OpenSQLite(filepath.Join(t.TempDir(), "l.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := netip.MustParseAddr
	pfx := netip.MustParsePrefix("2001:db8:1::/64")
	ranges := []lease.Range{{First: a("2001:db8:1::10"), Last: a("2001:db8:1::10")}}
	one := NewPool(pfx, ranges, db, nil)
	two := NewPool(pfx, ranges, db, nil)
	if _, err := one.Bind([]byte("ia-a"), nil, a("2001:db8:1::10"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if l, err := two.Offer([]byte("ia-b"), nil, netip.Addr{}, time.Minute); err != nil || l.IP != a("2001:db8:1::10") {
		t.Fatalf("second pool's offer: %v %v (it has not seen the binding)", l, err)
	}
	if _, err := two.Bind([]byte("ia-b"), nil, a("2001:db8:1::10"), time.Hour); err == nil {
		t.Fatal("second pool bound an address the store gives to another IA")
	}
	leases, err := db.LoadLeases()
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != 1 || string(leases[0].ClientID) != "ia-a" {
		t.Fatalf("stored leases %+v, want the first IA's only", leases)
	}
	if two.Holds([]byte("ia-b"), a("2001:db8:1::10")) {
		t.Error("the second pool still thinks ia-b holds the address")
	}
}
