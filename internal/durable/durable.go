// Package durable writes files and directories so that a crash leaves
// either the old state or the new one, never half of a file.
//
// Keys, certificates, manifests and mirrored image versions are written
// by several packages; each used to carry its own copy of "write a temp
// file, sync it, rename it, sync the directory". One copy is one place to
// get the order right. Work directories (workdir.go) are the other half:
// what a writer killed halfway leaves behind is found and removed.
package durable

import (
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile writes data to name with mode perm atomically: the data goes
// to a temporary file in the same directory, is synced, and is renamed
// over name; then the directory is synced, so the rename survives a crash
// too. A file that was at name stays whole until the rename.
func WriteFile(name string, data []byte, perm fs.FileMode) error {
	dir, base := filepath.Split(name)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir syncs a directory, so that the entries made or renamed in it
// survive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// SyncTree syncs every directory below and including dir: a tree staged
// beside its final place, before it is renamed there.
func SyncTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return SyncDir(p)
		}
		return nil
	})
}
