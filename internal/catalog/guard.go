package catalog

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"time"

	"bootforge/internal/bootfs"
	"bootforge/internal/image"
)

// Guard is a bootfs.FS over the served root that serves the files of a
// built version (images/NAME/VERSION/ with a manifest.json) only as the
// manifest describes them. A file whose size differs from the manifest,
// or that the manifest does not list, is refused (bootfs.ErrRefused) and
// logged as an error with the path and the sizes. Other paths, a
// version's manifest itself, and version directories without a manifest
// pass through untouched.
//
// It must be cheap per request, so it reads sizes only, never a file's
// content (digests are for Verify), and keeps what it learnt of each
// manifest, and that a version has none: per request, a map lookup and
// the fstat of the file being served. It looks at a manifest again at
// most every Revalidate (one second): an open and fstat through the
// root, and a new parse only when it is another file or its modification
// time or size changed. (Versions are immutable; a manifest changes only
// when a version is removed and built again.)
type Guard struct {
	inner bootfs.FS
	log   *slog.Logger
	// Revalidate is how long what the guard knows of a manifest is
	// trusted without looking; 0 looks on every request.
	Revalidate time.Duration

	mu    sync.Mutex
	cache map[string]*guardManifest // by the manifest's path as requested
}

// maxGuardCache bounds the manifests a Guard remembers; past it, it
// starts over (on a case-insensitive root one version has many spellings).
const maxGuardCache = 1024

type guardManifest struct {
	checked time.Time // when the manifest was last looked at
	none    bool      // there is no manifest: not a built version
	info    fs.FileInfo
	files   map[string]int64  // path → size
	fold    map[string]string // lower-case path → path, for case-insensitive roots
	err     error             // the manifest could not be read: its files are refused
}

// NewGuard wraps inner, the served root.
func NewGuard(inner bootfs.FS, log *slog.Logger) *Guard {
	return &Guard{inner: inner, log: log, Revalidate: time.Second, cache: map[string]*guardManifest{}}
}

// Open opens the file from inner, then checks it against its manifest.
func (g *Guard) Open(req bootfs.Request) (bootfs.File, error) {
	f, err := g.inner.Open(req)
	if err != nil {
		return nil, err
	}
	name, err := bootfs.Clean(req.Path)
	if err != nil { // inner accepted it, so this does not happen
		f.Close()
		return nil, err
	}
	if dir, _, ok := strings.Cut(name, "/"); !ok || !strings.EqualFold(dir, image.Dir) {
		return f, nil // not in the images' directory: no version to check
	}
	parts := strings.SplitN(name, "/", 4)
	if len(parts) >= 2 && strings.EqualFold(parts[0], image.Dir) && strings.HasPrefix(parts[1], ".") {
		// A build in progress (.build-*) or a version being removed
		// (.gc-*): never a version a client may boot.
		f.Close()
		return nil, fmt.Errorf("%w: not a built image", bootfs.ErrRefused)
	}
	if len(parts) < 4 || !strings.EqualFold(parts[0], image.Dir) || strings.EqualFold(parts[3], image.ManifestName) || strings.EqualFold(parts[3], image.ManifestSigName) ||
		image.CheckName(strings.ToLower(parts[1])) != nil {
		return f, nil
	}
	if _, err := image.ParseVersion(parts[2]); err != nil {
		return f, nil
	}
	m := g.manifest(req, strings.Join(parts[:3], "/")+"/"+image.ManifestName)
	if m.none {
		return f, nil // not a built version
	}
	client := req.Client.Addr().String()
	if m.err != nil {
		f.Close()
		g.log.Error("image: manifest unreadable, refusing the version's files", "path", name, "client", client, "err", m.err.Error())
		return nil, fmt.Errorf("%w: the image's manifest is unreadable", bootfs.ErrRefused)
	}
	want, ok := m.lookup(parts[3])
	if !ok {
		f.Close()
		g.log.Error("image: file not in its manifest, refused", "path", name, "client", client)
		return nil, fmt.Errorf("%w: not in the image's manifest", bootfs.ErrRefused)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.Size() != want {
		f.Close()
		g.log.Error("image: file size differs from its manifest, refused", "path", name, "expected", want, "actual", st.Size(), "client", client)
		return nil, fmt.Errorf("%w: size %d differs from the image's manifest (%d)", bootfs.ErrRefused, st.Size(), want)
	}
	return f, nil
}

// lookup finds a file's size by its path, exactly or, as a
// case-insensitive root opened it, ignoring case.
func (m *guardManifest) lookup(p string) (int64, bool) {
	if n, ok := m.files[p]; ok {
		return n, true
	}
	if real, ok := m.fold[strings.ToLower(p)]; ok {
		return m.files[real], true
	}
	return 0, false
}

// manifest returns what the guard knows of the manifest at p, looking
// through inner when it has not looked for Revalidate.
func (g *Guard) manifest(req bootfs.Request, p string) *guardManifest {
	now := time.Now()
	g.mu.Lock()
	hit := g.cache[p]
	g.mu.Unlock()
	if hit != nil && now.Sub(hit.checked) < g.Revalidate {
		return hit
	}
	m := g.look(req, p, hit)
	m.checked = now
	if m.err != nil {
		return m // not remembered: the next request looks again
	}
	g.mu.Lock()
	if len(g.cache) >= maxGuardCache {
		clear(g.cache)
	}
	g.cache[p] = m
	g.mu.Unlock()
	return m
}

// look reads the manifest at p, unless it is still the file of hit.
func (g *Guard) look(req bootfs.Request, p string, hit *guardManifest) *guardManifest {
	mf, err := g.inner.Open(bootfs.Request{Path: p, Client: req.Client, Protocol: req.Protocol, Host: req.Host})
	if errors.Is(err, fs.ErrNotExist) {
		return &guardManifest{none: true}
	}
	if err != nil {
		return &guardManifest{err: err}
	}
	defer mf.Close()
	st, err := mf.Stat()
	if err != nil {
		return &guardManifest{err: err}
	}
	if hit != nil && !hit.none && unchanged(hit.info, st) {
		again := *hit
		return &again
	}
	m := &guardManifest{info: st}
	if st.Size() > maxManifest {
		m.err = fmt.Errorf("larger than %d bytes", maxManifest)
		return m
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(io.NewSectionReader(mf, 0, st.Size()), data); err != nil {
		m.err = err
		return m
	}
	man, err := decodeManifest(data)
	if err != nil {
		m.err = err
		return m
	}
	m.files = make(map[string]int64, len(man.Files))
	m.fold = make(map[string]string, len(man.Files))
	for _, f := range man.Files {
		m.files[f.Path] = f.Size
		m.fold[strings.ToLower(f.Path)] = f.Path
	}
	return m
}
