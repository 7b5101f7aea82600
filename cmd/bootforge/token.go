package main

import (
	"fmt"

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
	create.Flags().StringVar(&name, "name", "", "a note on who uses it")
	cmd.AddCommand(create)
	return cmd
}
