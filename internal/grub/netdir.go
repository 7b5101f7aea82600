package grub

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// NetCore is the BIOS netboot GRUB that `bootforge init` makes with
// grub-mknetdir, as a path below root: the PXE core, which loads its
// modules (from grub/i386-pc/) and grub/grub.cfg over TFTP. Hand it to
// BIOS clients with dhcp.loaders.bios.
const NetCore = "grub/i386-pc/core.0"

// MkNetDir runs grub-mknetdir (Debian: grub-common, with the modules from
// grub-pc-bin in libDir/i386-pc) to put an i386-pc netboot GRUB into root:
// grub/i386-pc/core.0, its modules, and grub/i386-pc/grub.cfg, which
// sources grub/grub.cfg, the one bootforge generates.
func MkNetDir(ctx context.Context, libDir, root string) error {
	dir := filepath.Join(libDir, "i386-pc")
	if _, err := os.Stat(filepath.Join(dir, "pxe.mod")); err != nil {
		return fmt.Errorf("GRUB's i386-pc modules not found (Debian: grub-pc-bin): %w", err)
	}
	args := []string{"--net-directory=" + root, "--subdir=grub", "-d", dir}
	cmd := exec.CommandContext(ctx, "grub-mknetdir", args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("grub-mknetdir %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(b)))
	}
	return nil
}
