package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"bootforge/internal/config"
)

// init writes a config that names its own directory, whatever that
// directory is called: a "#" in the name cut data_dir and root short in
// the YAML (the config then refused itself, or named another directory),
// a newline broke the file. The "Start with" line it prints is one the
// shell runs as it is.
func TestInitOddDirectoryNames(t *testing.T) {
	for _, name := range []string{"boot #1", "it's here", "two\nlines", "plain-dir"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), name)
			var out bytes.Buffer
			if err := initDir(&out, dir, "", false); err != nil {
				t.Fatal(err)
			}
			cfgFile := filepath.Join(dir, "bootforge.yaml")
			cfg, err := config.Load(cfgFile)
			if err != nil {
				t.Fatalf("the config init wrote does not load: %v", err)
			}
			if cfg.DataDir != dir || cfg.Root != filepath.Join(dir, "root") {
				t.Errorf("data_dir %q, root %q; want %q and its root", cfg.DataDir, cfg.Root, dir)
			}
			_, start, ok := strings.Cut(out.String(), "Start with:  ")
			if !ok {
				t.Fatalf("no Start with line:\n%s", out.String())
			}
			// The shell reads the command's last word as the config file.
			got, err := exec.Command("sh", "-c", `for a in `+strings.TrimSuffix(start, "\n")+`; do last=$a; done; printf %s "$last"`).Output()
			if err != nil || string(got) != cfgFile {
				t.Errorf("the shell reads %q from %q (%v), want %q", got, start, err, cfgFile)
			}
		})
	}
}
