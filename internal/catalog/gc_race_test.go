package catalog

import (
	"errors"
	"testing"

	"bootforge/internal/image"
	"bootforge/internal/store"
)

// statesRead runs after its first ImageStates: a writer that changes the
// states between gc's read and its commit.
type statesRead struct {
	Store
	after func()
}

func (s *statesRead) ImageStates() ([]store.ImageState, error) {
	rows, err := s.Store.ImageStates()
	if f := s.after; f != nil {
		s.after = nil
		f()
	}
	return rows, err
}

// A retired version promoted again while gc runs is not removed: gc
// forgets states only if they are still those it read (store.ErrImageRace),
// and puts back what it took out of sight. Before, it deleted the row of
// the version just made active, and the version with it.
func TestGCRemovesNoVersionPromotedMeanwhile(t *testing.T) {
	f := newFixture(t)
	for _, v := range []string{"deb@1.0.0", "deb@2.0.0"} {
		f.build(t, v, kernel)
		if _, err := f.cat.Promote(mustID(t, v)); err != nil {
			t.Fatal(err)
		}
	}
	c := New(f.root, f.data, &statesRead{Store: f.db, after: func() {
		if _, err := f.cat.Promote(mustID(t, "deb@1.0.0")); err != nil {
			t.Error(err)
		}
	}})
	c.Events = f.events
	if _, err := c.GC(GCOptions{Keep: 0}); !errors.Is(err, store.ErrImageRace) {
		t.Errorf("gc across a promote: %v, want %v", err, store.ErrImageRace)
	}
	f.wantStates(t, map[string]image.State{"deb@1.0.0": image.Active, "deb@2.0.0": image.Retired})
	if drifts, err := f.cat.Verify(nil, mustID(t, "deb@1.0.0")); err != nil || len(drifts) != 0 {
		t.Errorf("the version promoted meanwhile: %v %v", err, drifts)
	}
}
