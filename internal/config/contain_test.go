package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mk := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mk(os.MkdirAll(filepath.Join(base, "a", "b", "c"), 0o755))
	mk(os.Symlink(filepath.Join(base, "a", "b", "c"), filepath.Join(base, "deep")))
	mk(os.Symlink("a", filepath.Join(base, "rel")))
	for _, tt := range []struct{ in, want string }{
		{base + "/rel/b", base + "/a/b"},
		{base + "/deep/..", base + "/a/b"}, // the kernel's "..": parent of the target
		{base + "/deep/../x/y", base + "/a/b/x/y"},
		{base + "/rel/new/dir", base + "/a/new/dir"}, // not there yet
		{base + "/a/./b", base + "/a/b"},
	} {
		if got := Resolve(tt.in); got != tt.want {
			t.Errorf("Resolve(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestContained(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(base, "r"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("r", filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(".", filepath.Join(base, "up")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, root, data, signing, tlsKey string
		key                               string // the refused key, "" for none
		says                              string // what the message says besides root's path
	}{
		{"siblings", base + "/r", base + "/st", "", "", "", ""},
		{"root inside data_dir (default layout)", base + "/st/root", base + "/st", "", "", "", ""},
		{"data_dir through a link into root", base + "/r", base + "/link/st", "", "", "data_dir", "must not be inside root"},
		{"data_dir is root through a link", base + "/r", base + "/link", "", "", "data_dir", `"` + base + `/link" must not be root`},
		{"root through a link above data_dir", base + "/up", base + "/st", "", "", "data_dir", "must not be inside root"},
		{"signing.dir through a link into root", base + "/r", base + "/st", base + "/link/keys", "", "signing.dir",
			`"` + base + `/link/keys" must not be inside root`},
		{"tls key inside root", base + "/r", base + "/st", "", base + "/link/tls.key", "http.tls.key", "must not be inside root"},
		// Paths data_dir implies are named with data_dir's own value:
		// the message quotes what the key says, and no path is said to
		// lie inside itself.
		{"root is data_dir's tls directory", base + "/st/tls", base + "/st", "", "", "data_dir",
			`"` + base + `/st/tls" must not be root "` + base + `/st/tls": the TLS key that data_dir "` + base + `/st" keeps there`},
		{"root is the keys directory", base + "/st/keys", base + "/st", "", "", "data_dir",
			`"` + base + `/st/keys" must not be root "` + base + `/st/keys": the private signing keys that data_dir "` + base + `/st" keeps there`},
		{"root is data_dir", base + "/st", base + "/st", "", "", "data_dir", `"` + base + `/st" must not be root`},
		{"lexical, not there yet", base + "/x", base + "/x/st", "", "", "data_dir", "must not be inside root"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Root, c.DataDir, c.Signing.Dir = tt.root, tt.data, tt.signing
			c.HTTP.TLS.Key = tt.tlsKey
			err := c.Contained()
			if tt.key == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var es Errors
			if !errors.As(err, &es) || len(es) != 1 || es[0].Key != tt.key {
				t.Fatalf("want one %s error, got %v", tt.key, err)
			}
			for _, want := range []string{tt.root, tt.says} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q does not name %q", err, want)
				}
			}
		})
	}
}
