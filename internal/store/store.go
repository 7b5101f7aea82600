// Package store keeps bootforge's durable state: leases, hosts, one-shots,
// image states, API tokens and the boot log.
//
// Store is the one interface the program uses. Two implementations share
// every query (written once, with "?" placeholders, through database/sql):
//
//   - SQLite, the embedded default (modernc.org/sqlite: pure Go, no cgo,
//     one file under the data dir). A write that a protocol answer depends
//     on — a lease before its ACK — must be on disk before the answer
//     leaves, yet a sync per lease would cap a server at a few hundred
//     leases a second. So writes go through one writer goroutine that
//     commits whatever has queued up in a single transaction: group
//     commit. It migrates its schema itself when it opens: zero
//     configuration.
//   - PostgreSQL (github.com/jackc/pgx/v5 through its database/sql driver,
//     pgx/v5/stdlib), for several servers sharing one truth. The stdlib
//     driver, not pgxpool, because it lets both backends share one set of
//     queries and scanners; database/sql pools connections itself. Each
//     write is its own transaction: durable when the commit returns (the
//     server groups concurrent commits into one WAL flush on its own). Its
//     schema is migrated only by `bootforge store migrate`: a server never
//     changes a schema other servers share.
//
// Each backend keeps its migrations in one list (sqliteMigrations,
// postgresMigrations) and its version in a schema_version table. Opening
// a store whose schema is newer than this program knows fails, naming
// both versions.
package store

import (
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"bootforge/internal/audit"
	"bootforge/internal/boot"
	"bootforge/internal/config"
	"bootforge/internal/dhcp/lease"
)

// Store is everything the program keeps durably.
type Store interface {
	// Leases (lease.Store): PutLease is durable when it returns nil.
	LoadLeases() ([]lease.Lease, error)
	PutLease(lease.Lease) error
	DeleteLease(ip netip.Addr) error
	ClaimLease(l lease.Lease) (lease.Lease, bool, error)
	ReleaseOffer(l lease.Lease) error
	LeaseOf(mac net.HardwareAddr, clientID []byte) (lease.Lease, bool, error)
	// Shared: other servers may use the same store (PostgreSQL).
	Shared() bool

	// Hosts and one-shots. The events given to a write are its boot-log
	// lines, written in its transaction: both or neither.
	Generation() (int64, error)
	Hosts() ([]boot.Host, error)
	PutHost(boot.Host, ...audit.Event) error
	DeleteHost(name string, events ...audit.Event) (bool, error)
	NextBoot(net.HardwareAddr) (*boot.NextBoot, error)
	NextBoots() (map[string]*boot.NextBoot, error)
	PutNextBoot(net.HardwareAddr, boot.NextBoot, ...audit.Event) error
	DeleteNextBoot(net.HardwareAddr, ...audit.Event) (bool, error)
	AdvanceNextBoot(mac net.HardwareAddr, shot boot.NextBoot, to boot.OneShotState, from []boot.OneShotState, events ...audit.Event) (bool, error)

	// The boot log.
	PutEvents([]audit.Event) error
	Events(EventFilter) ([]audit.Event, error)
	DeleteEventsBefore(time.Time) error

	// API tokens.
	PutToken(Token) error
	TokenByID(id string) (Token, bool, error)
	Tokens() ([]Token, error)
	DeleteToken(id string) error

	// Image states; as for hosts, the events are written with the states.
	ImageStates() ([]ImageState, error)
	SetImageStates(was, changes []ImageState, events ...audit.Event) error

	// Ping checks that the database answers.
	Ping() error
	// Name says which store this is: the SQLite file, or the PostgreSQL
	// URL without its password.
	Name() string
	Close() error
}

// Location is where a store.url points.
type Location struct {
	Postgres bool
	Path     string // SQLite: the file
	URL      string // PostgreSQL: the connection URL
}

// Locate reads store.url: empty means the embedded SQLite file under the
// data dir, "sqlite:PATH" another SQLite file, "postgres://..." (or
// "postgresql://...") a PostgreSQL database.
func Locate(storeURL, dataDir string) (Location, error) {
	switch {
	case storeURL == "":
		return Location{Path: filepath.Join(dataDir, "bootforge.db")}, nil
	case strings.HasPrefix(storeURL, "sqlite:"):
		p := strings.TrimPrefix(storeURL, "sqlite:")
		if p == "" {
			return Location{}, fmt.Errorf("store url %q names no file", storeURL)
		}
		return Location{Path: p}, nil
	case strings.HasPrefix(storeURL, "postgres://"), strings.HasPrefix(storeURL, "postgresql://"):
		return Location{Postgres: true, URL: storeURL}, nil
	}
	return Location{}, fmt.Errorf("store url %q is neither sqlite:PATH nor postgres://...", storeURL)
}

// Open opens the store the configuration names (store.url). SQLite is
// migrated as it opens; PostgreSQL must already be at this program's
// schema version (`bootforge store migrate`).
func Open(cfg config.Config) (Store, error) {
	loc, err := Locate(cfg.Store.URL, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	return OpenAt(loc, cfg.StoreSync)
}

// OpenAt opens the store at loc; sync applies to SQLite only. On an
// error the Store is nil, not an interface holding a nil pointer.
func OpenAt(loc Location, sync string) (Store, error) {
	if loc.Postgres {
		db, err := OpenPostgres(loc.URL)
		if err != nil {
			return nil, err
		}
		return db, nil
	}
	db, err := OpenSQLite(loc.Path, sync)
	if err != nil {
		return nil, err
	}
	return db, nil
}

// core holds the queries both backends share. Methods on it are promoted
// to *SQLite and *Postgres.
type core struct {
	db   *sql.DB
	pg   bool
	name string
	// run commits writes that must commit together and returns when they
	// are durable.
	run func([]write) error
	// runBrief commits writes that need not survive a crash of the
	// database (offers: a client whose offer is forgotten asks again),
	// but are seen by every server as soon as it returns.
	runBrief func([]write) error
	// runLog appends boot-log rows. They need not survive a crash of the
	// database, may commit apart from one another, and give way to the
	// writes a client waits on.
	runLog func([]write) error
}

type write struct {
	query string
	args  []any
	fn    func(tx) error // instead of query: reads and writes that must see the same state
	group []write        // statements that commit together (then query is empty)
	err   chan error
	// affected, if set, gets the number of rows query changed: the result
	// of a conditional write.
	affected *int64
	// brief: the write need not survive a crash of the database (runBrief).
	brief bool
}

// tx is a transaction that speaks the shared "?" dialect.
type tx struct {
	*sql.Tx
	pg bool
	// stmts, if set, are statements prepared on the transaction's
	// connection, by SQL text.
	stmts map[string]*sql.Stmt
}

func (t tx) Exec(q string, args ...any) (sql.Result, error) {
	if st := t.stmts[q]; st != nil {
		return t.Tx.Stmt(st).Exec(args...)
	}
	return t.Tx.Exec(rebind(t.pg, q), args...)
}

func (t tx) QueryRow(q string, args ...any) *sql.Row {
	return t.Tx.QueryRow(rebind(t.pg, q), args...)
}

func (t tx) Query(q string, args ...any) (*sql.Rows, error) {
	return t.Tx.Query(rebind(t.pg, q), args...)
}

func (c *core) query(q string, args ...any) (*sql.Rows, error) {
	return c.db.Query(rebind(c.pg, q), args...)
}

func (c *core) queryRow(q string, args ...any) *sql.Row {
	return c.db.QueryRow(rebind(c.pg, q), args...)
}

// exec commits one statement and waits until it is durable.
func (c *core) exec(query string, args ...any) error {
	return c.run([]write{{query: query, args: args}})
}

// execAll commits statements together and waits until they are durable.
func (c *core) execAll(ws []write) error { return c.run(ws) }

// apply runs writes in t.
func apply(t tx, ws []write) error {
	for _, w := range ws {
		var err error
		if w.fn != nil {
			err = w.fn(t)
		} else {
			var res sql.Result
			res, err = t.Exec(w.query, w.args...)
			if err == nil && w.affected != nil {
				*w.affected, err = res.RowsAffected()
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Shared reports whether other servers may allocate from this store:
// PostgreSQL's is meant to be shared, SQLite's file is one server's.
func (c *core) Shared() bool { return c.pg }

// Name says which store this is.
func (c *core) Name() string { return c.name }

// Ping checks that the database answers.
func (c *core) Ping() error {
	var one int
	return c.queryRow(`SELECT 1`).Scan(&one)
}

// rebind turns "?" placeholders into PostgreSQL's "$1", "$2"... The
// shared queries have no "?" inside string literals.
func rebind(pg bool, q string) string {
	if !pg || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// isUnique reports a unique-constraint violation in either backend.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// applyMigrations brings db up to len(ms), each migration in its own
// transaction with its version. lock, if set, runs first in each
// transaction (PostgreSQL: an advisory lock, so that two `store migrate`
// runs do not apply one migration twice).
func applyMigrations(db *sql.DB, pg bool, ms []string, lock string) error {
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	for {
		t, err := db.Begin()
		if err != nil {
			return err
		}
		if lock != "" {
			if _, err := t.Exec(lock); err != nil {
				t.Rollback()
				return err
			}
		}
		var v int
		if err := t.QueryRow(`SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
			t.Rollback()
			return err
		}
		if v > len(ms) {
			t.Rollback()
			return &VersionError{Have: v, Know: len(ms)}
		}
		if v == len(ms) {
			return t.Rollback()
		}
		if _, err := t.Exec(ms[v]); err != nil {
			t.Rollback()
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
		if _, err := t.Exec(rebind(pg, `INSERT INTO schema_version (version) VALUES (?)`), v+1); err != nil {
			t.Rollback()
			return err
		}
		if err := t.Commit(); err != nil {
			return err
		}
	}
}

// schemaVersion reads the version of db's schema; 0 when it has none.
func schemaVersion(db *sql.DB, pg bool) (int, error) {
	var exists bool
	q := `SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'`
	if pg {
		q = `SELECT to_regclass('schema_version') IS NOT NULL`
	}
	if err := db.QueryRow(q).Scan(&exists); err != nil {
		return 0, err
	}
	if !exists {
		return 0, nil
	}
	var v int
	err := db.QueryRow(`SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	return v, err
}

// VersionError is a schema this program cannot use as it is.
type VersionError struct {
	Have, Know int
}

func (e *VersionError) Error() string {
	if e.Have > e.Know {
		return fmt.Sprintf("schema version %d is newer than this bootforge knows (%d): upgrade bootforge", e.Have, e.Know)
	}
	return fmt.Sprintf("schema version %d is older than this bootforge's (%d): run `bootforge store migrate`", e.Have, e.Know)
}

// Migrate brings the schema of the store at loc up to this program's
// version and returns the versions before and after. SQLite does the same
// on every open; PostgreSQL only here.
func Migrate(loc Location) (from, to int, err error) {
	if loc.Postgres {
		return MigratePostgres(loc.URL)
	}
	if _, err := os.Stat(loc.Path); err == nil {
		db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: loc.Path}).EscapedPath()+"?mode=ro")
		if err != nil {
			return 0, 0, err
		}
		from, err = schemaVersion(db, false)
		db.Close()
		if err != nil {
			return 0, 0, fmt.Errorf("store %s: %w", loc.Path, err)
		}
	}
	s, err := OpenSQLite(loc.Path)
	if err != nil {
		return from, 0, err
	}
	return from, len(sqliteMigrations), s.Close()
}
