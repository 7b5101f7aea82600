package build

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"bootforge/internal/blob"
	"bootforge/internal/boot"
	"bootforge/internal/image"
)

// The files wimboot needs, where Windows and WinPE media keep them, and
// the names they get in the version.
var winpePieces = []struct {
	what  string
	out   string
	paths []string
}{
	{"bootmgr", "bootmgr", []string{"bootmgr"}},
	{"BCD", "BCD", []string{"boot/bcd", "BCD"}},
	{"boot.sdi", "boot.sdi", []string{"boot/boot.sdi"}},
	{"boot.wim", "boot.wim", []string{"sources/boot.wim"}},
}

// winpe lays out wimboot, bootmgr, BCD, boot.sdi and boot.wim, and
// injects drivers and startnet.cmd into the copied boot.wim.
func (r *run) winpe(ctx context.Context) error {
	s := r.spec
	wimlib, err := r.wimlibPath()
	if err != nil {
		return err
	}
	src, err := r.resolve(ctx, s.From)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	if src.kind != kindISO && src.kind != kindDir {
		return fmt.Errorf("winpe: --from %s is neither an ISO nor a directory", s.From)
	}
	t, err := r.openTree(src)
	if err != nil {
		return err
	}
	found := make([]node, len(winpePieces))
	var missing []string
	for i, p := range winpePieces {
		n, err := lookupAny(t, p.paths)
		if errors.Is(err, errNotFound) {
			missing = append(missing, fmt.Sprintf("winpe: %s not found in %s (looked for %s)", p.what, s.From, strings.Join(p.paths, ", ")))
			continue
		}
		if err != nil {
			return fmt.Errorf("winpe: %s: %w", p.what, err)
		}
		found[i] = n
	}
	if len(missing) > 0 {
		if hint := udfHint(t); hint != "" {
			missing = append(missing, hint)
		}
		return errors.New(strings.Join(missing, "\n"))
	}
	wimboot, err := r.resolve(ctx, s.Wimboot)
	if err != nil {
		return fmt.Errorf("--wimboot: %w", err)
	}
	if wimboot.kind != kindFile {
		return fmt.Errorf("winpe: --wimboot %s is not a regular file", s.Wimboot)
	}
	var drivers, startnet *source
	if s.Drivers != "" {
		if drivers, err = r.resolve(ctx, s.Drivers); err != nil {
			return fmt.Errorf("--drivers: %w", err)
		}
		if drivers.kind != kindDir {
			return fmt.Errorf("winpe: --drivers %s is not a directory", s.Drivers)
		}
	}
	if s.Startnet != "" {
		if startnet, err = r.resolve(ctx, s.Startnet); err != nil {
			return fmt.Errorf("--startnet: %w", err)
		}
		if startnet.kind != kindFile {
			return fmt.Errorf("winpe: --startnet %s is not a regular file", s.Startnet)
		}
	}

	dst, err := r.claim("wimboot", "--wimboot "+s.Wimboot)
	if err != nil {
		return err
	}
	if err := r.copySource(ctx, dst, wimboot); err != nil {
		return fmt.Errorf("winpe: copying %s: %w", s.Wimboot, err)
	}
	for i, p := range winpePieces {
		dst, err := r.claim(p.out, p.what)
		if err != nil {
			return err
		}
		if err := r.copyNode(ctx, dst, found[i]); err != nil {
			return fmt.Errorf("winpe: copying %s from %s: %w", p.what, s.From, err)
		}
	}
	wim := filepath.Join(r.out, "boot.wim")
	info, err := wimInfo(ctx, wimlib, wim)
	if err != nil {
		return fmt.Errorf("winpe: %s in %s is not a valid WIM: %w", winpePieces[3].paths[0], s.From, err)
	}
	if drivers != nil || startnet != nil {
		if err := r.injectWIM(ctx, wimlib, wim, info, drivers, startnet); err != nil {
			return err
		}
	}
	r.boot = image.Boot{Kind: boot.KindWimboot, Wimboot: "wimboot", Bootmgr: "bootmgr", BCD: "BCD", BootSDI: "boot.sdi", BootWIM: "boot.wim"}
	return nil
}

// lookupAny finds the first of paths in t, ignoring case.
func lookupAny(t tree, paths []string) (node, error) {
	var last error
	for _, p := range paths {
		n, err := lookup(t, p, true)
		if err == nil {
			return n, nil
		}
		if !errors.Is(err, errNotFound) {
			return node{}, err
		}
		last = err
	}
	return node{}, last
}

// udfHint explains an ISO whose ISO 9660 tree holds only a README: the
// files of Windows media are on its UDF file system.
func udfHint(t tree) string {
	if _, ok := t.(*isoTree); !ok {
		return ""
	}
	entries, err := t.list("")
	if err != nil || len(entries) != 1 || !strings.EqualFold(entries[0].name, "README.TXT") {
		return ""
	}
	return "the ISO 9660 tree of " + t.describe() + " holds only README.TXT: Windows media keep their files on UDF, which bootforge does not read; extract the ISO (7z x, or mount -o loop,ro and copy) and give the directory to --from"
}

// wimlibPath finds wimlib-imagex.
func (r *run) wimlibPath() (string, error) {
	if r.Wimlib != "" {
		return r.Wimlib, nil
	}
	p, err := exec.LookPath("wimlib-imagex")
	if err != nil {
		return "", errors.New("winpe: wimlib-imagex not found: install Debian's wimtools")
	}
	return p, nil
}

// copyTree copies the directories and regular files of the directory
// source src to dst: the files hashDir digested, each checked against its
// digest then; one added or gone since is an error too.
func copyTree(ctx context.Context, r *run, dst string, src *source) error {
	copied := 0
	err := fs.WalkDir(src.dir.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		to := filepath.Join(dst, filepath.FromSlash(p))
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type().IsRegular():
			want, ok := src.files[p]
			if !ok {
				return fmt.Errorf("%s: %s appeared after the source was hashed; build again once it no longer changes", src.given, p)
			}
			f, _, err := blob.Regular(src.dir.OpenFile(filepath.FromSlash(p), blob.ReadFlags, 0))
			if err != nil {
				return err
			}
			defer f.Close()
			copied++
			if err := r.copyChecked(ctx, to, f, want); err != nil {
				return fmt.Errorf("%s: %s: %w", src.given, p, err)
			}
		}
		return nil
	})
	if err == nil && copied != len(src.files) {
		err = fmt.Errorf("%s: %d of its files are gone or no longer regular files since it was hashed; build again once it no longer changes", src.given, len(src.files)-copied)
	}
	return err
}
