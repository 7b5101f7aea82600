package store

import (
	"fmt"
	"strings"

	"bootforge/internal/audit"
)

// copyTables are the tables Copy moves, with their columns, parents
// first. schema_version is not copied: each store has its own.
var copyTables = []struct{ name, cols string }{
	{"hosts", "name, macs, uuid, labels, profile, secure_boot"},
	{"host_macs", "mac, host"},
	{"next_boot", "mac, entry, expires, always, state, updated"},
	{"leases", "ip, mac, client_id, hostname, expires, state"},
	{"tokens", "id, hash, role, name, created"},
	{"image_state", "name, version, state, changed"},
	{"events", "id, time, mac, ip, arch, stage, protocol, file, bytes, duration, result, reason, profile, image, server"},
	{"meta", "key, value"},
}

// CopyCount is how many rows of one table Copy moved.
type CopyCount struct {
	Table string
	Rows  int
}

// Copy moves every host (with its MACs), one-shot, lease, token, image
// state and boot-log event from one store to another, in one transaction
// on the target: all or nothing. A target that holds any of them is
// refused unless force, which empties those tables first.
//
// tokenName, if not nil, is the API's token-name rule (api.CheckTokenName,
// which store cannot import). A source holding a token the rule refuses
// (one stored before the rule) is refused before anything is written:
// PostgreSQL would fail the copy with its raw error for a name that is
// not UTF-8, and take one with a control character that token list would
// print. Refused rather than skipped: a token left behind would go on
// working until the switch to the new store and then fail its client,
// far from the copy that dropped it. The message names each token and
// the way out.
func Copy(from, to Store, force bool, tokenName func(name string) error) ([]CopyCount, error) {
	src, dst := coreOf(from), coreOf(to)
	if src == nil || dst == nil {
		return nil, fmt.Errorf("copy: unknown store type")
	}
	if tokenName != nil {
		if err := checkTokenNames(src, tokenName); err != nil {
			return nil, err
		}
	}
	t, err := dst.db.Begin()
	if err != nil {
		return nil, err
	}
	defer t.Rollback()
	target := tx{Tx: t, pg: dst.pg}
	for _, tb := range copyTables {
		var n int
		if err := target.QueryRow(`SELECT count(*) FROM ` + tb.name).Scan(&n); err != nil {
			return nil, err
		}
		if n > 0 && tb.name != "meta" && !force {
			return nil, fmt.Errorf("%w: %s has %d rows in %s (--force replaces them)", errNotEmpty, to.Name(), n, tb.name)
		}
		if _, err := target.Exec(`DELETE FROM ` + tb.name); err != nil {
			return nil, err
		}
	}
	var counts []CopyCount
	for _, tb := range copyTables {
		n, err := copyTable(src, target, tb.name, tb.cols)
		if err != nil {
			return nil, fmt.Errorf("copy %s: %w", tb.name, err)
		}
		counts = append(counts, CopyCount{tb.name, n})
	}
	if dst.pg {
		// Explicit ids leave the identity behind: new events continue after the copied ones.
		if _, err := target.Exec(`SELECT setval(pg_get_serial_sequence('events', 'id'), GREATEST((SELECT MAX(id) FROM events), 1))`); err != nil {
			return nil, err
		}
	}
	// Every running server re-reads the hosts it now shares.
	if _, err := target.Exec(bumpGeneration); err != nil {
		return nil, err
	}
	return counts, t.Commit()
}

// checkTokenNames refuses src's tokens whose names rule refuses, naming
// every one.
func checkTokenNames(src *core, rule func(string) error) error {
	rows, err := src.query(`SELECT id, name FROM tokens ORDER BY created, id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var bad, ids []string
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return err
		}
		if err := rule(name); err != nil {
			bad = append(bad, fmt.Sprintf("token %q: %v", id, err))
			ids = append(ids, id)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(bad) == 0 {
		return nil
	}
	revoke := "ID"
	if len(ids) == 1 && isWord(ids[0]) {
		revoke = ids[0]
	}
	return fmt.Errorf("copy: nothing copied: %d token(s) in %s break today's token-name rule; "+
		"revoke each in that store (with it configured: bootforge token revoke %s) and make a new one, then copy again:\n%s",
		len(bad), src.name, revoke, strings.Join(bad, "\n"))
}

// isWord reports whether s can be printed as a shell word as it is.
func isWord(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || r == '-')
	})
}

func copyTable(src *core, dst tx, table, cols string) (int, error) {
	rows, err := src.query(`SELECT ` + cols + ` FROM ` + table)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	ncol := len(strings.Split(cols, ","))
	insert := `INSERT INTO ` + table + ` (` + cols + `) VALUES (` + strings.TrimSuffix(strings.Repeat("?, ", ncol), ", ") + `)`
	n := 0
	for rows.Next() {
		vals := make([]any, ncol)
		ptrs := make([]any, ncol)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		if table == "events" || table == "leases" {
			// A SQLite store keeps any bytes, and holds the names clients
			// asked for, or called themselves (option 12), as they came
			// before audit.Stamp and lease.Hostname cleaned them;
			// PostgreSQL would refuse the whole copy for one that is not
			// UTF-8.
			for i, v := range vals {
				if s, ok := v.(string); ok {
					vals[i] = audit.Text(s)
				}
			}
		}
		if _, err := dst.Exec(insert, vals...); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

func coreOf(s Store) *core {
	switch s := s.(type) {
	case *SQLite:
		return &s.core
	case *Postgres:
		return &s.core
	}
	return nil
}
