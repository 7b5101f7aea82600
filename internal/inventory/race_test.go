package inventory

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"bootforge/internal/boot"
	"bootforge/internal/config"
	"bootforge/internal/store"
)

// Writers racing for one MAC through the Service and the real store: the
// Service's own checks read before they write, so only the store's check
// in the write's transaction can pick one winner, and every other writer
// must hear a Conflict, never a success.
func TestPutHostRaceOneMAC(t *testing.T) {
	db, err := store.OpenSQLite(filepath.Join(t.TempDir(), "bf.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	inv, err := boot.NewInventory([]boot.Profile{{Name: "lab", Menu: boot.Menu{Entries: []boot.Entry{{Name: "disk", Kind: boot.KindLocal}}}}}, nil, "lab")
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{Store: db, Inventory: func() *boot.Inventory { return inv }}
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.PutHost(cli, config.Host{Name: fmt.Sprintf("h%d", i), MACs: []string{"52:54:00:00:00:01"}})
		}()
	}
	wg.Wait()
	stored := 0
	for _, err := range errs {
		var e *Error
		switch {
		case err == nil:
			stored++
		case !errors.As(err, &e) || e.Kind != Conflict || e.Field != "macs[0]":
			t.Errorf("refusal %v (%T), want a Conflict on macs[0]", err, err)
		}
	}
	if stored != 1 {
		t.Fatalf("%d of 10 writers were told their host with one MAC was stored, want 1", stored)
	}
	if _, err := boot.NewInventory(inv.Profiles(), must(db.Hosts()), "lab"); err != nil {
		t.Fatalf("the store's hosts are refused after the race: %v", err)
	}
}

func must(h []boot.Host, err error) []boot.Host {
	if err != nil {
		panic(err)
	}
	return h
}

// Hosts that the inventory refuses (duplicates from an old store) are
// still listed, so that they can be removed.
func TestHostsListsRefusedStore(t *testing.T) {
	s, st, _ := testService(t)
	inv := s.Inventory() // before the duplicates: the inventory in force
	s.Inventory = func() *boot.Inventory { return inv }
	mac, _ := net.ParseMAC("52:54:00:aa:00:01")
	st.hosts["a"] = boot.Host{Name: "a", MACs: []net.HardwareAddr{mac}}
	st.hosts["b"] = boot.Host{Name: "b", MACs: []net.HardwareAddr{mac}}
	views, err := s.Hosts()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, v := range views {
		names[v.Name] = true
	}
	if !names["a"] || !names["b"] || !names["pc0"] {
		t.Fatalf("hosts listed: %v, want pc0, a and b", names)
	}
	if err := s.DeleteHost(cli, "b"); err != nil {
		t.Fatalf("removing one of the duplicates: %v", err)
	}
}

// An old store may hold pc1 and PC1 (names were unique ignoring case
// only later): removing one by its exact spelling removes that one.
func TestDeleteHostExactSpellingFirst(t *testing.T) {
	for _, name := range []string{"pc1", "PC1"} {
		s, st, _ := testService(t)
		inv := s.Inventory() // before the duplicates: the inventory in force
		s.Inventory = func() *boot.Inventory { return inv }
		st.hosts["pc1"] = boot.Host{Name: "pc1"}
		st.hosts["PC1"] = boot.Host{Name: "PC1"}
		if err := s.DeleteHost(cli, name); err != nil {
			t.Fatal(err)
		}
		if _, ok := st.hosts[name]; ok || len(st.hosts) != 1 {
			t.Fatalf("host rm %s left %v", name, st.hosts)
		}
	}
}

// readTogether is the real store, except that the first Hosts() of each
// writer waits until every writer has read: the interleaving of two CLI
// processes that both check, then both write.
type readTogether struct {
	*store.SQLite
	all  *sync.WaitGroup
	once sync.Once
}

func (r *readTogether) Hosts() ([]boot.Host, error) {
	h, err := r.SQLite.Hosts()
	r.once.Do(func() { r.all.Done(); r.all.Wait() })
	return h, err
}

func TestPutHostBothCheckThenBothWrite(t *testing.T) {
	errs := bothCheckThenBothWrite(t, func(i int) config.Host {
		return config.Host{Name: fmt.Sprintf("h%d", i), MACs: []string{"52:54:00:00:00:01"}}
	})
	var e *Error
	switch {
	case errs[0] == nil && errs[1] == nil:
		t.Fatal("two writers that both checked before either wrote were both told their hosts with one MAC were stored")
	case errs[0] != nil && errs[1] != nil:
		t.Fatalf("both refused: %v; %v", errs[0], errs[1])
	case !errors.As(errors.Join(errs[0], errs[1]), &e) || e.Kind != Conflict || !strings.Contains(e.Msg, "belongs to host"):
		t.Fatalf("the loser's refusal: %v, want a Conflict naming the owner", errors.Join(errs[0], errs[1]))
	}
}

// Two writers of pc1 and PC1 that both check before either writes: one
// name, so one host; the loser hears a Conflict on its name.
func TestPutHostBothCheckThenBothWriteOneName(t *testing.T) {
	errs := bothCheckThenBothWrite(t, func(i int) config.Host {
		return config.Host{Name: []string{"pc1", "PC1"}[i], MACs: []string{fmt.Sprintf("52:54:00:00:00:0%d", i+1)}}
	})
	var e *Error
	switch {
	case errs[0] == nil && errs[1] == nil:
		t.Fatal("pc1 and PC1, both checked before either wrote, were both stored")
	case errs[0] != nil && errs[1] != nil:
		t.Fatalf("both refused: %v; %v", errs[0], errs[1])
	case !errors.As(errors.Join(errs[0], errs[1]), &e) || e.Kind != Conflict || e.Field != "name" || !strings.Contains(e.Msg, "has the same name"):
		t.Fatalf("the loser's refusal: %v, want a Conflict on the name", errors.Join(errs[0], errs[1]))
	}
}

// Two writers removing one host that both read before either deletes:
// one removes it, the other hears NotFound, not a second success.
func TestDeleteHostBothCheckThenBothDelete(t *testing.T) {
	errs := bothReadThenBothWrite(t,
		func(s *Service) error {
			_, err := s.PutHost(cli, config.Host{Name: "pc1", MACs: []string{"52:54:00:00:00:01"}})
			return err
		},
		func(s *Service, i int) error { return s.DeleteHost(cli, "pc1") })
	var e *Error
	switch {
	case errs[0] == nil && errs[1] == nil:
		t.Fatal("two writers that both read pc1 before either deleted it were both told they removed it")
	case errs[0] != nil && errs[1] != nil:
		t.Fatalf("both refused: %v; %v", errs[0], errs[1])
	case !errors.As(errors.Join(errs[0], errs[1]), &e) || e.Kind != NotFound:
		t.Fatalf("the loser's refusal: %v, want NotFound", errors.Join(errs[0], errs[1]))
	}
}

// bothCheckThenBothWrite has two Services write host(0) and host(1) to one
// SQLite store, each reading the store's hosts only after both have read:
// neither sees the other's host in its own checks.
func bothCheckThenBothWrite(t *testing.T, host func(i int) config.Host) []error {
	t.Helper()
	return bothReadThenBothWrite(t, nil, func(s *Service, i int) error {
		_, err := s.PutHost(cli, host(i))
		return err
	})
}

// bothReadThenBothWrite runs before (if not nil) on a fresh SQLite store,
// then write(0) and write(1) at once through two Services that each read
// the store's hosts only after both have read.
func bothReadThenBothWrite(t *testing.T, before func(*Service) error, write func(s *Service, i int) error) []error {
	t.Helper()
	db, err := store.OpenSQLite(filepath.Join(t.TempDir(), "bf.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	inv, err := boot.NewInventory([]boot.Profile{{Name: "lab", Menu: boot.Menu{Entries: []boot.Entry{{Name: "disk", Kind: boot.KindLocal}}}}}, nil, "lab")
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		if err := before(&Service{Store: db, Inventory: func() *boot.Inventory { return inv }}); err != nil {
			t.Fatal(err)
		}
	}
	var all sync.WaitGroup
	all.Add(2)
	errs := make([]error, 2)
	var done sync.WaitGroup
	for i := range errs {
		done.Add(1)
		go func() {
			defer done.Done()
			s := &Service{Store: &readTogether{SQLite: db, all: &all}, Inventory: func() *boot.Inventory { return inv }}
			errs[i] = write(s, i)
		}()
	}
	done.Wait()
	return errs
}
