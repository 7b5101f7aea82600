package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"bootforge/internal/check"
	"bootforge/internal/config"
	"bootforge/internal/keys"
)

func newKeysCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the signing keys (a CA and a code-signing certificate)",
		Long: `The signing keys live in signing.dir (default data_dir/keys, mode 0700),
outside root, so they are never served:

  ca.pem, ca.key            the signing CA (verifiers trust ca.pem)
  signing.pem, signing.key  the code-signing certificate the CA issued
                            (extKeyUsage codeSigning) and its key

Private keys are 0600. To bring your own, drop those four PEM files in
(keys unencrypted, PKCS#8, PKCS#1 or SEC 1), or give your CA to
"keys init --ca-cert F --ca-key F", which issues the signing certificate.`,
	}
	cmd.AddCommand(newKeysInitCmd(g), newKeysShowCmd(g), newKeysExportEDK2Cmd(g))
	return cmd
}

func newKeysInitCmd(g *globalFlags) *cobra.Command {
	var o keys.InitOptions
	cmd := &cobra.Command{
		Use:   "init [--force] [--ca-cert F --ca-key F]",
		Short: "Make a signing CA (RSA 3072) and a code-signing certificate issued by it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, g)
			if err != nil {
				return err
			}
			dir := cfg.KeysDir()
			replaced := keys.Exist(dir)
			_, err = os.Lstat(filepath.Join(dir, keys.OpenPGPPrivateFile))
			pgpKept := err == nil
			// The X.509 keys and the OpenPGP key that GRUB checks
			// signatures with (grub build), all or nothing.
			if err := keys.Init(dir, o); err != nil {
				return err
			}
			if !replaced {
				fmt.Fprintf(cmd.OutOrStdout(), "keys written to %s\n", dir)
				return nil
			}
			// serve loads the keys at start only: a reload would have
			// to take up the signer, the CA that image signatures are
			// checked against and the boot TLS certificate together.
			// GRUB's OpenPGP key is kept (Init does not replace it), or
			// made if there was none.
			pgp := "GRUB's OpenPGP key is kept"
			if !pgpKept {
				pgp = "GRUB's OpenPGP key was made, as there was none"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "keys written to %s, replacing the old ones: a running bootforge serve goes on with the old ones "+
				"(menu signatures, the boot TLS certificate) until it is restarted; a reload (SIGHUP) does not read keys; %s\n", dir, pgp)
			return nil
		},
	}
	cmd.Flags().BoolVar(&o.Force, "force", false, "replace existing keys")
	cmd.Flags().StringVar(&o.CACertFile, "ca-cert", "", "your own CA certificate (PEM); with --ca-key")
	cmd.Flags().StringVar(&o.CAKeyFile, "ca-key", "", "your own CA's private key (PEM, unencrypted)")
	catalogFlags(cmd)
	return cmd
}

func newKeysShowCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show [--json]",
		Short: "Print the certificates' subjects, validity and SHA-256 fingerprints",
		Long: `Print the CA's and the signing certificate's subjects, validity and
SHA-256 fingerprints, and any problem that has serve and image build refuse
them with signing on: a signing certificate not issued by ca.pem, not
holding signing.key's key, without codeSigning, or a certificate that has
expired or is not valid yet. With a problem it exits non-zero.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, g)
			if err != nil {
				return err
			}
			info, err := keys.Show(cfg.KeysDir())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(info); err != nil {
					return err
				}
			} else {
				for _, c := range info {
					fmt.Fprintf(out, "%s\n  subject  %s\n  issuer   %s\n  valid    %s .. %s\n  sha256   %s\n",
						c.File, c.Subject, c.Issuer, c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339), c.SHA256)
					if c.KeyFile != "" {
						fmt.Fprintf(out, "  key      %s (mode %s)\n", c.KeyFile, c.KeyMode)
					}
					if c.Problem != "" {
						fmt.Fprintf(out, "  PROBLEM  %s\n", c.Problem)
					}
				}
			}
			// Keys that serve and image build refuse fail here too, so
			// that a script can tell.
			var problems []string
			for _, c := range info {
				if c.Problem != "" {
					problems = append(problems, c.Problem)
				}
			}
			if len(problems) > 0 {
				return fmt.Errorf("the keys cannot sign: %s (serve and image build refuse them with signing on)", strings.Join(problems, "; "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	catalogFlags(cmd)
	return cmd
}

func newKeysExportEDK2Cmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export-edk2 FILE",
		Short: "Write the CA as the EFI signature list that UEFI HTTPS boot trusts",
		Long: `Write the signing CA's certificate (ca.pem) as an EFI_SIGNATURE_LIST
(EFI_CERT_X509_GUID, DER): the list of CAs that EDK2's HTTPS boot trusts.
The boot TLS listener (http.tls.boot) has a certificate issued by this CA.

  QEMU/OVMF:  -fw_cfg name=etc/edk2/https/cacerts,file=FILE
  real UEFI:  enroll ca.pem in the firmware setup's TLS
              Auth Configuration, where it has one`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd, g)
			if err != nil {
				return err
			}
			b, err := keys.EDK2CACerts(cfg.KeysDir())
			if err != nil {
				return err
			}
			if err := os.WriteFile(args[0], b, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: the CA of %s as an EFI signature list (%d bytes)\n", args[0], cfg.KeysDir(), len(b))
			return nil
		},
	}
	catalogFlags(cmd)
	return cmd
}

// loadSigner is the signer of serve and image build, with signing on.
// The keys package's error says what to do (keys init, or keys init
// --force for a refused signer); this adds nothing to it but the cause.
func loadSigner(cfg config.Config) (*keys.Signer, error) {
	s, err := keys.LoadSigner(cfg.KeysDir())
	if err != nil {
		return nil, fmt.Errorf("signing is on: %w", err)
	}
	return s, nil
}

// checkSigning is the checklist's signing item: with signing on, the
// signer must load as serve and image build load it (issued by ca.pem,
// valid now, codeSigning).
func checkSigning(cfg config.Config) check.Item {
	if !cfg.Signing.Enabled {
		return check.Skip("signing", "signing.enabled is false")
	}
	s, err := keys.LoadSigner(cfg.KeysDir())
	if err != nil {
		return check.Fail("signing", "%v", err)
	}
	c := s.Certificate()
	return check.Pass("signing", "%s, issued by %s, valid until %s", c.Subject, filepath.Join(cfg.KeysDir(), keys.CACert),
		c.NotAfter.UTC().Format(time.RFC3339))
}
