package store

import (
	"database/sql"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/boot"
	"bootforge/internal/dhcp/lease"
)

func TestLeases(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { testLeases(t, b) })
	}
}

func testLeases(t *testing.T, b backend) {
	s := b.open(t)
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

	s = b.open(t) // reopen: migrations are idempotent
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
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
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
		})
	}
}

// TestSQLiteBootLogBesideLeases writes boot-log events and leases at once:
// every one of both is stored, and the events' commits skip the disk sync
// while the leases' do not.
func TestSQLiteBootLogBesideLeases(t *testing.T) {
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "bf.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(2)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				ip := netip.AddrFrom4([4]byte{198, 18, byte(w), byte(i)})
				if _, won, err := s.ClaimLease(lease.Lease{IP: ip, MAC: net.HardwareAddr{2, 0, 0, 0, byte(w), byte(i)},
					Expires: time.Now().Add(time.Hour), State: lease.Bound}); err != nil || !won {
					t.Error(won, err)
				}
			}
		}(w)
		go func(w int) {
			defer wg.Done()
			batch := make([]audit.Event, each)
			for i := range batch {
				batch[i] = audit.Event{Time: time.Now(), MAC: fmt.Sprintf("02:00:00:00:%02x:%02x", w, i), Stage: "ack", Protocol: "dhcp", Result: "ok"}
			}
			if err := s.PutEvents(batch); err != nil {
				t.Error(err)
			}
		}(w)
	}
	wg.Wait()
	leases, _ := s.LoadLeases()
	events, _ := s.Events(EventFilter{Limit: 10 * writers * each})
	if len(leases) != writers*each || len(events) != writers*each {
		t.Fatalf("%d leases and %d events stored, want %d of each", len(leases), len(events), writers*each)
	}

	// The store has one connection: PRAGMA synchronous reads its mode
	// after the last commit (1 NORMAL, 2 FULL).
	mode := func() int {
		var m int
		if err := s.db.QueryRow(`PRAGMA synchronous`).Scan(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if err := s.PutEvents([]audit.Event{{Time: time.Now(), Stage: "menu", Protocol: "http", Result: "ok"}}); err != nil {
		t.Fatal(err)
	}
	if m := mode(); m != 1 {
		t.Errorf("after a boot-log commit: synchronous %d, want 1 (NORMAL)", m)
	}
	if err := s.PutLease(lease.Lease{IP: netip.MustParseAddr("198.18.100.1"), Expires: time.Now().Add(time.Hour), State: lease.Bound}); err != nil {
		t.Fatal(err)
	}
	if m := mode(); m != 2 {
		t.Errorf("after a lease commit: synchronous %d, want 2 (FULL)", m)
	}
	// An offer need not survive a crash of the database: its commit does
	// not wait for the disk. The ACK's claim that follows does.
	offer := lease.Lease{IP: netip.MustParseAddr("198.18.100.2"), MAC: net.HardwareAddr{2, 0, 0, 0, 100, 2},
		Expires: time.Now().Add(time.Minute), State: lease.Offered}
	if _, won, err := s.ClaimLease(offer); err != nil || !won {
		t.Fatal(won, err)
	}
	if m := mode(); m != 1 {
		t.Errorf("after an offer's commit: synchronous %d, want 1 (NORMAL)", m)
	}
	offer.State, offer.Expires = lease.Bound, time.Now().Add(time.Hour)
	if _, won, err := s.ClaimLease(offer); err != nil || !won {
		t.Fatal(won, err)
	}
	if m := mode(); m != 2 {
		t.Errorf("after a bound lease's commit: synchronous %d, want 2 (FULL)", m)
	}
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

func TestEvents(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
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
		})
	}
}

// Events by MAC and by IP find a client's events over the days they span,
// however the days fall, and a lookup on SQLite goes through the indexes
// that lead with the day.
func TestEventsByClientAcrossDays(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			if evs, err := s.Events(EventFilter{MAC: "52:54:00:00:00:01"}); err != nil || len(evs) != 0 {
				t.Fatalf("empty log: %d events, %v", len(evs), err)
			}
			now := time.Now()
			var clients []audit.Event
			for i := 0; i < 40; i++ { // one event every 18 hours, two clients taking turns
				clients = append(clients, audit.Event{Time: now.Add(-time.Duration(39-i) * 18 * time.Hour), MAC: fmt.Sprintf("52:54:00:00:00:0%d", i%2),
					IP: fmt.Sprintf("192.0.2.%d", i%2), Protocol: "http", Stage: "kernel", Bytes: int64(i), Result: "ok"})
			}
			// The first half of them, an event decades old, other clients'
			// events enough to fill two segments (eventSegment), and the
			// second half in the segment after those.
			evs := append([]audit.Event{}, clients[:20]...)
			evs = append(evs, audit.Event{Time: time.Unix(1, 0), MAC: "52:54:00:00:00:09", IP: "192.0.2.9", Protocol: "tftp", Result: "ok"})
			for i := 0; i < 2*segmentEvents; i++ {
				evs = append(evs, audit.Event{Time: now.Add(-time.Duration(i) * time.Second), MAC: fmt.Sprintf("52:54:00:00:%02x:%02x", 1+i/256, i%256),
					IP: fmt.Sprintf("198.51.100.%d", i%256), Protocol: "http", Stage: "kernel", Result: "ok"})
			}
			evs = append(evs, clients[20:]...)
			if err := s.PutEvents(evs); err != nil {
				t.Fatal(err)
			}
			for _, tt := range []struct {
				f    EventFilter
				want []int64 // Bytes of the events, oldest first
			}{
				{EventFilter{MAC: "52:54:00:00:00:01", Limit: 3}, []int64{35, 37, 39}},
				{EventFilter{IP: "192.0.2.0", Limit: 3}, []int64{34, 36, 38}},
				{EventFilter{MAC: "52:54:00:00:00:00", Since: now.Add(-5 * 18 * time.Hour)}, []int64{34, 36, 38}},
				{EventFilter{IP: "192.0.2.1", Since: now.Add(-3*18*time.Hour - time.Minute)}, []int64{37, 39}},
				{EventFilter{MAC: "52:54:00:00:00:01", Since: now.Add(time.Hour)}, nil},
				{EventFilter{MAC: "52:54:00:00:00:09"}, []int64{0}},
				{EventFilter{IP: "192.0.2.9"}, []int64{0}},
			} {
				got, err := s.Events(tt.f)
				if err != nil {
					t.Fatalf("%+v: %v", tt.f, err)
				}
				var bytes []int64
				for _, e := range got {
					bytes = append(bytes, e.Bytes)
				}
				if fmt.Sprint(bytes) != fmt.Sprint(tt.want) {
					t.Errorf("%+v: events %v, want %v", tt.f, bytes, tt.want)
				}
			}
			all, _ := s.Events(EventFilter{MAC: "52:54:00:00:00:00", Limit: 1000})
			if len(all) != 20 {
				t.Errorf("all of one MAC over 30 days and three segments: %d events, want 20", len(all))
			}
			// Following a client: only events after the last one seen.
			for _, tt := range []struct {
				after int64
				want  int
			}{{all[9].ID, 10}, {all[18].ID, 1}, {all[19].ID, 0}, {all[19].ID + 5*segmentEvents, 0}} {
				got, err := s.Events(EventFilter{MAC: "52:54:00:00:00:00", After: tt.after})
				if err != nil || len(got) != tt.want || len(got) > 0 && got[0].ID <= tt.after {
					t.Errorf("after %d: %d events, %v; want %d after it", tt.after, len(got), err, tt.want)
				}
			}

			// Paging back through a client's events, newest page first,
			// each page before the smallest ID of the last.
			var paged []int64
			for before := int64(0); ; {
				page, err := s.Events(EventFilter{MAC: "52:54:00:00:00:00", Limit: 6, Before: before})
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				for i := len(page) - 1; i >= 0; i-- {
					paged = append(paged, page[i].Bytes)
				}
				before = page[0].ID
			}
			if want := "[38 36 34 32 30 28 26 24 22 20 18 16 14 12 10 8 6 4 2 0]"; fmt.Sprint(paged) != want {
				t.Errorf("paged back: %v, want %s", paged, want)
			}

			sq, ok := s.(*SQLite)
			if !ok {
				return
			}
			for f, index := range map[*EventFilter]string{
				{MAC: "52:54:00:00:00:01"}:                         "events_seg_mac",
				{IP: "192.0.2.1", Since: now.Add(-48 * time.Hour)}: "events_seg_ip",
			} {
				q, args, ok, err := sq.eventsQuery(*f)
				if err != nil || !ok {
					t.Fatalf("%+v: %v %v", f, ok, err)
				}
				rows, err := sq.db.Query("EXPLAIN QUERY PLAN "+q, args...)
				if err != nil {
					t.Fatal(err)
				}
				var plan []string
				for rows.Next() {
					var id, parent, unused int
					var detail string
					rows.Scan(&id, &parent, &unused, &detail)
					plan = append(plan, detail)
				}
				rows.Close()
				if !strings.Contains(strings.Join(plan, "; "), "USING INDEX "+index) {
					t.Errorf("%+v: plan %q does not use %s", *f, plan, index)
				}
			}
		})
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

func TestHostsRoundTrip(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { testHostsRoundTrip(t, b) })
	}
}

func testHostsRoundTrip(t *testing.T, b backend) {
	s := b.open(t)
	g0, _ := s.Generation()
	mac, _ := net.ParseMAC("52:54:00:AA:00:01")
	hosts := []boot.Host{
		{Name: "pc1", MACs: []net.HardwareAddr{mac}, Labels: []string{"lab", "kiosk"}, Profile: "lab", SecureBoot: true},
		{Name: "pc2", UUID: "4C4C4544-0000-1000-8000-000000000001"},
	}
	for _, h := range hosts {
		if err := s.PutHost(h); err != nil {
			t.Fatal(err)
		}
	}
	if g1, _ := s.Generation(); g1 <= g0 {
		t.Fatalf("generation %d after writes, was %d", g1, g0)
	}
	s.Close()

	s = b.open(t)
	got, err := s.Hosts()
	if err != nil || len(got) != 2 {
		t.Fatalf("%+v %v", got, err)
	}
	h := got[0]
	if h.Name != "pc1" || len(h.MACs) != 1 || h.MACs[0].String() != "52:54:00:aa:00:01" || strings.Join(h.Labels, ",") != "lab,kiosk" ||
		h.Profile != "lab" || !h.SecureBoot || h.Source != "store" {
		t.Fatalf("pc1: %+v", h)
	}
	if h := got[1]; h.Name != "pc2" || h.UUID != "4c4c4544-0000-1000-8000-000000000001" || h.SecureBoot || len(h.MACs) != 0 {
		t.Fatalf("pc2: %+v", h)
	}
	// Replacing a host can turn Secure Boot off again.
	hosts[0].SecureBoot = false
	if err := s.PutHost(hosts[0]); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Hosts(); got[0].SecureBoot {
		t.Fatalf("secure_boot still set after replacing the host: %+v", got[0])
	}
	if _, err := s.DeleteHost("pc1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Hosts(); len(got) != 1 || got[0].Name != "pc2" {
		t.Fatalf("after delete: %+v", got)
	}
}

func TestEventReason(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			e := audit.Event{Time: time.Now(), MAC: "52:54:00:00:00:01", Stage: "offer", Protocol: "dhcp", Result: "ok",
				Reason: "efi-x64 PXE client: snponly.efi over TFTP"}
			if err := s.PutEvents([]audit.Event{e, {Time: time.Now(), Stage: "kernel", Protocol: "http", Result: "ok"}}); err != nil {
				t.Fatal(err)
			}
			got, err := s.Events(EventFilter{})
			if err != nil || len(got) != 2 {
				t.Fatalf("%+v %v", got, err)
			}
			if got[0].Reason != e.Reason || got[1].Reason != "" {
				t.Fatalf("reasons %q, %q; want %q, \"\"", got[0].Reason, got[1].Reason, e.Reason)
			}
		})
	}
}

// TestSQLiteMigrateKeepsRows opens a store made by the schema before the
// secure_boot and reason columns: its rows survive with the defaults.
func TestSQLiteMigrateKeepsRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bf.db")
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := applyMigrations(old, false, sqliteMigrations[:10], ""); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(`INSERT INTO hosts (name, macs, profile) VALUES ('old', '52:54:00:00:00:09', 'lab')`); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(`INSERT INTO events (time, stage, result) VALUES (1, 'menu', 'ok')`); err != nil {
		t.Fatal(err)
	}
	expires := time.Now().Add(time.Hour).Truncate(0)
	if _, err := old.Exec(`INSERT INTO leases (ip, mac, client_id, hostname, expires, state) VALUES ('192.0.2.7', ?, X'01', 'pc7', ?, 'bound')`,
		[]byte{0x52, 0x54, 0, 0, 0, 7}, expires.UnixNano()); err != nil {
		t.Fatal(err)
	}
	old.Close()

	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hosts, err := s.Hosts()
	if err != nil || len(hosts) != 1 || hosts[0].Name != "old" || hosts[0].SecureBoot || hosts[0].Profile != "lab" {
		t.Fatalf("%+v %v", hosts, err)
	}
	events, err := s.Events(EventFilter{})
	if err != nil || len(events) != 1 || events[0].Reason != "" || events[0].Stage != "menu" {
		t.Fatalf("%+v %v", events, err)
	}
	leases, err := s.LoadLeases()
	if err != nil || len(leases) != 1 || leases[0].IP != netip.MustParseAddr("192.0.2.7") || leases[0].MAC.String() != "52:54:00:00:00:07" ||
		string(leases[0].ClientID) != "\x01" || leases[0].Hostname != "pc7" || !leases[0].Expires.Equal(expires) || leases[0].State != lease.Bound {
		t.Fatalf("leases after the migrations: %+v %v", leases, err)
	}
	if _, err := s.db.Exec(`SELECT rowid FROM leases`); err == nil {
		t.Error("leases still has a rowid: each claim writes two b-trees")
	}
	var v int
	s.db.QueryRow(`SELECT MAX(version) FROM schema_version`).Scan(&v)
	if v != len(sqliteMigrations) {
		t.Fatalf("schema version %d, want %d", v, len(sqliteMigrations))
	}
}

// A checkpoint is due after checkpointCommits commits, or after
// checkpointMaxAge if there was any, and never without a commit.
func TestCheckpointDue(t *testing.T) {
	for _, c := range []struct {
		n    int64
		age  time.Duration
		want bool
	}{
		{0, time.Hour, false},
		{1, checkpointInterval, false},
		{checkpointCommits - 1, checkpointMaxAge - time.Millisecond, false},
		{checkpointCommits, checkpointInterval, true},
		{1, checkpointMaxAge, true},
	} {
		if got := checkpointDue(c.n, c.age); got != c.want {
			t.Errorf("checkpointDue(%d, %v) = %v, want %v", c.n, c.age, got, c.want)
		}
	}
}
