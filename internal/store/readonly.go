package store

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
)

// ErrReadOnly is what a write to a store opened by OpenReadOnly returns.
var ErrReadOnly = errors.New("store is opened read-only")

// OpenReadOnly opens the store at loc to read it, for a command that
// checks a server's state and must not change it (`bootforge check`).
// Open would make a missing SQLite file and its directory, and migrate
// the schema: a check that did that would find, on its next run, a store
// that it made itself. Here a missing SQLite file is an error that
// wraps fs.ErrNotExist, the file is opened for queries only, and its schema must
// be this program's, as PostgreSQL's must be at every open. PostgreSQL is
// opened as Open does: OpenPostgres neither creates nor migrates anything,
// but the store it returns could write; check only reads.
func OpenReadOnly(loc Location) (Store, error) {
	if loc.Postgres {
		return OpenAt(loc, "")
	}
	if _, err := os.Stat(loc.Path); err != nil {
		return nil, fmt.Errorf("store %s: %w", loc.Path, err)
	}
	// mode=rw, not rwc: a file that went since the Stat is not made. Not
	// mode=ro either: a read-only connection to a WAL database leaves
	// the -wal and -shm files behind when it closes, where a read-write
	// one, the last to close, removes them; query_only refuses writes.
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: loc.Path}).EscapedPath()+"?mode=rw&_pragma=query_only(1)&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, err
	}
	v, err := schemaVersion(db, false)
	if err == nil && v != len(sqliteMigrations) {
		err = &VersionError{Have: v, Know: len(sqliteMigrations)}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", loc.Path, err)
	}
	refuse := func([]write) error { return ErrReadOnly }
	return &readOnly{core{db: db, name: loc.Path, run: refuse, runBrief: refuse, runLog: refuse}}, nil
}

// readOnly is a SQLite store opened by OpenReadOnly: the shared queries
// read it, and every write fails.
type readOnly struct{ core }

func (r *readOnly) Close() error { return r.db.Close() }
