package store

import (
	"path/filepath"
	"testing"

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
