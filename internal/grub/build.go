package grub

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"bootforge/internal/menu"
)

// Platform is a GRUB target bootforge builds for network boot.
type Platform struct {
	Name      string   // grub-mkimage's directory in /usr/lib/grub
	Format    string   // grub-mkimage -O
	Output    string   // path below root
	LoaderKey string   // the dhcp.loaders key that hands it out
	Modules   []string // embedded: with signatures enforced, none can be loaded later
}

// common are the modules of both platforms: network, menus, Linux, and
// OpenPGP verification (Debian's 2.06 has no separate verifiers module).
var common = []string{"tftp", "net", "normal", "linux", "echo", "configfile", "sleep", "reboot", "smbios", "test",
	"pgp", "gcry_sha256", "gcry_sha512", "gcry_rsa", "gcry_dsa", "serial", "terminal"}

// Platforms are the targets of `bootforge grub build`.
var Platforms = map[string]Platform{
	"x86_64-efi": {Name: "x86_64-efi", Format: "x86_64-efi", Output: "grub/bootforge-signed-x64.efi", LoaderKey: "efi_x64",
		Modules: append([]string{"efinet", "efi_gop"}, common...)},
	"i386-pc": {Name: "i386-pc", Format: "i386-pc-pxe", Output: "grub/bootforge-signed-i386-pc.0", LoaderKey: "bios",
		Modules: append([]string{"pxe"}, common...)},
}

// EarlyConfig is embedded in the image: it enforces signatures and goes on
// to the client's own generated menu (through menu.GRUBForward, with its
// SMBIOS facts), which must then be signed too. If that fails (no menu, a
// bad signature), the machine does not boot.
const EarlyConfig = "set check_signatures=enforce\nset root=(tftp)\n" + menu.GRUBForward +
	`echo "bootforge: no verified menu for ${net_default_mac}; not booting"
sleep 10
reboot
`

// Build runs grub-mkimage for p with the public key pub embedded and
// writes the image to out (through a temporary file).
func Build(ctx context.Context, p Platform, libDir, pub, out string) error {
	dir := filepath.Join(libDir, p.Name)
	if _, err := os.Stat(filepath.Join(dir, "pgp.mod")); err != nil {
		return fmt.Errorf("GRUB modules for %s not found in %s (Debian: grub-efi-amd64-bin or grub-pc-bin): %w", p.Name, dir, err)
	}
	tmp, err := os.MkdirTemp("", "bootforge-grub-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	early := filepath.Join(tmp, "early.cfg")
	if err := os.WriteFile(early, []byte(EarlyConfig), 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	part := out + ".part"
	args := append([]string{"-d", dir, "-O", p.Format, "-p", "(tftp)/grub", "-k", pub, "-c", early, "-o", part}, p.Modules...)
	cmd := exec.CommandContext(ctx, "grub-mkimage", args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(part)
		return fmt.Errorf("grub-mkimage %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(b)))
	}
	if err := os.Chmod(part, 0o644); err != nil {
		return err
	}
	return os.Rename(part, out)
}
