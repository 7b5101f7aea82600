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

// grubKey is GRUB's OpenPGP signing key as serve uses it: loaded at
// start with the other keys and kept until restart, so that a key
// replaced under a running server applies on restart, as the signer's
// does. It was read when first needed: a key replaced before the first
// signed file was served signed GRUB's files at once, one replaced after
// it only on restart. A server started without a key reads it when first
// needed, so that the first `grub build` takes effect without a restart;
// from then on it is kept too.
type grubKey struct {
	dir string
	log *slog.Logger

	mu     sync.Mutex
	entity *openpgp.Entity
	// digest is keys.Digest of the key's files when it was loaded, for
	// the reload to tell that they were replaced since.
	digest string
}

// loadGRUBKey loads the key in dir, if there is one.
func loadGRUBKey(dir string, log *slog.Logger) *grubKey {
	k := &grubKey{dir: dir, log: log}
	if _, err := k.key(); err != nil && !os.IsNotExist(err) {
		log.Warn("grub: the OpenPGP key cannot be loaded; signed profiles get no signatures", "err", err)
	}
	return k
}

// key is the loaded key, loading it if none is yet.
func (k *grubKey) key() (*openpgp.Entity, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.entity == nil {
		digest := keys.Digest(k.dir, keys.OpenPGPFiles)
		e, err := keys.LoadOpenPGP(k.dir)
		if err != nil {
			return nil, err
		}
		k.entity, k.digest = e, digest
	}
	return k.entity, nil
}

// loadedDigest is the digest of the key files loaded, or "" if none is.
func (k *grubKey) loadedDigest() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.digest
}

// sign makes a detached signature with the key.
func (k *grubKey) sign(r io.Reader) ([]byte, error) {
	e, err := k.key()
	if err != nil {
		if os.IsNotExist(err) {
			k.log.Warn("grub: no OpenPGP key in data_dir/keys; signed profiles get no signatures (run bootforge grub build)")
		}
		return nil, fmt.Errorf("openpgp key: %w", err)
	}
	return keys.SignDetachedReader(e, r)
}

// grubSigned wraps menus so that signed profiles' GRUB files come with
// detached OpenPGP signatures, made with key.
func grubSigned(key *grubKey, menus *menufs.FS, inv func() *boot.Inventory) bootfs.FS {
	return &grub.SigFS{Menus: menus, Inventory: inv, Sign: key.sign}
}
