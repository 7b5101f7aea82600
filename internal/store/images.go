package store

import (
	"errors"
	"fmt"
	"time"

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
func (s *core) SetImageStates(changes []ImageState) error {
	ws := make([]write, 0, len(changes)+1)
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
	err := s.execAll(ws)
	if isUnique(err) {
		return ErrImageRace
	}
	return err
}
