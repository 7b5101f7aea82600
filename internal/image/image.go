// Package image is the domain of built boot images: their names and
// semantic versions, the references menus make to them, the states a
// version goes through, and the manifest that records what a version is
// made of. It does no I/O: building, storing, serving and verifying
// images are other packages' work, and they all agree on these types.
//
// A built version lives below the served root at images/NAME/VERSION/,
// with its manifest at images/NAME/VERSION/manifest.json. Versions are
// immutable once built; which one is active is a pointer kept in the
// store, so promoting or rolling back never touches a file that a client
// may be downloading.
package image

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
)

// Dir is the directory below the served root that holds built images.
const Dir = "images"

// ManifestName is the manifest's file name in a version's directory.
const ManifestName = "manifest.json"

// Work directories in Dir: where a build, a mirror sync and gc assemble or
// take apart a version out of sight of the catalog, which lists no
// dot-directory. Each writer locks its own (durable.NewWorkDir), so gc
// and builds remove those whose writer was killed.
const (
	BuildWorkPrefix  = ".build-"
	MirrorWorkPrefix = ".mirror-stage-"
	GCWorkPrefix     = ".gc-"
)

// ManifestSigName is the manifest's detached CMS signature (DER), beside
// it, when signing is on.
const ManifestSigName = ManifestName + ".sig"

// Templates.
const (
	TemplateLinux = "linux"
	TemplateWinPE = "winpe"
)

// State is where a version is in its life.
type State string

// Version states. Only one version of a name is active at a time.
const (
	Staged  State = "staged"  // built, not yet in menus that name the image alone
	Active  State = "active"  // what `image: NAME` boots
	Retired State = "retired" // was active; kept for rollback until gc
)

var nameRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// CheckName accepts lower-case letters, digits and single dashes, as a
// directory name and a URL path segment need no escaping.
func CheckName(name string) error {
	if len(name) > 64 || !nameRE.MatchString(name) {
		return fmt.Errorf("image name %q: use lower-case letters, digits and dashes (at most 64), like debian-12", name)
	}
	return nil
}

// ParseVersion reads a semantic version written in full, like 2.0.0 or
// 2.0.0-rc.1; "v2" and "2.0" are refused, so that a version names one
// directory.
func ParseVersion(s string) (*semver.Version, error) {
	v, err := semver.StrictNewVersion(s)
	if err != nil {
		return nil, fmt.Errorf("version %q is not a semantic version like 2.0.0", s)
	}
	return v, nil
}

// ID names one built version: NAME@VERSION.
type ID struct {
	Name    string
	Version *semver.Version
}

func (id ID) String() string {
	if id.Version == nil {
		return id.Name
	}
	return id.Name + "@" + id.Version.String()
}

// Dir is the version's directory below the served root.
func (id ID) Dir() string { return path.Join(Dir, id.Name, id.Version.String()) }

// ParseID reads NAME@VERSION.
func ParseID(s string) (ID, error) {
	name, ver, ok := strings.Cut(s, "@")
	if !ok {
		return ID{}, fmt.Errorf("%q: name the version, like debian-12@1.0.0", s)
	}
	if err := CheckName(name); err != nil {
		return ID{}, err
	}
	v, err := ParseVersion(ver)
	if err != nil {
		return ID{}, err
	}
	return ID{Name: name, Version: v}, nil
}

// Ref is what a menu entry says: NAME (the active version), NAME@VERSION,
// or NAME@CONSTRAINT such as ^12.1 (the highest built version that meets
// it).
type Ref struct {
	Name       string
	Constraint *semver.Constraints // nil: the active version
	Raw        string
}

// ParseRef reads an image reference.
func ParseRef(s string) (Ref, error) {
	name, c, hasC := strings.Cut(s, "@")
	if err := CheckName(name); err != nil {
		return Ref{}, err
	}
	r := Ref{Name: name, Raw: s}
	if hasC {
		cs, err := semver.NewConstraint(c)
		if err != nil {
			return Ref{}, fmt.Errorf("image %q: %q is not a version or constraint like 1.2.0 or ^1.2", s, c)
		}
		r.Constraint = cs
	}
	return r, nil
}

// Pick chooses the version r names among built: the active one for a bare
// name, else the highest that meets the constraint. ok is false when none
// does.
func (r Ref) Pick(built []Version) (Version, bool) {
	var best Version
	found := false
	for _, v := range built {
		if v.ID.Name != r.Name {
			continue
		}
		if r.Constraint == nil {
			if v.State == Active {
				return v, true
			}
			continue
		}
		if r.Constraint.Check(v.ID.Version) && (!found || v.ID.Version.GreaterThan(best.ID.Version)) {
			best, found = v, true
		}
	}
	return best, found
}

// Version is one built version and its state.
type Version struct {
	ID    ID
	State State
	Built time.Time
}

// Manifest records what a built version is made of. Two builds from the
// same inputs give the same manifest but for Built.
type Manifest struct {
	Name     string    `json:"name"`
	Version  string    `json:"version"`
	Template string    `json:"template"`
	Built    time.Time `json:"built"`
	Sources  []Source  `json:"sources"`
	Files    []File    `json:"files"` // sorted by path
	Boot     Boot      `json:"boot"`
}

// Source is one input of a build.
type Source struct {
	Origin string `json:"origin"` // a path or URL as given, or "blob"
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// File is one file of a built version.
type File struct {
	Path   string `json:"path"` // relative to the version's directory
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Authenticode is set for EFI binaries and kernels (PE files).
	Authenticode *Signature `json:"authenticode,omitempty"`
}

// Signature is a PE file's Authenticode status.
type Signature struct {
	Signed bool   `json:"signed"`
	Signer string `json:"signer,omitempty"` // the signing certificate's subject CN
	// Digest is the file's Authenticode digest (hex), as computed; the
	// signature's digest must equal it.
	Digest        string `json:"digest,omitempty"`
	DigestMatches bool   `json:"digest_matches"`
}

// Boot is how a menu entry boots the image: the files, relative to the
// version's directory.
type Boot struct {
	Kind    string   `json:"kind"` // linux or wimboot (boot.KindLinux, boot.KindWimboot)
	Kernel  string   `json:"kernel,omitempty"`
	Initrds []string `json:"initrds,omitempty"`
	Cmdline string   `json:"cmdline,omitempty"`
	Wimboot string   `json:"wimboot,omitempty"`
	Bootmgr string   `json:"bootmgr,omitempty"`
	BCD     string   `json:"bcd,omitempty"`
	BootSDI string   `json:"boot_sdi,omitempty"`
	BootWIM string   `json:"boot_wim,omitempty"`
}

// ID is the manifest's version.
func (m *Manifest) ID() (ID, error) { return ParseID(m.Name + "@" + m.Version) }

// File finds a file by its path in the version's directory.
func (m *Manifest) File(p string) (File, bool) {
	for _, f := range m.Files {
		if f.Path == p {
			return f, true
		}
	}
	return File{}, false
}

// OfPath tells which version a served path belongs to:
// images/NAME/VERSION/... gives NAME@VERSION.
func OfPath(p string) (ID, bool) {
	if !strings.HasPrefix(strings.TrimPrefix(p, "/"), Dir+"/") {
		return ID{}, false // most paths: no split, no allocation (every boot-log event asks)
	}
	parts := strings.SplitN(strings.TrimPrefix(p, "/"), "/", 4)
	if len(parts) < 4 || parts[0] != Dir {
		return ID{}, false
	}
	id, err := ParseID(parts[1] + "@" + parts[2])
	return id, err == nil
}
