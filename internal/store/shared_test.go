package store

import (
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/boot"
	"bootforge/internal/dhcp/lease"
	"bootforge/internal/image"
	"bootforge/internal/store/storetest"
)

// Of many servers (goroutines, each with its own connection pool to the
// one database) consuming one one-shot, exactly one moves it, and only
// its event is in the boot log: written with the move, one line.
func TestAdvanceNextBootOnce(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			other := b.open(t) // a second server on the same store
			mac, _ := net.ParseMAC("52:54:00:00:00:07")
			if err := s.PutNextBoot(mac, boot.NextBoot{Entry: "rescue", State: boot.OneShotState("pending")}); err != nil {
				t.Fatal(err)
			}
			shot, err := s.NextBoot(mac)
			if err != nil || shot == nil {
				t.Fatalf("NextBoot: %v, %v", shot, err)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			moved := 0
			for i := 0; i < 16; i++ {
				wg.Add(1)
				go func(db Store) {
					defer wg.Done()
					ok, err := db.AdvanceNextBoot(mac, *shot, "served", []boot.OneShotState{"pending"},
						audit.Event{Time: time.Now(), MAC: mac.String(), Stage: "one-shot", Protocol: "menu", Result: "served rescue"})
					if err != nil {
						t.Error(err)
					}
					if ok {
						mu.Lock()
						moved++
						mu.Unlock()
					}
				}([]Store{s, other}[i%2])
			}
			wg.Wait()
			if moved != 1 {
				t.Fatalf("the one-shot was consumed %d times, want once", moved)
			}
			if nb, _ := s.NextBoot(mac); nb == nil || nb.State != "served" {
				t.Fatalf("after: %+v", nb)
			}
			if evs, err := s.Events(EventFilter{MAC: mac.String()}); err != nil || len(evs) != 1 || evs[0].Result != "served rescue" {
				t.Fatalf("boot log after one move: %+v, %v; want its one event", evs, err)
			}
		})
	}
}

// A one-shot replaced after it was read — by the same entry or another,
// set at once or after its state moved — is another one-shot: advancing
// the one read moves nothing, on either server, and the replacement
// stays pending. The one read moves as long as it is still there, and
// keeps its identity through its states.
func TestAdvanceNextBootOnlyTheOneRead(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			other := b.open(t)
			mac, _ := net.ParseMAC("52:54:00:00:00:08")
			read := func() boot.NextBoot {
				t.Helper()
				nb, err := s.NextBoot(mac)
				if err != nil || nb == nil {
					t.Fatalf("NextBoot: %v, %v", nb, err)
				}
				return *nb
			}
			put := func(entry string) {
				t.Helper()
				if err := s.PutNextBoot(mac, boot.NextBoot{Entry: entry, State: boot.OneShotPending}); err != nil {
					t.Fatal(err)
				}
			}
			advance := func(db Store, shot boot.NextBoot, to boot.OneShotState, from ...boot.OneShotState) bool {
				t.Helper()
				ok, err := db.AdvanceNextBoot(mac, shot, to, from)
				if err != nil {
					t.Fatal(err)
				}
				return ok
			}

			put("install")
			served := read()
			if !advance(s, served, boot.OneShotDelivered, boot.OneShotPending) {
				t.Fatal("the one-shot read was not delivered")
			}
			if now := read(); now.State != boot.OneShotDelivered || !now.Updated.Equal(served.Updated) {
				t.Fatalf("after delivery: %+v, want delivered with updated kept at %v", now, served.Updated)
			}

			// The operator sets another entry while the boot is under way.
			put("rescue")
			for _, db := range []Store{s, other} {
				if advance(db, served, boot.OneShotBooted, boot.OneShotPending, boot.OneShotDelivered) {
					t.Fatal("the replaced one-shot's boot consumed its replacement")
				}
			}
			if now := read(); now.Entry != "rescue" || now.State != boot.OneShotPending {
				t.Fatalf("the replacement: %+v, want rescue pending", now)
			}

			// The same entry set again, in quick succession: each is a new
			// one-shot, never taken for the one before.
			for i := 0; i < 50; i++ {
				before := read()
				put("rescue")
				if advance(other, before, boot.OneShotBooted, boot.OneShotPending, boot.OneShotDelivered) {
					t.Fatalf("set %d: the same entry set again was consumed by the boot of the one it replaced", i)
				}
			}
			now := read()
			if !advance(other, now, boot.OneShotBooted, boot.OneShotPending, boot.OneShotDelivered) {
				t.Fatal("the one-shot as read was not consumed")
			}
			if got := read(); got.State != boot.OneShotBooted {
				t.Fatalf("after its boot: %+v, want booted", got)
			}
		})
	}
}

// Two servers claiming the same addresses for different clients: each
// address goes to one client, and the loser is shown the winner's row.
func TestClaimLeaseRace(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			dbs := []Store{b.open(t), b.open(t)}
			exp := time.Now().Add(time.Hour)
			const n = 50
			won := make([][2]bool, n)
			var wg sync.WaitGroup
			for i := 0; i < n; i++ {
				for side := 0; side < 2; side++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						ip := netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)})
						l := lease.Lease{IP: ip, MAC: net.HardwareAddr{2, 0, 0, 0, byte(side), byte(i)}, Expires: exp, State: lease.Bound}
						got, ok, err := dbs[side].ClaimLease(l)
						if err != nil {
							t.Error(err)
							return
						}
						won[i][side] = ok
						if !ok && got.MAC[4] == byte(side) {
							t.Errorf("%s: lost, but shown its own claim", ip)
						}
					}()
				}
			}
			wg.Wait()
			for i, w := range won {
				if w[0] == w[1] {
					t.Errorf("address %d: won by both or neither: %v", i+1, w)
				}
			}
			// The holder renews; an expired lease goes to anyone; a declined
			// one to no one until it expires.
			ip := netip.MustParseAddr("198.18.0.1")
			all, _ := dbs[0].LoadLeases()
			var holder lease.Lease
			for _, l := range all {
				if l.IP == ip {
					holder = l
				}
			}
			holder.Expires = exp.Add(time.Hour)
			if _, ok, err := dbs[1].ClaimLease(holder); !ok || err != nil {
				t.Fatalf("renewal by the holder: %v %v", ok, err)
			}
			stranger := lease.Lease{IP: ip, MAC: net.HardwareAddr{2, 9, 9, 9, 9, 9}, Expires: exp, State: lease.Bound}
			if _, ok, _ := dbs[0].ClaimLease(stranger); ok {
				t.Fatal("a stranger took a held address")
			}
			if err := dbs[0].PutLease(lease.Lease{IP: ip, Expires: time.Now().Add(-time.Second), State: lease.Bound, MAC: holder.MAC}); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := dbs[0].ClaimLease(stranger); !ok {
				t.Fatal("an expired address was not free")
			}
			// An offer is claimed like a binding (on PostgreSQL through the
			// connections that do not wait for the WAL flush).
			off := netip.MustParseAddr("198.18.0.200")
			if _, ok, err := dbs[0].ClaimLease(lease.Lease{IP: off, MAC: net.HardwareAddr{2, 1, 1, 1, 1, 1}, Expires: exp, State: lease.Offered}); !ok || err != nil {
				t.Fatalf("offer claim: %v %v", ok, err)
			}
			if held, ok, _ := dbs[1].ClaimLease(lease.Lease{IP: off, MAC: net.HardwareAddr{2, 1, 1, 1, 1, 2}, Expires: exp, State: lease.Offered}); ok || held.State != lease.Offered {
				t.Fatalf("a second offer of one address: won %v, shown %+v", ok, held)
			}
			// Another server finds a client's lease by MAC, or by client id.
			var mac net.HardwareAddr
			for _, l := range all {
				if l.IP == netip.MustParseAddr("198.18.0.6") {
					mac = l.MAC
				}
			}
			if l, ok, err := dbs[1].LeaseOf(mac, nil); !ok || err != nil || l.IP != netip.MustParseAddr("198.18.0.6") {
				t.Fatalf("LeaseOf %s: %+v %v %v", mac, l, ok, err)
			}
			if err := dbs[0].PutLease(lease.Lease{IP: netip.MustParseAddr("198.18.0.201"), MAC: net.HardwareAddr{2, 9, 9, 9, 9, 6}, ClientID: []byte{1, 9}, Expires: exp.Add(time.Hour), State: lease.Bound}); err != nil {
				t.Fatal(err)
			}
			if l, ok, _ := dbs[1].LeaseOf(net.HardwareAddr{2, 9, 9, 9, 9, 8}, []byte{1, 9}); !ok || l.IP != netip.MustParseAddr("198.18.0.201") {
				t.Fatalf("LeaseOf by client id: %+v %v", l, ok)
			}
			if _, ok, _ := dbs[1].LeaseOf(net.HardwareAddr{2, 9, 9, 9, 9, 7}, nil); ok {
				t.Fatal("LeaseOf found a lease for a client without one")
			}
			dec := netip.MustParseAddr("198.18.0.2")
			if err := dbs[0].PutLease(lease.Lease{IP: dec, Expires: exp, State: lease.Declined}); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := dbs[1].ClaimLease(lease.Lease{IP: dec, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Expires: exp, State: lease.Bound}); ok {
				t.Fatal("a declined address was claimed")
			}
		})
	}
}

// A hostname that is not valid UTF-8 or has a NUL in it — a client's
// option 12, a reservation's — is stored as the boot log keeps text
// (audit.Text): PostgreSQL refuses such text, and the client must still
// get its lease, with the same name on either backend.
func TestLeaseHostnameNotUTF8(t *testing.T) {
	const raw, clean = "pc\xff\x00-1", `pc\xff\x00-1`
	subnet := netip.MustParsePrefix("198.18.0.0/24")
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			resvMAC := net.HardwareAddr{2, 0, 0, 0, 0, 0x51}
			p := lease.NewPool(subnet, []lease.Range{{First: netip.MustParseAddr("198.18.0.10"), Last: netip.MustParseAddr("198.18.0.20")}},
				[]lease.Reservation{{IP: netip.MustParseAddr("198.18.0.5"), MAC: resvMAC, Hostname: "r\x00" + raw}}, s, nil)
			mac := net.HardwareAddr{2, 0, 0, 0, 0, 0x50}
			o, err := p.Offer(mac, nil, netip.Addr{}, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			l, err := p.Bind(o.IP, mac, nil, raw, time.Hour)
			if err != nil {
				t.Fatalf("bind with hostname %q: %v", raw, err)
			}
			if l.Hostname != clean {
				t.Errorf("bound lease names %q, want %q", l.Hostname, clean)
			}
			ro, err := p.Offer(resvMAC, nil, netip.Addr{}, time.Minute)
			if err != nil {
				t.Fatalf("offer of a reservation named %q: %v", "r\x00"+raw, err)
			}
			if ro.Hostname != `r\x00`+clean {
				t.Errorf("offered reservation names %q", ro.Hostname)
			}
			if _, err := p.Bind(ro.IP, resvMAC, nil, "", time.Hour); err != nil {
				t.Fatalf("bind of a reservation named %q: %v", "r\x00"+raw, err)
			}
			got, err := s.LoadLeases()
			if err != nil {
				t.Fatal(err)
			}
			names := map[netip.Addr]string{}
			for _, l := range got {
				names[l.IP] = l.Hostname
			}
			if names[o.IP] != clean || names[ro.IP] != `r\x00`+clean {
				t.Fatalf("stored names %q", names)
			}
		})
	}
}

// fill writes one of everything Copy moves.
func fill(t *testing.T, s Store) {
	t.Helper()
	mac, _ := net.ParseMAC("52:54:00:00:00:01")
	if err := s.PutHost(boot.Host{Name: "pc1", MACs: []net.HardwareAddr{mac}, Labels: []string{"lab"}, Profile: "lab", SecureBoot: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutNextBoot(mac, boot.NextBoot{Entry: "rescue", State: "pending", Expires: time.Unix(2_000_000_000, 0)}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutLease(lease.Lease{IP: netip.MustParseAddr("192.0.2.10"), MAC: mac, ClientID: []byte{1, 2}, Expires: time.Unix(2_000_000_000, 7), State: lease.Bound}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutToken(Token{ID: "abcd", Hash: "h", Role: "admin", Name: "ops", Created: time.Unix(1_900_000_000, 0)}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetImageStates(nil, []ImageState{{Name: "deb", Version: "1.0.0", State: image.Active, Changed: time.Unix(1_900_000_000, 1)}}); err != nil {
		t.Fatal(err)
	}
	var evs []audit.Event
	for i := 0; i < 3; i++ {
		evs = append(evs, audit.Event{Time: time.Unix(1_900_000_000+int64(i), 0), MAC: "52:54:00:00:00:01", Stage: "kernel", Bytes: int64(i), Server: "a"})
	}
	if err := s.PutEvents(evs); err != nil {
		t.Fatal(err)
	}
}

// dump is a store's content as text, for comparing two stores.
func dump(t *testing.T, s Store) string {
	t.Helper()
	var b strings.Builder
	hosts, _ := s.Hosts()
	nbs, _ := s.NextBoots()
	leases, _ := s.LoadLeases()
	toks, _ := s.Tokens()
	imgs, _ := s.ImageStates()
	evs, _ := s.Events(EventFilter{})
	for _, h := range hosts {
		fmt.Fprintf(&b, "host %s %v %v %s %v\n", h.Name, h.MACs, h.Labels, h.Profile, h.SecureBoot)
	}
	for m, nb := range nbs {
		fmt.Fprintf(&b, "next %s %s %s %d\n", m, nb.Entry, nb.State, nb.Expires.UnixNano())
	}
	for _, l := range leases {
		fmt.Fprintf(&b, "lease %s %s %x %d %s\n", l.IP, l.MAC, l.ClientID, l.Expires.UnixNano(), l.State)
	}
	for _, k := range toks {
		fmt.Fprintf(&b, "token %s %s %s %d\n", k.ID, k.Role, k.Name, k.Created.UnixNano())
	}
	for _, i := range imgs {
		fmt.Fprintf(&b, "image %s %s %s %d\n", i.Name, i.Version, i.State, i.Changed.UnixNano())
	}
	for _, e := range evs {
		fmt.Fprintf(&b, "event %d %d %s %d %s\n", e.ID, e.Time.UnixNano(), e.Stage, e.Bytes, e.Server)
	}
	return b.String()
}

// SQLite to PostgreSQL and back: the same content; a non-empty target is
// refused without force; the PostgreSQL boot log goes on after the copied
// ids.
func TestCopyRoundTrip(t *testing.T) {
	bs := backends(t)
	sq, pg := bs[0].open(t), bs[1].open(t)
	fill(t, sq)
	want := dump(t, sq)
	counts, err := Copy(sq, pg, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != len(copyTables) || counts[0].Table != "hosts" || counts[0].Rows != 1 || counts[6].Rows != 3 {
		t.Fatalf("counts %+v", counts)
	}
	if got := dump(t, pg); got != want {
		t.Fatalf("postgres after copy:\n%s\nwant:\n%s", got, want)
	}
	if _, err := Copy(sq, pg, false, nil); !errors.Is(err, errNotEmpty) {
		t.Fatalf("copy into a filled store: %v", err)
	}
	// An event stored raw before audit.Stamp, with a name that is not
	// UTF-8, moves as the boot log now keeps it.
	if err := sq.PutEvents([]audit.Event{{Time: time.Unix(1_900_000_200, 0), Stage: "loader", File: "a\xffb"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := Copy(sq, pg, true, nil); err != nil {
		t.Fatalf("--force: %v", err)
	}
	if evs, err := pg.Events(EventFilter{Stage: "loader"}); err != nil || len(evs) != 1 || evs[0].File != `a\xffb` {
		t.Fatalf("the raw event after the copy: %+v, %v", evs, err)
	}
	if err := pg.PutEvents([]audit.Event{{Time: time.Unix(1_900_000_100, 0), Stage: "menu"}}); err != nil {
		t.Fatalf("an event after the copy: %v", err)
	}
	back := backend{"sqlite", Location{Path: filepath.Join(t.TempDir(), "back.db")}}.open(t)
	if _, err := Copy(pg, back, false, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := dump(t, back), dump(t, pg); got != want {
		t.Fatalf("sqlite after the copy back:\n%s\nwant:\n%s", got, want)
	}
}

// PostgreSQL is migrated only by Migrate: opening an empty database, or
// one with a newer schema, fails naming the versions and what to do.
func TestPostgresSchemaVersion(t *testing.T) {
	u := storetest.PostgresURL(t)
	if _, err := OpenPostgres(u); err == nil || !strings.Contains(err.Error(), "bootforge store migrate") {
		t.Fatalf("an un-migrated database: %v", err)
	}
	from, to, err := MigratePostgres(u)
	if err != nil || from != 0 || to != len(postgresMigrations) {
		t.Fatalf("migrate: %d %d %v", from, to, err)
	}
	if from, to, err := MigratePostgres(u); err != nil || from != to {
		t.Fatalf("migrate again: %d %d %v", from, to, err)
	}
	s, err := OpenPostgres(u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`INSERT INTO schema_version (version) VALUES ($1)`, len(postgresMigrations)+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	want := fmt.Sprintf("schema version %d is newer than this bootforge knows (%d)", len(postgresMigrations)+1, len(postgresMigrations))
	if _, err := OpenPostgres(u); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("a newer schema: %v, want %q", err, want)
	}
	if _, _, err := MigratePostgres(u); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("migrate a newer schema: %v", err)
	}
}

// SQLite migrates itself, but refuses a newer schema too.
func TestSQLiteNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bf.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, _ := sql.Open("sqlite", path)
	db.Exec(`INSERT INTO schema_version (version) VALUES (99)`)
	db.Close()
	if _, err := OpenSQLite(path); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("schema version 99 is newer than this bootforge knows (%d)", len(sqliteMigrations))) {
		t.Fatalf("%v", err)
	}
}

func TestLocate(t *testing.T) {
	for _, c := range []struct {
		url  string
		want Location
		bad  bool
	}{
		{"", Location{Path: "/srv/state/bootforge.db"}, false},
		{"sqlite:/data/bf.db", Location{Path: "/data/bf.db"}, false},
		{"postgres://bf@db/bootforge", Location{Postgres: true, URL: "postgres://bf@db/bootforge"}, false},
		{"postgresql:///bf?host=/run/postgresql", Location{Postgres: true, URL: "postgresql:///bf?host=/run/postgresql"}, false},
		{"sqlite:", Location{}, true},
		{"mysql://db/bf", Location{}, true},
	} {
		got, err := Locate(c.url, "/srv/state")
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("Locate(%q) = %+v, %v", c.url, got, err)
		}
	}
	if r := Redact("postgres://bf:secret@db/bootforge"); strings.Contains(r, "secret") {
		t.Errorf("Redact kept the password: %s", r)
	}
}

// ReleaseOffer deletes an offer's claim only while the row is still that
// claim: offered, of its client, with its expiry. A row another server or
// a later claim wrote since stays.
func TestReleaseOffer(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			ip := netip.MustParseAddr("198.18.0.9")
			macA, macB := net.HardwareAddr{2, 0, 0, 0, 0, 0xa}, net.HardwareAddr{2, 0, 0, 0, 0, 0xb}
			offer := lease.Lease{IP: ip, MAC: macA, Expires: time.Now().Add(time.Minute), State: lease.Offered}
			held := func() (lease.Lease, bool) {
				ls, err := s.LoadLeases()
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range ls {
					if l.IP == ip {
						return l, true
					}
				}
				return lease.Lease{}, false
			}
			if _, won, err := s.ClaimLease(offer); err != nil || !won {
				t.Fatalf("claim: %v %v", won, err)
			}
			other := offer
			other.Expires = offer.Expires.Add(time.Nanosecond) // a later claim's
			if err := s.ReleaseOffer(other); err != nil {
				t.Fatal(err)
			}
			other = offer
			other.MAC = macB
			if err := s.ReleaseOffer(other); err != nil {
				t.Fatal(err)
			}
			if _, ok := held(); !ok {
				t.Fatal("a release of another claim removed this one")
			}
			if err := s.ReleaseOffer(offer); err != nil {
				t.Fatal(err)
			}
			if l, ok := held(); ok {
				t.Fatalf("released offer still held: %+v", l)
			}
			bound := offer
			bound.State = lease.Bound
			if err := s.PutLease(bound); err != nil {
				t.Fatal(err)
			}
			if err := s.ReleaseOffer(offer); err != nil {
				t.Fatal(err)
			}
			if l, ok := held(); !ok || l.State != lease.Bound {
				t.Fatalf("a release of the offer removed the bound lease: %+v %v", l, ok)
			}
		})
	}
}
