package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"bootforge/internal/api"
)

func newTokenCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage API tokens"}
	var role, name string
	create := &cobra.Command{
		Use:   "create --role read|admin [--name N]",
		Short: "Make an API token; it is printed once and stored only as a hash",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, db, err := openConfiguredStore(cmd, g)
			if err != nil {
				return err
			}
			defer db.Close()
			tok, err := api.NewToken(db, role, name)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	create.Flags().StringVar(&role, "role", api.RoleRead, "read or admin")
	create.Flags().StringVar(&name, "name", "", "a note on who uses it (printable UTF-8, at most 64 bytes)")

	var asJSON bool
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "List API tokens: ID, role, name and creation time, never the secret",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, db, err := openConfiguredStore(cmd, g)
			if err != nil {
				return err
			}
			defer db.Close()
			toks, err := db.Tokens()
			if err != nil {
				return err
			}
			if asJSON {
				type view struct {
					ID      string    `json:"id"`
					Role    string    `json:"role"`
					Name    string    `json:"name"`
					Created time.Time `json:"created"`
				}
				out := []view{}
				for _, t := range toks {
					out = append(out, view{ID: t.ID, Role: t.Role, Name: t.Name, Created: t.Created.UTC()})
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tROLE\tNAME\tCREATED")
			for _, t := range toks {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", printable(t.ID), t.Role, printable(t.Name), t.Created.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API token by its ID (as token list shows it, or the whole token); it fails from the next request on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if parts := strings.Split(id, "_"); len(parts) == 3 && parts[0] == "bf" {
				id = parts[1] // the whole token: bf_<id>_<secret>
			}
			_, db, err := openConfiguredStore(cmd, g)
			if err != nil {
				return err
			}
			defer db.Close()
			if _, ok, err := db.TokenByID(id); err != nil {
				return err
			} else if !ok {
				return fmt.Errorf("no token with ID %q (bootforge token list shows them)", id)
			}
			if err := db.DeleteToken(id); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s revoked\n", id)
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
