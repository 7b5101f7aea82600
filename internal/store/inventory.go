package store

import (
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/boot"
)

// Hosts managed at run time (bootforge host ...) and one-shot next boots
// live in the store, so that the CLI can change them while the server
// runs. The server notices host changes through a generation counter that
// every host write bumps, and reads one-shots on every menu it renders.

const bumpGeneration = `INSERT INTO meta (key, value) VALUES ('inventory_generation', 1)
	ON CONFLICT (key) DO UPDATE SET value = meta.value + 1`

// Generation changes whenever stored hosts change.
func (s *core) Generation() (int64, error) {
	var g int64
	err := s.queryRow(`SELECT value FROM meta WHERE key = 'inventory_generation'`).Scan(&g)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return g, err
}

// PutHost adds or replaces a host. A MAC or UUID that belongs to another
// stored host, or another stored host's name in another case, refuses it
// with a *boot.TakenError, checked in the transaction that writes it: of
// two writers racing for one MAC or name, one wins and the other is told.
// events are written in the same transaction.
func (s *core) PutHost(h boot.Host, events ...audit.Event) error {
	macs := make([]string, len(h.MACs))
	for i, m := range h.MACs {
		macs[i] = macKey(m)
	}
	uuid := strings.ToLower(h.UUID)
	return s.execAll(append([]write{{fn: func(tx tx) error {
		if tx.pg {
			// Host writes are rare: one at a time across every server, so
			// that the checks below see every other writer's names and MACs.
			if _, err := tx.Exec(`SELECT pg_advisory_xact_lock(7236562)`); err != nil {
				return err
			}
		}
		// Host names are DNS labels (ASCII), unique ignoring case: the
		// same name but for case is another host, not this one replaced.
		var owner string
		switch err := tx.QueryRow(`SELECT name FROM hosts WHERE lower(name) = lower(?) AND name != ? LIMIT 1`, h.Name, h.Name).Scan(&owner); {
		case err == nil:
			return &boot.TakenError{Host: h.Name, What: boot.TakenName, Value: h.Name, Owner: owner}
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		for _, m := range macs {
			var owner string
			err := tx.QueryRow(`SELECT host FROM host_macs WHERE mac = ? AND host != ? LIMIT 1`, m, h.Name).Scan(&owner)
			if err == nil {
				return &boot.TakenError{Host: h.Name, What: boot.TakenMAC, Value: m, Owner: owner}
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if uuid != "" {
			var owner string
			err := tx.QueryRow(`SELECT name FROM hosts WHERE uuid = ? AND name != ? LIMIT 1`, uuid, h.Name).Scan(&owner)
			if err == nil {
				return &boot.TakenError{Host: h.Name, What: boot.TakenUUID, Value: uuid, Owner: owner}
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if _, err := tx.Exec(`INSERT INTO hosts (name, macs, uuid, labels, profile, secure_boot) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET macs = excluded.macs, uuid = excluded.uuid,
			labels = excluded.labels, profile = excluded.profile, secure_boot = excluded.secure_boot`,
			h.Name, strings.Join(macs, " "), uuid, strings.Join(h.Labels, " "), h.Profile, boolInt(h.SecureBoot)); err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM host_macs WHERE host = ?`, h.Name); err != nil {
			return err
		}
		for _, m := range macs {
			if _, err := tx.Exec(`INSERT INTO host_macs (mac, host) VALUES (?, ?)`, m, h.Name); err != nil {
				return err
			}
		}
		_, err := tx.Exec(bumpGeneration)
		return err
	}}}, eventWrites(events)...))
}

// DeleteHost removes a host and reports whether it was there, as the
// transaction of the delete saw it: of two writers removing one host,
// only one hears true, and only its events are written, in the
// transaction of the delete.
func (s *core) DeleteHost(name string, events ...audit.Event) (bool, error) {
	var n int64
	err := s.execAll([]write{
		{query: `DELETE FROM hosts WHERE name = ?`, args: []any{name}, affected: &n},
		{query: `DELETE FROM host_macs WHERE host = ?`, args: []any{name}},
		{query: bumpGeneration},
		eventsIf(&n, events),
	})
	return n > 0 && err == nil, err // rolled back: nothing was removed
}

// eventsIf writes events if *n, set by a write before it in the same
// transaction, counts a row changed: a removal that found nothing to
// remove is no change, and no boot-log line.
func eventsIf(n *int64, events []audit.Event) write {
	return write{fn: func(t tx) error {
		if *n == 0 {
			return nil
		}
		return apply(t, eventWrites(events))
	}}
}

// ensureUnique makes the store keep each MAC and UUID to one host, with
// unique indexes. A store written before those existed may hold
// duplicates; it still opens, so that `bootforge host rm` can repair it
// (the inventory load names the duplicates and refuses them), and the
// indexes are made at the first open after the repair. Writes check in
// their transaction either way (PutHost).
func ensureUnique(db *sql.DB) error {
	for _, ix := range []struct{ name, create string }{
		{"host_macs_one_host", `CREATE UNIQUE INDEX IF NOT EXISTS host_macs_one_host ON host_macs (mac)`},
		{"hosts_uuid_one_host", `CREATE UNIQUE INDEX IF NOT EXISTS hosts_uuid_one_host ON hosts (uuid) WHERE uuid != ''`},
	} {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?`, ix.name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		if _, err := db.Exec(ix.create); err != nil && !strings.Contains(err.Error(), "UNIQUE constraint failed") {
			return err
		}
	}
	return nil
}

// Hosts returns the stored hosts.
func (s *core) Hosts() ([]boot.Host, error) {
	rows, err := s.query(`SELECT name, macs, uuid, labels, profile, secure_boot FROM hosts ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []boot.Host
	for rows.Next() {
		var h boot.Host
		var macs, labels string
		var secure int
		if err := rows.Scan(&h.Name, &macs, &h.UUID, &labels, &h.Profile, &secure); err != nil {
			return nil, err
		}
		h.SecureBoot = secure != 0
		for _, m := range strings.Fields(macs) {
			hw, err := net.ParseMAC(m)
			if err != nil {
				return nil, fmt.Errorf("host %q: stored MAC %q: %w", h.Name, m, err)
			}
			h.MACs = append(h.MACs, hw)
		}
		h.Labels = strings.Fields(labels)
		h.Source = "store"
		out = append(out, h)
	}
	return out, rows.Err()
}

func macKey(mac net.HardwareAddr) string { return strings.ToLower(mac.String()) }

// PutNextBoot sets a host's one-shot, replacing any other. The new one
// is stamped with a later updated time than the one it replaces, even if
// the clock stepped back or two writes fell in one tick: entry and
// updated name a one-shot for AdvanceNextBoot, so a replacement must never
// look like the one-shot it replaced. events are written in the same
// transaction.
func (s *core) PutNextBoot(mac net.HardwareAddr, nb boot.NextBoot, events ...audit.Event) error {
	var exp int64
	if !nb.Expires.IsZero() {
		exp = nb.Expires.UnixNano()
	}
	return s.execAll(append([]write{{query: `INSERT INTO next_boot (mac, entry, expires, always, state, updated) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (mac) DO UPDATE SET entry = excluded.entry, expires = excluded.expires,
		always = excluded.always, state = excluded.state,
		updated = CASE WHEN excluded.updated > next_boot.updated THEN excluded.updated ELSE next_boot.updated + 1 END`,
		args: []any{macKey(mac), nb.Entry, exp, boolInt(nb.Always), string(nb.State), time.Now().UnixNano()}}},
		eventWrites(events)...))
}

// DeleteNextBoot clears a one-shot and reports whether there was one, as
// the transaction of the delete saw it; only then are events written, in
// that transaction.
func (s *core) DeleteNextBoot(mac net.HardwareAddr, events ...audit.Event) (bool, error) {
	var n int64
	err := s.execAll([]write{
		{query: `DELETE FROM next_boot WHERE mac = ?`, args: []any{macKey(mac)}, affected: &n},
		eventsIf(&n, events),
	})
	return n > 0 && err == nil, err // rolled back: nothing was removed
}

// NextBoot returns the one-shot for mac, or nil.
func (s *core) NextBoot(mac net.HardwareAddr) (*boot.NextBoot, error) {
	row := s.queryRow(`SELECT entry, expires, always, state, updated FROM next_boot WHERE mac = ?`, macKey(mac))
	nb, err := scanNextBoot(row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return nb, err
}

// NextBoots returns every one-shot by MAC.
func (s *core) NextBoots() (map[string]*boot.NextBoot, error) {
	rows, err := s.query(`SELECT mac, entry, expires, always, state, updated FROM next_boot`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]*boot.NextBoot{}
	for rows.Next() {
		var mac string
		nb, err := scanNextBoot(func(dst ...any) error { return rows.Scan(append([]any{&mac}, dst...)...) })
		if err != nil {
			return nil, err
		}
		out[mac] = nb
	}
	return out, rows.Err()
}

// AdvanceNextBoot moves mac's one-shot to state to if it is still shot —
// the same entry, set at the same time (shot.Updated): not replaced since
// shot was read — and in one of from. It reports whether it moved. It is
// one conditional UPDATE: of two servers (or two requests) advancing one
// one-shot from the same state, exactly one moves it, so a one-shot is
// consumed once; and a one-shot set while a menu carrying the one it
// replaced was on its way is never moved by that menu's boot. A state
// change keeps updated, so that the one-shot keeps its identity through
// its states. events, the boot-log lines of the move, are written in its
// transaction only if it moved: a one-shot is never marked delivered or
// booted without its line in the log, and a move that lost the race
// writes none.
func (s *core) AdvanceNextBoot(mac net.HardwareAddr, shot boot.NextBoot, to boot.OneShotState, from []boot.OneShotState, events ...audit.Event) (bool, error) {
	if len(from) == 0 {
		return false, nil
	}
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(from)), ", ")
	args := []any{string(to), macKey(mac), shot.Entry, shot.Updated.UnixNano()}
	for _, f := range from {
		args = append(args, string(f))
	}
	var n int64
	err := s.execAll([]write{{affected: &n, query: `UPDATE next_boot SET state = ?
		WHERE mac = ? AND entry = ? AND updated = ? AND state IN (` + ph + `)`, args: args},
		eventsIf(&n, events)})
	return n > 0 && err == nil, err // rolled back: nothing was moved
}

func scanNextBoot(scan func(...any) error) (*boot.NextBoot, error) {
	var nb boot.NextBoot
	var exp, updated int64
	var always int
	var state string
	if err := scan(&nb.Entry, &exp, &always, &state, &updated); err != nil {
		return nil, err
	}
	if exp != 0 {
		nb.Expires = time.Unix(0, exp)
	}
	nb.Always = always != 0
	nb.State = boot.OneShotState(state)
	nb.Updated = time.Unix(0, updated)
	return &nb, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
