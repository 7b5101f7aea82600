package durable

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "key.pem")
	if err := WriteFile(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "two" {
		t.Fatalf("read %q, %v; want the second write", got, err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the directory holds %d entries, want the file only (no temp left)", len(entries))
	}
}

func TestWriteFileMissingDir(t *testing.T) {
	if err := WriteFile(filepath.Join(t.TempDir(), "no", "f"), []byte("x"), 0o644); err == nil {
		t.Fatal("wrote into a directory that does not exist")
	}
}

func TestSyncTree(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
	os.WriteFile(filepath.Join(dir, "a", "f"), []byte("x"), 0o644)
	if err := SyncTree(dir); err != nil {
		t.Fatal(err)
	}
	if err := SyncTree(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("synced a tree that does not exist")
	}
}

// A work directory is swept only once its writer is gone (its lock free)
// and it is older than a minute; one whose writer lives stays.
func TestSweepWorkDirs(t *testing.T) {
	parent := t.TempDir()
	live, err := NewWorkDir(parent, ".build-a-")
	if err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(parent, ".build-b-1")
	young := filepath.Join(parent, ".build-c-1")
	other := filepath.Join(parent, "deb")
	for _, d := range []string{dead, young, other} {
		if err := os.MkdirAll(filepath.Join(d, "version"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-time.Hour)
	for _, d := range []string{live.Path, dead, other} {
		os.Chtimes(d, old, old)
	}
	if stale := StaleWorkDirs(parent, ".build-", ".gc-"); len(stale) != 1 || stale[0] != dead {
		t.Errorf("stale %v; want only %s", stale, dead)
	}
	removed, err := SweepWorkDirs(parent, ".build-", ".gc-")
	if err != nil || len(removed) != 1 || removed[0] != dead {
		t.Fatalf("removed %v, %v; want only %s", removed, err, dead)
	}
	for _, d := range []string{live.Path, young, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
	if err := live.Done(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(live.Path); !os.IsNotExist(err) {
		t.Errorf("after Done: %v", err)
	}
}
