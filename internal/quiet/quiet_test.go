package quiet

import (
	"net/netip"
	"testing"
	"time"
)

// One line per client per Every, with the count of those held back.
func TestLog(t *testing.T) {
	var q Log[netip.Addr]
	a, b := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("198.51.100.8")
	t0 := time.Unix(1000, 0)
	if ok, _ := q.Admit(a, t0); !ok {
		t.Fatal("first line not admitted")
	}
	for i := range 5 {
		if ok, _ := q.Admit(a, t0.Add(time.Duration(i)*time.Second)); ok {
			t.Fatalf("line %d within %s admitted", i, Every)
		}
	}
	if ok, _ := q.Admit(b, t0.Add(time.Second)); !ok {
		t.Fatal("another client was held back by the first")
	}
	if ok, since := q.Admit(a, t0.Add(Every)); !ok || since != 5 {
		t.Fatalf("after %s: ok %v, since %d; want true, 5", Every, ok, since)
	}
	// Spoofed sources cannot grow the map without bound.
	for i := range Max + 10 {
		q.Admit(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), t0.Add(Every+time.Second))
	}
	if len(q.clients) > Max {
		t.Errorf("%d clients remembered, bound %d", len(q.clients), Max)
	}
}
