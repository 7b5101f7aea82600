package check

import (
	"fmt"
	"strings"

	"bootforge/internal/catalog"
	"bootforge/internal/image"
)

// maxDriftsShown bounds the drifts the images item names.
const maxDriftsShown = 5

// Images is the checklist's images item: the specification's "netboot
// image checksum validated against stored manifest". It re-hashes every
// file of every active version against its manifest and fails on any
// drift. When images are built it never skips: with none active it passes
// and says so (nothing is served by name), and it fails if the versions
// cannot be read or a version's manifest cannot be used. With no image built at all it passes too, saying "no
// images": there is nothing that could drift.
func Images(c *catalog.Catalog) Item {
	const name = "images"
	vs, err := c.Versions()
	if err != nil {
		return Fail(name, "%v", err)
	}
	broken, err := c.Broken()
	if err != nil {
		return Fail(name, "%v", err)
	}
	if len(broken) > 0 {
		return Fail(name, "%s with a manifest that cannot be used (left out of menus and lists; rebuild or remove): %v",
			count(len(broken), "version"), broken[0])
	}
	if len(vs) == 0 {
		return Pass(name, "no images built: nothing to verify")
	}
	var active []image.ID
	var bytes int64
	for _, v := range vs {
		if v.State != image.Active {
			continue
		}
		m, err := c.Manifest(v.ID)
		if err != nil {
			return Fail(name, "%v", err)
		}
		active = append(active, v.ID)
		bytes += catalog.Size(m)
	}
	if len(active) == 0 {
		return Pass(name, "%s built, none active: nothing served by name to verify", count(len(vs), "version"))
	}
	drifts, err := c.Verify(nil, active...)
	if err != nil {
		return Fail(name, "%v", err)
	}
	if len(drifts) > 0 {
		shown := make([]string, 0, maxDriftsShown)
		for i, d := range drifts {
			if i == maxDriftsShown {
				shown = append(shown, fmt.Sprintf("and %d more (bootforge image verify --all lists them)", len(drifts)-i))
				break
			}
			shown = append(shown, d.String())
		}
		return Fail(name, "%s from the manifests of the active versions: %s", count(len(drifts), "drift"), strings.Join(shown, "; "))
	}
	names := make([]string, len(active))
	for i, id := range active {
		names[i] = id.String()
	}
	return Pass(name, "%s verified against the manifests, no drift (%s; %d bytes hashed)", count(len(active), "active version"), strings.Join(names, ", "), bytes)
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
