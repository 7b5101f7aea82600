package keys

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"bootforge/internal/durable"
)

// setFile is one file of the set that Init writes.
type setFile struct {
	name string
	data []byte
	mode os.FileMode
}

// writeFile and rename are what writeSet writes and renames with; tests
// replace them to fail part way.
var (
	writeFile = durable.WriteFile
	rename    = os.Rename
)

// initPrefix begins the names of Init's work directories in the keys
// directory.
const initPrefix = ".init-"

// writeSet puts files into dir all or nothing, so that a failed Init leaves
// the keys as they were and a retry is not refused by half a set (a full
// disk once left ca.key and signing.key alone, and "keys show" and the
// next "keys init" failed on them).
//
// Every file is first written and synced in a work directory inside dir:
// that is where a full disk fails, with nothing in dir changed. Only then
// are they renamed to their names, which needs no room. Should a rename
// fail all the same, the ones before it are undone: a file that was there
// (--force) is put back from a hard link kept of it, a new one removed.
func writeSet(dir string, files []setFile) error {
	// The work directory of an Init that was killed is unlocked; sweep it.
	durable.SweepWorkDirs(dir, initPrefix)
	w, err := durable.NewWorkDir(dir, initPrefix)
	if err != nil {
		return err
	}
	// The work directory holds copies of private keys: it goes in any case.
	defer w.Done()
	newDir, oldDir := filepath.Join(w.Path, "new"), filepath.Join(w.Path, "old")
	for _, d := range []string{newDir, oldDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(newDir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	for _, f := range files {
		err := os.Link(filepath.Join(dir, f.name), filepath.Join(oldDir, f.name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	for i, f := range files {
		if err := rename(filepath.Join(newDir, f.name), filepath.Join(dir, f.name)); err != nil {
			undoSet(dir, oldDir, files[:i])
			return err
		}
	}
	return durable.SyncDir(dir)
}

// undoSet puts back the files that writeSet renamed into dir: the old one
// where there was one, else none.
func undoSet(dir, oldDir string, files []setFile) {
	for _, f := range files {
		p, old := filepath.Join(dir, f.name), filepath.Join(oldDir, f.name)
		if exists(old) {
			os.Rename(old, p)
		} else {
			os.Remove(p)
		}
	}
	durable.SyncDir(dir)
}
