// Package catalog knows which image versions exist and which one of each
// name is active, and keeps what is served true to the manifests.
//
// It exists because that answer joins two places that no other package
// owns together: the disk, where `image build` leaves immutable versions
// at <root>/images/NAME/VERSION/ with a manifest.json, and the store,
// which holds the active pointer. internal/image has the types and does
// no I/O; internal/build writes versions and never decides which is
// active; menus only ask. Promote, rollback and gc move the pointer (and
// gc removes old versions and unused blobs) in one place, with one set of
// rules, boot-log events (committed with the states they record) and an
// inventory generation bump, so a running server re-resolves `image:`
// menu entries within two seconds.
//
// The other half is integrity: Verify re-hashes a version against its
// manifest, and Guard refuses to serve a file of a built version whose
// size differs from its manifest, or that the manifest does not list.
//
// States: a built version with no row in the store is staged; the store
// holds only active and retired versions. Promote retires the version it
// replaces. Rollback makes the most recently retired version active again
// and returns the version it rolls back from to staged: a rollback undoes
// a promote, so a second rollback steps further back through history
// instead of flipping between two versions, and the version rolled back
// from is never the target of a later rollback (nor removed by gc) unless
// it is promoted again.
package catalog

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/blob"
	"bootforge/internal/bootfs"
	"bootforge/internal/image"
	"bootforge/internal/store"
)

// Store keeps the states of versions: only active and retired ones, and
// the boot log. *store.SQLite satisfies it.
type Store interface {
	ImageStates() ([]store.ImageState, error)
	// SetImageStates applies changes in order in one transaction, with
	// events, their boot-log lines, and bumps the inventory generation;
	// unless was is nil, only if the stored rows of the names changed
	// are still was (store.ErrImageRace).
	SetImageStates(was, changes []store.ImageState, events ...audit.Event) error
	// PutEvents records what changed on disk alone (gc's removals),
	// which no transaction can join.
	PutEvents([]audit.Event) error
}

// Catalog is the built versions below one served root, their states in
// one store, and the source blobs below one data dir.
type Catalog struct {
	root    string
	dataDir string
	store   Store

	// Events, if set, says that every state change and every removal is
	// a boot-log event (stage "image"). A state change's events are
	// written in its transaction (audit.Changes): a promote is never
	// made without its line in the log.
	Events audit.Changes
	// Protocol and Who say who makes changes, for the boot log: the
	// protocol defaults to "cli"; Who (a user name) is appended to the
	// result, as host writes do.
	Protocol, Who string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Verifier, if set (signing is on), checks each manifest's detached
	// signature in Verify: a missing or bad one is a drift.
	Verifier interface {
		Verify(data, sig []byte) error
	}

	mu    sync.Mutex
	cache map[string]cachedManifest // by manifest path
}

type cachedManifest struct {
	info fs.FileInfo
	m    *image.Manifest
}

// unchanged reports whether a file is still the one cached: the same
// file (a manifest replaced by a rename is another), modification time
// and size.
func unchanged(cached, now fs.FileInfo) bool {
	return cached != nil && bootfs.SameFile(cached, now) && cached.ModTime().Equal(now.ModTime()) && cached.Size() == now.Size()
}

// New returns the catalog of the versions below root (the served root),
// with states in st and source blobs below dataDir/blobs/sha256.
func New(root, dataDir string, st Store) *Catalog {
	return &Catalog{root: root, dataDir: dataDir, store: st, cache: map[string]cachedManifest{}}
}

func (c *Catalog) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// key names a version in maps: NAME@VERSION.
func key(name, version string) string { return name + "@" + version }

// built is one version found on disk.
type built struct {
	id image.ID
	m  *image.Manifest
}

// Broken is a version directory whose manifest cannot be used: unreadable,
// not a manifest, or one that describes another version (a directory
// copied by hand). It is not a version: menus, lists and the mirror index
// leave it out, so that one bad directory does not take every other
// version with it; Broken lists it, `image list` and `bootforge check`
// name it, and `image verify` counts it as a drift.
type Broken struct {
	ID  image.ID
	Err error
}

func (b Broken) String() string { return fmt.Sprintf("%s: %v", b.ID, b.Err) }

// Drift is b as `image verify` reports it: its manifest is unreadable.
func (b Broken) Drift() Drift {
	return Drift{ID: b.ID, Path: image.ManifestName, Kind: Unreadable, Err: b.Err.Error()}
}

// scan finds every built version: <root>/images/NAME/VERSION/manifest.json.
// Dot-directories (a build in progress, a removal in progress) and
// directories whose names are not an image name or a semantic version
// are not versions and are skipped; so is a version directory without a
// manifest. A version whose manifest cannot be used is returned in broken.
func (c *Catalog) scan() (out []built, broken []Broken, err error) {
	dir := filepath.Join(c.root, image.Dir)
	names, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	for _, n := range names {
		if !n.IsDir() || strings.HasPrefix(n.Name(), ".") || image.CheckName(n.Name()) != nil {
			continue
		}
		vers, err := os.ReadDir(filepath.Join(dir, n.Name()))
		if err != nil {
			return nil, nil, err
		}
		for _, v := range vers {
			if !v.IsDir() || strings.HasPrefix(v.Name(), ".") {
				continue
			}
			sv, err := image.ParseVersion(v.Name())
			if err != nil || sv.String() != v.Name() {
				continue
			}
			id := image.ID{Name: n.Name(), Version: sv}
			m, err := c.Manifest(id)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				broken = append(broken, Broken{ID: id, Err: err})
				continue
			}
			out = append(out, built{id: id, m: m})
		}
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i].id, out[j].id) })
	sort.Slice(broken, func(i, j int) bool { return less(broken[i].ID, broken[j].ID) })
	return out, broken, nil
}

// Broken returns the version directories whose manifests cannot be used.
func (c *Catalog) Broken() ([]Broken, error) {
	_, broken, err := c.scan()
	return broken, err
}

func less(a, b image.ID) bool {
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	return a.Version.LessThan(b.Version)
}

// states returns the stored states by NAME@VERSION.
func (c *Catalog) states() (map[string]store.ImageState, error) {
	rows, err := c.store.ImageStates()
	if err != nil {
		return nil, fmt.Errorf("image states: %w", err)
	}
	out := make(map[string]store.ImageState, len(rows))
	for _, r := range rows {
		out[key(r.Name, r.Version)] = r
	}
	return out, nil
}

// Versions returns every built version with its state, by name and then
// version.
func (c *Catalog) Versions() ([]image.Version, error) {
	vs, _, err := c.versions()
	return vs, err
}

// versions also returns the stored states, for the writers.
func (c *Catalog) versions() ([]image.Version, map[string]store.ImageState, error) {
	b, _, err := c.scan()
	if err != nil {
		return nil, nil, err
	}
	states, err := c.states()
	if err != nil {
		return nil, nil, err
	}
	out := make([]image.Version, len(b))
	for i, v := range b {
		st := image.Staged
		if s, ok := states[key(v.id.Name, v.id.Version.String())]; ok {
			st = s.State
		}
		out[i] = image.Version{ID: v.id, State: st, Built: v.m.Built}
	}
	return out, states, nil
}

// Find resolves what a command names: NAME@VERSION, which must be built,
// or NAME alone: its active version, else its newest.
func (c *Catalog) Find(arg string) (image.Version, error) {
	vs, err := c.Versions()
	if err != nil {
		return image.Version{}, err
	}
	if strings.Contains(arg, "@") {
		id, err := image.ParseID(arg)
		if err != nil {
			return image.Version{}, err
		}
		for _, v := range vs {
			if v.ID.Name == id.Name && v.ID.Version.Equal(id.Version) {
				return v, nil
			}
		}
		if _, err := c.Manifest(id); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return image.Version{}, fmt.Errorf("image %s is broken: %w", id, err)
		}
		return image.Version{}, fmt.Errorf("image %s is not built (no %s)", id, path.Join(id.Dir(), image.ManifestName))
	}
	if err := image.CheckName(arg); err != nil {
		return image.Version{}, err
	}
	var newest *image.Version
	for i, v := range vs {
		if v.ID.Name != arg {
			continue
		}
		if v.State == image.Active {
			return v, nil
		}
		newest = &vs[i] // sorted: the last one is the newest
	}
	if newest == nil {
		return image.Version{}, fmt.Errorf("no version of image %q is built", arg)
	}
	return *newest, nil
}

// maxManifest bounds a manifest read into memory.
const maxManifest = 64 << 20

// Manifest reads a version's manifest. It is cached while the file stays
// the same (inode, modification time and size); callers must not modify
// it.
// A version that is not built is an error wrapping fs.ErrNotExist.
func (c *Catalog) Manifest(id image.ID) (*image.Manifest, error) {
	p := filepath.Join(c.root, filepath.FromSlash(id.Dir()), image.ManifestName)
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("image %s is not built: %w", id, err)
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	hit, ok := c.cache[p]
	c.mu.Unlock()
	if ok && unchanged(hit.info, st) {
		return hit.m, nil
	}
	m, st, err := readManifest(p, st, id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.cache[p] = cachedManifest{info: st, m: m}
	c.mu.Unlock()
	return m, nil
}

// readManifest reads and checks id's manifest from the file at p, which
// st describes, and returns the Stat of the file it read.
func readManifest(p string, st fs.FileInfo, id image.ID) (*image.Manifest, fs.FileInfo, error) {
	// Looked at before it is opened: a FIFO there would block the open,
	// and every scan of the catalog with it. What is read is the file
	// opened, checked again.
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is %s, not a regular file", p, blob.TypeName(st.Mode()))
	}
	file, st, err := blob.Regular(os.OpenFile(p, blob.ReadFlags, 0))
	if err != nil {
		return nil, nil, err
	}
	defer file.Close()
	if st.Size() > maxManifest {
		return nil, nil, fmt.Errorf("%s: larger than %d bytes: not a manifest", p, maxManifest)
	}
	data, err := io.ReadAll(io.LimitReader(file, maxManifest+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > maxManifest {
		return nil, nil, fmt.Errorf("%s: larger than %d bytes: not a manifest", p, maxManifest)
	}
	m, err := ParseManifest(data, id)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p, err)
	}
	return m, st, nil
}

// ParseManifest reads id's manifest from data, checking it as Manifest
// checks an installed one; a mirror sync checks what it fetched with it
// before it writes anything.
func ParseManifest(data []byte, id image.ID) (*image.Manifest, error) {
	m, err := decodeManifest(data)
	if err == nil && (m.Name != id.Name || m.Version != id.Version.String()) {
		err = fmt.Errorf("it describes %s@%s, not the version of its directory, %s", m.Name, m.Version, id)
	}
	return m, err
}

// decodeManifest reads a manifest and checks what Verify, Guard, GC and
// a mirror sync rely on: file paths inside the version's directory, each
// once, with a size and a SHA-256; files with the same SHA-256 have the
// same size (a sync fetches such content once and links it to every
// path).
func decodeManifest(data []byte) (*image.Manifest, error) {
	var m image.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("not a manifest: %w", err)
	}
	seen := make(map[string]bool, len(m.Files))
	bySum := make(map[string]image.File, len(m.Files))
	for i, f := range m.Files {
		switch {
		case !validPath(f.Path):
			return nil, fmt.Errorf("files[%d]: path %q is not a clean relative path inside the version", i, f.Path)
		case f.Path == image.ManifestName:
			return nil, fmt.Errorf("files[%d]: the manifest cannot list itself", i)
		case seen[f.Path]:
			return nil, fmt.Errorf("files[%d]: %s is listed twice", i, f.Path)
		case f.Size < 0:
			return nil, fmt.Errorf("files[%d]: %s: negative size", i, f.Path)
		case !validDigest(f.SHA256):
			return nil, fmt.Errorf("files[%d]: %s: sha256 %q is not 64 lower-case hex digits", i, f.Path, f.SHA256)
		}
		if same, ok := bySum[f.SHA256]; ok && same.Size != f.Size {
			return nil, fmt.Errorf("files[%d]: %s: %d bytes, but %s has the same sha256 and %d bytes", i, f.Path, f.Size, same.Path, same.Size)
		}
		seen[f.Path] = true
		bySum[f.SHA256] = f
	}
	for i, f := range m.Files {
		for d := path.Dir(f.Path); d != "."; d = path.Dir(d) {
			if seen[d] {
				return nil, fmt.Errorf("files[%d]: %s is below %s, which is listed as a file", i, f.Path, d)
			}
		}
	}
	return &m, nil
}

func validPath(p string) bool {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || strings.ContainsAny(p, "\\\x00") {
		return false
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." || part == "." {
			return false
		}
	}
	return true
}

func validDigest(s string) bool {
	if len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// Size is the sum of a manifest's file sizes.
func Size(m *image.Manifest) int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// event is the boot-log event of a change to one version (or, with no
// version, to the file file), stamped for the store; nil if changes are
// not events.
func (c *Catalog) event(id image.ID, file, result, reason string) []audit.Event {
	if c.Events == nil {
		return nil
	}
	proto := c.Protocol
	if proto == "" {
		proto = "cli"
	}
	if c.Who != "" {
		result += " by " + c.Who
	}
	e := audit.Event{Time: c.now(), Stage: "image", Protocol: proto, File: file, Result: result, Reason: reason}
	if id.Version != nil {
		e.Image = id.String()
	}
	return []audit.Event{c.Events.Stamp(e)}
}

// setStates writes changes and their events in one transaction (see
// Store.SetImageStates), then shows the events to c.Events.
func (c *Catalog) setStates(was, changes []store.ImageState, events []audit.Event) error {
	if err := c.store.SetImageStates(was, changes, events...); err != nil {
		return err
	}
	c.committed(events)
	return nil
}

// record writes the events of a change made on disk alone, after it.
// A store that refuses them stops the caller: an operator hears of the
// change that has no line, and no further change is made without one.
func (c *Catalog) record(events []audit.Event) error {
	if len(events) == 0 {
		return nil
	}
	if err := c.store.PutEvents(events); err != nil {
		return fmt.Errorf("boot log: the event %q of %s was not recorded: %w", events[0].Result, events[0].File, err)
	}
	c.committed(events)
	return nil
}

func (c *Catalog) committed(events []audit.Event) {
	if c.Events != nil && len(events) > 0 {
		c.Events.Committed(events)
	}
}
