package catalog

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"

	"bootforge/internal/audit"
	"bootforge/internal/image"
	"bootforge/internal/store"
)

// Move is what a promote or a rollback did to one image name.
type Move struct {
	Name string
	// To is the version active now.
	To image.ID
	// From is the version that was active before, or nil. After a
	// promote it is retired; after a rollback, staged.
	From *image.ID
	// FromState is what From became.
	FromState image.State
	// Changed is false when To was already active: nothing was written.
	Changed bool
}

// activeRow returns the stored active row of name, whether or not that
// version is still on disk: it must be moved before another becomes
// active.
func activeRow(states map[string]store.ImageState, name string) (store.ImageState, bool) {
	for _, s := range states {
		if s.Name == name && s.State == image.Active {
			return s, true
		}
	}
	return store.ImageState{}, false
}

// Promote makes a built version the active one of its name; the version
// active before is retired. Promoting the active version changes nothing.
// Any built version can be promoted: staged, or retired (to go back to it
// past the rollback order).
func (c *Catalog) Promote(id image.ID) (Move, error) {
	if _, err := c.Manifest(id); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Move{}, fmt.Errorf("image %s is not built: nothing to promote", id)
		}
		return Move{}, err
	}
	_, states, err := c.versions()
	if err != nil {
		return Move{}, err
	}
	mv := Move{Name: id.Name, To: id}
	now := c.now()
	var changes []store.ImageState
	cur, hasCur := activeRow(states, id.Name)
	if hasCur {
		if cur.Version == id.Version.String() {
			return mv, nil
		}
		from := c.onDisk(cur)
		switch {
		case from == nil: // gone from disk: forget it
			changes = append(changes, store.ImageState{Name: cur.Name, Version: cur.Version, State: image.Staged})
		default:
			mv.From, mv.FromState = from, image.Retired
			changes = append(changes, store.ImageState{Name: cur.Name, Version: cur.Version, State: image.Retired, Changed: now})
		}
	}
	changes = append(changes, store.ImageState{Name: id.Name, Version: id.Version.String(), State: image.Active, Changed: now})
	reason := "promote " + id.String() + ": first active version of " + id.Name
	var events []audit.Event
	if mv.From != nil {
		reason = "promote " + id.String() + " in place of " + mv.From.String()
		events = c.event(*mv.From, mv.From.Dir(), "retired", reason)
	}
	events = append(events, c.event(id, id.Dir(), "promoted", reason)...)
	if err := c.setStates(rowsOf(states, id.Name), changes, events); err != nil {
		return Move{}, fmt.Errorf("promote %s: %w", id, err)
	}
	mv.Changed = true
	return mv, nil
}

// rowsOf returns the stored rows of name as read: a promote or rollback
// writes only if they are still the same (never nil, so that "none" is
// checked too).
func rowsOf(states map[string]store.ImageState, name string) []store.ImageState {
	rows := []store.ImageState{}
	for _, s := range states {
		if s.Name == name {
			rows = append(rows, s)
		}
	}
	return rows
}

// onDisk returns the ID of a stored version if it is still built (its
// manifest broken or not: it can still be retired), or nil.
func (c *Catalog) onDisk(s store.ImageState) *image.ID {
	id, err := image.ParseID(key(s.Name, s.Version))
	if err != nil {
		return nil // a row no version directory can match
	}
	if _, err := c.Manifest(id); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return &id
}

// Rollback makes the most recently retired version of name active again;
// the version it rolls back from goes back to staged (see the package
// comment for why). It needs an active version and a retired one that is
// still built.
func (c *Catalog) Rollback(name string) (Move, error) {
	if err := image.CheckName(name); err != nil {
		return Move{}, err
	}
	vs, states, err := c.versions()
	if err != nil {
		return Move{}, err
	}
	cur, ok := activeRow(states, name)
	if !ok {
		return Move{}, fmt.Errorf("image %q has no active version to roll back from", name)
	}
	var retired []store.ImageState
	var ids = map[string]image.ID{}
	for _, v := range vs {
		if v.ID.Name == name && v.State == image.Retired {
			s := states[key(name, v.ID.Version.String())]
			retired = append(retired, s)
			ids[s.Version] = v.ID
		}
	}
	if len(retired) == 0 {
		return Move{}, fmt.Errorf("image %q has no retired version to roll back to (active: %s)", name, cur.Version)
	}
	newestRetiredFirst(retired, ids)
	to := ids[retired[0].Version]
	from := c.onDisk(cur)
	mv := Move{Name: name, To: to, From: from, FromState: image.Staged, Changed: true}
	changes := []store.ImageState{
		{Name: name, Version: cur.Version, State: image.Staged},
		{Name: name, Version: to.Version.String(), State: image.Active, Changed: c.now()},
	}
	reason := fmt.Sprintf("rollback of %s from %s to %s", name, cur.Version, to.Version)
	var events []audit.Event
	if from != nil {
		events = c.event(*from, from.Dir(), "staged", reason)
	}
	events = append(events, c.event(to, to.Dir(), "active", reason)...)
	if err := c.setStates(rowsOf(states, name), changes, events); err != nil {
		return Move{}, fmt.Errorf("rollback %s: %w", name, err)
	}
	return mv, nil
}

// newestRetiredFirst orders retired rows by when they were retired, the
// most recent first; at the same time, the higher version first.
func newestRetiredFirst(rows []store.ImageState, ids map[string]image.ID) {
	sort.SliceStable(rows, func(i, j int) bool {
		if !rows[i].Changed.Equal(rows[j].Changed) {
			return rows[i].Changed.After(rows[j].Changed)
		}
		return ids[rows[j].Version].Version.LessThan(ids[rows[i].Version].Version)
	})
}
