package catalog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"bootforge/internal/audit"
	"bootforge/internal/blob"
	"bootforge/internal/durable"
	"bootforge/internal/image"
	"bootforge/internal/store"

	"golang.org/x/sys/unix"
)

// GCOptions say what GC keeps.
type GCOptions struct {
	// Keep is how many retired versions of each name stay, the most
	// recently retired first: the depth of rollback.
	Keep int
	// DryRun reports what would be removed and removes nothing.
	DryRun bool
	// InUse are the versions that menu entries resolve to now: never
	// removed, whatever Keep says. An entry may name a retired version
	// (`image: deb@~1.0`), and removing it would refuse the inventory.
	InUse []image.ID
}

// GCResult is what GC removed (or, in a dry run, would remove).
type GCResult struct {
	Versions []image.ID
	Blobs    []string // SHA-256 (hex) of the blobs
	Bytes    int64    // freed: the file sizes of the versions and blobs
	// Forgotten are the stored states (NAME@VERSION) of versions no
	// longer on disk.
	Forgotten []string
	// InUse are retired versions beyond Keep that stay because a menu
	// entry resolves to them.
	InUse []image.ID
	// Broken are version directories whose manifests cannot be used.
	// While there is one, no blob is removed: which blobs it was built
	// from is unknown.
	Broken []Broken
	// Stale are work directories left by an import, build, mirror sync or
	// gc that was killed; removed (in a dry run: would be).
	Stale []string
	// NotPutBack are versions a killed gc had taken out of sight that
	// could not be put back (NAME@VERSION: why), e.g. because the version
	// was built again meanwhile; their work directories are swept as
	// Stale ones.
	NotPutBack []string
	DryRun     bool
}

// GC removes retired versions beyond the newest opts.Keep of each name
// (never an active or staged one), then the blobs below
// data_dir/blobs/sha256 that no remaining manifest lists as a source, and
// forgets the states of versions that are no longer on disk. It also
// removes the work directories of imports, builds, mirror syncs and gc
// runs that were killed. Only files named by a SHA-256 are blobs. Run it
// when no import or build is in progress: a blob imported for a build
// that has not written its manifest yet is unreferenced.
//
// A version's directory is first moved into a work directory, which no
// scan sees; then its state is forgotten with its "removed" event, in one
// transaction; and only then is it deleted: a version is never half
// there, and a download in flight keeps reading its open file. The
// transaction decides: a gc killed before it leaves the version out of
// sight with its state and no event, and the next gc puts it back (the
// old state); one killed after it leaves the state forgotten with its
// event, and the next gc finishes the deletion (the new state).
func (c *Catalog) GC(opts GCOptions) (GCResult, error) {
	if opts.Keep < 0 {
		return GCResult{}, fmt.Errorf("keep %d: must be 0 or more", opts.Keep)
	}
	res := GCResult{DryRun: opts.DryRun}
	if !opts.DryRun {
		notPutBack, err := c.recoverKilled()
		if err != nil {
			return res, err
		}
		res.NotPutBack = notPutBack
	}
	b, broken, err := c.scan()
	if err != nil {
		return res, err
	}
	res.Broken = broken
	inUse := map[string]bool{}
	for _, id := range opts.InUse {
		inUse[key(id.Name, id.Version.String())] = true
	}
	states, err := c.states()
	if err != nil {
		return res, err
	}

	// Retired versions per name, the most recently retired first.
	retired := map[string][]store.ImageState{}
	ids := map[string]map[string]image.ID{}
	onDisk := map[string]bool{}
	for _, v := range broken {
		onDisk[key(v.ID.Name, v.ID.Version.String())] = true // its state stays
	}
	// A version in a gc's work directory is not gone: a gc still running
	// puts it back if its store write fails, and one that was killed is
	// finished by the next (recoverKilled). Its state is not forgotten.
	hiddenNow, err := c.gcWorkVersions()
	if err != nil {
		return res, err
	}
	for _, h := range hiddenNow {
		onDisk[key(h.id.Name, h.id.Version.String())] = true
	}
	if opts.DryRun {
		// What the real run's recovery will do first: a version a killed
		// gc hid whose state is still stored is put back, and so is a
		// candidate like any other; one whose state is gone has its
		// deletion finished.
		left, err := c.killedGCs()
		if err != nil {
			return res, err
		}
		for _, h := range left {
			if _, stored := states[key(h.id.Name, h.id.Version.String())]; !stored {
				res.Versions = append(res.Versions, h.id)
			} else if m, err := h.manifest(); err == nil {
				b = append(b, built{id: h.id, m: m})
			}
			h.work.Release()
		}
	}
	for _, v := range b {
		k := key(v.id.Name, v.id.Version.String())
		onDisk[k] = true
		if s, ok := states[k]; ok && s.State == image.Retired {
			retired[v.id.Name] = append(retired[v.id.Name], s)
			if ids[v.id.Name] == nil {
				ids[v.id.Name] = map[string]image.ID{}
			}
			ids[v.id.Name][s.Version] = v.id
		}
	}
	remove := map[string]bool{}
	for name, rows := range retired {
		newestRetiredFirst(rows, ids[name])
		for _, r := range rows[min(opts.Keep, len(rows)):] {
			if k := key(name, r.Version); inUse[k] {
				res.InUse = append(res.InUse, ids[name][r.Version])
			} else {
				remove[k] = true
			}
		}
	}

	// Blobs that a remaining manifest lists stay.
	used := map[string]bool{}
	for _, v := range b {
		k := key(v.id.Name, v.id.Version.String())
		if remove[k] {
			res.Versions = append(res.Versions, v.id)
			res.Bytes += Size(v.m)
			continue
		}
		for _, s := range v.m.Sources {
			used[strings.ToLower(s.SHA256)] = true
		}
	}
	blobs, err := blob.Open(c.dataDir)
	if err != nil {
		return res, err
	}
	stored, err := blobs.List()
	if err != nil {
		return res, err
	}
	var blobSizes []int64
	for _, b := range stored {
		if used[b.Digest] || len(broken) > 0 {
			continue
		}
		res.Blobs = append(res.Blobs, b.Digest)
		blobSizes = append(blobSizes, b.Size)
		res.Bytes += b.Size
	}

	// The states of versions no longer on disk (removed by hand) are
	// forgotten, each with its event, in the transaction that removes
	// the versions below.
	var forget []store.ImageState
	var forgetEvents []audit.Event
	for k, s := range states {
		if !onDisk[k] {
			res.Forgotten = append(res.Forgotten, k)
			forget = append(forget, store.ImageState{Name: s.Name, Version: s.Version, State: image.Staged})
		}
	}
	sort.Strings(res.Forgotten)
	for _, k := range res.Forgotten {
		s := states[k]
		id, _ := image.ParseID(k) // a row no version could have still has its line, by file
		forgetEvents = append(forgetEvents, c.event(id, path.Join(image.Dir, s.Name, s.Version), "forgotten", "gc: the version is no longer on disk")...)
	}
	sort.Slice(res.InUse, func(i, j int) bool { return less(res.InUse[i], res.InUse[j]) })
	images := filepath.Join(c.root, image.Dir)
	if opts.DryRun {
		res.Stale = append(durable.StaleWorkDirs(blobs.TempDir(), blob.ImportWorkPrefix),
			durable.StaleWorkDirs(images, workPrefixes...)...)
		return res, nil
	}
	// What only the disk held (work directories, blobs) is recorded
	// after its removal, which no transaction can join: a removal that
	// fails stops gc, and the events of those made before it are still
	// written, and so does a store that refuses them.
	imports, err := durable.SweepWorkDirs(blobs.TempDir(), blob.ImportWorkPrefix)
	if err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	var events []audit.Event
	for _, d := range imports {
		events = append(events, c.event(image.ID{}, path.Join("blobs", filepath.Base(blobs.TempDir()), filepath.Base(d)), "removed", "gc: work directory of an import that was killed")...)
	}
	if err := c.record(events); err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	works, err := durable.SweepWorkDirs(images, workPrefixes...)
	if err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	events = nil
	for _, d := range works {
		events = append(events, c.event(image.ID{}, path.Join(image.Dir, filepath.Base(d)), "removed", "gc: work directory of a build, mirror sync or gc that was killed")...)
	}
	if err := c.record(events); err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	res.Stale = append(imports, works...)

	// A version is moved out of sight, its state forgotten with its
	// event, and only then deleted: if the store refuses the event, or
	// another writer changed the states of its name since they were read
	// (store.ErrImageRace: a retired version promoted again), the version
	// is put back, and neither happened. A kill at any step is recovered
	// by the next gc (recoverKilled).
	reason := fmt.Sprintf("gc: retired beyond the newest %d", opts.Keep)
	var removeErr error
	var gone []hidden
	events = forgetEvents
	for _, id := range res.Versions {
		h, err := c.hide(id)
		if err != nil {
			removeErr = err
			break
		}
		gone = append(gone, h)
		gcStep("hidden")
		forget = append(forget, store.ImageState{Name: id.Name, Version: id.Version.String(), State: image.Staged})
		events = append(events, c.event(id, id.Dir(), "removed", reason)...)
	}
	if len(forget) > 0 {
		var was []store.ImageState
		for _, s := range states {
			if slices.ContainsFunc(forget, func(f store.ImageState) bool { return f.Name == s.Name }) {
				was = append(was, s)
			}
		}
		if err := c.setStates(was, forget, events); err != nil {
			err = fmt.Errorf("gc: image states: %w", err)
			for _, h := range gone {
				err = errors.Join(err, h.restore())
			}
			return res, errors.Join(removeErr, err)
		}
	}
	gcStep("committed")
	for _, h := range gone {
		removeErr = errors.Join(removeErr, h.remove())
		gcStep("removed")
	}
	if removeErr != nil {
		return res, removeErr
	}
	events = nil
	for i, h := range res.Blobs {
		if err := blobs.Remove(h); err != nil && !errors.Is(err, fs.ErrNotExist) {
			removeErr = fmt.Errorf("gc: %w", err)
			break
		}
		events = append(events, c.event(image.ID{}, "blobs/"+blob.Algorithm+"/"+h, "removed",
			fmt.Sprintf("gc: blob of %d bytes that no manifest lists as a source", blobSizes[i]))...)
	}
	if err := c.record(events); err != nil {
		return res, errors.Join(removeErr, fmt.Errorf("gc: %w", err))
	}
	return res, removeErr
}

// hidden is a version's directory moved out of sight, into a work
// directory, on its way out.
type hidden struct {
	id     image.ID
	dir    string           // where it was
	parent *os.File         // its name's directory
	work   *durable.WorkDir // holding the version under its own name, locked while this gc deals with it
}

// hide moves a version's directory out of sight: no scan sees it, and a
// download in flight keeps reading its open file. The move goes through
// descriptors of the images directory and of the name's directory, each
// opened without following a symbolic link: one swapped in since the scan
// (images/NAME made a link to a directory outside the root, or to another
// name's) is refused, so gc never moves into its work directory, and
// deletes, a directory that is not the version it scanned.
func (c *Catalog) hide(id image.ID) (hidden, error) {
	images := filepath.Join(c.root, image.Dir)
	h := hidden{id: id, dir: filepath.Join(c.root, filepath.FromSlash(id.Dir()))}
	parent, err := openDirNoFollow(images, id.Name)
	if err != nil {
		return h, fmt.Errorf("gc %s: %w", id, err)
	}
	work, err := durable.NewWorkDir(images, image.GCWorkPrefix+id.Name+"-")
	if err != nil {
		parent.Close()
		return h, fmt.Errorf("gc %s: %w", id, err)
	}
	// Named as it was, in a work directory named after its name: a gc
	// killed from here on leaves enough for the next one to know which
	// version this is, even half deleted (recoverKilled).
	v := id.Version.String()
	if err := unix.Renameat(int(parent.Fd()), v, int(work.Dir().Fd()), v); err != nil {
		parent.Close()
		work.Done()
		return h, fmt.Errorf("gc %s: %w", id, &os.LinkError{Op: "rename", Old: h.dir, New: filepath.Join(work.Path, v), Err: err})
	}
	h.parent, h.work = parent, work
	return h, nil
}

// openDirNoFollow opens dir/name, a directory, following a symbolic link
// at neither.
func openDirNoFollow(dir, name string) (*os.File, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	p := filepath.Join(dir, name)
	dfd, err := unix.Open(dir, flags, 0)
	if err != nil {
		return nil, notDir(dir, err)
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, name, flags, 0)
	if err != nil {
		return nil, notDir(p, err)
	}
	return os.NewFile(uintptr(fd), p), nil
}

// notDir says why path could not be opened as a directory.
func notDir(path string, err error) error {
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return fmt.Errorf("%s is not a directory (a symbolic link is not followed here): nothing removed", path)
	}
	return &fs.PathError{Op: "open", Path: path, Err: err}
}

// restore puts a hidden version back where it was, unless a directory
// is there again.
func (h hidden) restore() error {
	defer h.parent.Close()
	v := h.id.Version.String()
	err := unix.Renameat2(int(h.work.Dir().Fd()), v, int(h.parent.Fd()), v, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) {
		// A file system without RENAME_NOREPLACE (NFS, some FUSE): a
		// plain rename replaces at most an empty directory, as a
		// directory that is not empty is never renamed over.
		err = unix.Renameat(int(h.work.Dir().Fd()), v, int(h.parent.Fd()), v)
	}
	if err != nil {
		h.work.Release()
		return fmt.Errorf("gc %s: putting it back: %w", h.id, &os.LinkError{Op: "rename", Old: filepath.Join(h.work.Path, v), New: h.dir, Err: err})
	}
	return h.work.Done()
}

// remove deletes a hidden version.
func (h hidden) remove() error {
	if h.parent != nil {
		defer h.parent.Close()
	}
	if err := h.work.Done(); err != nil {
		return fmt.Errorf("gc %s: removing %s: %w", h.id, h.work.Path, err)
	}
	unix.Rmdir(filepath.Dir(h.dir)) // the name's directory, if that was its last version (rmdir: never a link)
	return nil
}

// workPrefixes are the work directories gc sweeps.
var workPrefixes = []string{image.BuildWorkPrefix, image.MirrorWorkPrefix, image.GCWorkPrefix}

// gcStep marks the end of a step of GC that a kill may follow: a version
// hidden, the states committed, a version removed. It does nothing; a
// test sets it to kill the process there.
var gcStep = func(step string) {}

// recoverKilled finishes what gc runs that were killed left: the store's
// transaction (GC) decides what happened. A version whose state is still
// stored had not been forgotten, and no event says it was removed: it is
// put back, as it was before that gc, for this one to decide on again.
// One whose state is gone was forgotten with its "removed" event: its
// deletion is finished. A version that cannot be put back (its directory
// is there again) stays in its work directory, which the sweep removes
// and records.
func (c *Catalog) recoverKilled() (notPutBack []string, err error) {
	left, err := c.killedGCs()
	if err != nil || len(left) == 0 {
		return nil, err
	}
	states, err := c.states()
	if err != nil {
		for _, h := range left {
			h.work.Release()
		}
		return nil, err
	}
	var errs []error
	for _, h := range left {
		if _, stored := states[key(h.id.Name, h.id.Version.String())]; !stored {
			errs = append(errs, h.remove())
			continue
		}
		// Not put back (its place is taken, by a version built again
		// since, or images/NAME is not a directory): it stays in its work
		// directory, which the sweep removes and records. Not an error,
		// or every gc from now on would stop here.
		if h.parent, err = c.nameDir(h.id.Name); err != nil {
			h.work.Release()
			notPutBack = append(notPutBack, fmt.Sprintf("%s: %v", h.id, err))
			continue
		}
		if err := h.restore(); err != nil {
			notPutBack = append(notPutBack, fmt.Sprintf("%s: %v", h.id, err))
		}
	}
	return notPutBack, errors.Join(errs...)
}

// killedGCs returns the versions that gc runs which were killed moved
// into their work directories (images/.gc-NAME-NNN/VERSION), each with
// its work directory's lock now held: one whose lock is held by a gc
// still running is not its to touch.
func (c *Catalog) killedGCs() ([]hidden, error) {
	all, err := c.gcWorkVersions()
	var out []hidden
	for _, h := range all {
		if h.work = durable.Claim(filepath.Dir(h.dir)); h.work == nil {
			continue // its gc is alive, or it is gone
		}
		if _, err := os.Lstat(h.dir); err != nil { // put back or deleted since it was listed
			h.work.Release()
			continue
		}
		h.dir = filepath.Join(c.root, filepath.FromSlash(h.id.Dir()))
		out = append(out, h)
	}
	return out, err
}

// manifest reads the manifest of h, a version in its work directory.
func (h hidden) manifest() (*image.Manifest, error) {
	p := filepath.Join(h.work.Path, h.id.Version.String(), image.ManifestName)
	st, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	m, _, err := readManifest(p, st, h.id)
	return m, err
}

// gcWorkVersions lists the versions in gc work directories
// (images/.gc-NAME-NNN/VERSION), locked by a running gc or not; dir is
// the version's path there. A work directory without one version (a gc
// killed before the move, or after the deletion) is left to the sweep.
func (c *Catalog) gcWorkVersions() ([]hidden, error) {
	images := filepath.Join(c.root, image.Dir)
	entries, err := os.ReadDir(images)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []hidden
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), image.GCWorkPrefix)
		i := strings.LastIndexByte(rest, '-') // before os.MkdirTemp's random part
		if !e.IsDir() || !ok || i < 0 {
			continue
		}
		work := filepath.Join(images, e.Name())
		vers, _ := os.ReadDir(work)
		if len(vers) != 1 || !vers[0].IsDir() {
			continue
		}
		id, err := image.ParseID(rest[:i] + "@" + vers[0].Name())
		if err != nil || id.Version.String() != vers[0].Name() {
			continue
		}
		out = append(out, hidden{id: id, dir: filepath.Join(work, vers[0].Name())})
	}
	return out, nil
}

// nameDir opens images/NAME, made if it is not there (gc removes it with
// its last version), following no symbolic link.
func (c *Catalog) nameDir(name string) (*os.File, error) {
	images := filepath.Join(c.root, image.Dir)
	if err := os.Mkdir(filepath.Join(images, name), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return openDirNoFollow(images, name)
}
