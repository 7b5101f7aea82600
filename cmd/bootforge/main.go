// Command bootforge is a network-boot service: DHCP, TFTP and HTTP(S) for
// PXE, iPXE and UEFI HTTP boot, with generated boot menus and an image
// workflow, in one static binary.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"bootforge/internal/config"
	"bootforge/internal/logline"
	"bootforge/internal/store"
)

// version is set at build time with -ldflags "-X main.version=$(git
// describe)"; without it, the version comes from the module's build info.
var version = ""

// systemConfig is the config the service and every command use when
// neither --config nor BOOTFORGE_CONFIG names one and it exists, so that
// the CLI finds the store of a server started without flags.
const systemConfig = "/etc/bootforge/bootforge.yaml"

func main() {
	g := &globalFlags{}
	if err := newRootCmd(g).Execute(); err != nil {
		printFatal(os.Stderr, g, err)
		os.Exit(1)
	}
}

// printFatal prints the error that ends a command in the log's format, so
// that a collector reading JSON sees why the service did not start.
func printFatal(w io.Writer, g *globalFlags, err error) {
	if g.jsonLog() {
		slog.New(slog.NewJSONHandler(w, nil)).Error("bootforge failed", "err", err.Error())
	} else {
		fmt.Fprintln(w, "bootforge:", err)
	}
}

// globalFlags are the flags every command shares.
type globalFlags struct {
	config    string
	logFormat string
	logLevel  string
	verbose   bool
	// format is the log.format of the config the command loaded (file,
	// environment and flags), empty until one loaded.
	format string
}

// jsonLog reports whether the command's stderr is JSON: by the config it
// loaded, else (no config loaded, or none that loads) by --log-format
// and BOOTFORGE_LOG_FORMAT.
func (g *globalFlags) jsonLog() bool {
	if g.format != "" {
		return g.format == "json"
	}
	if g.logFormat != "" {
		return g.logFormat == "json"
	}
	return os.Getenv("BOOTFORGE_LOG_FORMAT") == "json"
}

// warn prints a command's warning to w (stderr): "bootforge: warning:
// MSG", or, when the log format is JSON, one JSON log line, as serve's
// warnings are.
func (g *globalFlags) warn(w io.Writer, msg string) {
	if g.jsonLog() {
		slog.New(slog.NewJSONHandler(w, nil)).Warn(msg)
		return
	}
	fmt.Fprintf(w, "bootforge: warning: %s\n", msg)
}

// stderr is where a command prints its notes (-v, log's "older events"):
// stderr itself, or, when the log format is JSON, a writer that sends
// each line as one JSON log line.
func (g *globalFlags) stderr(cmd *cobra.Command) io.Writer {
	if g.jsonLog() {
		return jsonLines{slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))}
	}
	return cmd.ErrOrStderr()
}

// jsonLines logs each line written to it as the message of a JSON log
// line (level INFO). Each Write holds whole lines, as fmt.Fprintf's do.
type jsonLines struct{ log *slog.Logger }

func (j jsonLines) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		j.log.Info(line)
	}
	return len(p), nil
}

// defaultConfig is the config file a command uses without --config:
// BOOTFORGE_CONFIG, else systemConfig if it exists, else none (the
// embedded defaults).
func defaultConfig() string {
	if p := os.Getenv("BOOTFORGE_CONFIG"); p != "" {
		return p
	}
	if _, err := os.Stat(systemConfig); err == nil {
		return systemConfig
	}
	return ""
}

// storePath is the embedded store's file, absolute so that two
// processes can compare theirs.
func storePath(cfg config.Config) string {
	loc, err := store.Locate(cfg.Store.URL, cfg.DataDir)
	if err != nil {
		return cfg.Store.URL
	}
	if loc.Postgres {
		return store.Redact(loc.URL)
	}
	p := loc.Path
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// describe says, with -v, which config and store a command works on.
func (g *globalFlags) describe(cmd *cobra.Command, cfg config.Config) {
	if !g.verbose {
		return
	}
	src := "the embedded defaults"
	if g.config != "" {
		src = g.config
	}
	fmt.Fprintf(g.stderr(cmd), "config: %s\nstore:  %s\nroot:   %s\n", src, storePath(cfg), cfg.Root)
}

func newRootCmd(g *globalFlags) *cobra.Command {
	root := &cobra.Command{
		Use:           "bootforge",
		Short:         "Network-boot service: DHCP, TFTP, HTTP(S), boot menus and images in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&g.config, "config", "c", defaultConfig(), "YAML config file (env BOOTFORGE_CONFIG, else "+systemConfig+" if it exists, else the embedded defaults)")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "say which config and store the command uses")
	pf.StringVar(&g.logFormat, "log-format", "", "log format: text or json (env BOOTFORGE_LOG_FORMAT)")
	pf.StringVar(&g.logLevel, "log-level", "", "log level: debug, info, warn, error (env BOOTFORGE_LOG_LEVEL)")
	root.AddCommand(newServeCmd(g), newInitCmd(), newHostCmd(g), newProfileCmd(g), newMenuCmd(g), newLogCmd(g), newTokenCmd(g), newCheckCmd(g), newImageCmd(g), newKeysCmd(g), newGrubCmd(g), newDHCPCmd(g), newMirrorCmd(g), newStoreCmd(g), newVersionCmd(), newManCmd(root))
	// The completion command is otherwise added by Execute, after the
	// walks below, and would take "completion bsh" with exit status 0.
	root.InitDefaultCompletionCmd()
	refuseUnknownHelpTopics(root)
	refuseUnknownSubcommands(root)
	explainArgErrors(root)
	root.SetFlagErrorFunc(explainFlagError)
	return root
}

// explainArgErrors makes a wrong number of arguments name the command
// and its usage line. Cobra's own messages name neither ("accepts 1
// arg(s), received 2"), and its NoArgs calls an argument an "unknown
// command", which a leaf command such as version has none of.
func explainArgErrors(c *cobra.Command) {
	for _, sub := range c.Commands() {
		explainArgErrors(sub)
	}
	valid := c.Args
	if valid == nil || !c.Runnable() {
		return
	}
	c.SuggestionsMinimumDistance = 2 // as refuseUnknownSubcommands does
	c.Args = func(cmd *cobra.Command, args []string) error {
		err := valid(cmd, args)
		if err == nil {
			return nil
		}
		why := err.Error()
		if len(args) > 0 && valid(cmd, nil) == nil && valid(cmd, args[:1]) != nil {
			why = fmt.Sprintf("takes no arguments, got %q", args[0])
			// check has subcommands: the argument is most likely one
			// of them, mistyped.
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				why += "; did you mean " + strings.Join(s, ", ") + "?"
			}
		}
		return fmt.Errorf("%s: %s; usage: %s", commandName(cmd), why, cmd.UseLine())
	}
}

// explainFlagError names the command whose flag was wrong and says where
// its flags are listed. A value that does not parse is said in words:
// pflag passes on the parser's own error (`invalid argument "x" for
// "--before" flag: strconv.ParseInt: parsing "x": invalid syntax`).
func explainFlagError(cmd *cobra.Command, err error) error {
	if cause := errors.Unwrap(err); cause != nil {
		var num *strconv.NumError
		why := ""
		switch {
		case errors.As(cause, &num) && num.Func == "ParseBool":
			why = "not true or false"
		case errors.As(cause, &num) && errors.Is(num.Err, strconv.ErrRange):
			why = "out of range"
		case errors.As(cause, &num):
			why = "not a whole number"
		case strings.HasPrefix(cause.Error(), "time: "): // time.ParseDuration
			why = "not a duration like 30s, 15m, 2h or 1h30m"
		}
		if why != "" {
			err = fmt.Errorf("%s: %s", strings.TrimSuffix(err.Error(), ": "+cause.Error()), why)
		}
	}
	return fmt.Errorf("%s: %w (see %s --help)", commandName(cmd), err, cmd.CommandPath())
}

// commandName is cmd's path without the "bootforge" that every error
// line already starts with.
func commandName(cmd *cobra.Command) string {
	if !cmd.HasParent() {
		return cmd.Name()
	}
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

// refuseUnknownSubcommands makes every command group (host, image, ...)
// fail on a subcommand it does not have. Cobra only checks that at the
// root; a group without a Run of its own prints its help and exits 0, so
// a typo in a script would pass unnoticed.
func refuseUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if !c.HasSubCommands() || c.Runnable() || !c.HasParent() {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.SuggestionsMinimumDistance = 2
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		return unknownCommand(cmd, args[0])
	}
}

// unknownCommand is the error for a subcommand name that cmd does not
// have, with the names it is close to.
func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, ", ") + "?"
	}
	return fmt.Errorf("%s (see %s --help)", msg, cmd.CommandPath())
}

// refuseUnknownHelpTopics makes "help nosuch" fail as "nosuch" does.
// Cobra's help command prints the usage for a command it cannot find,
// and exits 0, and for "help host nosuch" prints host's help.
func refuseUnknownHelpTopics(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	help, _, err := root.Find([]string{"help"})
	if err != nil || help == root {
		return
	}
	help.RunE = func(_ *cobra.Command, args []string) error {
		cmd, rest, err := root.Find(args)
		if err != nil || len(rest) > 0 {
			parent, name := root, args[0]
			if err == nil {
				parent, name = cmd, rest[0]
			}
			return unknownCommand(parent, name)
		}
		return cmd.Help()
	}
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit and the Go version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			v := buildVersion()
			fmt.Fprintf(cmd.OutOrStdout(), "bootforge %s\ncommit    %s\ngo        %s\n", v.version, v.commit, v.goVersion)
		},
	}
}

// versionInfo is what a binary knows about how it was built.
type versionInfo struct{ version, commit, goVersion string }

// buildVersion reads the -X version and the build info that the go
// command records: the module version (a pseudo-version from the VCS when
// built in a checkout) and the commit, marked "-dirty" when the tree had
// uncommitted changes.
func buildVersion() versionInfo {
	v := versionInfo{version: version, commit: "unknown", goVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		if v.version == "" {
			v.version = "unknown"
		}
		return v
	}
	if v.version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v.version = info.Main.Version
	}
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.commit = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty {
		v.commit += "-dirty"
	}
	if v.version == "" {
		v.version = "devel"
	}
	return v
}

// newLogger makes the service log: text, or JSON for log collectors.
func newLogger(w io.Writer, c config.Log, level *slog.LevelVar) *slog.Logger {
	level.Set(parseLevel(c.Level))
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(logline.NewText(w, level)) // slog's text handler, and a faster way for per-request lines
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

// warnOtherStore asks the server on cfg's API address which store it
// uses, and warns when that is not the store the command just opened: the
// classic first-hour trap is a token or host written to a store that the
// running server never reads. No answer is no warning (no server, or one
// that does not say); -v tells.
func warnOtherStore(cmd *cobra.Command, g *globalFlags, cfg config.Config) {
	if !cfg.API.Enabled {
		return
	}
	base, client, err := apiClient(cfg, time.Second)
	if err != nil {
		if g.verbose {
			fmt.Fprintf(g.stderr(cmd), "server: %v\n", err)
		}
		return
	}
	url := base + "/readyz"
	resp, err := client.Get(url)
	if err != nil {
		if g.verbose {
			fmt.Fprintf(g.stderr(cmd), "server: none answers at %s\n", url)
		}
		return
	}
	defer resp.Body.Close()
	var ready struct {
		Store string `json:"store"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&ready); err != nil || ready.Store == "" {
		return
	}
	mine := storePath(cfg)
	if ready.Store != mine {
		g.warn(cmd.ErrOrStderr(), fmt.Sprintf("the server at %s uses the store %s, but this command opened %s: give it the server's config (--config or BOOTFORGE_CONFIG)", url, ready.Store, mine))
	} else if g.verbose {
		fmt.Fprintf(g.stderr(cmd), "server: %s uses this store\n", url)
	}
}
