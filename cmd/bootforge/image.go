package main

import "github.com/spf13/cobra"

// newImageCmd groups the image workflow: import sources, build versions,
// list, promote and roll back, verify, and test a version in a VM. Each
// subcommand lives in its own image_*.go file.
func newImageCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Import sources, build, version, verify and test boot images"}
	cmd.AddCommand(
		newImageImportCmd(g), newImageBuildCmd(g),
		newImageListCmd(g), newImageShowCmd(g), newImagePromoteCmd(g), newImageRollbackCmd(g),
		newImageGCCmd(g), newImageVerifyCmd(g), newImageTestCmd(g),
	)
	return cmd
}
