// Package storetest gives tests a PostgreSQL database of their own, and
// a store that refuses its boot-log events.
//
// CI installs and starts Debian's PostgreSQL (scripts/deps.sh), so a test
// that cannot reach it fails rather than skips: a missing server must not
// look like a green run.
package storetest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// DefaultPostgres is the test server: the local cluster's socket, as root
// (peer authentication), in the database scripts/deps.sh creates.
const DefaultPostgres = "postgres:///bootforge_test?host=/var/run/postgresql"

// AdminURL is the test server's database the tests create theirs from.
func AdminURL() string {
	if u := os.Getenv("BOOTFORGE_TEST_POSTGRES"); u != "" {
		return u
	}
	return DefaultPostgres
}

// PostgresURL returns the URL of a new, empty database on the test
// server (BOOTFORGE_TEST_POSTGRES, else DefaultPostgres), dropped when the
// test ends, so that tests can run in parallel.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := AdminURL()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("test PostgreSQL %s: %v", base, err)
	}
	if err := admin.Ping(); err != nil {
		admin.Close()
		t.Fatalf("test PostgreSQL %s is unreachable (scripts/deps.sh starts it): %v", base, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "bf_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec(`CREATE DATABASE ` + name); err != nil {
		admin.Close()
		t.Fatalf("test PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.Exec(`DROP DATABASE ` + name + ` WITH (FORCE)`); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// RefuseEvents makes a store refuse every boot-log insert, as a full disk
// or a broken events table would: for the tests that a change and its
// events commit together or not at all. path is a SQLite file, or, if
// postgres, a PostgreSQL URL.
func RefuseEvents(t testing.TB, path string, postgres bool) {
	t.Helper()
	driver, stmts := "sqlite", []string{`CREATE TRIGGER refuse_events BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'events refused'); END`}
	if postgres {
		driver, stmts = "pgx", []string{
			`CREATE FUNCTION refuse_events() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'events refused'; END $$`,
			`CREATE TRIGGER refuse_events BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_events()`,
		}
	}
	db, err := sql.Open(driver, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}
