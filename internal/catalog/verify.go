package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"bootforge/internal/blob"
	"bootforge/internal/image"
)

// DriftKind says how a file differs from its manifest.
type DriftKind string

// Drift kinds.
const (
	Missing       DriftKind = "missing"
	SizeDiffers   DriftKind = "size differs"
	DigestDiffers DriftKind = "digest differs"
	Extra         DriftKind = "not in the manifest"
	Unreadable    DriftKind = "unreadable"
	// The manifest's signature (signing on) is not there, or does not
	// verify against the signing CA: the manifest is unsigned or tampered.
	Unsigned     DriftKind = "manifest signature missing"
	BadSignature DriftKind = "manifest signature does not verify"
)

// Drift is one file of a version that is not as its manifest says.
type Drift struct {
	ID   image.ID
	Path string // relative to the version's directory
	Kind DriftKind
	// What the manifest says and what is on disk (sizes -1 and digests ""
	// where not known).
	WantSize, GotSize     int64
	WantSHA256, GotSHA256 string
	Err                   string // for Unreadable
}

func (d Drift) String() string {
	s := fmt.Sprintf("%s: %s: %s", d.ID, d.Path, d.Kind)
	switch d.Kind {
	case SizeDiffers:
		s += fmt.Sprintf(" (manifest %d bytes, file %d bytes)", d.WantSize, d.GotSize)
	case DigestDiffers:
		s += fmt.Sprintf(" (manifest sha256 %s, file sha256 %s)", d.WantSHA256, d.GotSHA256)
	case Extra:
		s += fmt.Sprintf(" (%d bytes; it will not be served)", d.GotSize)
	case Unreadable, BadSignature:
		s += " (" + d.Err + ")"
	}
	return s
}

// Progress is told the bytes hashed so far and in all.
type Progress func(done, total int64)

// Verify re-hashes every file of the given versions against its
// manifest's size and SHA-256, and looks for files the manifest does not
// list. It returns the drifts, by version and path; an error means a
// version could not be verified at all (not built, broken manifest).
// progress, if set, is called before the first file and after each one.
func (c *Catalog) Verify(progress Progress, ids ...image.ID) ([]Drift, error) {
	manifests := make([]*image.Manifest, len(ids))
	var total int64
	for i, id := range ids {
		m, err := c.Manifest(id)
		if err != nil {
			return nil, err
		}
		manifests[i] = m
		total += Size(m)
	}
	if progress == nil {
		progress = func(int64, int64) {}
	}
	root, err := os.OpenRoot(c.root)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	var drifts []Drift
	var done int64
	progress(done, total)
	for i, id := range ids {
		m := manifests[i]
		if d, ok := c.verifySignature(root, id); !ok {
			drifts = append(drifts, d)
		}
		for _, f := range m.Files {
			if d, ok := c.verifyFile(root, id, f); !ok {
				drifts = append(drifts, d)
			}
			done += f.Size
			progress(done, total)
		}
		extra, err := c.extraFiles(id, m)
		if err != nil {
			return nil, err
		}
		drifts = append(drifts, extra...)
	}
	sort.SliceStable(drifts, func(i, j int) bool {
		if drifts[i].ID.String() != drifts[j].ID.String() {
			return less(drifts[i].ID, drifts[j].ID)
		}
		return drifts[i].Path < drifts[j].Path
	})
	return drifts, nil
}

// verifyFile checks one file. Files are looked up through the served
// root, as the server does: a symlink that leads out of it is unreadable.
// The file is opened once, and its type and size are those of the open
// file, whose bytes are then hashed: looked up again by name, it could
// have been another file by then (the root's directory swapped, a link
// or a FIFO put in its place), and the bytes verified would not be those
// that were checked, or the hash would wait forever on a FIFO.
func (c *Catalog) verifyFile(root *os.Root, id image.ID, f image.File) (Drift, bool) {
	d := Drift{ID: id, Path: f.Path, WantSize: f.Size, GotSize: -1, WantSHA256: f.SHA256}
	rel := filepath.FromSlash(id.Dir() + "/" + f.Path)
	fh, st, err := openRegular(root, rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		d.Kind = Missing
		return d, false
	case err != nil:
		d.Kind, d.Err = Unreadable, err.Error()
		return d, false
	}
	defer fh.Close()
	if st.Size() != f.Size {
		d.Kind, d.GotSize = SizeDiffers, st.Size()
		return d, false
	}
	sum, n, err := blob.Hash(context.Background(), fh)
	switch {
	case err != nil:
		d.Kind, d.Err = Unreadable, err.Error()
		return d, false
	case n != f.Size:
		d.Kind, d.GotSize = SizeDiffers, n
		return d, false
	case sum != f.SHA256:
		d.Kind, d.GotSize, d.GotSHA256 = DigestDiffers, n, sum
		return d, false
	}
	return Drift{}, true
}

// extraFiles lists the files in a version's directory that its manifest
// does not list (the manifest itself aside).
func (c *Catalog) extraFiles(id image.ID, m *image.Manifest) ([]Drift, error) {
	dir := filepath.Join(c.root, filepath.FromSlash(id.Dir()))
	listed := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		listed[f.Path] = true
	}
	var out []Drift
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == image.ManifestName || rel == image.ManifestSigName || listed[rel] {
			return nil
		}
		d := Drift{ID: id, Path: rel, Kind: Extra, WantSize: -1, GotSize: -1}
		if info, err := e.Info(); err == nil {
			d.GotSize = info.Size()
		}
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", id, err)
	}
	return out, nil
}

// verifySignature checks a version's manifest against its detached
// signature, when the catalog has a Verifier (signing is on). Both are
// read through the served root, as the server and a mirror get them: a
// signature that is a link out of the root is unreadable, not checked
// with bytes from elsewhere, and a FIFO there does not hold Verify.
func (c *Catalog) verifySignature(root *os.Root, id image.ID) (Drift, bool) {
	if c.Verifier == nil {
		return Drift{}, true
	}
	d := Drift{ID: id, Path: image.ManifestSigName, WantSize: -1, GotSize: -1}
	dir := filepath.FromSlash(id.Dir())
	sig, err := readSmall(root, filepath.Join(dir, image.ManifestSigName))
	if errors.Is(err, fs.ErrNotExist) {
		d.Kind = Unsigned
		return d, false
	}
	if err != nil {
		d.Kind, d.Err = Unreadable, err.Error()
		return d, false
	}
	data, err := readSmall(root, filepath.Join(dir, image.ManifestName))
	if err != nil {
		d.Kind, d.Err = Unreadable, err.Error()
		return d, false
	}
	if err := c.Verifier.Verify(data, sig); err != nil {
		d.Kind, d.Err = BadSignature, err.Error()
		return d, false
	}
	return Drift{}, true
}

// openRegular opens the file at name below root for reading if it is a
// regular file. It is looked at first, so that a FIFO or a device found
// there is never opened (opening a device can do something by itself);
// what is opened is checked again (blob.Regular), as it may no longer be
// what was looked at, and is what the caller reads.
func openRegular(root *os.Root, name string) (*os.File, fs.FileInfo, error) {
	st, err := root.Stat(name)
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is %s, not a regular file", filepath.Join(root.Name(), name), blob.TypeName(st.Mode()))
	}
	return blob.Regular(root.OpenFile(name, blob.ReadFlags, 0))
}

// readSmall reads a regular file below root, of at most maxManifest bytes.
func readSmall(root *os.Root, name string) ([]byte, error) {
	f, st, err := openRegular(root, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st.Size() > maxManifest {
		return nil, fmt.Errorf("%s: larger than %d bytes", f.Name(), maxManifest)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	if len(data) > maxManifest {
		return nil, fmt.Errorf("%s: larger than %d bytes", f.Name(), maxManifest)
	}
	return data, nil
}
