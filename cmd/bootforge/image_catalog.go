package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"bootforge/internal/catalog"
	"bootforge/internal/check"
	"bootforge/internal/config"
	"bootforge/internal/image"
	"bootforge/internal/inventory"
	"bootforge/internal/keys"
	"bootforge/internal/store"
)

// The version commands: list, show, promote, rollback, gc and verify.
// They work beside a running server: promote, rollback and gc bump the
// store's inventory generation, so the server re-resolves the menus that
// name images within two seconds.

// catalogFlags gives a command serve's --root and --data-dir, so that it
// finds the versions and the store where the server does.
func catalogFlags(cmd *cobra.Command) {
	for _, f := range serveFlags {
		if f.key == "root" || f.key == "data_dir" {
			cmd.Flags().String(f.name, "", f.usage+" (env "+config.EnvName(f.key)+")")
		}
	}
}

// openCatalog loads the config and opens the catalog over its root, store
// and data dir. Changes are boot-log events by the current user.
func openCatalog(cmd *cobra.Command, g *globalFlags) (*catalog.Catalog, store.Store, error) {
	cfg, db, err := openConfiguredStore(cmd, g)
	if err != nil {
		return nil, nil, err
	}
	return newCatalog(cfg, db), db, nil
}

func newCatalog(cfg config.Config, db store.Store) *catalog.Catalog {
	c := catalog.New(cfg.Root, cfg.DataDir, db)
	setVerifier(c, cfg)
	if cfg.Audit.Enabled {
		c.Events = offlineChanges()
	}
	c.Protocol, c.Who = "cli", "cli"
	if u, err := user.Current(); err == nil && u.Username != "" {
		c.Who = u.Username
	}
	return c
}

// versionView is one version as list and show print it.
type versionView struct {
	Name     string      `json:"name"`
	Version  string      `json:"version"`
	State    image.State `json:"state"`
	Built    time.Time   `json:"built"`
	Template string      `json:"template"`
	Size     int64       `json:"size"`
	Files    int         `json:"files"`
}

func newImageListCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "List built image versions: state (staged, active, retired), build time, template, size",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, db, err := openCatalog(cmd, g)
			if err != nil {
				return err
			}
			defer db.Close()
			vs, err := c.Versions()
			if err != nil {
				return err
			}
			warnBroken(cmd, c, "")
			views := make([]versionView, 0, len(vs))
			for _, v := range vs {
				m, err := c.Manifest(v.ID)
				if err != nil {
					return err
				}
				views = append(views, versionView{Name: v.ID.Name, Version: v.ID.Version.String(), State: v.State,
					Built: v.Built, Template: m.Template, Size: catalog.Size(m), Files: len(m.Files)})
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, views)
			}
			if len(views) == 0 {
				fmt.Fprintln(out, "no images built")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tSTATE\tBUILT\tTEMPLATE\tSIZE")
			for _, v := range views {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.Name, v.Version, v.State, builtTime(v.Built), orDash(v.Template), humanBytes(v.Size))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	catalogFlags(cmd)
	return cmd
}

func newImageShowCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show NAME[@VERSION] [--json]",
		Short: "Show a version's manifest: sources, files and digests, Authenticode, how it boots",
		Long: `Show a version's manifest and state. NAME alone shows the active
version, or, if none is active, the newest. --json prints the manifest
as stored, with its "state" added.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, db, err := openCatalog(cmd, g)
			if err != nil {
				return err
			}
			defer db.Close()
			v, err := c.Find(args[0])
			if err != nil {
				return err
			}
			m, err := c.Manifest(v.ID)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, struct {
					*image.Manifest
					State image.State `json:"state"`
				}{m, v.State})
			}
			printManifest(out, v, m)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the manifest as JSON, with its state")
	catalogFlags(cmd)
	return cmd
}

func printManifest(w io.Writer, v image.Version, m *image.Manifest) {
	fmt.Fprintf(w, "%s (%s)\n", v.ID, v.State)
	fmt.Fprintf(w, "  template  %s\n", orDash(m.Template))
	fmt.Fprintf(w, "  built     %s\n", builtTime(m.Built))
	fmt.Fprintf(w, "  size      %s in %s\n", humanBytes(catalog.Size(m)), countOf(len(m.Files), "file"))
	fmt.Fprintf(w, "  directory %s/\n", v.ID.Dir())
	b := m.Boot
	boot := []string{orDash(b.Kind)}
	for _, kv := range [][2]string{{"kernel", b.Kernel}, {"initrds", strings.Join(b.Initrds, " ")}, {"wimboot", b.Wimboot},
		{"bootmgr", b.Bootmgr}, {"bcd", b.BCD}, {"boot.sdi", b.BootSDI}, {"boot.wim", b.BootWIM}} {
		if kv[1] != "" {
			boot = append(boot, kv[0]+" "+kv[1])
		}
	}
	if b.Cmdline != "" {
		boot = append(boot, fmt.Sprintf("cmdline %q", b.Cmdline))
	}
	fmt.Fprintf(w, "  boot      %s\n", strings.Join(boot, ", "))
	fmt.Fprintln(w, "sources:")
	if len(m.Sources) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, s := range m.Sources {
		fmt.Fprintf(w, "  %s  %d bytes  sha256 %s\n", s.Origin, s.Size, s.SHA256)
	}
	fmt.Fprintln(w, "files:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  PATH\tSIZE\tSHA256\tAUTHENTICODE")
	for _, f := range m.Files {
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\n", f.Path, f.Size, f.SHA256, signature(f.Authenticode))
	}
	tw.Flush()
}

// signature words a file's Authenticode status.
func signature(s *image.Signature) string {
	switch {
	case s == nil:
		return "-"
	case !s.Signed:
		return "unsigned"
	case !s.DigestMatches:
		return fmt.Sprintf("signed by %q, DIGEST MISMATCH", s.Signer)
	}
	return fmt.Sprintf("signed by %q", s.Signer)
}

func newImagePromoteCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "promote NAME@VERSION",
		Short: "Make a built version the active one of its name (the one active before is retired)",
		Long: `Make NAME@VERSION what menu entries that say "image: NAME" boot. The
version active before is retired, and is where "image rollback" goes
back to. Only the pointer in the store moves: no file is touched, so a
download in flight is never broken. A running server picks the change
up within two seconds. Each change is a boot-log event.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := image.ParseID(args[0])
			if err != nil {
				return err
			}
			c, db, err := openCatalog(cmd, g)
			if err != nil {
				return err
			}
			defer db.Close()
			mv, err := c.Promote(id)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case !mv.Changed:
				fmt.Fprintf(out, "%s is already active\n", mv.To)
			case mv.From != nil:
				fmt.Fprintf(out, "%s is active; %s is %s\n", mv.To, mv.From, mv.FromState)
			default:
				fmt.Fprintf(out, "%s is active\n", mv.To)
			}
			return nil
		},
	}
	catalogFlags(cmd)
	return cmd
}

func newImageRollbackCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollback NAME",
		Short: "Make the most recently retired version active again (the active one goes back to staged)",
		Long: `Undo the last promote of NAME: the most recently retired version becomes
active again, and the version rolled back from goes back to staged. A
second rollback steps further back, rather than returning to the
version just left; "image promote" can make any built version active.
A running server picks the change up within two seconds.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, db, err := openCatalog(cmd, g)
			if err != nil {
				return err
			}
			defer db.Close()
			mv, err := c.Rollback(args[0])
			if err != nil {
				return err
			}
			if mv.From != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "%s is active; %s is %s\n", mv.To, mv.From, mv.FromState)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%s is active\n", mv.To)
			}
			return nil
		},
	}
	catalogFlags(cmd)
	return cmd
}

func newImageGCCmd(g *globalFlags) *cobra.Command {
	var opts catalog.GCOptions
	cmd := &cobra.Command{
		Use:   "gc [--keep N] [--dry-run]",
		Short: "Remove retired versions past the newest N of each name, and blobs no manifest uses",
		Long: `Remove the retired versions of each name beyond the --keep most recently
retired (active and staged versions are never removed, nor a version a
menu entry resolves to), then the blobs in data_dir/blobs/sha256 that no
remaining manifest lists as a source (none while a version's manifest
cannot be read), and the work directories of builds, mirror syncs and
gc runs that were killed. Run it when no import or build is in progress:
a blob imported for a build that has not finished is not used yet.
--dry-run lists what would go and removes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, db, err := openConfiguredStore(cmd, g)
			if err != nil {
				return err
			}
			defer db.Close()
			c := newCatalog(cfg, db)
			inv, err := inventory.Load(inventorySource(cfg, g.config, db))
			if err != nil {
				return fmt.Errorf("gc: the inventory is refused, so which versions its menus boot is unknown; nothing removed:\n%w", err)
			}
			opts.InUse = inventory.ImagesInUse(inv)
			res, err := c.GC(opts)
			verb := "removed"
			if opts.DryRun {
				verb = "would remove"
			}
			out := cmd.OutOrStdout()
			for _, id := range res.Versions {
				fmt.Fprintf(out, "%s %s (%s/)\n", verb, id, id.Dir())
			}
			for _, b := range res.Blobs {
				fmt.Fprintf(out, "%s blob %s\n", verb, b)
			}
			for _, id := range res.InUse {
				fmt.Fprintf(out, "kept %s: a menu entry boots it\n", id)
			}
			for _, b := range res.Broken {
				fmt.Fprintf(cmd.ErrOrStderr(), "bootforge: warning: %s; no blob removed while it is there\n", printable(b.String()))
			}
			for _, v := range res.NotPutBack {
				fmt.Fprintf(cmd.ErrOrStderr(), "bootforge: warning: a gc that was killed had taken %s out of sight; not put back, so its work directory is removed as left by a killed gc\n", printable(v))
			}
			for _, d := range res.Stale {
				fmt.Fprintf(out, "%s %s (left by an import, build, mirror sync or gc that was killed)\n", verb, d)
			}
			for _, f := range res.Forgotten {
				fmt.Fprintf(out, "%s the state of %s (no longer on disk)\n", map[bool]string{true: "would forget", false: "forgot"}[opts.DryRun], f)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%s %s and %s, %s\n", verb, countOf(len(res.Versions), "version"), countOf(len(res.Blobs), "blob"), humanBytes(res.Bytes))
			return nil
		},
	}
	cmd.Flags().IntVar(&opts.Keep, "keep", 2, "retired versions to keep per name (the depth of rollback)")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "list what would be removed; remove nothing")
	catalogFlags(cmd)
	return cmd
}

func newImageVerifyCmd(g *globalFlags) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "verify [NAME[@VERSION] | --all]",
		Short: "Re-hash image files against their manifests; exit non-zero on any drift",
		Long: `Re-hash every file of the named versions and compare size and SHA-256
with the manifest; a file the manifest does not list is a drift too.
NAME@VERSION verifies that version, NAME every built version of NAME,
and --all (the default) every built version. Shows progress on a
terminal, prints each drift, and exits non-zero if there is any.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if all && len(args) > 0 {
				return errors.New("name a version or give --all, not both")
			}
			c, db, err := openCatalog(cmd, g)
			if err != nil {
				return err
			}
			defer db.Close()
			ids, err := verifyTargets(c, args)
			if err != nil {
				return err
			}
			// Version directories whose manifests cannot be used are drifts
			// too; NAME@VERSION of one is refused by verifyTargets.
			var broken []catalog.Broken
			if len(args) == 0 || !strings.Contains(args[0], "@") {
				all, err := c.Broken()
				if err != nil {
					return err
				}
				for _, b := range all {
					if len(args) == 0 || b.ID.Name == args[0] {
						broken = append(broken, b)
						ids = append(ids, b.ID)
					}
				}
			}
			if len(args) == 1 && len(ids) == 0 {
				return fmt.Errorf("no version of image %q is built", args[0])
			}
			out := cmd.OutOrStdout()
			if len(ids) == 0 {
				fmt.Fprintln(out, "no images built: nothing to verify")
				return nil
			}
			progress, done := verifyProgress(cmd.ErrOrStderr())
			drifts, err := c.Verify(progress, ids[:len(ids)-len(broken)]...)
			done()
			if err != nil {
				return err
			}
			for _, d := range drifts {
				fmt.Fprintln(out, "DRIFT", d)
			}
			for _, b := range broken {
				d := b.Drift()
				fmt.Fprintln(out, "DRIFT", printable(d.String()))
				drifts = append(drifts, d)
			}
			names := make([]string, len(ids))
			for i, id := range ids {
				names[i] = id.String()
			}
			if len(drifts) > 0 {
				return fmt.Errorf("%s from the manifests of %s", countOf(len(drifts), "drift"), strings.Join(names, ", "))
			}
			fmt.Fprintf(out, "%s verified against the manifests, no drift: %s\n", countOf(len(ids), "version"), strings.Join(names, ", "))
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "verify every built version (the default without arguments)")
	catalogFlags(cmd)
	return cmd
}

// verifyTargets resolves verify's argument: NAME@VERSION, NAME (all of
// its versions, possibly none) or nothing (all versions).
func verifyTargets(c *catalog.Catalog, args []string) ([]image.ID, error) {
	if len(args) == 1 && strings.Contains(args[0], "@") {
		v, err := c.Find(args[0])
		if err != nil {
			return nil, err
		}
		return []image.ID{v.ID}, nil
	}
	if len(args) == 1 {
		if err := image.CheckName(args[0]); err != nil {
			return nil, err
		}
	}
	vs, err := c.Versions()
	if err != nil {
		return nil, err
	}
	var ids []image.ID
	for _, v := range vs {
		if len(args) == 0 || v.ID.Name == args[0] {
			ids = append(ids, v.ID)
		}
	}
	return ids, nil
}

// verifyProgress shows a progress bar on w if it is a terminal. done
// removes it.
func verifyProgress(w io.Writer) (catalog.Progress, func()) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, func() {}
	}
	var bar *progressbar.ProgressBar
	return func(done, total int64) {
			if bar == nil {
				bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription("verifying"),
					progressbar.OptionShowBytes(true), progressbar.OptionUseIECUnits(true), progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionClearOnFinish())
			}
			bar.Set64(done)
		}, func() {
			if bar != nil {
				bar.Finish()
			}
		}
}

// checkImages is the checklist's images item, with the config's root,
// data dir and store.
func checkImages(cfg config.Config) check.Item {
	db, err := openCheckStore(cfg)
	if errors.Is(err, errNoStore) {
		return check.Pass("images", "%v: no image version is active", err)
	}
	if err != nil {
		return check.Fail("images", "%v", err)
	}
	defer db.Close()
	c := catalog.New(cfg.Root, cfg.DataDir, db)
	if err := setVerifier(c, cfg); err != nil {
		return check.Fail("images", "%v", err)
	}
	return check.Images(c)
}

// setVerifier has c check manifest signatures when signing is on. Without
// the CA every version drifts, so verification still fails.
func setVerifier(c *catalog.Catalog, cfg config.Config) error {
	if !cfg.Signing.Enabled {
		return nil
	}
	v, err := keys.LoadVerifier(cfg.KeysDir())
	if err != nil {
		c.Verifier = failVerifier{err}
		return fmt.Errorf("signing is on: %w", err)
	}
	c.Verifier = v
	return nil
}

type failVerifier struct{ err error }

func (f failVerifier) Verify([]byte, []byte) error { return f.err }

func countOf(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func builtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// humanBytes writes a size in IEC units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// warnBroken names on stderr the version directories of name (all if
// empty) whose manifests cannot be used: they are left out of every list,
// menu and index, so without a word they would just be missing.
func warnBroken(cmd *cobra.Command, c *catalog.Catalog, name string) {
	broken, err := c.Broken()
	if err != nil {
		return
	}
	for _, b := range broken {
		if name == "" || b.ID.Name == name {
			fmt.Fprintf(cmd.ErrOrStderr(), "bootforge: warning: %s; left out (rebuild it, or remove its directory)\n", printable(b.String()))
		}
	}
}
