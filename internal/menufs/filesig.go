package menufs

import (
	"io"
	"net/netip"
	"strings"
	"time"

	"bootforge/internal/boot"
	"bootforge/internal/bootfs"
)

// fileSig is a cached signature of a file on disk, valid while the file
// keeps its size and modification time.
type fileSig struct {
	size int64
	mod  time.Time
	sig  []byte
}

// signFile answers name (PATH.sig) with a detached CMS signature of the
// disk file f at PATH, for an iPXE that verifies it (imgverify). Signing
// reads the whole file, so signatures are kept by path, size and
// modification time.
func (m *FS) signFile(name, path string, f bootfs.File, req bootfs.Request) (bootfs.File, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if c, ok := m.fileSigs.Load(path); ok {
		if c := c.(fileSig); c.size == st.Size() && c.mod.Equal(st.ModTime()) {
			return bootfs.NewVirtual(name, c.sig, st.ModTime()), nil
		}
	}
	data, err := io.ReadAll(io.NewSectionReader(f, 0, st.Size()))
	if err != nil {
		return nil, err
	}
	sig, err := m.Signer.Sign(data)
	if err != nil {
		m.Log.Error("signing a file failed", "client", clientAddr(req.Client), "path", path, "err", err.Error())
		return nil, err
	}
	m.fileSigs.Store(path, fileSig{size: st.Size(), mod: st.ModTime(), sig: sig})
	return bootfs.NewVirtual(name, sig, st.ModTime()), nil
}

func clientAddr(ap netip.AddrPort) string { return ap.Addr().String() }

// SignedFiles are the root-relative paths of the files that iPXE menus
// load and verify with image trust: kernels, initrds, the wimboot files
// and chained scripts, in every profile and variant. ISOs are left out:
// sanboot reads them block by block and verifies nothing.
func SignedFiles(inv *boot.Inventory) map[string]bool {
	out := map[string]bool{}
	if inv == nil {
		return out
	}
	add := func(p string) {
		if p == "" || strings.Contains(p, "://") {
			return
		}
		if c, err := bootfs.Clean(strings.TrimPrefix(p, "/")); err == nil {
			out[c] = true
		}
	}
	for _, p := range inv.Profiles() {
		menus := []boot.Menu{p.Menu}
		for _, v := range p.Variants {
			menus = append(menus, v)
		}
		for _, mn := range menus {
			for _, e := range mn.Entries {
				switch e.Kind {
				case boot.KindLinux:
					add(e.Kernel)
					for _, i := range e.Initrds {
						add(i)
					}
				case boot.KindWimboot:
					for _, f := range []string{e.Wimboot, e.Bootmgr, e.BCD, e.BootSDI, e.BootWIM} {
						add(f)
					}
				case boot.KindChain:
					add(e.URL)
				}
			}
		}
	}
	return out
}
