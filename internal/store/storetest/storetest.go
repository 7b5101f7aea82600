// Package storetest gives tests a PostgreSQL database of their own.
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
