package store

import (
	"errors"
	"testing"
	"time"

	"bootforge/internal/image"
)

func TestImageStates(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			g0, _ := s.Generation()
			now := time.Unix(1_900_000_000, 5)
			if err := s.SetImageStates(nil, []ImageState{{Name: "deb", Version: "1.0.0", State: image.Active, Changed: now}}); err != nil {
				t.Fatal(err)
			}
			if g1, _ := s.Generation(); g1 != g0+1 {
				t.Errorf("generation %d after a state change, want %d", g1, g0+1)
			}
			// Retire, then activate: in one transaction, in order.
			if err := s.SetImageStates(nil, []ImageState{
				{Name: "deb", Version: "1.0.0", State: image.Retired, Changed: now},
				{Name: "deb", Version: "2.0.0", State: image.Active, Changed: now},
			}); err != nil {
				t.Fatal(err)
			}
			// A second active version of the same name is refused, and nothing of
			// that change is kept.
			err := s.SetImageStates(nil, []ImageState{
				{Name: "deb", Version: "1.0.0", State: image.Staged},
				{Name: "deb", Version: "3.0.0", State: image.Active, Changed: now},
			})
			if !errors.Is(err, ErrImageRace) {
				t.Fatalf("two active versions: %v", err)
			}
			got, err := s.ImageStates()
			if err != nil {
				t.Fatal(err)
			}
			want := []ImageState{{"deb", "1.0.0", image.Retired, now}, {"deb", "2.0.0", image.Active, now}}
			if len(got) != len(want) {
				t.Fatalf("got %+v", got)
			}
			for i := range want {
				if got[i].Name != want[i].Name || got[i].Version != want[i].Version || got[i].State != want[i].State || !got[i].Changed.Equal(now) {
					t.Errorf("row %d: %+v, want %+v", i, got[i], want[i])
				}
			}
			if err := s.SetImageStates(nil, []ImageState{{Name: "deb", Version: "1.0.0", State: image.Staged}}); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.ImageStates(); len(got) != 1 || got[0].Version != "2.0.0" {
				t.Errorf("after forgetting 1.0.0: %+v", got)
			}
			if err := s.SetImageStates(nil, []ImageState{{Name: "deb", Version: "1.0.0", State: "bogus"}}); err == nil {
				t.Error("an unknown state was accepted")
			}

			// A write that read other rows than the store holds now is
			// refused whole: another writer moved the name meanwhile.
			read, _ := s.ImageStates() // deb 2.0.0 active
			later := now.Add(time.Second)
			if err := s.SetImageStates(read, []ImageState{
				{Name: "deb", Version: "2.0.0", State: image.Retired, Changed: later},
				{Name: "deb", Version: "4.0.0", State: image.Active, Changed: later},
			}); err != nil {
				t.Fatalf("a write on what it read: %v", err)
			}
			err = s.SetImageStates(read, []ImageState{
				{Name: "deb", Version: "2.0.0", State: image.Staged},
				{Name: "deb", Version: "1.0.0", State: image.Active, Changed: later},
			})
			if !errors.Is(err, ErrImageRace) {
				t.Fatalf("a write on stale rows: %v, want ErrImageRace", err)
			}
			if got, _ := s.ImageStates(); len(got) != 2 || got[0].Version != "2.0.0" || got[0].State != image.Retired || got[1].Version != "4.0.0" {
				t.Errorf("after the refused write: %+v", got)
			}
			// None read, none stored: the first promote of another name.
			if err := s.SetImageStates([]ImageState{}, []ImageState{{Name: "win", Version: "1.0.0", State: image.Active, Changed: later}}); err != nil {
				t.Fatal(err)
			}
			if err := s.SetImageStates([]ImageState{}, []ImageState{{Name: "win", Version: "2.0.0", State: image.Active, Changed: later}}); !errors.Is(err, ErrImageRace) {
				t.Errorf("a first promote after another: %v, want ErrImageRace", err)
			}
		})
	}
}
