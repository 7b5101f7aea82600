package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"bootforge/internal/boot"
	"bootforge/internal/catalog"
	"bootforge/internal/check"
	"bootforge/internal/config"
	"bootforge/internal/keys"
	"bootforge/internal/mirror"
)

func newMirrorCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mirror",
		Short: "Copy a primary bootforge's active image versions to this server",
	}
	var ca string
	sync := &cobra.Command{
		Use:   "sync URL",
		Short: "Pull the active image versions of the primary at URL (its file server, e.g. http://192.0.2.1:8080)",
		Long: `sync reads the primary's index of active image versions
(URL/bootforge/images.json), then each version's manifest (with signing on,
or --ca, its CMS signature must verify), then each file, checked against the
manifest's size and SHA-256 before it is put in place. A file that does not
match is refused by name and nothing of its version is installed; the command
then exits non-zero. An interrupted file is resumed with a Range request by
the next sync. Installed versions are built versions of this server's catalog
(images/NAME/VERSION/) and become active, as they are on the primary.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMirrorSync(cmd, g, args[0], ca)
		},
	}
	catalogFlags(sync)
	sync.Flags().StringVar(&ca, "ca", "", "PEM CA certificate the manifests' signatures must chain to (default with signing on: the keys directory's ca.pem)")
	cmd.AddCommand(sync)
	return cmd
}

func runMirrorSync(cmd *cobra.Command, g *globalFlags, base, ca string) error {
	if err := config.CheckMirrorURL(base); err != nil {
		return err
	}
	cfg, db, err := openConfiguredStore(cmd, g)
	if err != nil {
		return err
	}
	defer db.Close()
	c := newCatalog(cfg, db)
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := &mirror.Syncer{Base: base, Root: cfg.Root, Catalog: c,
		Log: func(format string, args ...any) { fmt.Fprintf(cmd.ErrOrStderr(), "mirror: "+format+"\n", args...) }}
	switch {
	case ca != "":
		v, err := verifierFromFile(ca)
		if err != nil {
			return err
		}
		s.Verifier = v
	case cfg.Signing.Enabled:
		v, err := keys.LoadVerifier(cfg.KeysDir())
		if err != nil {
			return fmt.Errorf("signing is on: %w", err)
		}
		s.Verifier = v
	}
	stderr := cmd.ErrOrStderr()
	var bar *progressbar.ProgressBar
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		s.Progress = func(name string, size, have int64) io.Writer {
			if bar != nil {
				bar.Finish()
			}
			bar = newImportBar(f, filepath.Base(name), size)
			bar.Set64(have)
			return bar
		}
	}
	res, err := s.Sync(ctx)
	if bar != nil {
		bar.Clear()
	}
	out := cmd.OutOrStdout()
	for _, id := range res.Installed {
		fmt.Fprintf(out, "%s installed\n", id)
	}
	for _, id := range res.Present {
		fmt.Fprintf(out, "%s already here\n", id)
	}
	for _, mv := range res.Moves {
		if mv.Changed {
			fmt.Fprintf(out, "%s active\n", mv.To)
		}
	}
	if err != nil {
		return fmt.Errorf("mirror sync from %s: %w", base, noPrimary(base, err))
	}
	return nil
}

// noPrimary says in words, as check does, that the primary at base could
// not be reached at all: its index, the first request, is the request
// that failed (err is its *url.Error itself, not one wrapped in a
// version's error). Any other error is returned as it is.
func noPrimary(base string, err error) error {
	ue, ok := err.(*url.Error)
	if !ok {
		return err
	}
	u, perr := url.Parse(base)
	if perr != nil {
		return err
	}
	key, port := "http.listen", "80"
	if u.Scheme == "https" {
		key, port = "http.tls.listen", "443"
	}
	if u.Port() != "" {
		port = u.Port()
	}
	advice := fmt.Sprintf("is bootforge serve running on the primary, with %s at %s?", key, net.JoinHostPort(u.Hostname(), port))
	if why, ok := noAnswer(ue.Err, 0, advice); ok {
		return fmt.Errorf("GET %s: %s", ue.URL, why)
	}
	return err
}

// verifierFromFile checks signatures against the CA certificate in file.
func verifierFromFile(file string) (*keys.Verifier, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	// keys reads a CA as ca.pem in a keys directory.
	dir, err := os.MkdirTemp("", "bootforge-ca-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, keys.CACert), data, 0o600); err != nil {
		return nil, err
	}
	v, err := keys.LoadVerifier(dir)
	if err != nil {
		return nil, fmt.Errorf("--ca %s: %w", file, err)
	}
	return v, nil
}

// startMirrors serves the index of active versions that mirrors sync
// from and, with mirrors configured, checks them in the background (at
// start, every minute, and on SIGHUP through s.mirrors.Kick): menus of
// their clients and, with redirect, the file server use only verified
// ones. Both are of the root being served at the time (s.root).
func (s *services) startMirrors(ctx context.Context, cfg config.Config, sightings boot.Sightings) {
	s.menus.Index = func() ([]byte, error) {
		r := s.root.Load()
		return mirror.IndexJSON(r.images, r.dir.Path())
	}
	if len(cfg.Mirrors) == 0 {
		return
	}
	active := func() (mirror.Index, error) {
		r := s.root.Load()
		return mirror.Active(r.images, r.dir.Path())
	}
	s.mirrors = mirror.NewChecker(cfg.Mirrors, active, s.log)
	s.menus.Mirrors = s.mirrors.Mirrors
	s.metrics.WatchMirrors(func() map[string]bool {
		out := map[string]bool{}
		for _, st := range s.mirrors.Statuses() {
			out[st.URL] = st.OK
		}
		return out
	})
	redirect := false
	for _, m := range cfg.Mirrors {
		redirect = redirect || m.Redirect
	}
	if redirect && s.files != nil {
		s.files.SetRedirect(func(client netip.Addr, path string) string {
			var relay netip.Addr
			if c, ok := sightings.ByIP(client); ok {
				relay = c.Relay
			}
			return mirror.Redirect(s.mirrors.Mirrors(), client, relay, path)
		})
	}
	go s.mirrors.Run(ctx, time.Minute)
}

// checkMirrors is the checklist's mirrors item.
func checkMirrors(cfg config.Config) check.Item {
	if len(cfg.Mirrors) == 0 {
		return check.Skip("mirrors", "no mirrors configured")
	}
	db, err := openCheckStore(cfg) // check changes nothing: no store made or migrated
	switch {
	case errors.Is(err, errNoStore):
		return check.Pass("mirrors", "%v: no image version is active, so none to mirror", err)
	case err != nil:
		return check.Fail("mirrors", "%v", err)
	}
	defer db.Close()
	return check.Mirrors(catalog.New(cfg.Root, cfg.DataDir, db), cfg.Root, cfg.Mirrors)
}
