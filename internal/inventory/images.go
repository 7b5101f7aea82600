package inventory

import (
	"fmt"
	"path"
	"strings"

	"bootforge/internal/boot"
	"bootforge/internal/image"
)

// Images is what the inventory needs of the built images: which versions
// exist in which state, and what each is made of. The catalog is one.
type Images interface {
	Versions() ([]image.Version, error)
	Manifest(image.ID) (*image.Manifest, error)
}

// resolveImages fills every entry that names an image with the files of
// the version it resolves to: the active one for a bare name, the highest
// built one that meets a constraint. An entry whose image resolves to no
// version refuses the inventory, naming the profile and the entry.
func resolveImages(profiles []boot.Profile, imgs Images) []string {
	var errs []string
	var versions []image.Version
	listed := false
	for i := range profiles {
		p := &profiles[i]
		resolve := func(m *boot.Menu) {
			for j := range m.Entries {
				e := &m.Entries[j]
				if e.Image == "" {
					continue
				}
				if !listed {
					listed = true
					if imgs == nil {
						errs = append(errs, fmt.Sprintf("%s: profile %q: entry %q: image %q: no image catalog here", p.Source, p.Name, e.Name, e.Image))
						return
					}
					var err error
					if versions, err = imgs.Versions(); err != nil {
						errs = append(errs, fmt.Sprintf("images: %v", err))
						return
					}
				}
				if err := fillFromImage(e, versions, imgs); err != nil {
					errs = append(errs, fmt.Sprintf("%s: profile %q: entry %q: %v", p.Source, p.Name, e.Name, err))
				}
			}
		}
		resolve(&p.Menu)
		for fw, m := range p.Variants {
			resolve(&m)
			p.Variants[fw] = m
		}
	}
	return errs
}

// fillFromImage resolves e.Image among versions and fills e from the
// chosen version's manifest.
func fillFromImage(e *boot.Entry, versions []image.Version, imgs Images) error {
	ref, err := image.ParseRef(e.Image)
	if err != nil {
		return err
	}
	if e.Kernel != "" || len(e.Initrds) > 0 || e.Wimboot != "" || e.Bootmgr != "" || e.BCD != "" || e.BootSDI != "" || e.BootWIM != "" || e.ISO != "" || e.URL != "" {
		return fmt.Errorf("image %q: an image gives the kernel and initrds or the wimboot files; drop them from the entry", e.Image)
	}
	v, ok := ref.Pick(versions)
	if !ok {
		var built []string
		for _, b := range versions {
			if b.ID.Name == ref.Name {
				built = append(built, fmt.Sprintf("%s (%s)", b.ID.Version, b.State))
			}
		}
		switch {
		case len(built) == 0:
			return fmt.Errorf("image %q: no version of %s is built (bootforge image build)", e.Image, ref.Name)
		case ref.Constraint == nil:
			return fmt.Errorf("image %q: no version is active (bootforge image promote); built: %s", e.Image, strings.Join(built, ", "))
		}
		return fmt.Errorf("image %q: no built version matches; built: %s", e.Image, strings.Join(built, ", "))
	}
	m, err := imgs.Manifest(v.ID)
	if err != nil {
		return fmt.Errorf("image %q: %s: %v", e.Image, v.ID, err)
	}
	b, dir := m.Boot, v.ID.Dir()
	if e.Kind != "" && e.Kind != b.Kind {
		return fmt.Errorf("image %q: %s boots as kind %s, not %s", e.Image, v.ID, b.Kind, e.Kind)
	}
	in := func(f string) string {
		if f == "" {
			return ""
		}
		return path.Join(dir, f)
	}
	switch b.Kind {
	case boot.KindLinux:
		e.Kernel = in(b.Kernel)
		for _, i := range b.Initrds {
			e.Initrds = append(e.Initrds, in(i))
		}
		e.Cmdline = strings.TrimSpace(b.Cmdline + " " + e.Cmdline)
	case boot.KindWimboot:
		e.Wimboot, e.Bootmgr, e.BCD, e.BootSDI, e.BootWIM = in(b.Wimboot), in(b.Bootmgr), in(b.BCD), in(b.BootSDI), in(b.BootWIM)
	default:
		return fmt.Errorf("image %q: %s has boot kind %q, which menus cannot boot", e.Image, v.ID, b.Kind)
	}
	e.Kind, e.ImageVersion = b.Kind, v.ID.String()
	return nil
}

// ImagesInUse returns the versions that the menu entries of inv resolve
// to, each once: what `image gc` must keep.
func ImagesInUse(inv *boot.Inventory) []image.ID {
	seen := map[string]bool{}
	var out []image.ID
	add := func(m boot.Menu) {
		for _, e := range m.Entries {
			if e.ImageVersion == "" || seen[e.ImageVersion] {
				continue
			}
			seen[e.ImageVersion] = true
			if id, err := image.ParseID(e.ImageVersion); err == nil {
				out = append(out, id)
			}
		}
	}
	for _, p := range inv.Profiles() {
		add(p.Menu)
		for _, m := range p.Variants {
			add(m)
		}
	}
	return out
}
