package config

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Private lists the paths whose content must never be served: data_dir
// and, named on their own because root may lie inside data_dir, its TLS
// directory and the store (as serve.go names them), the signing keys
// directory and a configured TLS key. The serving guard (bootfs) refuses
// files under them.
func (c Config) Private() []string {
	var ps []string
	for _, p := range c.private() {
		ps = append(ps, p.path)
	}
	return ps
}

// StorePath is the embedded store's file in data_dir.
func (c Config) StorePath() string { return filepath.Join(c.DataDir, "bootforge.db") }

// privatePath is a path that must not be served, and the key that sets
// it: its value, or, when in is set, the directory in (data_dir) that the
// path lies in by default.
type privatePath struct{ key, path, what, in string }

func (c Config) private() []privatePath {
	ps := []privatePath{
		{"data_dir", c.DataDir, "its keys and store", ""},
		{"data_dir", c.TLSDir(), "the TLS key", c.DataDir},
		{"data_dir", c.StorePath(), "the store", c.DataDir},
		{"signing.dir", c.KeysDir(), "the private signing keys", ""},
	}
	if c.Signing.Dir == "" {
		ps[3].key, ps[3].in = "data_dir", c.DataDir
	}
	if c.HTTP.TLS.Key != "" {
		ps = append(ps, privatePath{"http.tls.key", c.HTTP.TLS.Key, "the TLS private key", ""})
	}
	return ps
}

// Contained checks that no private path is root or inside it, on paths
// with every symlink resolved: "data_dir: /srv/link/st" with link -> r
// lies inside "root: /srv/r" although the names say otherwise. Root may
// lie inside data_dir (the default layout: nothing served climbs out of
// root), but not be data_dir, its tls or keys directory, or hold the
// store. Serve runs this at start (through Validate) and again on reload
// for the config it is about to run, since the file system can change
// between the two.
func (c Config) Contained() error {
	if es := c.containment(); len(es) > 0 {
		return Errors(es)
	}
	return nil
}

func (c Config) containment() []*Error {
	if c.Root == "" || c.DataDir == "" {
		return nil
	}
	var errs []*Error
	seen := map[string]bool{}
	root, rootReal := absPath(c.Root), Resolve(c.Root)
	for _, p := range c.private() {
		if p.path == "" || seen[p.key] {
			continue
		}
		abs, real := absPath(p.path), Resolve(p.path)
		if !(abs == root || within(abs, root) || real == rootReal || within(real, rootReal)) {
			continue
		}
		seen[p.key] = true
		where := fmt.Sprintf("inside root %q", c.Root)
		if abs == root || real == rootReal {
			where = fmt.Sprintf("root %q", c.Root)
		}
		// A path the key's value only implies (data_dir/keys) is named
		// with the value, so the message quotes what the key says.
		what := p.what
		if p.in != "" {
			what = fmt.Sprintf("%s that %s %q keeps there", p.what, p.key, p.in)
		}
		msg := fmt.Sprintf("%q must not be %s: %s would be served", p.path, where, what)
		if real != abs || rootReal != root {
			msg += fmt.Sprintf(" (with symlinks resolved, %s is %s and root is %s)", p.path, real, rootReal)
		}
		errs = append(errs, &Error{Key: p.key, Msg: msg})
	}
	return errs
}

func absPath(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	return a
}

// Resolve returns p made absolute with every symlink resolved, component
// by component as the kernel does ("link/.." is the parent of link's
// target, not "."). The part of p that does not exist yet is appended as
// written. Where a component cannot be read, the rest is taken as written.
func Resolve(p string) string {
	if !filepath.IsAbs(p) {
		wd, err := os.Getwd()
		if err != nil {
			return filepath.Clean(p)
		}
		p = wd + string(filepath.Separator) + p
	}
	parts := strings.Split(p, string(filepath.Separator))
	done := string(filepath.Separator)
	for i, part := range parts {
		switch part {
		case "", ".":
			continue
		case "..":
			done = filepath.Dir(done)
			continue
		}
		next := filepath.Join(done, part)
		st, err := os.Lstat(next)
		if err == nil && st.Mode()&fs.ModeSymlink != 0 {
			next, err = filepath.EvalSymlinks(next)
		}
		if err != nil { // missing (or unreadable): the rest as written
			return filepath.Join(append([]string{done}, parts[i:]...)...)
		}
		done = next
	}
	return done
}
