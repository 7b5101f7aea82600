package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"bootforge/internal/blob"
	"bootforge/internal/catalog"
	"bootforge/internal/durable"
	"bootforge/internal/image"
	"bootforge/internal/stall"
)

// maxManifest and maxIndex bound what a sync reads into memory.
const (
	maxManifest = 64 << 20
	maxIndex    = 16 << 20
)

// DefaultStall is how long a transfer from the primary may go without
// data before it fails, as `image import`'s does: a file may take hours
// over a slow link, but one that stops arriving must not hold the sync
// forever.
const DefaultStall = 2 * time.Minute

// PartialDir holds files being fetched, below the root's images/: named by
// their SHA-256, kept when a sync is interrupted so that the next one
// resumes with a Range request, removed when what arrived is not what the
// manifest says. Like `image build`'s temporary directories it is hidden
// (no version), private (0700), and on the file system of the versions,
// so that a verified file is renamed into place, not copied.
const PartialDir = ".mirror-partial"

// Syncer pulls the active versions of a primary into a mirror's root.
type Syncer struct {
	Base    string           // the primary's file server, e.g. http://192.0.2.1:8080
	Root    string           // the mirror's served root
	Catalog *catalog.Catalog // the mirror's catalog over Root
	Client  *http.Client     // nil: http.DefaultClient
	// Verifier, if set, checks each manifest's detached CMS signature
	// (manifest.json.sig); a missing or bad one refuses the version.
	Verifier interface {
		Verify(data, sig []byte) error
	}
	// Progress, if set, is told of each file fetched: its name, size and
	// the bytes already there (a resume); what it returns gets every byte
	// that arrives.
	Progress func(name string, size, have int64) io.Writer
	// Log, if set, gets one line per step.
	Log func(format string, args ...any)
	// Stall, if set, replaces DefaultStall.
	Stall time.Duration
}

// Result is what a sync did.
type Result struct {
	Installed []image.ID     // versions fetched and installed
	Present   []image.ID     // versions the mirror already had, with the same manifest
	Moves     []catalog.Move // versions made active
	Resumed   []string       // files whose fetch resumed a partial one
}

// MismatchError is a file that is not what its manifest says.
type MismatchError struct {
	Version image.ID
	Path    string
	Want    string // sha256, or a size as "N bytes"
	Got     string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s: %s: expected %s, got %s", e.Version, e.Path, e.Want, e.Got)
}

// StatusError is an answer other than 200 to a GET.
type StatusError struct {
	URL    string
	Code   int
	Status string
}

func (e *StatusError) Error() string { return "GET " + e.URL + ": " + e.Status }

func (s *Syncer) logf(format string, args ...any) {
	if s.Log != nil {
		s.Log(format, args...)
	}
}

func (s *Syncer) client() *http.Client {
	if s.Client != nil {
		return s.Client
	}
	return noRedirects
}

func (s *Syncer) stall() time.Duration {
	if s.Stall > 0 {
		return s.Stall
	}
	return DefaultStall
}

// do sends a GET of p, with headers if given, and returns the response
// with a body that fails after s.stall() without data (stall.ErrStalled).
func (s *Syncer) do(ctx context.Context, p string, header http.Header) (*http.Request, *http.Response, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, s.fileURL(p), nil)
	if err != nil {
		cancel(nil)
		return nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := s.client().Do(req)
	if err != nil {
		cancel(nil)
		return req, nil, err
	}
	resp.Body = stall.NewReader(rctx, cancel, resp.Body, s.stall())
	return req, resp, nil
}

// noRedirects fetches from the primary only: a primary with
// mirrors[].redirect could send a mirror on its subnet to itself.
var noRedirects = &http.Client{
	Transport:     &http.Transport{Proxy: http.ProxyFromEnvironment, ResponseHeaderTimeout: time.Minute, IdleConnTimeout: time.Minute},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// fileURL is the primary's URL of a path below its root.
func (s *Syncer) fileURL(p string) string {
	return strings.TrimSuffix(s.Base, "/") + (&url.URL{Path: "/" + p}).EscapedPath()
}

// get fetches a small document whole.
func (s *Syncer) get(ctx context.Context, p string, limit int64) ([]byte, error) {
	req, resp, err := s.do(ctx, p, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{URL: req.URL.String(), Code: resp.StatusCode, Status: resp.Status}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", req.URL, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("GET %s: larger than %d bytes", req.URL, limit)
	}
	return data, nil
}

// FetchIndex reads the index of active versions at base.
func FetchIndex(ctx context.Context, client *http.Client, base string) (Index, error) {
	s := &Syncer{Base: base, Client: client}
	data, err := s.get(ctx, "bootforge/images.json", maxIndex)
	if err != nil {
		return Index{}, err
	}
	var idx Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return Index{}, fmt.Errorf("%s: not an image index: %w", s.fileURL("bootforge/images.json"), err)
	}
	// One active version of each name, as the primary's catalog has: a
	// name listed twice would have the sync install both and make active
	// whichever came last.
	byName := make(map[string]image.ID, len(idx.Versions))
	for i, v := range idx.Versions {
		id, err := v.ID()
		if err != nil {
			return Index{}, fmt.Errorf("index: versions[%d]: %w", i, err)
		}
		if v.Manifest != path.Join(id.Dir(), image.ManifestName) {
			return Index{}, fmt.Errorf("index: versions[%d]: manifest %q is not %s's", i, v.Manifest, id)
		}
		// Lower case, as hex.EncodeToString writes the digest it is
		// compared with.
		if _, err := hex.DecodeString(v.SHA256); err != nil || len(v.SHA256) != 64 || strings.ToLower(v.SHA256) != v.SHA256 {
			return Index{}, fmt.Errorf("index: versions[%d]: sha256 %q is not 64 lower-case hex digits", i, v.SHA256)
		}
		if prev, ok := byName[id.Name]; ok {
			return Index{}, fmt.Errorf("index: versions[%d]: %s is listed twice (%s and %s); an index lists the one active version of each name", i, id.Name, prev, id)
		}
		byName[id.Name] = id
	}
	return idx, nil
}

// Sync installs every version the primary's index lists that the mirror
// lacks, and makes each the active one of its name. A version with any
// file that does not match its manifest is not installed; the others are,
// and the error names every version refused.
func (s *Syncer) Sync(ctx context.Context) (Result, error) {
	var res Result
	idx, err := FetchIndex(ctx, s.client(), s.Base)
	if err != nil {
		return res, err
	}
	unlock, err := s.lock()
	if err != nil {
		return res, err
	}
	defer unlock()
	// A sync that was killed left its stage, with a link to every file it
	// had verified; the next sync's sweepPartial does not reach those, and
	// a version the primary has dropped since would keep its files here.
	// A sync in progress holds the lock on its own stage: that one stays.
	removed, _ := durable.SweepWorkDirs(filepath.Join(s.Root, image.Dir), image.MirrorWorkPrefix)
	for _, d := range removed {
		s.logf("removed %s, left by a sync that was killed", d)
	}
	s.logf("%s: %d active versions", s.Base, len(idx.Versions))
	var failed []error
	var ready []image.ID
	for _, v := range idx.Versions {
		id, _ := v.ID()
		installed, err := s.syncVersion(ctx, v, id, &res)
		if err != nil {
			if ctx.Err() != nil {
				return res, fmt.Errorf("%s: stopped (%w); partial files are kept for the next sync", id, context.Cause(ctx))
			}
			failed = append(failed, err)
			continue
		}
		if installed {
			res.Installed = append(res.Installed, id)
		} else {
			res.Present = append(res.Present, id)
		}
		ready = append(ready, id)
	}
	for _, id := range ready {
		mv, err := s.Catalog.Promote(id)
		if err != nil {
			failed = append(failed, err)
			continue
		}
		res.Moves = append(res.Moves, mv)
	}
	if len(failed) == 0 {
		// Every version the primary lists is here: what is left in
		// .mirror-partial belongs to none of them (a version the primary
		// has since replaced) and nothing else would ever remove it.
		s.sweepPartial()
	}
	return res, errors.Join(failed...)
}

// lock makes .mirror-partial (images/ 0755 as `image build` makes it,
// readable by the server's user; only .mirror-partial is private) and
// holds it for this sync: two syncs at once (a timer's and one by hand)
// would write the same partial files, and one's restart would truncate
// a file the other has checked.
func (s *Syncer) lock() (unlock func(), err error) {
	imagesDir := filepath.Join(s.Root, image.Dir)
	partial := filepath.Join(imagesDir, PartialDir)
	if err := os.MkdirAll(imagesDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(partial, 0o700); err != nil {
		return nil, err
	}
	// Made by a sync, it is a directory. A link there would have the
	// sync write its partial files wherever it leads, outside the root.
	if st, err := os.Lstat(partial); err != nil {
		return nil, err
	} else if st.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("%s is a symbolic link, not the directory a sync makes: remove it", partial)
	}
	f, err := os.OpenFile(partial, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another mirror sync into %s is running", s.Root)
		}
		return nil, fmt.Errorf("locking %s: %w", partial, err)
	}
	return func() { f.Close() }, nil
}

// sweepPartial removes the files in .mirror-partial.
func (s *Syncer) sweepPartial() {
	dir := filepath.Join(s.Root, image.Dir, PartialDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dir, e.Name())); err == nil {
			s.logf("removed the partial file %s, of no version the primary lists", e.Name())
		}
	}
}

// syncVersion fetches and installs one version unless the mirror has it.
func (s *Syncer) syncVersion(ctx context.Context, v Version, id image.ID, res *Result) (bool, error) {
	final := filepath.Join(s.Root, filepath.FromSlash(id.Dir()))
	if have, err := readManifest(filepath.Join(final, image.ManifestName)); err == nil {
		if sum := sha256.Sum256(have); hex.EncodeToString(sum[:]) != v.SHA256 {
			return false, fmt.Errorf("%s: this mirror has the version with another manifest (sha256 %x, the primary's %s); versions are immutable: remove it (image gc) to sync it again",
				id, sum, v.SHA256)
		}
		s.logf("%s: present", id)
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("%s: %w; remove the version's directory to sync it again", id, err)
	}
	if _, err := os.Lstat(final); err == nil {
		// Not one a sync or a build made (both put the manifest in before
		// the directory appears): the version could never be renamed
		// into its place, so nothing is fetched for it.
		return false, fmt.Errorf("%s: %s exists without a %s: remove it to sync the version", id, final, image.ManifestName)
	}
	data, err := s.get(ctx, v.Manifest, maxManifest)
	if err != nil {
		return false, fmt.Errorf("%s: %w", id, err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != v.SHA256 {
		return false, &MismatchError{Version: id, Path: image.ManifestName, Want: v.SHA256, Got: hex.EncodeToString(sum[:])}
	}
	m, err := catalog.ParseManifest(data, id)
	if err != nil {
		return false, fmt.Errorf("%s: the primary's %s: %w", id, v.Manifest, err)
	}
	var sig []byte
	if s.Verifier != nil {
		if sig, err = s.get(ctx, v.Manifest+".sig", 1<<20); err != nil {
			return false, fmt.Errorf("%s: signing is on and the manifest's signature cannot be fetched: %w", id, err)
		}
		if err := s.Verifier.Verify(data, sig); err != nil {
			return false, fmt.Errorf("%s: manifest: %w", id, err)
		}
	}
	imagesDir := filepath.Join(s.Root, image.Dir)
	partial := filepath.Join(imagesDir, PartialDir) // made by lock
	work, err := durable.NewWorkDir(imagesDir, image.MirrorWorkPrefix+id.Name+"-")
	if err != nil {
		return false, err
	}
	defer work.Done()
	stage := work.Path
	out := filepath.Join(stage, filepath.FromSlash(id.Dir()))
	if err := os.MkdirAll(out, 0o755); err != nil {
		return false, err
	}
	if err := durable.WriteFile(filepath.Join(out, image.ManifestName), data, 0o644); err != nil {
		return false, err
	}
	if sig != nil {
		if err := durable.WriteFile(filepath.Join(out, image.ManifestSigName), sig, 0o644); err != nil {
			return false, err
		}
	}
	done := map[string]string{} // sha256 → a staged file with that content
	var fetched []string        // the partial files linked into the stage
	for _, f := range m.Files {
		dst := filepath.Join(out, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return false, fileErr(id, f.Path, err)
		}
		if prev, ok := done[f.SHA256]; ok {
			if err := os.Link(prev, dst); err != nil {
				return false, fileErr(id, f.Path, err)
			}
			continue
		}
		p, verified, fromPartial, err := s.fetch(ctx, id, path.Join(id.Dir(), f.Path), f, partial, res)
		var mm *MismatchError
		if errors.As(err, &mm) && fromPartial {
			// What an earlier sync left (from a primary that served
			// garbage then, say) spoiled the file, not the primary: the
			// partial file is gone; fetch it whole once.
			s.logf("%s: %v; fetching it again from its first byte", path.Join(id.Dir(), f.Path), err)
			p, verified, _, err = s.fetch(ctx, id, path.Join(id.Dir(), f.Path), f, partial, res)
		}
		if err != nil {
			return false, err
		}
		// A link, not a rename: a sync that fails on a later file keeps
		// this one, verified, for the next sync, which then need not
		// fetch it again. The partial files go once the version is in.
		if err := linkVerified(p, verified, dst); err != nil {
			return false, fileErr(id, f.Path, err)
		}
		fetched = append(fetched, p)
		done[f.SHA256] = dst
	}
	if err := durable.SyncTree(out); err != nil {
		return false, err
	}
	nameDir := filepath.Dir(final)
	_, err = os.Stat(nameDir)
	made := errors.Is(err, fs.ErrNotExist) // the name's first version here: images/ gets its entry
	if err := os.MkdirAll(nameDir, 0o755); err != nil {
		return false, err
	}
	if _, err := os.Lstat(final); err == nil {
		return false, fmt.Errorf("%s appeared in %s during the sync; versions are immutable", id, final)
	}
	if err := os.Rename(out, final); err != nil {
		return false, err
	}
	if err := durable.SyncDir(nameDir); err != nil {
		return false, err
	}
	if made {
		if err := durable.SyncDir(filepath.Dir(nameDir)); err != nil {
			return false, err
		}
	}
	for _, p := range fetched {
		os.Remove(p) // the installed version holds the file; at worst the next sync checks it again
	}
	s.logf("%s: installed (%d files, %d bytes)", id, len(m.Files), catalog.Size(m))
	return true, nil
}

// readManifest reads the manifest of a version the mirror has, which
// only a sync or a build wrote: a regular file, not a link (to a manifest
// elsewhere, which would make the version look present without its
// files), and not a FIFO, which would block the sync for good.
func readManifest(p string) ([]byte, error) {
	f, _, err := blob.OpenRegular(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if len(data) > maxManifest {
		return nil, fmt.Errorf("%s: larger than %d bytes: not a manifest", p, maxManifest)
	}
	return data, nil
}

// fileErr names a version's file in an error about its place in the
// stage, a directory gone once the sync ends: the operator is told the
// file and what the system said, not a path that no longer exists.
func fileErr(id image.ID, p string, err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		err = pe.Err
	case errors.As(err, &le):
		err = le.Err
	}
	return fmt.Errorf("%s: %s: %w", id, p, err)
}

// linkVerified links the partial file p into the stage as dst. The file
// was verified through a descriptor (verified is its fstat), but a link
// is made by name: what the name leads to by now must be that file, or
// bytes nobody checked would be installed.
func linkVerified(p string, verified fs.FileInfo, dst string) error {
	if err := os.Link(p, dst); err != nil {
		return err
	}
	st, err := os.Lstat(dst)
	if err != nil {
		return err
	}
	if !os.SameFile(st, verified) {
		os.Remove(dst)
		os.Remove(p) // unverified: the next sync fetches the file again
		return fmt.Errorf("the partial file %s was replaced after the sync verified it; nothing was installed from it", p)
	}
	return nil
}

// fetch gets one file into partial/<sha256>, resuming what an earlier
// sync left there, and checks its size and SHA-256. It returns the
// partial file's path and the fstat of the file verified, and whether
// bytes an earlier sync left were used; on a mismatch the file is removed.
func (s *Syncer) fetch(ctx context.Context, id image.ID, p string, f image.File, partial string, res *Result) (name string, verified fs.FileInfo, fromPartial bool, err error) {
	name, verified, err = s.fetchInto(ctx, id, p, f, partial, res, &fromPartial)
	return name, verified, fromPartial, err
}

func (s *Syncer) fetchInto(ctx context.Context, id image.ID, p string, f image.File, partial string, res *Result, fromPartial *bool) (string, fs.FileInfo, error) {
	name := filepath.Join(partial, f.SHA256)
	// A sync writes only regular files here. Anything else by the name (a
	// link to a file outside the root, a FIFO) is removed unopened:
	// followed, it had the primary's bytes appended to the link's target.
	if st, err := os.Lstat(name); err == nil && !st.Mode().IsRegular() {
		if err := os.Remove(name); err != nil {
			return "", nil, err
		}
		s.logf("removed %s: a %v, not a partial file a sync wrote", name, st.Mode().Type())
	}
	fh, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return "", nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return "", nil, err
	}
	if !st.Mode().IsRegular() {
		return "", nil, fmt.Errorf("%s is not a regular file", name)
	}
	have := st.Size()
	h := sha256.New()
	if have > f.Size {
		have = 0
	}
	if have > 0 {
		if _, err := io.Copy(h, io.NewSectionReader(fh, 0, have)); err != nil {
			return "", nil, err
		}
	}
	*fromPartial = have > 0
	restart := func() error {
		*fromPartial = false
		have = 0
		h.Reset()
		if err := fh.Truncate(0); err != nil {
			return err
		}
		_, err := fh.Seek(0, io.SeekStart)
		return err
	}
	if have == 0 {
		if err := restart(); err != nil {
			return "", nil, err
		}
	} else if _, err := fh.Seek(have, io.SeekStart); err != nil {
		return "", nil, err
	}
	if have < f.Size {
		header := http.Header{}
		if have > 0 {
			header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
		}
		req, resp, err := s.do(ctx, p, header)
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", id, err)
		}
		defer resp.Body.Close()
		switch {
		case have > 0 && resp.StatusCode == http.StatusPartialContent && strings.HasPrefix(resp.Header.Get("Content-Range"), "bytes "+strconv.FormatInt(have, 10)+"-"):
			res.Resumed = append(res.Resumed, p)
			s.logf("%s: resuming at byte %d", p, have)
		case resp.StatusCode == http.StatusOK:
			if err := restart(); err != nil {
				return "", nil, err
			}
		case have > 0 && resp.StatusCode == http.StatusPartialContent:
			// Another range than the one asked for (a proxy that mangles
			// Range): this primary cannot resume the file. Kept, the
			// partial file would have every later sync ask the same and
			// fail the same; it goes, and the caller fetches it whole.
			fh.Close()
			os.Remove(name)
			return "", nil, &MismatchError{Version: id, Path: f.Path, Want: fmt.Sprintf("bytes from %d", have),
				Got: fmt.Sprintf("Content-Range %q", resp.Header.Get("Content-Range"))}
		default:
			return "", nil, fmt.Errorf("%s: GET %s: %s", id, req.URL, resp.Status)
		}
		var w io.Writer = io.MultiWriter(fh, h)
		if s.Progress != nil {
			w = io.MultiWriter(fh, h, s.Progress(p, f.Size, have))
		}
		// One byte past the size tells a longer file from a complete one.
		n, err := io.Copy(w, io.LimitReader(resp.Body, f.Size-have+1))
		have += n
		if err != nil {
			// The partial file stays for the next sync to resume.
			return "", nil, fmt.Errorf("%s: GET %s after %d bytes: %w; the partial file is kept for the next sync", id, req.URL, have, err)
		}
	}
	got := hex.EncodeToString(h.Sum(nil))
	switch {
	case have != f.Size:
		fh.Close()
		os.Remove(name)
		return "", nil, &MismatchError{Version: id, Path: f.Path, Want: fmt.Sprintf("%d bytes", f.Size), Got: fmt.Sprintf("%d bytes", have)}
	case got != f.SHA256:
		fh.Close()
		os.Remove(name)
		return "", nil, &MismatchError{Version: id, Path: f.Path, Want: "sha256 " + f.SHA256, Got: "sha256 " + got}
	}
	if err := fh.Chmod(0o644); err != nil {
		return "", nil, err
	}
	if err := fh.Sync(); err != nil {
		return "", nil, err
	}
	return name, st, nil
}
