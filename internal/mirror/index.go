// Package mirror copies the active image versions of one bootforge (the
// primary) to another (a mirror) near a remote site's clients, and lets
// the primary check that a mirror still holds exactly those versions.
//
// It exists so that kernels, initrds and WIMs need not cross the WAN for
// every boot, without trusting the mirror or the path to it: everything a
// sync installs is checked against the primary's manifests (and, with
// signing, the manifests' CMS signatures), and the primary sends clients
// to a mirror only while the mirror's manifests hash to its own.
//
// The primary serves an index of its active versions at
// /bootforge/images.json (menufs.IndexPath), generated on each request:
//
//	{"versions": [{"name": "debian", "version": "1.0.0",
//	  "manifest": "images/debian/1.0.0/manifest.json", "sha256": "<hex>"}]}
//
// sha256 is that of the manifest file's bytes, which in turn names the
// size and SHA-256 of every file of the version. A sync fetches the index,
// each manifest, and each file (resuming with Range), and installs each
// version whole in the same images/NAME/VERSION/ layout `image build`
// makes, then makes it active as it is on the primary (catalog.Promote).
package mirror

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"bootforge/internal/catalog"
	"bootforge/internal/image"
)

// Index is the primary's list of active versions.
type Index struct {
	Versions []Version `json:"versions"`
}

// Version is one active version in the index.
type Version struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Manifest string `json:"manifest"` // path below the root
	SHA256   string `json:"sha256"`   // of the manifest file
}

// ID is the version's NAME@VERSION.
func (v Version) ID() (image.ID, error) { return image.ParseID(v.Name + "@" + v.Version) }

// Active lists the active versions of the catalog over root, with the
// SHA-256 of each manifest file.
//
// A version whose manifest is gone by the time it is read here was
// removed since the listing, which read that manifest: by a gc, after a
// promotion between the two retired it, or by hand. It is left out, as a
// listing a moment later would have left it out, rather than failing the
// whole index and with it a mirror's sync; any other error still fails
// it.
func Active(c *catalog.Catalog, root string) (Index, error) {
	vs, err := c.Versions()
	if err != nil {
		return Index{}, err
	}
	idx := Index{Versions: []Version{}}
	for _, v := range vs {
		if v.State != image.Active {
			continue
		}
		p := path.Join(v.ID.Dir(), image.ManifestName)
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return Index{}, err
		}
		sum := sha256.Sum256(data)
		idx.Versions = append(idx.Versions, Version{Name: v.ID.Name, Version: v.ID.Version.String(),
			Manifest: p, SHA256: hex.EncodeToString(sum[:])})
	}
	return idx, nil
}

// IndexJSON is what the primary serves at menufs.IndexPath.
func IndexJSON(c *catalog.Catalog, root string) ([]byte, error) {
	idx, err := Active(c, root)
	if err != nil {
		return nil, fmt.Errorf("image index: %w", err)
	}
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}
