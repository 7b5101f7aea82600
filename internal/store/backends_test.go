package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/store/storetest"
)

// backend is one store implementation under test: every store test runs
// against each (for _, b := range backends(t)).
type backend struct {
	name string
	loc  Location
}

func backends(t *testing.T) []backend {
	return []backend{
		{"sqlite", Location{Path: filepath.Join(t.TempDir(), "bf.db")}},
		{"postgres", Location{Postgres: true, URL: storetest.PostgresURL(t)}},
	}
}

// path is the backend's SQLite file or PostgreSQL URL.
func (b backend) path() string {
	if b.loc.Postgres {
		return b.loc.URL
	}
	return b.loc.Path
}

// open opens the backend's store (migrating PostgreSQL first, as
// `bootforge store migrate` would), closed when the test ends.
func (b backend) open(t *testing.T) Store {
	t.Helper()
	if b.loc.Postgres {
		if _, _, err := MigratePostgres(b.loc.URL); err != nil {
			t.Fatal(err)
		}
	}
	s, err := OpenAt(b.loc, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// PutEvents writes a batch in multi-row INSERTs of several sizes: every
// event arrives once, in order, with its fields, whatever the batch size.
func TestPutEventsChunks(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			base := time.Unix(1_900_000_000, 0)
			total := 0
			for _, n := range []int{1, 3, 4, 5, 16, 21, 64, 85, 150} {
				evs := make([]audit.Event, n)
				for i := range evs {
					evs[i] = audit.Event{Time: base.Add(time.Duration(total+i) * time.Millisecond), MAC: "AA:BB:CC:00:00:01",
						IP: "192.0.2.7", Stage: "kernel", Protocol: "http", File: fmt.Sprintf("f%d", total+i), Bytes: int64(total + i),
						Duration: time.Second, Result: "ok", Reason: "r", Profile: "p", Image: "i@1", Server: "s", Arch: "bios"}
				}
				if err := s.PutEvents(evs); err != nil {
					t.Fatalf("%d events: %v", n, err)
				}
				total += n
			}
			got, err := s.Events(EventFilter{Limit: 10000})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != total {
				t.Fatalf("%d events stored, want %d", len(got), total)
			}
			seen := map[string]bool{}
			for _, e := range got {
				if e.MAC != "aa:bb:cc:00:00:01" || e.Server != "s" || e.Arch != "bios" || e.Image != "i@1" || e.Duration != time.Second ||
					e.File != fmt.Sprintf("f%d", e.Bytes) || !e.Time.Equal(base.Add(time.Duration(e.Bytes)*time.Millisecond)) {
					t.Fatalf("event stored as %+v", e)
				}
				seen[e.File] = true
			}
			if len(seen) != total {
				t.Fatalf("%d distinct events, want %d", len(seen), total)
			}
		})
	}
}

// PutEvents writes a column that all the rows of an INSERT leave empty as
// a constant, not a parameter: events that leave each combination of the
// optional columns empty, mixed in one batch, are each stored with every
// field where it belongs.
func TestPutEventsEmptyColumns(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			base := time.Unix(1_900_000_000, 0)
			// 1<<optionalColumns combinations, three times over and
			// then some: groups of several sizes, and chunks of each.
			evs := make([]audit.Event, 3<<optionalColumns+5)
			want := map[int64]audit.Event{}
			for i := range evs {
				e := audit.Event{Time: base.Add(time.Duration(i) * time.Millisecond), IP: "192.0.2.7", Stage: "kernel", Protocol: "http",
					Bytes: int64(i), Duration: time.Duration(i) * time.Microsecond, Result: "ok", Server: "s"}
				empty := i % (1 << optionalColumns)
				for bit, f := range []*string{&e.MAC, &e.Arch, &e.File, &e.Reason, &e.Profile, &e.Image} {
					if empty&(1<<bit) == 0 {
						*f = fmt.Sprintf("v%d-%d", bit, i)
					}
				}
				evs[i] = e
				want[e.Bytes] = e
			}
			if err := s.PutEvents(evs); err != nil {
				t.Fatal(err)
			}
			got, err := s.Events(EventFilter{Limit: 10000})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(evs) {
				t.Fatalf("%d events stored, want %d", len(got), len(evs))
			}
			for _, e := range got {
				w, ok := want[e.Bytes]
				if !ok {
					t.Fatalf("event stored as %+v, which was not put (or twice)", e)
				}
				delete(want, e.Bytes)
				e.ID = 0
				if !e.Time.Equal(w.Time) {
					t.Fatalf("event stored at %v, want %v", e.Time, w.Time)
				}
				e.Time = w.Time
				if e != w {
					t.Fatalf("event stored as\n%+v\nwant\n%+v", e, w)
				}
			}
		})
	}
}
