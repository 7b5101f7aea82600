package store

import (
	"errors"
	"fmt"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/image"
)

// ImageState is the stored state of one built image version. Only active
// and retired versions have a row; every other built version is staged.
type ImageState struct {
	Name    string
	Version string
	State   image.State
	Changed time.Time
}

// ErrImageRace is returned when a state change would leave two active
// versions of a name: another writer changed that name meanwhile.
var ErrImageRace = errors.New("another change to this image happened at the same time; look again and retry")

// ImageStates returns every stored image state, by name and version.
func (s *core) ImageStates() ([]ImageState, error) {
	rows, err := s.query(`SELECT name, version, state, changed FROM image_state ORDER BY name, version`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ImageState
	for rows.Next() {
		var st ImageState
		var state string
		var changed int64
		if err := rows.Scan(&st.Name, &st.Version, &state, &changed); err != nil {
			return nil, err
		}
		st.State, st.Changed = image.State(state), time.Unix(0, changed)
		out = append(out, st)
	}
	return out, rows.Err()
}

// SetImageStates applies changes in order and in one transaction, and
// bumps the inventory generation so that a running server re-resolves
// the menu entries that name images. A change to image.Staged (or "")
// deletes the row. Retire the old active version before activating the
// new one: one name never has two active versions.
//
// was, unless nil, is every row the writer read of the names it changes:
// if the store holds other rows of those names now, another writer moved
// them since, and nothing is written (ErrImageRace). Two rollbacks at once
// would otherwise both succeed and step back once.
//
// events, the boot-log lines of the changes, are written in the same
// transaction: both or neither.
func (s *core) SetImageStates(was, changes []ImageState, events ...audit.Event) error {
	ws := make([]write, 0, len(changes)+3)
	if was != nil {
		ws = append(ws, write{fn: func(tx tx) error { return unchangedImages(tx, was, changes) }})
	}
	for _, c := range changes {
		switch c.State {
		case image.Staged, "":
			ws = append(ws, write{query: `DELETE FROM image_state WHERE name = ? AND version = ?`, args: []any{c.Name, c.Version}})
		case image.Active, image.Retired:
			ws = append(ws, write{query: `INSERT INTO image_state (name, version, state, changed) VALUES (?, ?, ?, ?)
				ON CONFLICT (name, version) DO UPDATE SET state = excluded.state, changed = excluded.changed`,
				args: []any{c.Name, c.Version, string(c.State), c.Changed.UnixNano()}})
		default:
			return fmt.Errorf("image %s@%s: unknown state %q", c.Name, c.Version, c.State)
		}
	}
	ws = append(ws, write{query: bumpGeneration})
	err := s.execAll(append(ws, eventWrites(events)...))
	if isUnique(err) {
		return ErrImageRace
	}
	return err
}

// unchangedImages returns ErrImageRace unless the stored rows of every
// name in changes are exactly those of was. On PostgreSQL, image state
// writers take one lock first, so that the rows cannot change between
// this read and the writes after it; SQLite has one writer at a time.
func unchangedImages(tx tx, was, changes []ImageState) error {
	if tx.pg {
		if _, err := tx.Exec(`SELECT pg_advisory_xact_lock(7236563)`); err != nil {
			return err
		}
	}
	read := map[string]bool{}
	for _, c := range changes {
		if read[c.Name] {
			continue
		}
		read[c.Name] = true
		want := map[ImageState]bool{}
		for _, w := range was {
			if w.Name == c.Name {
				w.Changed = time.Unix(0, w.Changed.UnixNano())
				want[w] = true
			}
		}
		rows, err := tx.Query(`SELECT version, state, changed FROM image_state WHERE name = ?`, c.Name)
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			st := ImageState{Name: c.Name}
			var state string
			var changed int64
			if err := rows.Scan(&st.Version, &state, &changed); err != nil {
				rows.Close()
				return err
			}
			st.State, st.Changed = image.State(state), time.Unix(0, changed)
			if !want[st] {
				rows.Close()
				return ErrImageRace
			}
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if n != len(want) {
			return ErrImageRace
		}
	}
	return nil
}
