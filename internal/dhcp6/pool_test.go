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
	p := NewPool(pfx, []Range{{a("2001:db8:1::10"), a("2001:db8:1::11")}, {a("2001:db8:1::20"), a("2001:db8:1::20")}}, db, existing)
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
