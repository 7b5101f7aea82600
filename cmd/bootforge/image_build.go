package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"path"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"bootforge/internal/boot"
	"bootforge/internal/build"
	"bootforge/internal/image"
	"bootforge/internal/menu"
)

func newImageBuildCmd(g *globalFlags) *cobra.Command {
	var (
		s      build.Spec
		recipe string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "build NAME@VERSION --template linux|winpe --from SRC [template flags] | --recipe FILE",
		Short: "Build a version of an image from a template and its sources",
		Long: `Build NAME@VERSION into <root>/images/NAME/VERSION/ with its manifest.json.

SRC is a blob digest (sha256:<hex> or 64 hex digits, from bootforge image
import), a file, a directory or an ISO (by its .iso extension or its ISO
9660 volume descriptor). Every source is recorded in the manifest with its
size and SHA-256; every PE file (kernel, wimboot, EFI binary) with its
Authenticode status.

linux: --kernel and --initrd (repeatable) are paths inside SRC when it is an
ISO or a directory (ISO 9660 names without Rock Ridge compare ignoring
case), else files; --from may then be left out. They keep their base names.

winpe: bootmgr, BCD (boot/bcd or BCD), boot.sdi (boot/boot.sdi) and boot.wim
(sources/boot.wim) are found in SRC ignoring case, plus --wimboot FILE. With
--drivers DIR (added to boot.wim as X:\drivers) or --startnet FILE (replaces
\Windows\System32\startnet.cmd), boot.wim is updated with wimlib-imagex.

--recipe FILE builds from a YAML recipe instead (images/*.yaml beside the
config): the same fields, plus the SHA-256 of every source.

A version is written whole or not at all, and never rewritten.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec := s
			if recipe != "" {
				var set []string
				for _, name := range []string{"template", "from", "kernel", "initrd", "cmdline", "wimboot", "drivers", "startnet"} {
					if cmd.Flags().Changed(name) {
						set = append(set, "--"+name)
					}
				}
				if len(args) > 0 {
					set = append([]string{args[0]}, set...)
				}
				if len(set) > 0 {
					return fmt.Errorf("--recipe builds what the recipe says; drop %s", strings.Join(set, ", "))
				}
				var err error
				if spec, err = build.ReadRecipe(recipe); err != nil {
					return err
				}
			} else {
				if len(args) == 0 {
					return errors.New("name the version to build, like debian-12@1.0.0, or give --recipe FILE")
				}
				id, err := image.ParseID(args[0])
				if err != nil {
					return err
				}
				spec.ID = id
			}
			cfg, err := loadConfig(cmd, g)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			b := &build.Builder{Root: cfg.Root, DataDir: cfg.DataDir}
			if cfg.Signing.Enabled {
				s, err := loadSigner(cfg)
				if err != nil {
					return err
				}
				b.Signer = s
			}
			res, err := b.Build(ctx, spec)
			if err != nil {
				return err
			}
			if b := res.Manifest.Boot; b.Kind == boot.KindLinux {
				// Checked with the paths menus will write for it.
				dir := spec.ID.Dir()
				e := boot.Entry{Kind: b.Kind, Kernel: path.Join(dir, b.Kernel), Cmdline: b.Cmdline}
				for _, i := range b.Initrds {
					e.Initrds = append(e.Initrds, path.Join(dir, i))
				}
				if err := menu.CheckEntry(e); err != nil {
					g.warn(cmd.ErrOrStderr(), fmt.Sprintf("%s: cmdline: %v; that loader's menus leave an entry booting this image out", spec.ID, err))
				}
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res.Manifest)
			}
			printBuilt(cmd.OutOrStdout(), res)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&s.Template, "template", "", "linux or winpe")
	f.StringVar(&s.From, "from", "", "source: a blob digest, a file, a directory or an ISO")
	f.StringVar(&s.Kernel, "kernel", "", "linux: the kernel (inside --from if it is an ISO or directory)")
	f.StringArrayVar(&s.Initrds, "initrd", nil, "linux: an initrd, in boot order (repeatable)")
	f.StringVar(&s.Cmdline, "cmdline", "", "linux: the kernel command line")
	f.StringVar(&s.Wimboot, "wimboot", "", "winpe: the wimboot file (not in Debian's archive; from ipxe.org/wimboot)")
	f.StringVar(&s.Drivers, "drivers", "", `winpe: a directory of drivers added to boot.wim as X:\drivers`)
	f.StringVar(&s.Startnet, "startnet", "", `winpe: a file that replaces \Windows\System32\startnet.cmd in boot.wim`)
	f.StringVar(&recipe, "recipe", "", "build from a YAML recipe instead of NAME@VERSION and flags")
	f.BoolVar(&asJSON, "json", false, "print the manifest as JSON")
	cmd.RegisterFlagCompletionFunc("template", cobra.FixedCompletions([]string{image.TemplateLinux, image.TemplateWinPE}, cobra.ShellCompDirectiveNoFileComp))
	// Read by loadConfig, as for serve.
	f.String("root", "", "served directory; the version goes to ROOT/images/NAME/VERSION")
	f.String("data-dir", "", "state directory holding the blob store")
	return cmd
}

// printBuilt shows the version, its directory and its manifest.
func printBuilt(out io.Writer, res *build.Result) {
	m := res.Manifest
	fmt.Fprintf(out, "built %s@%s (%s) in %s\n", m.Name, m.Version, m.Template, res.Dir)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tSIZE\tSHA-256")
	for _, s := range m.Sources {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", s.Origin, s.Size, s.SHA256)
	}
	tw.Flush()
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tSIZE\tSHA-256\tAUTHENTICODE")
	for _, f := range m.Files {
		sig := "-"
		switch a := f.Authenticode; {
		case a == nil:
		case a.Signed && a.Signer != "":
			sig = "signed by " + a.Signer
		case a.Signed:
			sig = "signed"
		default:
			sig = "unsigned"
		}
		if a := f.Authenticode; a != nil && a.Signed && a.Digest != "" && !a.DigestMatches {
			sig += ", digest MISMATCH"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", f.Path, f.Size, f.SHA256, sig)
	}
	tw.Flush()
	b := m.Boot
	switch b.Kind {
	case "linux":
		fmt.Fprintf(out, "boot: linux kernel=%s initrds=%s cmdline=%q\n", b.Kernel, strings.Join(b.Initrds, ","), b.Cmdline)
	default:
		fmt.Fprintf(out, "boot: %s wimboot=%s bootmgr=%s bcd=%s boot.sdi=%s boot.wim=%s\n", b.Kind, b.Wimboot, b.Bootmgr, b.BCD, b.BootSDI, b.BootWIM)
	}
}
