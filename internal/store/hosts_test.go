package store

import (
	"database/sql"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"bootforge/internal/boot"
)

func host(name, uuid string, macs ...string) boot.Host {
	h := boot.Host{Name: name, UUID: uuid}
	for _, m := range macs {
		hw, err := net.ParseMAC(m)
		if err != nil {
			panic(err)
		}
		h.MACs = append(h.MACs, hw)
	}
	return h
}

// Host names are DNS labels: PC1 is pc1's name, so it cannot be a second
// host, and the store says so in the write's transaction (the Service's
// own check reads before it writes).
func TestPutHostKeepsNameToOneHostIgnoringCase(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			if err := s.PutHost(host("pc1", "", "52:54:00:00:00:01")); err != nil {
				t.Fatal(err)
			}
			var taken *boot.TakenError
			err := s.PutHost(host("PC1", "", "52:54:00:00:00:02"))
			if !errors.As(err, &taken) || taken.What != boot.TakenName || taken.Owner != "pc1" ||
				err.Error() != `host "PC1": host "pc1" has the same name; host names are unique, ignoring case` {
				t.Fatalf("PC1 beside pc1: %v, want a TakenError naming pc1", err)
			}
			// pc1 itself is replaced as before.
			if err := s.PutHost(host("pc1", "", "52:54:00:00:00:03")); err != nil {
				t.Fatalf("replace pc1: %v", err)
			}
			hosts, err := s.Hosts()
			if err != nil || len(hosts) != 1 || hosts[0].Name != "pc1" || hosts[0].MACs[0].String() != "52:54:00:00:00:03" {
				t.Fatalf("stored hosts: %+v %v, want pc1 alone, replaced", hosts, err)
			}
			// Once pc1 is gone, the name is free in any case.
			if deleted, err := s.DeleteHost("pc1"); err != nil || !deleted {
				t.Fatalf("delete pc1: %v, %v; want true", deleted, err)
			}
			// A second delete finds nothing: of two writers removing one
			// host, only one is told it removed it.
			if deleted, err := s.DeleteHost("pc1"); err != nil || deleted {
				t.Fatalf("delete pc1 again: %v, %v; want false", deleted, err)
			}
			if err := s.PutHost(host("PC1", "", "52:54:00:00:00:02")); err != nil {
				t.Fatalf("PC1 after pc1 is removed: %v", err)
			}
		})
	}
}

func TestPutHostKeepsMACAndUUIDToOneHost(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			if err := s.PutHost(host("a", "4c4c4544-0000-0000-0000-00000000000a", "52:54:00:00:00:01", "52:54:00:00:00:02")); err != nil {
				t.Fatal(err)
			}
			var taken *boot.TakenError
			err := s.PutHost(host("b", "", "52:54:00:00:00:03", "52:54:00:00:00:02"))
			if !errors.As(err, &taken) || taken.What != "MAC" || taken.Value != "52:54:00:00:00:02" || taken.Owner != "a" {
				t.Fatalf("second host with a's MAC: %v, want a TakenError naming the MAC and host a", err)
			}
			err = s.PutHost(host("b", "4C4C4544-0000-0000-0000-00000000000A", "52:54:00:00:00:03"))
			if !errors.As(err, &taken) || taken.What != "UUID" || taken.Owner != "a" {
				t.Fatalf("second host with a's UUID: %v, want a TakenError naming the UUID and host a", err)
			}
			// Replacing a host with its own MACs, or moving a MAC from it, is fine.
			if err := s.PutHost(host("a", "", "52:54:00:00:00:02")); err != nil {
				t.Fatalf("replace a: %v", err)
			}
			if err := s.PutHost(host("b", "4c4c4544-0000-0000-0000-00000000000a", "52:54:00:00:00:01")); err != nil {
				t.Fatalf("b takes the MAC and UUID a gave up: %v", err)
			}
			if _, err := s.DeleteHost("a"); err != nil {
				t.Fatal(err)
			}
			if err := s.PutHost(host("c", "", "52:54:00:00:00:02")); err != nil {
				t.Fatalf("c takes the MAC of the removed host a: %v", err)
			}
		})
	}
}

func TestPutHostRace(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			var wg sync.WaitGroup
			errs := make([]error, 10)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = s.PutHost(host(fmt.Sprintf("h%d", i), "", "52:54:00:00:00:01"))
				}()
			}
			wg.Wait()
			stored := 0
			for _, err := range errs {
				var taken *boot.TakenError
				switch {
				case err == nil:
					stored++
				case !errors.As(err, &taken):
					t.Errorf("refusal that is not a TakenError: %v", err)
				}
			}
			hosts, _ := s.Hosts()
			if stored != 1 || len(hosts) != 1 {
				t.Fatalf("10 writers racing for one MAC: %d stored, %d hosts in the store; want 1", stored, len(hosts))
			}
		})
	}
}

// A store from before host_macs may hold duplicates: it opens, lists
// them, refuses more, and takes the unique indexes once they are removed.
func TestMigrateHostsWithDuplicates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bf.db")
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	before := 0 // the migrations before host_macs
	for !strings.Contains(sqliteMigrations[before], "CREATE TABLE host_macs") {
		before++
	}
	if err := applyMigrations(old, false, sqliteMigrations[:before], ""); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO hosts (name, macs, uuid) VALUES ('a', '52:54:00:00:00:01 52:54:00:00:00:02', '')`,
		`INSERT INTO hosts (name, macs, uuid) VALUES ('b', '52:54:00:00:00:02', 'u-1')`,
		`INSERT INTO hosts (name, macs, uuid) VALUES ('c', '', 'u-1')`,
	} {
		if _, err := old.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatalf("a store with duplicates must open to be repaired: %v", err)
	}
	var n int
	s.db.QueryRow(`SELECT count(*) FROM host_macs`).Scan(&n)
	if n != 3 {
		t.Fatalf("host_macs has %d rows after the migration, want 3", n)
	}
	if hosts, err := s.Hosts(); err != nil || len(hosts) != 3 {
		t.Fatalf("hosts: %v %v", hosts, err)
	}
	if err := s.PutHost(host("d", "", "52:54:00:00:00:01")); err == nil {
		t.Fatal("a fourth host with a's MAC was stored")
	}
	s.DeleteHost("b")
	s.DeleteHost("c")
	s.Close()

	s, err = OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, ix := range []string{"host_macs_one_host", "hosts_uuid_one_host"} {
		s.db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?`, ix).Scan(&n)
		if n != 1 {
			t.Errorf("index %s not made once the duplicates are gone", ix)
		}
	}
	if _, err := s.db.Exec(`INSERT INTO host_macs (mac, host) VALUES ('52:54:00:00:00:01', 'x')`); err == nil {
		t.Error("the unique index let a second host take a MAC")
	}
}
