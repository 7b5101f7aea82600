package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"bootforge/internal/store/storetest"
)

// OpenReadOnly neither makes a missing SQLite store (nor its directory)
// nor migrates an older one; it reads one that a server has open, and
// refuses writes; it leaves no -wal or -shm file behind.
func TestOpenReadOnlySQLite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, "bootforge.db")
	if _, err := OpenReadOnly(Location{Path: path}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a missing store: %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatalf("OpenReadOnly made %s", dir)
	}

	served, err := OpenSQLite(path) // as serve has it open
	if err != nil {
		t.Fatal(err)
	}
	defer served.Close()
	if err := served.PutHost(host("pc1", "", "52:54:00:00:00:01")); err != nil {
		t.Fatal(err)
	}
	for _, open := range []string{"while served", "after serve"} {
		if open == "after serve" {
			served.Close()
		}
		ro, err := OpenReadOnly(Location{Path: path})
		if err != nil {
			t.Fatalf("%s: %v", open, err)
		}
		if hs, err := ro.Hosts(); err != nil || len(hs) != 1 || hs[0].Name != "pc1" {
			t.Errorf("%s: hosts %+v, %v", open, hs, err)
		}
		if err := ro.PutHost(host("pc2", "", "52:54:00:00:00:02")); !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s: a write: %v, want ErrReadOnly", open, err)
		}
		if err := ro.Close(); err != nil {
			t.Error(err)
		}
	}

	for _, p := range []string{path + "-wal", path + "-shm"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("OpenReadOnly left %s behind", p)
		}
	}

	older := filepath.Join(t.TempDir(), "old.db")
	if err := os.WriteFile(older, nil, 0o600); err != nil { // schema version 0
		t.Fatal(err)
	}
	var ve *VersionError
	if _, err := OpenReadOnly(Location{Path: older}); !errors.As(err, &ve) || ve.Have != 0 {
		t.Fatalf("an empty file: %v, want a VersionError", err)
	}
	if st, err := os.Stat(older); err != nil || st.Size() != 0 {
		t.Errorf("OpenReadOnly wrote to the older store: %v, %d bytes", err, st.Size())
	}
}

// A PostgreSQL store is opened as serve opens it: an empty database is
// an old schema, and OpenReadOnly makes no table in it.
func TestOpenReadOnlyPostgres(t *testing.T) {
	u := storetest.PostgresURL(t)
	var ve *VersionError
	if _, err := OpenReadOnly(Location{Postgres: true, URL: u}); !errors.As(err, &ve) || ve.Have != 0 {
		t.Fatalf("an empty database: %v, want a VersionError", err)
	}
	db, err := openPG(u, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := schemaVersion(db, true); err != nil || v != 0 {
		t.Errorf("after OpenReadOnly the schema is version %d (%v), want none", v, err)
	}
	if _, _, err := MigratePostgres(u); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(Location{Postgres: true, URL: u})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Hosts(); err != nil {
		t.Error(err)
	}
}
