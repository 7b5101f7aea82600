package durable

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A work directory is where a writer assembles something before renaming
// it into place: an image build, a mirrored version, a version on its way
// out. A writer that is killed (the OOM killer, a stop timeout, power
// loss) cannot remove it, and a build's can be gigabytes. So the writer
// holds an advisory lock on its work directory while it lives, and
// SweepWorkDirs removes those whose lock is free: their writer is gone.

// WorkDir is a work directory and the lock held on it.
type WorkDir struct {
	Path string
	lock *os.File
}

// NewWorkDir creates a directory in parent, named pattern as
// os.MkdirTemp does, and locks it. Done removes it.
func NewWorkDir(parent, pattern string) (*WorkDir, error) {
	dir, err := os.MkdirTemp(parent, pattern)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(dir)
	if err == nil {
		if err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return &WorkDir{Path: dir, lock: f}, nil
}

// Dir is the work directory, open (it holds the lock): for moves into it
// by descriptor (renameat), which no link swapped in for its path can
// redirect.
func (w *WorkDir) Dir() *os.File { return w.lock }

// Done removes the directory and everything left in it, then releases the
// lock.
func (w *WorkDir) Done() error {
	err := os.RemoveAll(w.Path)
	w.lock.Close()
	return err
}

// Claim takes over the work directory dir if no living writer holds it:
// its lock is taken, and the caller finishes what the writer left (Done
// removes it). It returns nil if the writer is alive, or dir is gone.
func Claim(dir string) *WorkDir {
	f, err := os.Open(dir)
	if err != nil {
		return nil // gone meanwhile
	}
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		f.Close()
		return nil // its writer is alive
	}
	return &WorkDir{Path: dir, lock: f}
}

// Release releases the lock and leaves the directory, for a later
// sweep or claim.
func (w *WorkDir) Release() { w.lock.Close() }

// minStaleAge keeps a sweep off a directory made a moment ago, between
// its creation and its lock.
const minStaleAge = time.Minute

// SweepWorkDirs removes the directories in parent whose names start with
// one of prefixes and that no living writer holds: left by one that was
// killed. It returns the paths it removed; a directory it cannot remove
// is an error, and the sweep goes on with the rest.
func SweepWorkDirs(parent string, prefixes ...string) ([]string, error) {
	return sweep(parent, prefixes, true)
}

// StaleWorkDirs returns what SweepWorkDirs would remove now.
func StaleWorkDirs(parent string, prefixes ...string) []string {
	stale, _ := sweep(parent, prefixes, false)
	return stale
}

func sweep(parent string, prefixes []string, remove bool) ([]string, error) {
	entries, err := os.ReadDir(parent)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var stale []string
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !hasAnyPrefix(e.Name(), prefixes) {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		if info, err := e.Info(); err != nil || time.Since(info.ModTime()) < minStaleAge {
			continue
		}
		w := Claim(dir)
		if w == nil {
			continue
		}
		if !remove {
			stale = append(stale, dir)
			w.Release()
		} else if err := w.Done(); err != nil {
			errs = append(errs, err)
		} else {
			stale = append(stale, dir)
		}
	}
	return stale, errors.Join(errs...)
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
