package build

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"bootforge/internal/config"
	"bootforge/internal/image"
)

// Recipe is a build written down: images/*.yaml beside the config file,
// kept under the operator's version control. Its fields are the command's
// flags; its sources pin every input (other than a blob, which its digest
// names) to a SHA-256, and a source whose digest differs is refused.
// Relative paths are relative to the recipe's directory.
//
//	name: debian-12
//	version: 1.0.0
//	template: linux
//	from: ../isos/debian-12.5.0-amd64-netinst.iso
//	kernel: /install.amd/vmlinuz
//	initrds: [/install.amd/initrd.gz]
//	cmdline: auto=true priority=critical
//	sources:
//	  - origin: ../isos/debian-12.5.0-amd64-netinst.iso
//	    sha256: 0123...
type Recipe struct {
	Name     string         `yaml:"name"`
	Version  string         `yaml:"version"`
	Template string         `yaml:"template"`
	From     string         `yaml:"from"`
	Kernel   string         `yaml:"kernel"`
	Initrds  []string       `yaml:"initrds"`
	Cmdline  string         `yaml:"cmdline"`
	Wimboot  string         `yaml:"wimboot"`
	Drivers  string         `yaml:"drivers"`
	Startnet string         `yaml:"startnet"`
	Sources  []RecipeSource `yaml:"sources"`
}

// RecipeSource pins one input.
type RecipeSource struct {
	Origin string `yaml:"origin"` // as the recipe's other fields name it
	SHA256 string `yaml:"sha256"`
}

var hex64 = regexp.MustCompile(`^(?:sha256:)?[0-9a-fA-F]{64}$`)

// ReadRecipe reads a recipe file strictly (an unknown or repeated key is
// an error naming its line) and returns what it builds.
func ReadRecipe(file string) (Spec, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return Spec{}, err
	}
	items, err := config.DecodeItems[Recipe](file, data)
	if err != nil {
		return Spec{}, err
	}
	switch len(items) {
	case 0:
		return Spec{}, fmt.Errorf("recipe %s is empty", file)
	case 1:
	default:
		return Spec{}, fmt.Errorf("recipe %s holds %d recipes; write one per file", file, len(items))
	}
	rc := items[0].Value
	bad := func(format string, args ...any) (Spec, error) {
		return Spec{}, fmt.Errorf("recipe %s: %s", file, fmt.Sprintf(format, args...))
	}
	if rc.Name == "" || rc.Version == "" {
		return bad("name and version are required")
	}
	id, err := image.ParseID(rc.Name + "@" + rc.Version)
	if err != nil {
		return bad("%v", err)
	}
	s := Spec{ID: id, Template: rc.Template, From: rc.From,
		Kernel: rc.Kernel, Initrds: rc.Initrds, Cmdline: rc.Cmdline,
		Wimboot: rc.Wimboot, Drivers: rc.Drivers, Startnet: rc.Startnet,
		Pins: map[string]string{}, Dir: filepath.Dir(file)}
	for i, src := range rc.Sources {
		switch {
		case src.Origin == "":
			return bad("sources[%d]: origin is required", i)
		case !hex64.MatchString(src.SHA256):
			return bad("sources[%d] (%s): sha256 %q is not 64 hex digits", i, src.Origin, src.SHA256)
		}
		if _, dup := s.Pins[src.Origin]; dup {
			return bad("sources[%d]: %s is listed twice", i, src.Origin)
		}
		d, _ := blobDigest(src.SHA256)
		s.Pins[src.Origin] = d
	}
	if err := checkSpec(s); err != nil {
		return bad("%v", err)
	}
	return s, nil
}
