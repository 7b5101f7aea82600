package lease

import (
	"net/netip"
	"testing"
	"time"
)

func TestFree(t *testing.T) {
	// 100-110 is 11 addresses; the reservation (.50) is outside the range.
	p := newTestPool(t, "192.0.2.100", "192.0.2.110", newMemStore())
	now := time.Unix(1_000_000, 0)
	p.now = func() time.Time { return now }
	if f := p.Free(); f != 11 {
		t.Fatalf("empty pool: free = %d, want 11", f)
	}
	o, err := p.Offer(macA, nil, netip.Addr{}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if f := p.Free(); f != 10 {
		t.Fatalf("after an offer: free = %d, want 10", f)
	}
	if _, err := p.Bind(o.IP, macA, nil, "", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Bind(ip("192.0.2.50"), macR, nil, "", time.Hour); err != nil {
		t.Fatal(err)
	}
	if f := p.Free(); f != 10 {
		t.Fatalf("a lease in the range and one on a reservation outside it: free = %d, want 10", f)
	}
	now = now.Add(2 * time.Hour)
	if f := p.Free(); f != 11 {
		t.Fatalf("after expiry: free = %d, want 11", f)
	}

	// A reservation inside the range is not free for others, leased or not.
	in := NewPool(subnet, []Range{{ip("192.0.2.100"), ip("192.0.2.103")}},
		[]Reservation{{IP: ip("192.0.2.101"), MAC: macR}}, newMemStore(), nil)
	if f := in.Free(); f != 3 {
		t.Fatalf("reservation inside the range: free = %d, want 3", f)
	}
	if _, err := in.Bind(ip("192.0.2.101"), macR, nil, "", time.Hour); err != nil {
		t.Fatal(err)
	}
	if f := in.Free(); f != 3 {
		t.Fatalf("reservation inside the range, leased: free = %d, want 3 (counted once)", f)
	}
}
