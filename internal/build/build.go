// Package build makes one version of a boot image, NAME@VERSION, from a
// template (linux or winpe) and its sources (a blob from the store, files,
// a directory or an ISO), into <root>/images/NAME/VERSION/ with its
// manifest.json.
//
// It exists so that what a menu boots is a versioned, immutable directory
// with a record of where every byte came from, not whatever an operator
// last copied into the root. A version is written into a hidden temporary
// directory below <root>/images/ and renamed into place when complete, so
// it appears whole or not at all; a version that exists is never
// rewritten. Two builds from the same inputs give the same files and the
// same manifest apart from its build time (for winpe with injected drivers
// or startnet.cmd, see injectWIM).
package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"bootforge/internal/durable"
	"bootforge/internal/image"
)

// Spec is what to build.
type Spec struct {
	ID       image.ID
	Template string // image.TemplateLinux or image.TemplateWinPE
	// From is a blob digest (64 hex digits or sha256:<hex>), a file, a
	// directory or an ISO (by its .iso extension or its ISO 9660 volume
	// descriptor).
	From string

	// linux: paths inside From when it is an ISO or a directory, else
	// files (From, if given, must be one of them).
	Kernel  string
	Initrds []string
	Cmdline string

	// winpe: wimboot (a file; the operator supplies it), and optional
	// drivers (a directory, added to boot.wim as /drivers) and startnet
	// (a file replacing /Windows/System32/startnet.cmd in boot.wim).
	Wimboot  string
	Drivers  string
	Startnet string

	// Pins maps each source, as given, to the SHA-256 it must have. When
	// Pins is not nil (a recipe), every source other than a blob must be
	// pinned, and every pin used.
	Pins map[string]string
	// Dir resolves relative source paths (a recipe's directory); ""
	// means the working directory.
	Dir string
}

// Builder builds versions into one served root.
type Builder struct {
	Root    string // the served root; versions go to Root/images/NAME/VERSION
	DataDir string // holds the blob store, DataDir/blobs/sha256/<hex>
	// Wimlib is the wimlib-imagex program; "" looks it up on PATH.
	Wimlib string
	// Now is the manifest's build time; nil means time.Now.
	Now func() time.Time
	// Signer, if set, signs the manifest: its detached signature goes
	// beside it as manifest.json.sig, in the temp dir before the rename.
	Signer interface {
		Sign([]byte) ([]byte, error)
	}
}

// Result is a built version.
type Result struct {
	Dir      string // the version's directory
	Manifest image.Manifest
}

// run is one build in progress.
type run struct {
	*Builder
	spec    Spec
	out     string // the version's files, inside the temp dir
	stage   string // scratch space, inside the temp dir
	sources map[string]*source
	order   []*source
	boot    image.Boot
	names   map[string]string // lower-case output name → what it came from
	closers []io.Closer       // open sources
}

// Build builds s. On any error nothing is left behind.
func (b *Builder) Build(ctx context.Context, s Spec) (*Result, error) {
	if err := checkSpec(s); err != nil {
		return nil, err
	}
	id := s.ID
	root, err := filepath.Abs(b.Root)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("the served root %s is not a directory: set root in the config or --root", root)
	}
	imagesDir := filepath.Join(root, image.Dir)
	nameDir := filepath.Join(imagesDir, id.Name)
	final := filepath.Join(root, filepath.FromSlash(id.Dir()))
	if err := refuseExisting(nameDir, id); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(imagesDir, 0o755); err != nil {
		return nil, err
	}
	// Hidden, and private until complete: the catalog lists no ".*"
	// directory as a version.
	// Locked while this build runs: one killed halfway leaves its
	// directory unlocked, and the next build or gc removes it.
	durable.SweepWorkDirs(imagesDir, image.BuildWorkPrefix)
	work, err := durable.NewWorkDir(imagesDir, image.BuildWorkPrefix+id.Name+"-")
	if err != nil {
		return nil, err
	}
	defer work.Done()
	tmp := work.Path
	r := &run{Builder: b, spec: s,
		out: filepath.Join(tmp, "version"), stage: filepath.Join(tmp, "stage"),
		sources: map[string]*source{}, names: map[string]string{}}
	defer func() {
		for _, c := range r.closers {
			c.Close()
		}
	}()
	if err := os.Mkdir(r.out, 0o700); err != nil {
		return nil, err
	}
	if err := os.Mkdir(r.stage, 0o700); err != nil {
		return nil, err
	}
	switch s.Template {
	case image.TemplateLinux:
		err = r.linux(ctx)
	case image.TemplateWinPE:
		err = r.winpe(ctx)
	}
	if err != nil {
		return nil, err
	}
	if err := r.checkPinsUsed(); err != nil {
		return nil, err
	}
	files, err := r.describeFiles(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	m := image.Manifest{
		Name:     id.Name,
		Version:  id.Version.String(),
		Template: s.Template,
		Built:    now().UTC().Truncate(time.Second),
		Files:    files,
		Boot:     r.boot,
	}
	for _, src := range r.order {
		m.Sources = append(m.Sources, src.rec)
	}
	if err := writeManifest(filepath.Join(r.out, image.ManifestName), &m); err != nil {
		return nil, err
	}
	if b.Signer != nil {
		if err := signManifest(r.out, b.Signer); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(r.out, 0o755); err != nil {
		return nil, err
	}
	if err := durable.SyncDir(r.out); err != nil {
		return nil, err
	}
	// The name's directory appears with its first version, and goes
	// again if that fails.
	made := false
	if _, err := os.Stat(nameDir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(nameDir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		made = true
	}
	if err := renameNoReplace(r.out, final); err != nil {
		if made {
			os.Remove(nameDir) // only if empty: another build may have filled it
		}
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%s exists in %s: versions are immutable; build a new version", id, final)
		}
		return nil, err
	}
	// The version's entry is in the name's directory, and a name's
	// first version made that directory: its entry is in images/.
	syncDirs := []string{nameDir}
	if made {
		syncDirs = append(syncDirs, filepath.Dir(nameDir))
	}
	for _, d := range syncDirs {
		if err := durable.SyncDir(d); err != nil {
			return nil, fmt.Errorf("%s is in place in %s, but syncing %s failed: %w", id, final, d, err)
		}
	}
	return &Result{Dir: final, Manifest: m}, nil
}

// checkSpec refuses a spec whose flags do not fit its template.
func checkSpec(s Spec) error {
	if s.ID.Version == nil {
		return errors.New("no version: name it as NAME@VERSION, like debian-12@1.0.0")
	}
	if err := image.CheckName(s.ID.Name); err != nil {
		return err
	}
	if _, err := image.ParseVersion(s.ID.Version.String()); err != nil {
		return err
	}
	var wrong []string
	flag := func(set bool, name string) {
		if set {
			wrong = append(wrong, name)
		}
	}
	switch s.Template {
	case image.TemplateLinux:
		if s.Kernel == "" {
			return errors.New("linux: --kernel is required")
		}
		flag(s.Wimboot != "", "--wimboot")
		flag(s.Drivers != "", "--drivers")
		flag(s.Startnet != "", "--startnet")
	case image.TemplateWinPE:
		if s.From == "" {
			return errors.New("winpe: --from is required: a Windows or WinPE ISO, or a directory holding its files")
		}
		if s.Wimboot == "" {
			return errors.New("winpe: --wimboot FILE is required (wimboot is not in Debian's archive: get it from https://ipxe.org/wimboot)")
		}
		flag(s.Kernel != "", "--kernel")
		flag(len(s.Initrds) > 0, "--initrd")
		flag(s.Cmdline != "", "--cmdline")
	case "":
		return errors.New("no template: use --template linux or --template winpe")
	default:
		return fmt.Errorf("template %q: use %s or %s", s.Template, image.TemplateLinux, image.TemplateWinPE)
	}
	if len(wrong) > 0 {
		return fmt.Errorf("%s: %s belong to the other template", s.Template, strings.Join(wrong, ", "))
	}
	return nil
}

// refuseExisting refuses a version that exists, also under another build
// metadata suffix (1.0.0+a and 1.0.0+b are the same version to a
// constraint).
func refuseExisting(nameDir string, id image.ID) error {
	des, err := os.ReadDir(nameDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, de := range des {
		if strings.HasPrefix(de.Name(), ".") {
			continue
		}
		if de.Name() == id.Version.String() {
			return fmt.Errorf("%s exists in %s: versions are immutable; build a new version", id, filepath.Join(nameDir, de.Name()))
		}
		if v, err := image.ParseVersion(de.Name()); err == nil && v.Equal(id.Version) {
			return fmt.Errorf("%s: version %s exists in %s and differs only in build metadata", id, de.Name(), nameDir)
		}
	}
	return nil
}

// checkPinsUsed refuses a recipe pin that no source used: a typo there
// would otherwise pin nothing.
func (r *run) checkPinsUsed() error {
	var unused []string
	for given := range r.spec.Pins {
		if _, ok := r.sources[given]; !ok {
			unused = append(unused, given)
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		return fmt.Errorf("recipe: sources %s are not used by the build", strings.Join(unused, ", "))
	}
	return nil
}

var outNameRE = regexp.MustCompile(`^[A-Za-z0-9_+-][A-Za-z0-9._+-]*$`)

// claim reserves an output file name, refusing names a menu URL or a
// catalog cannot carry and two files whose names differ only in case (a
// case-insensitive TFTP lookup could not tell them apart).
func (r *run) claim(name, from string) (string, error) {
	if !outNameRE.MatchString(name) || len(name) > 128 {
		return "", fmt.Errorf("%s: output name %q: use letters, digits and . _ + - (not first: .)", from, name)
	}
	if strings.EqualFold(name, image.ManifestName) || strings.EqualFold(name, image.ManifestSigName) {
		return "", fmt.Errorf("%s: output name %q is the manifest's", from, name)
	}
	if prev, ok := r.names[strings.ToLower(name)]; ok {
		return "", fmt.Errorf("%s and %s have the same base name %q; a version's files live in one directory", prev, from, name)
	}
	r.names[strings.ToLower(name)] = from
	return filepath.Join(r.out, name), nil
}

// copyChecked copies rd into the version as dst, syncing it. what was
// hashed, as its source was, to want ("" where the source was hashed
// whole, an ISO's entry): the bytes copied must hash to it, or the file
// changed between the two reads and the manifest's record of the source
// would not be the source of what was built.
func (r *run) copyChecked(ctx context.Context, dst string, rd io.Reader, want string) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	h := sha256.New()
	if _, err := copyHash(ctx, f, rd, h); err != nil {
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
	if got := hex.EncodeToString(h.Sum(nil)); want != "" && got != want {
		return fmt.Errorf("it changed while the build read it: sha256 %s when the sources were hashed, %s when copied; build again once it no longer changes", want, got)
	}
	return nil
}

// copySource copies a file source into the version, from the descriptor
// it was hashed from.
func (r *run) copySource(ctx context.Context, dst string, src *source) error {
	return r.copyChecked(ctx, dst, src.reader(), src.rec.SHA256)
}

// copyNode copies a tree entry into the version.
func (r *run) copyNode(ctx context.Context, dst string, n node) error {
	rc, err := n.open()
	if err != nil {
		return err
	}
	defer rc.Close()
	return r.copyChecked(ctx, dst, rc, n.sha256)
}

// describeFiles hashes every file of the version (syncing it on the way)
// and reads the Authenticode status of the PE files.
func (r *run) describeFiles(ctx context.Context) ([]image.File, error) {
	var files []image.File
	err := filepath.WalkDir(r.out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(r.out, p)
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		n, err := copyHash(ctx, nil, f, h)
		if err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		file := image.File{Path: filepath.ToSlash(rel), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}
		if IsPE(f) {
			if file.Authenticode, err = inspect(p); err != nil {
				return fmt.Errorf("%s looks like a PE (EFI) file but its signature cannot be read: %w", file.Path, err)
			}
		}
		files = append(files, file)
		return nil
	})
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, err
}

// writeManifest writes m indented, synced.
func writeManifest(p string, m *image.Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return durable.WriteFile(p, append(data, '\n'), 0o644)
}

// renameNoReplace renames a directory into place unless the target
// exists, atomically where the file system supports it.
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST):
		return fs.ErrExist
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS):
		// No RENAME_NOREPLACE here; rename(2) still refuses a non-empty
		// target, and every version holds its manifest.
		if _, err := os.Lstat(to); err == nil {
			return fs.ErrExist
		}
		return os.Rename(from, to)
	}
	return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
}

// signManifest writes dir's manifest's detached signature beside it, synced.
func signManifest(dir string, s interface{ Sign([]byte) ([]byte, error) }) error {
	data, err := os.ReadFile(filepath.Join(dir, image.ManifestName))
	if err != nil {
		return err
	}
	sig, err := s.Sign(data)
	if err != nil {
		return fmt.Errorf("signing the manifest: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, image.ManifestSigName), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(sig); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
