package e2e

import (
	"fmt"
	"testing"
	"time"

	"bootforge/internal/store/storetest"
)

// e2eStore is one store the lease, host and one-shot tests run against,
// through the same test code: the embedded SQLite default, and a fresh
// PostgreSQL database of the test's own (storetest.PostgresURL: CI starts
// the server; an unreachable one fails the test).
type e2eStore struct {
	name string
	url  string // store.url; empty: the SQLite file under the data dir
}

// e2eStores returns SQLite and a migrated PostgreSQL database, dropped
// when t ends.
func e2eStores(t *testing.T) []e2eStore {
	t.Helper()
	return []e2eStore{{name: "sqlite"}, {name: "postgres", url: newPostgresStore(t)}}
}

// newPostgresStore makes a PostgreSQL database and migrates it with
// `bootforge store migrate`, as an operator would.
func newPostgresStore(t testing.TB) string {
	t.Helper()
	u := storetest.PostgresURL(t)
	if out, code := clRun(t, 60*time.Second, nil, "store", "migrate", u); code != 0 {
		t.Fatalf("bootforge store migrate: exit %d\n%s", code, out)
	}
	return u
}

// yaml is the store section to append to a test's config.
func (st e2eStore) yaml() string {
	if st.url == "" {
		return ""
	}
	return fmt.Sprintf("\nstore:\n  url: %q\n", st.url)
}

// eachStore runs test once per store, in parallel subtests.
func eachStore(t *testing.T, test func(t *testing.T, st e2eStore)) {
	for _, st := range e2eStores(t) {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			test(t, st)
		})
	}
}
