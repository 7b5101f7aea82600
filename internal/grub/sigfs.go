// Package grub serves what a GRUB that enforces signatures needs, and
// builds that GRUB: detached OpenPGP signatures (<path>.sig) for the
// per-client menus, kernels and initrds of profiles with `signed: true`,
// and a netboot image made by grub-mkimage with bootforge's public key.
package grub

import (
	"errors"
	"io"
	"io/fs"
	"strings"
	"sync"
	"time"

	"bootforge/internal/boot"
	"bootforge/internal/bootfs"
)

// Menus is what SigFS needs of menufs: side-effect-free views.
type Menus interface {
	bootfs.FS
	Disk(req bootfs.Request) (bootfs.File, error)
	PeekGRUB(name string, req bootfs.Request) (string, boot.Profile, bool, error)
}

// SigFS answers <path>.sig with a detached OpenPGP signature for
//   - a generated per-client GRUB menu whose client's profile is signed:
//     the signature is of exactly the bytes that menu request returns;
//   - a file on disk that a signed profile names as a kernel or initrd.
//
// Every other request goes to Menus unchanged. A .sig fetch has no side
// effects: no one-shot moves, no menu is logged.
type SigFS struct {
	Menus     Menus
	Inventory func() *boot.Inventory
	// Sign makes a detached signature; nil serves no signatures.
	Sign func(r io.Reader) ([]byte, error)

	mu    sync.Mutex
	cache map[string]cachedSig
}

type cachedSig struct {
	size int64
	mod  time.Time
	sig  []byte
}

// Open serves a signature or passes the request on.
func (s *SigFS) Open(req bootfs.Request) (bootfs.File, error) {
	name, err := bootfs.Clean(req.Path)
	if err != nil || s.Sign == nil || !strings.HasSuffix(name, ".sig") {
		return s.Menus.Open(req)
	}
	target := strings.TrimSuffix(name, ".sig")
	sig, ok, err := s.signature(target, req)
	if err != nil {
		return nil, err
	}
	if !ok {
		return s.Menus.Open(req)
	}
	return bootfs.NewVirtual(name, sig, time.Now()), nil
}

func (s *SigFS) signature(target string, req bootfs.Request) ([]byte, bool, error) {
	text, p, ok, err := s.Menus.PeekGRUB(target, req)
	if err != nil {
		return nil, false, err
	}
	if ok {
		if !p.Signed {
			return nil, false, nil
		}
		sig, err := s.Sign(strings.NewReader(text))
		return sig, err == nil, err
	}
	if !SignedPaths(s.Inventory())[target] {
		return nil, false, nil
	}
	dreq := req
	dreq.Path = target
	f, err := s.Menus.Disk(dreq)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	c, hit := s.cache[target]
	s.mu.Unlock()
	if hit && c.size == st.Size() && c.mod.Equal(st.ModTime()) {
		return c.sig, true, nil
	}
	sig, err := s.Sign(io.NewSectionReader(f, 0, st.Size()))
	if err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	if s.cache == nil {
		s.cache = map[string]cachedSig{}
	}
	s.cache[target] = cachedSig{size: st.Size(), mod: st.ModTime(), sig: sig}
	s.mu.Unlock()
	return sig, true, nil
}

// SignedPaths are the root-relative paths of the kernels and initrds that
// signed profiles name, in any menu variant.
func SignedPaths(inv *boot.Inventory) map[string]bool {
	out := map[string]bool{}
	if inv == nil {
		return out
	}
	add := func(p string) {
		if strings.Contains(p, "://") {
			return
		}
		if c, err := bootfs.Clean(strings.TrimPrefix(p, "/")); err == nil {
			out[c] = true
		}
	}
	for _, p := range inv.Profiles() {
		if !p.Signed {
			continue
		}
		menus := []boot.Menu{p.Menu}
		for _, v := range p.Variants {
			menus = append(menus, v)
		}
		for _, m := range menus {
			for _, e := range m.Entries {
				if e.Kind != boot.KindLinux {
					continue
				}
				add(e.Kernel)
				for _, i := range e.Initrds {
					add(i)
				}
			}
		}
	}
	return out
}
