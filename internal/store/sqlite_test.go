package store

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/dhcp/lease"
)

func TestSQLiteLeases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bf.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Unix(2_000_000_000, 123)
	l := lease.Lease{IP: netip.MustParseAddr("192.0.2.10"), MAC: net.HardwareAddr{1, 2, 3, 4, 5, 6},
		ClientID: []byte{1, 1, 2}, Hostname: "pc1", Expires: exp, State: lease.Bound}
	if err := s.PutLease(l); err != nil {
		t.Fatal(err)
	}
	l.Hostname = "pc1-renamed"
	if err := s.PutLease(l); err != nil { // upsert
		t.Fatal(err)
	}
	if err := s.PutLease(lease.Lease{IP: netip.MustParseAddr("192.0.2.11"), Expires: exp, State: lease.Declined}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteLease(netip.MustParseAddr("192.0.2.11")); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = OpenSQLite(path) // reopen: migrations are idempotent
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.LoadLeases()
	if err != nil || len(got) != 1 {
		t.Fatalf("%v %v", got, err)
	}
	g := got[0]
	if g.IP != l.IP || g.MAC.String() != l.MAC.String() || string(g.ClientID) != string(l.ClientID) ||
		g.Hostname != "pc1-renamed" || !g.Expires.Equal(exp) || g.State != lease.Bound {
		t.Fatalf("got %+v, want %+v", g, l)
	}
}

// TestSQLiteGroupCommit checks that concurrent writers all get durable
// writes, and that they share transactions.
func TestSQLiteGroupCommit(t *testing.T) {
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "bf.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 500
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ip := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
			if err := s.PutLease(lease.Lease{IP: ip, Expires: time.Now().Add(time.Hour), State: lease.Bound}); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	got, _ := s.LoadLeases()
	if len(got) != n {
		t.Fatalf("%d leases stored, want %d", len(got), n)
	}
	t.Logf("%d concurrent durable writes in %s", n, time.Since(start))
}

func TestSQLiteClosed(t *testing.T) {
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "bf.db"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.PutLease(lease.Lease{IP: netip.MustParseAddr("192.0.2.1")}); err == nil {
		t.Fatal(fmt.Sprint("write after close succeeded"))
	}
}

func TestSQLiteEvents(t *testing.T) {
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "bf.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := time.Now().Add(-time.Hour)
	var evs []audit.Event
	for i := 0; i < 10; i++ {
		evs = append(evs, audit.Event{Time: base.Add(time.Duration(i) * time.Minute), MAC: fmt.Sprintf("52:54:00:00:00:0%d", i%2),
			IP: "192.0.2.9", Protocol: "tftp", Stage: "kernel", Bytes: int64(i), Result: "ok"})
	}
	if err := s.PutEvents(evs); err != nil {
		t.Fatal(err)
	}
	all, _ := s.Events(EventFilter{})
	if len(all) != 10 || all[0].Bytes != 0 || all[9].Bytes != 9 {
		t.Fatalf("all: %d events", len(all))
	}
	byMAC, _ := s.Events(EventFilter{MAC: "52:54:00:00:00:01"})
	if len(byMAC) != 5 {
		t.Fatalf("by MAC: %d", len(byMAC))
	}
	recent, _ := s.Events(EventFilter{Since: base.Add(7 * time.Minute)})
	if len(recent) != 3 {
		t.Fatalf("since: %d", len(recent))
	}
	after, _ := s.Events(EventFilter{After: all[7].ID})
	if len(after) != 2 {
		t.Fatalf("after: %d", len(after))
	}
	last, _ := s.Events(EventFilter{Limit: 2})
	if len(last) != 2 || last[1].Bytes != 9 {
		t.Fatalf("limit keeps the newest: %+v", last)
	}
	if err := s.DeleteEventsBefore(base.Add(5 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	if kept, _ := s.Events(EventFilter{}); len(kept) != 5 {
		t.Fatalf("after retention: %d", len(kept))
	}
}

// A data_dir whose name holds URI characters opens its own database, not
// one named by the path cut at "#" or "?".
func TestOpenPathWithURICharacters(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a#b", "a?b", "a%23b", "a b"} {
		db, err := OpenSQLite(filepath.Join(dir, name, "bootforge.db"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		db.Close()
		if _, err := os.Stat(filepath.Join(dir, name, "bootforge.db")); err != nil {
			t.Errorf("%s: database not where asked: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); err == nil {
		t.Error(`a database was made at the path cut short ("a")`)
	}
}
