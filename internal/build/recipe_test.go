package build

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeRecipe(t *testing.T, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "images", "r.yaml")
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRecipe(t *testing.T) {
	// The operator's repository: the config, images/*.yaml, and the
	// sources beside them, named relative to the recipe.
	repo := t.TempDir()
	os.MkdirAll(filepath.Join(repo, "isos"), 0o755)
	iso := filepath.Join(repo, "isos", "debian.iso")
	b, _ := os.ReadFile(makeISO(t, linuxSrc(t), true))
	os.WriteFile(iso, b, 0o644)
	digest := sum(t, iso)
	text := `name: debian-12
version: 1.2.0
template: linux
from: ../isos/debian.iso
kernel: /install.amd/vmlinuz
initrds: [/install.amd/initrd.gz]
cmdline: auto=true
sources:
  - origin: ../isos/debian.iso
    sha256: ` + digest + "\n"
	file := writeRecipe(t, repo, text)
	s, err := ReadRecipe(file)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID.String() != "debian-12@1.2.0" || s.Kernel != "/install.amd/vmlinuz" || !reflect.DeepEqual(s.Initrds, []string{"/install.amd/initrd.gz"}) ||
		s.Cmdline != "auto=true" || s.Dir != filepath.Dir(file) || s.Pins["../isos/debian.iso"] != digest {
		t.Fatalf("spec: %+v", s)
	}
	e := newEnv(t)
	res := e.mustBuild(t, s)
	if src := res.Manifest.Sources; len(src) != 1 || src[0].Origin != "../isos/debian.iso" || src[0].SHA256 != digest {
		t.Fatalf("sources: %+v", src)
	}

	// The same recipe from the command line's flags gives the same
	// manifest but for the origin as given.
	flags := Spec{ID: id(t, "debian-12@1.2.1"), Template: "linux", From: iso, Kernel: s.Kernel, Initrds: s.Initrds, Cmdline: s.Cmdline}
	m2 := e.mustBuild(t, flags).Manifest
	if !reflect.DeepEqual(m2.Files, res.Manifest.Files) || !reflect.DeepEqual(m2.Boot, res.Manifest.Boot) {
		t.Fatal("recipe and flags build different versions")
	}

	other := strings.Repeat("0", 64)
	for name, c := range map[string]struct{ text, want string }{
		"digest differs": {strings.Replace(text, digest, other, 1),
			`recipe: source "../isos/debian.iso" has SHA-256 ` + digest + ", the recipe expects " + other},
		"source not pinned": {strings.Replace(text, "origin: ../isos/debian.iso", "origin: debian.iso", 1),
			`recipe: source "../isos/debian.iso" has no sha256 under sources; add it (its SHA-256 is ` + digest},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := ReadRecipe(writeRecipe(t, repo, c.text))
			if err != nil {
				t.Fatal(err)
			}
			s.ID = id(t, "debian-12@9.0.0")
			_, err = e.build(t, s)
			mustContain(t, err, c.want)
			e.noLeftovers(t, "debian-12")
		})
	}
	// A pin the build never uses is a typo.
	s, _ = ReadRecipe(writeRecipe(t, repo, text+"  - origin: ../isos/other.iso\n    sha256: "+other+"\n"))
	s.ID = id(t, "debian-12@9.0.1")
	_, err = e.build(t, s)
	mustContain(t, err, "recipe: sources ../isos/other.iso are not used by the build")
}

func TestRecipeStrict(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct{ text, want string }{
		"unknown key":    {"name: a\nversion: 1.0.0\ntemplate: linux\nkernel: k\ninitrd: x\n", "r.yaml:5"},
		"key twice":      {"name: a\nname: b\nversion: 1.0.0\n", "key given twice"},
		"bad version":    {"name: a\nversion: \"1.0\"\ntemplate: linux\nkernel: k\n", `version "1.0" is not a semantic version`},
		"bad name":       {"name: A_B\nversion: 1.0.0\ntemplate: linux\nkernel: k\n", `image name "A_B"`},
		"no version":     {"name: a\ntemplate: linux\nkernel: k\n", "name and version are required"},
		"bad digest":     {"name: a\nversion: 1.0.0\ntemplate: linux\nkernel: k\nsources:\n  - origin: k\n    sha256: abc\n", `sources[0] (k): sha256 "abc" is not 64 hex digits`},
		"empty":          {"", "is empty"},
		"two recipes":    {"- name: a\n- name: b\n", "holds 2 recipes"},
		"wrong template": {"name: a\nversion: 1.0.0\ntemplate: linux\nkernel: k\nwimboot: w\n", "--wimboot belong to the other template"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ReadRecipe(writeRecipe(t, dir, c.text))
			mustContain(t, err, c.want)
		})
	}
}
