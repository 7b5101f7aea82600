package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/spf13/cobra"

	"bootforge/internal/boot"
	"bootforge/internal/bootfs"
	"bootforge/internal/grub"
	"bootforge/internal/keys"
	"bootforge/internal/menufs"
)

// keysDir is where bootforge's signing keys live: never served.

func newGrubCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "grub", Short: "Netboot GRUB that enforces bootforge's OpenPGP signatures"}
	var platform, modDir string
	build := &cobra.Command{
		Use:   "build [--platform x86_64-efi|i386-pc]",
		Short: "Build a netboot GRUB with bootforge's OpenPGP key embedded, into root",
		Long: `build makes bootforge's OpenPGP signing key (data_dir/keys/openpgp.key)
if there is none, and runs grub-mkimage (Debian's grub-efi-amd64-bin or
grub-pc-bin) with its public key embedded, the modules a network boot
needs, and an early config that sets check_signatures=enforce and loads
the client's generated menu over TFTP. Profiles with "signed: true" get
the signatures this GRUB asks for.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, g)
			if err != nil {
				return err
			}
			p, ok := grub.Platforms[platform]
			if !ok {
				return fmt.Errorf("--platform: %q: want x86_64-efi or i386-pc", platform)
			}
			kd := cfg.KeysDir()
			if err := keys.InitOpenPGP(kd); err != nil {
				return err
			}
			out := filepath.Join(cfg.Root, filepath.FromSlash(p.Output))
			if err := grub.Build(cmd.Context(), p, modDir, filepath.Join(kd, keys.OpenPGPPublicFile), out); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "wrote %s\n", out)
			fmt.Fprintf(w, "set dhcp.loaders.%s: %s\n", p.LoaderKey, p.Output)
			fmt.Fprintf(w, "and \"signed: true\" on the profiles whose GRUB menus, kernels and initrds it must verify\n")
			return nil
		},
	}
	build.Flags().StringVar(&platform, "platform", "x86_64-efi", "x86_64-efi or i386-pc")
	build.Flags().StringVar(&modDir, "grub-lib", "/usr/lib/grub", "directory of GRUB's platform module directories")
	cmd.AddCommand(build)
	return cmd
}

// grubSigned wraps menus so that signed profiles' GRUB files come with
// detached OpenPGP signatures, made with the key in data_dir/keys. The key
// is read when first needed, so one made by "grub build" while serving is
// used without a restart; with no key, no signature is served.
func grubSigned(keysDir string, menus *menufs.FS, inv func() *boot.Inventory, log *slog.Logger) bootfs.FS {
	var mu sync.Mutex
	var entity *openpgp.Entity
	sign := func(r io.Reader) ([]byte, error) {
		mu.Lock()
		e := entity
		if e == nil {
			var err error
			e, err = keys.LoadOpenPGP(keysDir)
			if err != nil {
				mu.Unlock()
				if os.IsNotExist(err) {
					log.Warn("grub: no OpenPGP key in data_dir/keys; signed profiles get no signatures (run bootforge grub build)")
				}
				return nil, fmt.Errorf("openpgp key: %w", err)
			}
			entity = e
		}
		mu.Unlock()
		return keys.SignDetachedReader(e, r)
	}
	return &grub.SigFS{Menus: menus, Inventory: inv, Sign: sign}
}
