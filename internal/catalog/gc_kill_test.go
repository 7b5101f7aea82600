package catalog

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/durable"
	"bootforge/internal/image"
	"bootforge/internal/store"
)

// A gc killed after any of its steps — a version moved out of sight, the
// states committed, a version deleted — leaves each version either as it
// was (its state kept, no event) or removed with its "removed" event,
// and the next gc finishes the job: each version removed once, with one
// event, and nothing left in a work directory. The kill is real: gc runs
// in a child process that SIGKILLs itself at the step (gcStep). Before,
// the next gc took a version a killed gc had hidden for one removed by
// hand and forgot its state (no "removed" line ever said it went), and
// it left a version hidden after the commit in its work directory until
// the sweep, a minute later, recorded only "a work directory removed".
func TestGCKilledAtEachStep(t *testing.T) {
	if step := os.Getenv("BOOTFORGE_TEST_GC_KILL_AT"); step != "" {
		gcKilledChild(t, step)
		return
	}
	for _, step := range []string{"hidden", "committed", "removed"} {
		t.Run(step, func(t *testing.T) {
			f := newFixture(t)
			f.promoteDebs(t)
			f.db.Close() // the child writes the store

			cmd := exec.Command(os.Args[0], "-test.run=^TestGCKilledAtEachStep$", "-test.count=1")
			cmd.Env = append(os.Environ(), "BOOTFORGE_TEST_GC_KILL_AT="+step,
				"BOOTFORGE_TEST_GC_ROOT="+f.root, "BOOTFORGE_TEST_GC_DATA="+f.data)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("gc was not killed at %s: %v\n%s", step, err, out)
			}

			db, err := store.OpenSQLite(filepath.Join(f.data, "bootforge.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			images := filepath.Join(f.root, image.Dir)
			// check says what each retired version is: as it was (its
			// state, no event; on disk, or out of sight in the work
			// directory of the gc killed) or removed with one event.
			check := func(when string, done bool) {
				t.Helper()
				rows, err := db.ImageStates()
				if err != nil {
					t.Fatal(err)
				}
				stored := map[string]image.State{}
				for _, r := range rows {
					stored[r.Name+"@"+r.Version] = r.State
				}
				events, err := db.Events(store.EventFilter{Stage: "image"})
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range []string{"1.0.0", "2.0.0"} {
					id := "deb@" + v
					removed := 0
					for _, e := range events {
						if e.Image == id && strings.HasPrefix(e.Result, "removed") {
							removed++
						}
						if e.Image == id && strings.HasPrefix(e.Result, "forgotten") {
							t.Errorf("%s: %s forgotten, as if removed by hand: %+v", when, id, e)
						}
					}
					_, statErr := os.Stat(filepath.Join(images, "deb", v))
					there := statErr == nil
					hidden, _ := filepath.Glob(filepath.Join(images, image.GCWorkPrefix+"deb-*", v))
					switch {
					case stored[id] == image.Retired && removed == 0 && (there || len(hidden) == 1) && !done:
					case stored[id] == "" && removed == 1 && !there:
					default:
						t.Errorf("%s: %s is %q in the store with %d removed events, on disk %v, hidden %v", when, id, stored[id], removed, there, hidden)
					}
				}
				if stored["deb@3.0.0"] != image.Active {
					t.Errorf("%s: deb@3.0.0 is %q, want active", when, stored["deb@3.0.0"])
				}
			}
			check("after the kill", false)
			if step == "committed" {
				// A deletion killed half-way: the manifest went first.
				hidden, _ := filepath.Glob(filepath.Join(images, image.GCWorkPrefix+"deb-*", "2.0.0"))
				if len(hidden) != 1 {
					t.Fatalf("deb@2.0.0 not in a work directory after the commit: %v", hidden)
				}
				if err := os.Remove(filepath.Join(hidden[0], image.ManifestName)); err != nil {
					t.Fatal(err)
				}
			}

			c := New(f.root, f.data, db)
			c.Events = audit.Offline{Server: "test"}
			if _, err := c.GC(GCOptions{Keep: 0}); err != nil {
				t.Fatalf("the gc after: %v", err)
			}
			check("after the next gc", true)
			entries, _ := os.ReadDir(images)
			for _, e := range entries {
				if e.Name() != "deb" {
					t.Errorf("left in images/ after the next gc: %s", e.Name())
				}
			}
			if _, err := os.Stat(filepath.Join(images, "deb", "3.0.0", image.ManifestName)); err != nil {
				t.Errorf("the active version: %v", err)
			}
		})
	}
}

// gcKilledChild runs gc on the fixture the parent built and kills this
// process at step.
func gcKilledChild(t *testing.T, step string) {
	db, err := store.OpenSQLite(filepath.Join(os.Getenv("BOOTFORGE_TEST_GC_DATA"), "bootforge.db"))
	if err != nil {
		t.Fatal(err)
	}
	c := New(os.Getenv("BOOTFORGE_TEST_GC_ROOT"), os.Getenv("BOOTFORGE_TEST_GC_DATA"), db)
	c.Events = audit.Offline{Server: "test"}
	gcStep = func(at string) {
		if at == step {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
	res, err := c.GC(GCOptions{Keep: 0})
	t.Fatalf("gc ran to its end without reaching %s: %+v, %v", step, res, err)
}

// A dry run after a killed gc does not say it would forget the state of
// the version that gc took out of sight: the real run puts it back.
// Before, it said "would forget the state of deb@1.0.0 (no longer on
// disk)".
func TestGCDryRunAfterAKill(t *testing.T) {
	f := newFixture(t)
	f.promoteDebs(t)
	// As a gc killed after its first hide leaves it: no lock held.
	images := filepath.Join(f.root, image.Dir)
	work := filepath.Join(images, image.GCWorkPrefix+"deb-123")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(images, "deb", "1.0.0"), filepath.Join(work, "1.0.0")); err != nil {
		t.Fatal(err)
	}
	res, err := f.cat.GC(GCOptions{Keep: 1, DryRun: true})
	if err != nil || len(res.Forgotten) != 0 || len(res.Versions) != 1 || res.Versions[0].String() != "deb@1.0.0" {
		t.Errorf("dry run: would remove %v, forget %v, %v; want deb@1.0.0 removed (as the real run does), nothing forgotten",
			res.Versions, res.Forgotten, err)
	}
	if _, err := os.Stat(filepath.Join(work, "1.0.0", image.ManifestName)); err != nil {
		t.Errorf("the dry run moved the hidden version: %v", err)
	}
	res, err = f.cat.GC(GCOptions{Keep: 1})
	if err != nil || len(res.Forgotten) != 0 || len(res.Versions) != 1 || res.Versions[0].String() != "deb@1.0.0" {
		t.Errorf("gc: removed %v, forgotten %v, %v; want deb@1.0.0 removed", res.Versions, res.Forgotten, err)
	}
	f.wantStates(t, map[string]image.State{"deb@2.0.0": image.Retired, "deb@3.0.0": image.Active})
}

// hideAsKilled moves id's directory into a gc work directory, as a gc
// killed after its hide leaves it, and returns the work directory.
func hideAsKilled(t *testing.T, f *fixture, name, version string) string {
	t.Helper()
	images := filepath.Join(f.root, image.Dir)
	work := filepath.Join(images, image.GCWorkPrefix+name+"-123")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(images, name, version), filepath.Join(work, version)); err != nil {
		t.Fatal(err)
	}
	return work
}

// A version a killed gc hid that cannot be put back (built again since)
// does not stop gc: it is said, and its work directory swept once it is
// old enough, as any other a killed writer left. Every gc failed on it.
func TestGCVersionNotPutBack(t *testing.T) {
	f := newFixture(t)
	f.promoteDebs(t)
	work := hideAsKilled(t, f, "deb", "1.0.0")
	f.build(t, "deb@1.0.0", kernel) // built again: its place is taken
	for i := range 2 {
		res, err := f.cat.GC(GCOptions{Keep: 2})
		if err != nil || len(res.NotPutBack) != 1 || !strings.HasPrefix(res.NotPutBack[0], "deb@1.0.0: ") {
			t.Fatalf("gc %d: %v, not put back %v; want no error and deb@1.0.0 said", i, err, res.NotPutBack)
		}
		if len(res.Forgotten) != 0 {
			t.Errorf("gc %d forgot %v", i, res.Forgotten)
		}
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(work, old, old); err != nil {
		t.Fatal(err)
	}
	res, err := f.cat.GC(GCOptions{Keep: 2})
	if err != nil || len(res.Stale) != 1 || res.Stale[0] != work {
		t.Errorf("gc: %v, stale %v; want %s swept", err, res.Stale, work)
	}
	if _, err := os.Stat(filepath.Join(f.root, image.Dir, "deb", "1.0.0", image.ManifestName)); err != nil {
		t.Errorf("the version built again is gone: %v", err)
	}
}

// A version another gc, still running, has out of sight is on disk: its
// state is not forgotten, and no event says it is no longer on disk.
func TestGCForgetsNoVersionAnotherGCHolds(t *testing.T) {
	f := newFixture(t)
	f.promoteDebs(t)
	work := hideAsKilled(t, f, "deb", "1.0.0")
	running := durable.Claim(work) // the other gc's lock
	if running == nil {
		t.Fatal("could not lock the work directory")
	}
	defer running.Release()
	for _, dry := range []bool{true, false} {
		res, err := f.cat.GC(GCOptions{Keep: 2, DryRun: dry})
		if err != nil || len(res.Forgotten) != 0 {
			t.Errorf("dry run %v: forgot %v, %v; want nothing forgotten", dry, res.Forgotten, err)
		}
	}
	rows, err := f.db.ImageStates()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(rows, func(s store.ImageState) bool {
		return s.Name == "deb" && s.Version == "1.0.0" && s.State == image.Retired
	}) {
		t.Errorf("deb@1.0.0's state is gone: %v", rows)
	}
}
