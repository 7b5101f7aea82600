package store

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// maxBatch bounds the writes in one transaction.
const maxBatch = 1024

// sqliteMigrations are applied in order; the index+1 is the schema
// version. PostgreSQL has its own list (postgresMigrations).
var sqliteMigrations = []string{
	`CREATE TABLE leases (
		ip        TEXT PRIMARY KEY,
		mac       BLOB,
		client_id BLOB,
		hostname  TEXT NOT NULL DEFAULT '',
		expires   INTEGER NOT NULL, -- unix nanoseconds
		state     TEXT NOT NULL
	)`,
	`CREATE TABLE hosts (
		name    TEXT PRIMARY KEY,
		macs    TEXT NOT NULL DEFAULT '', -- space-separated, lower case
		uuid    TEXT NOT NULL DEFAULT '',
		labels  TEXT NOT NULL DEFAULT '', -- space-separated
		profile TEXT NOT NULL DEFAULT ''
	)`,
	`CREATE TABLE next_boot (
		mac     TEXT PRIMARY KEY, -- lower case, colons
		entry   TEXT NOT NULL,
		expires INTEGER NOT NULL, -- unix nanoseconds, 0: never
		always  INTEGER NOT NULL,
		state   TEXT NOT NULL,
		updated INTEGER NOT NULL
	)`,
	`CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)`,
	`CREATE TABLE events (
		id       INTEGER PRIMARY KEY AUTOINCREMENT,
		time     INTEGER NOT NULL, -- unix nanoseconds
		mac      TEXT NOT NULL DEFAULT '',
		ip       TEXT NOT NULL DEFAULT '',
		arch     TEXT NOT NULL DEFAULT '',
		stage    TEXT NOT NULL DEFAULT '',
		protocol TEXT NOT NULL DEFAULT '',
		file     TEXT NOT NULL DEFAULT '',
		bytes    INTEGER NOT NULL DEFAULT 0,
		duration INTEGER NOT NULL DEFAULT 0, -- nanoseconds
		result   TEXT NOT NULL DEFAULT '',
		profile  TEXT NOT NULL DEFAULT '',
		image    TEXT NOT NULL DEFAULT '',
		server   TEXT NOT NULL DEFAULT ''
	)`,
	`CREATE INDEX events_mac_time ON events (mac, time)`,
	`CREATE INDEX events_ip_time ON events (ip, time)`,
	`CREATE INDEX events_time ON events (time)`,
	`CREATE TABLE tokens (
		id      TEXT PRIMARY KEY, -- the public part of the token
		hash    TEXT NOT NULL,    -- SHA-256 of the whole token, hex
		role    TEXT NOT NULL,    -- read or admin
		name    TEXT NOT NULL DEFAULT '',
		created INTEGER NOT NULL
	)`,
	// 11: a host's Secure Boot flag (written through the API and `host add
	// --secure-boot`, dropped before), and why an event happened (e.g. a
	// DHCP decision's reason).
	`ALTER TABLE hosts ADD COLUMN secure_boot INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE events ADD COLUMN reason TEXT NOT NULL DEFAULT ''`,
	// 12: which built image versions are active or retired (a version
	// without a row is staged). The partial index keeps one active version
	// per name even if two writers race.
	`CREATE TABLE image_state (
		name    TEXT NOT NULL,
		version TEXT NOT NULL,
		state   TEXT NOT NULL, -- active or retired
		changed INTEGER NOT NULL, -- unix nanoseconds
		PRIMARY KEY (name, version)
	);
	CREATE UNIQUE INDEX image_state_one_active ON image_state (name) WHERE state = 'active'`,
	// One row per host MAC, so that the store itself can keep a MAC
	// (and a UUID) to one host: hosts.macs stays as the list as written.
	// The unique indexes come from ensureUnique, because a store that
	// already holds duplicates must still open to be repaired.
	`CREATE TABLE host_macs (
		mac  TEXT NOT NULL, -- lower case, colons
		host TEXT NOT NULL  -- hosts.name
	);
	INSERT INTO host_macs (mac, host)
		WITH RECURSIVE split (host, mac, rest) AS (
			SELECT name, '', trim(macs) || ' ' FROM hosts
			UNION ALL
			SELECT host, substr(rest, 1, instr(rest, ' ') - 1), ltrim(substr(rest, instr(rest, ' ') + 1)) FROM split WHERE rest != ''
		)
		SELECT mac, host FROM split WHERE mac != '';
	CREATE INDEX host_macs_host ON host_macs (host)`,
	// A server sharing its store finds the lease another server gave a
	// client by the client's MAC (LeaseOf).
	`CREATE INDEX leases_mac ON leases (mac)`,
	// A SQLite store is never shared (Shared is PostgreSQL's), so nothing
	// asks it for a lease by MAC, and that index only cost every lease
	// write a b-tree insert at a random place: a fifth of a lease claim's
	// CPU (BenchmarkDHCPWrites, MACs scattered as a fleet's are).
	`DROP INDEX leases_mac`,
	// 15: the boot log's per-client indexes lead with the event's day
	// (eventDay), so that a day's events go into that day's part of them:
	// keyed by MAC or IP alone, every event landed at a random place in
	// indexes as large as the whole log.
	`DROP INDEX events_mac_time;
	DROP INDEX events_ip_time;
	CREATE INDEX events_day_mac ON events ((time / 86400000000000), mac, time);
	CREATE INDEX events_day_ip ON events ((time / 86400000000000), ip, time)`,
	// 16: they lead with the event's segment (eventSegment) instead: a
	// day holds a whole storm's clients, so the day's part of them was
	// still written at random places.
	`DROP INDEX events_day_mac;
	DROP INDEX events_day_ip;
	CREATE INDEX events_seg_mac ON events ((id / 1024), mac, time);
	CREATE INDEX events_seg_ip ON events ((id / 1024), ip, time)`,
	// 17: leases are kept in their address's order, in one b-tree. As a
	// rowid table with a text primary key, every claim wrote two: the
	// table's row and the key's index, each page of them a frame in the
	// write-ahead log that the claim's commit syncs (7% of a claim's
	// writer CPU, BenchmarkDHCPWrites/leases).
	`CREATE TABLE leases_by_ip (
		ip        TEXT PRIMARY KEY,
		mac       BLOB,
		client_id BLOB,
		hostname  TEXT NOT NULL DEFAULT '',
		expires   INTEGER NOT NULL, -- unix nanoseconds
		state     TEXT NOT NULL
	) WITHOUT ROWID;
	INSERT INTO leases_by_ip (ip, mac, client_id, hostname, expires, state)
		SELECT ip, mac, client_id, hostname, expires, state FROM leases;
	DROP TABLE leases;
	ALTER TABLE leases_by_ip RENAME TO leases`,
	// 18: the index by MAC holds only the events that name one. A TFTP or
	// HTTP download knows its client by IP alone (by MAC only for a
	// per-client menu), so most of a boot's events name no MAC, and each
	// cost an entry under '' that no lookup reads (eventsQuery).
	`DROP INDEX events_seg_mac;
	CREATE INDEX events_seg_mac ON events ((id / 1024), mac, time) WHERE mac != ''`,
}

// SQLite is the embedded store.
type SQLite struct {
	core
	writes chan write // durable writes
	logs   chan write // boot-log writes (runLog)
	// sync is the store's synchronous mode, current the connection's now:
	// the writer relaxes it for boot-log commits.
	sync, current string
	done          chan struct{}
	once          sync.Once
	// stmts are the writer's statements, prepared once: SQLite parses
	// and plans SQL text on every Exec, which cost a tenth of the
	// server's CPU under DHCP load. Only the writer goroutine uses it.
	stmts map[string]*sql.Stmt

	// ckpt is a second connection that copies the write-ahead log into
	// the database in the background (see checkpointer); commits counts
	// the writer's commits since it last ran.
	ckpt    *sql.DB
	commits atomic.Int64
	stop    chan struct{}
	stopped chan struct{}
}

// maxStmts bounds the prepared statements. The writer's are a fixed set
// of constants and the boot log's INSERTs (eventWrites): four sizes for
// each set of empty columns that events come with, a few sets in
// practice, the four of a set about 130 KB prepared. A statement past the
// bound is parsed each time it runs.
const maxStmts = 64

// Sync modes for OpenSQLite.
const (
	SyncFull   = "full"   // every commit is on disk: survives power loss
	SyncNormal = "normal" // every commit is in the OS: survives a crash of bootforge
)

// OpenSQLite opens (creating if needed) the database at path and brings its
// schema up to date. sync is SyncFull or SyncNormal (empty means full).
func OpenSQLite(path string, sync ...string) (*SQLite, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := privateFiles(path); err != nil {
		return nil, err
	}
	mode := SyncFull
	if len(sync) > 0 && sync[0] == SyncNormal {
		mode = SyncNormal // in WAL mode: no fsync per commit, only at checkpoints
	}
	// The path is escaped: SQLite reads "file:" names as URIs, where a "#"
	// or "?" in a directory name would otherwise cut the path short and
	// open another database.
	//
	// temp_store(MEMORY) keeps statement journals (an upsert inside a
	// batch has one) in memory instead of a temporary file.
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?_pragma=journal_mode(WAL)&_pragma=synchronous(" + strings.ToUpper(mode) + ")&_pragma=busy_timeout(5000)&_txlock=immediate" +
		"&_pragma=temp_store(MEMORY)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1) // one writer; SQLite serialises writes anyway
	if err := migrate(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	if err := ensureUnique(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	ckpt, err := sql.Open("sqlite", dsn)
	if err != nil {
		db.Close()
		return nil, err
	}
	ckpt.SetMaxOpenConns(1)
	s := &SQLite{core: core{db: db, name: path}, writes: make(chan write, maxBatch), logs: make(chan write, 16),
		sync: mode, current: mode, done: make(chan struct{}), ckpt: ckpt, stop: make(chan struct{}), stopped: make(chan struct{})}
	s.run = s.queue
	s.runBrief = s.queueBrief
	s.runLog = s.queueLog
	go s.writer()
	go s.checkpointer()
	return s, nil
}

// The checkpointer looks for new commits every checkpointInterval. It
// checkpoints once checkpointCommits have come since the last checkpoint,
// or at checkpointMaxAge after it if any have: under DHCP load (hundreds
// of commits a second) that is every look, and a quiet store is copied
// within a second. A checkpoint costs about a millisecond of CPU however
// little it copies, and a busy file server's boot log commits about 50
// times a second (one per linger): checkpointing on every look cost 5% of
// the server's CPU on 8 MiB downloads at 290 a second.
const (
	checkpointInterval = 50 * time.Millisecond
	checkpointCommits  = 16
	checkpointMaxAge   = time.Second
)

// checkpointer copies committed pages from the write-ahead log into the
// database on its own connection, while the writer goes on committing.
// Without it, SQLite's automatic checkpoint does all the copying, and the
// fsync of the database file, inside the commit that takes the log past
// 1,000 pages, and every client waiting on that commit waits for it (the
// writer's commit p99 grew from 9 to 21 ms over a 40,000-lease DHCP run
// as the database grew). The automatic checkpoint still runs, so that the
// log is restarted rather than growing under steady load, but finds
// little left to copy. A passive checkpoint never blocks the writer.
func (s *SQLite) checkpointer() {
	defer close(s.stopped)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			if n := s.commits.Load(); checkpointDue(n, now.Sub(last)) {
				s.commits.Add(-n)
				last = now
				s.ckpt.Exec(`PRAGMA wal_checkpoint(PASSIVE)`) // busy or failed: the automatic one covers it
			}
		}
	}
}

// checkpointDue reports whether a checkpoint is due with n commits since
// the last, which was age ago.
func checkpointDue(n int64, age time.Duration) bool {
	return n >= checkpointCommits || n > 0 && age >= checkpointMaxAge
}

// privateFiles makes the database file 0600 before SQLite opens it, so
// that SQLite, which gives its -wal and -shm files the database's mode,
// makes those 0600 too; files a looser older version left are tightened.
func privateFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, 0o600); err != nil {
				return err
			}
		}
	}
	return nil
}

func migrate(db *sql.DB) error { return applyMigrations(db, false, sqliteMigrations, "") }

// Close stops the writer after the queued writes and closes the database.
func (s *SQLite) Close() error {
	s.once.Do(func() { close(s.writes); close(s.logs); close(s.stop) })
	<-s.done
	<-s.stopped
	s.ckpt.Close()
	for _, st := range s.stmts {
		st.Close()
	}
	return s.db.Close()
}

// writer commits queued writes. Durable writes go first, in batches that
// share one commit and its fsync; a batch of brief writes only (offers)
// commits without the fsync. A boot-log write goes when no durable write
// waits, in a commit of its own that does not fsync: a lease's ACK waits
// neither behind a thousand events nor for their disk sync.
func (s *SQLite) writer() {
	defer close(s.done)
	writes, logs := s.writes, s.logs
	for writes != nil || logs != nil {
		var w write
		var ok, durable bool
		select {
		case w, ok = <-writes: // a waiting durable write goes first
			durable = true
		default:
			select {
			case w, ok = <-writes:
				durable = true
			case w, ok = <-logs:
			}
		}
		switch {
		case !ok && durable:
			writes = nil // closed: a nil channel is never chosen
		case !ok:
			logs = nil
		case durable:
			s.commitDurable(w)
		default:
			s.commitLog(w)
		}
	}
}

// commitDurable commits w with the durable writes queued behind it.
func (s *SQLite) commitDurable(w write) {
	batch := []write{w}
fill:
	for len(batch) < maxBatch {
		select {
		case w, ok := <-s.writes:
			if !ok {
				break fill
			}
			batch = append(batch, w)
		default:
			break fill
		}
	}
	mode := SyncNormal // offers alone: synced by the next durable commit or checkpoint
	for _, w := range batch {
		if !w.brief {
			mode = s.sync
			break
		}
	}
	if err := s.setSync(mode); err != nil {
		for _, w := range batch {
			w.err <- err
		}
		return
	}
	if err := s.commit(batch); err == nil || len(batch) == 1 {
		for _, w := range batch {
			w.err <- err
		}
		return
	}
	// One bad write must not fail its neighbours: retry each alone.
	for _, w := range batch {
		w.err <- s.commit([]write{w})
	}
}

// commitLog commits a boot-log write in one transaction that does not
// fsync: it survives a crash of bootforge at once, and power loss with the
// next durable commit or checkpoint, which sync the whole log.
func (s *SQLite) commitLog(w write) {
	s.setSync(SyncNormal) // if it fails, the events are synced: slower, not wrong
	w.err <- s.commit([]write{w})
}

// setSync sets the connection's synchronous mode for the commits that
// follow. A new connection starts in the store's mode, s.sync, so a lost
// connection can only make current stricter than it says.
func (s *SQLite) setSync(mode string) error {
	if s.current == mode {
		return nil
	}
	if _, err := s.db.Exec(`PRAGMA synchronous = ` + strings.ToUpper(mode)); err != nil {
		return fmt.Errorf("setting synchronous mode %s: %w", mode, err)
	}
	s.current = mode
	return nil
}

func (s *SQLite) commit(batch []write) error {
	s.prepare(batch)
	t, err := s.db.Begin()
	if err != nil {
		return err
	}
	for _, w := range batch {
		if err := apply(tx{Tx: t, stmts: s.stmts}, w.group); err != nil {
			t.Rollback()
			return err
		}
	}
	if err := t.Commit(); err != nil {
		return err
	}
	s.commits.Add(1)
	return nil
}

// prepare prepares the statements of batch that are not yet. It runs
// before the transaction begins: the store has one connection, and a
// Prepare inside the transaction would wait for it forever. A statement
// that fails to prepare is left out; its Exec reports the error.
func (s *SQLite) prepare(batch []write) {
	for _, w := range batch {
		for _, g := range w.group {
			if g.query == "" || s.stmts[g.query] != nil || len(s.stmts) >= maxStmts {
				continue
			}
			if st, err := s.db.Prepare(g.query); err == nil {
				if s.stmts == nil {
					s.stmts = map[string]*sql.Stmt{}
				}
				s.stmts[g.query] = st
			}
		}
	}
}

// queue hands writes that must commit together to the writer and waits
// until they are durable. They go into the same transaction because the
// writer takes them from the queue in one piece.
func (s *SQLite) queue(ws []write) error { return send(s.writes, ws) }

// queueBrief is queue for writes that need not survive a crash of the
// database: they wait for their commit, not for its disk sync.
func (s *SQLite) queueBrief(ws []write) error {
	return sendWrite(s.writes, write{group: ws, brief: true})
}

// queueLog hands boot-log writes to the writer and waits until they are
// committed.
func (s *SQLite) queueLog(ws []write) error { return send(s.logs, ws) }

func send(c chan write, ws []write) error { return sendWrite(c, write{group: ws}) }

// sendWrite queues w and waits for its commit.
func sendWrite(c chan write, w write) (err error) {
	defer func() {
		if recover() != nil {
			err = errors.New("store is closed")
		}
	}()
	w.err = make(chan error, 1)
	c <- w
	return <-w.err
}
