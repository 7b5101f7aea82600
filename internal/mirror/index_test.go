package mirror

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"bootforge/internal/catalog"
	"bootforge/internal/image"
	"bootforge/internal/store"
)

// statesThen is memStates that runs then the first time the states are
// read: after the catalog's scan has read every manifest, and before
// Active reads them again for their sums.
type statesThen struct {
	memStates
	then func()
}

func (s *statesThen) ImageStates() ([]store.ImageState, error) {
	if s.then != nil {
		s.then()
		s.then = nil
	}
	return s.memStates.ImageStates()
}

// activeRoot makes a root with a@1.0.0 and b@1.0.0 built and active, and
// returns it and b's version directory.
func activeRoot(t *testing.T, st *statesThen) (root, bDir string) {
	t.Helper()
	root = t.TempDir()
	for _, name := range []string{"a", "b"} {
		m := image.Manifest{Name: name, Version: "1.0.0", Template: "linux",
			Files: []image.File{fileOf("vmlinuz", []byte("kernel of "+name))}}
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(root, image.Dir, name, "1.0.0")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, image.ManifestName), data, 0o644); err != nil {
			t.Fatal(err)
		}
		st.SetImageStates(nil, []store.ImageState{{Name: name, Version: "1.0.0", State: image.Active}})
	}
	return root, filepath.Join(root, image.Dir, "b", "1.0.0")
}

// A version removed between the catalog's listing and the reading of its
// manifest (a gc after a promotion retired it) is left out of the index,
// which still lists the others; before, the whole index failed, and with
// it every mirror's sync that asked for it then.
func TestActiveLeavesOutVersionRemovedSinceListed(t *testing.T) {
	st := &statesThen{}
	root, bDir := activeRoot(t, st)
	st.then = func() {
		if err := os.RemoveAll(bDir); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := Active(catalog.New(root, t.TempDir(), st), root)
	if err != nil {
		t.Fatalf("Active: %v", err)
	}
	if len(idx.Versions) != 1 || idx.Versions[0].Name != "a" {
		t.Fatalf("index %+v; want a@1.0.0 alone", idx.Versions)
	}
	if st.then != nil {
		t.Fatal("the states were never read: the test removed nothing")
	}
}

// Any other failure to read a listed manifest still fails the index: a
// mirror must not be told a version is gone that is only unreadable.
func TestActiveFailsOnUnreadableManifest(t *testing.T) {
	st := &statesThen{}
	root, bDir := activeRoot(t, st)
	manifest := filepath.Join(bDir, image.ManifestName)
	st.then = func() {
		if err := os.Remove(manifest); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(manifest, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Active(catalog.New(root, t.TempDir(), st), root)
	if !errors.Is(err, syscall.EISDIR) {
		t.Fatalf("Active: %v; want EISDIR for b's manifest, now a directory", err)
	}
}
