package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"bootforge/internal/api"
	"bootforge/internal/store"
)

func newStoreCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "store", Short: "Migrate the store's schema, or copy one store into another"}
	migrate := &cobra.Command{
		Use:   "migrate [URL]",
		Short: "Bring the store's schema up to this version (store.url, or URL: sqlite:PATH or postgres://...)",
		Long: "Bring the store's schema up to this version of bootforge. A PostgreSQL store is migrated only\n" +
			"by this command (serve refuses an un-migrated one); the embedded SQLite store also migrates\n" +
			"itself when it opens.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd, g)
			if err != nil {
				return err
			}
			u := cfg.Store.URL
			if len(args) == 1 {
				u = args[0]
			}
			loc, err := store.Locate(u, cfg.DataDir)
			if err != nil {
				return err
			}
			from, to, err := store.Migrate(loc)
			if err != nil {
				return err
			}
			name := loc.Path
			if loc.Postgres {
				name = store.Redact(loc.URL)
			}
			if from == to {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: schema version %d, up to date\n", name, to)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: schema version %d -> %d\n", name, from, to)
			}
			return nil
		},
	}

	var from, to string
	var force bool
	cp := &cobra.Command{
		Use:   "copy --from sqlite:PATH --to postgres://... [--force]",
		Short: "Copy hosts, one-shots, leases, tokens, image states and the boot log into another store",
		Long: "Copy every host (with its MACs), one-shot, lease, API token, image state and boot-log event\n" +
			"from one store into another, in one transaction on the target. The target's schema is migrated\n" +
			"first. A target that already holds any of them is refused unless --force, which replaces them.\n" +
			"A token whose name today's rule refuses (from an older store) stops the copy before anything\n" +
			"is written, naming it: revoke it in the source store and make a new one.\n" +
			"Stop the servers that write to either store first.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return fmt.Errorf("give both --from and --to (sqlite:PATH or postgres://...)")
			}
			src, err := store.Locate(from, "")
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			dst, err := store.Locate(to, "")
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			if src == dst {
				return fmt.Errorf("--from and --to name the same store")
			}
			// Opening a SQLite path makes the store: a mistyped --from
			// would copy an empty one, and with --force empty the target.
			if !src.Postgres {
				if st, err := os.Stat(src.Path); err != nil || st.Size() == 0 {
					return fmt.Errorf("--from: %s is not a store (missing or empty): give the path of the store to copy", src.Path)
				}
			}
			if _, _, err := store.Migrate(dst); err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			s, err := store.OpenAt(src, store.SyncFull)
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			defer s.Close()
			d, err := store.OpenAt(dst, store.SyncFull)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			defer d.Close()
			counts, err := store.Copy(s, d, force, api.CheckTokenName)
			if err != nil {
				return err
			}
			for _, c := range counts {
				fmt.Fprintf(cmd.OutOrStdout(), "%-12s %d\n", c.Table, c.Rows)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "copied %s to %s\n", s.Name(), d.Name())
			return nil
		},
	}
	cp.Flags().StringVar(&from, "from", "", "the store to copy: sqlite:PATH or postgres://...")
	cp.Flags().StringVar(&to, "to", "", "the store to fill: postgres://... or sqlite:PATH")
	cp.Flags().BoolVar(&force, "force", false, "replace what the target holds")
	cmd.AddCommand(migrate, cp)
	return cmd
}
