package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"bootforge/internal/boot"
)

// linux lays out a kernel and its initrds under their base names.
func (r *run) linux(ctx context.Context) error {
	s := r.spec
	var t tree
	if s.From != "" {
		src, err := r.resolve(ctx, s.From)
		if err != nil {
			return fmt.Errorf("--from: %w", err)
		}
		switch {
		case src.kind == kindISO || src.kind == kindDir:
			if t, err = r.openTree(src); err != nil {
				return err
			}
		case src.blob:
			return fmt.Errorf("linux: --from %s is a blob but not an ISO; give the kernel and initrds as files", s.From)
		default:
			// A file: it must be the kernel or an initrd.
			if !r.sameAsAny(src, append([]string{s.Kernel}, s.Initrds...)) {
				return fmt.Errorf("linux: --from %s is neither an ISO, a directory, nor one of --kernel/--initrd", s.From)
			}
			// Recorded as the kernel or initrd it is, in their order, so
			// that the manifest does not depend on whether --from was given.
			defer func() {
				r.order = r.order[:0]
				for _, g := range append([]string{s.Kernel}, s.Initrds...) {
					if src, ok := r.sources[g]; ok {
						r.order = append(r.order, src)
					}
				}
			}()
		}
	}
	kernel, err := r.linuxFile(ctx, t, s.Kernel, "--kernel")
	if err != nil {
		return err
	}
	r.boot.Kind = boot.KindLinux
	r.boot.Kernel = kernel
	r.boot.Cmdline = s.Cmdline
	for _, p := range s.Initrds {
		name, err := r.linuxFile(ctx, t, p, "--initrd")
		if err != nil {
			return err
		}
		r.boot.Initrds = append(r.boot.Initrds, name)
	}
	return nil
}

// linuxFile copies p (inside t, or a file when t is nil) into the version
// under its base name.
func (r *run) linuxFile(ctx context.Context, t tree, p, flag string) (string, error) {
	if t != nil {
		parts, err := cleanInside(p)
		if err != nil {
			return "", fmt.Errorf("linux: %s %w", flag, err)
		}
		base := parts[len(parts)-1]
		n, err := lookup(t, p, false)
		if err != nil {
			return "", fmt.Errorf("linux: %s: %w", flag, err)
		}
		dst, err := r.claim(base, flag+" "+p)
		if err != nil {
			return "", fmt.Errorf("linux: %w", err)
		}
		if err := r.copyNode(ctx, dst, n); err != nil {
			return "", fmt.Errorf("linux: copying %s from %s: %w", p, t.describe(), err)
		}
		return base, nil
	}
	if _, ok := blobDigest(p); ok {
		return "", fmt.Errorf("linux: %s %s: give a file (a blob has no name to serve it under), or an ISO holding it with --from", flag, p)
	}
	src, err := r.resolve(ctx, p)
	if err != nil {
		return "", fmt.Errorf("linux: %s: %w", flag, err)
	}
	if src.kind != kindFile {
		return "", fmt.Errorf("linux: %s %s is not a regular file; to take files from an ISO or a directory, give it with --from", flag, p)
	}
	base := filepath.Base(p)
	dst, err := r.claim(base, flag+" "+p)
	if err != nil {
		return "", fmt.Errorf("linux: %w", err)
	}
	if err := r.copySource(ctx, dst, src); err != nil {
		return "", fmt.Errorf("linux: copying %s: %w", p, err)
	}
	return base, nil
}

// sameAsAny tells whether the file source src is one of the files given.
func (r *run) sameAsAny(src *source, given []string) bool {
	a, err := src.file.Stat()
	if err != nil {
		return false
	}
	for _, g := range given {
		if g == "" {
			continue
		}
		if !filepath.IsAbs(g) && r.spec.Dir != "" {
			g = filepath.Join(r.spec.Dir, g)
		}
		if b, err := os.Stat(g); err == nil && os.SameFile(a, b) {
			return true
		}
	}
	return false
}

// openTree opens an ISO or directory source.
func (r *run) openTree(src *source) (tree, error) {
	if src.kind == kindDir {
		return &dirTree{given: src.given, root: src.dir, files: src.files}, nil
	}
	return openISO(src.given, src.file)
}
