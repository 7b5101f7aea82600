// Command bootforge is a network-boot service: DHCP, TFTP and HTTP(S) for
// PXE, iPXE and UEFI HTTP boot, with generated boot menus and an image
// workflow, in one static binary.
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"bootforge/internal/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	g := &globalFlags{}
	if err := newRootCmd(g).Execute(); err != nil {
		// A fatal error goes out in the log's format, so that a collector
		// reading JSON sees why the service did not start.
		if g.logFormat == "json" || (g.logFormat == "" && os.Getenv("BOOTFORGE_LOG_FORMAT") == "json") {
			slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("bootforge failed", "err", err.Error())
		} else {
			fmt.Fprintln(os.Stderr, "bootforge:", err)
		}
		os.Exit(1)
	}
}

// globalFlags are the flags every command shares.
type globalFlags struct {
	config    string
	logFormat string
	logLevel  string
}

func newRootCmd(g *globalFlags) *cobra.Command {
	root := &cobra.Command{
		Use:           "bootforge",
		Short:         "Network-boot service: DHCP, TFTP, HTTP(S), boot menus and images in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&g.config, "config", "c", os.Getenv("BOOTFORGE_CONFIG"), "YAML config file (env BOOTFORGE_CONFIG); without one, the embedded defaults")
	pf.StringVar(&g.logFormat, "log-format", "", "log format: text or json (env BOOTFORGE_LOG_FORMAT)")
	pf.StringVar(&g.logLevel, "log-level", "", "log level: debug, info, warn, error (env BOOTFORGE_LOG_LEVEL)")
	root.AddCommand(newServeCmd(g), newInitCmd(), newHostCmd(g), newProfileCmd(g), newMenuCmd(g), newLogCmd(g), newTokenCmd(g), newCheckCmd(g), newImageCmd(g), newKeysCmd(g), newGrubCmd(g), newVersionCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			v := version
			if info, ok := debug.ReadBuildInfo(); ok && v == "dev" {
				for _, s := range info.Settings {
					if s.Key == "vcs.revision" {
						v += "+" + s.Value
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "bootforge %s (%s)\n", v, info.GoVersion)
				return
			}
			fmt.Fprintf(cmd.OutOrStdout(), "bootforge %s\n", v)
		},
	}
}

// newLogger makes the service log: text, or JSON for log collectors.
func newLogger(w io.Writer, c config.Log, level *slog.LevelVar) *slog.Logger {
	level.Set(parseLevel(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
