package config

import (
	"bytes"
	"fmt"
	"reflect"

	"go.yaml.in/yaml/v3"
)

// Inventory says where hosts and profiles are declared. Besides the
// profiles and hosts in this file, every *.yaml file in Dir/profiles and
// Dir/hosts is read; each holds one item or a list of them. Changes to
// those files are picked up while the server runs.
type Inventory struct {
	// Dir holds profiles/ and hosts/. Empty: the config file's directory
	// (or data_dir without a config file).
	Dir string `yaml:"dir"`
	// DefaultProfile is used when no profile matches a client.
	DefaultProfile string    `yaml:"default_profile"`
	Profiles       []Profile `yaml:"profiles"`
	Hosts          []Host    `yaml:"hosts"`
}

// Profile is a hardware profile as written in YAML.
type Profile struct {
	Name       string          `yaml:"name"`
	Priority   int             `yaml:"priority"`
	Match      []Selector      `yaml:"match"`
	SecureBoot bool            `yaml:"secure_boot"`
	Signed     bool            `yaml:"signed"` // GRUB files with OpenPGP signatures (bootforge grub build)
	Menu       Menu            `yaml:"menu"`
	Variants   map[string]Menu `yaml:"variants"` // by firmware: bios, efi-x64, efi-arm64, ...
}

// Selector is one AND of conditions.
type Selector struct {
	MAC          string   `yaml:"mac"`
	OUI          string   `yaml:"oui"`
	UUID         string   `yaml:"uuid"`
	Arch         string   `yaml:"arch"`
	Vendor       string   `yaml:"vendor"`
	Manufacturer string   `yaml:"manufacturer"`
	Product      string   `yaml:"product"`
	Serial       string   `yaml:"serial"`
	Subnet       string   `yaml:"subnet"`
	CircuitID    string   `yaml:"circuit_id"` // relay agent option 82.1, a glob
	RemoteID     string   `yaml:"remote_id"`  // relay agent option 82.2, a glob
	Labels       []string `yaml:"labels"`
}

// Menu is a profile's menu.
type Menu struct {
	Title   string   `yaml:"title"`
	Default string   `yaml:"default"`
	Timeout Duration `yaml:"timeout"`
	Entries []Entry  `yaml:"entries"`
}

// Entry is one menu entry.
type Entry struct {
	Name    string   `yaml:"name"`
	Label   string   `yaml:"label"`
	Kind    string   `yaml:"kind"` // linux, wimboot, iso, chain, local, shell
	Kernel  string   `yaml:"kernel"`
	Initrds []string `yaml:"initrds"`
	Cmdline string   `yaml:"cmdline"`
	Wimboot string   `yaml:"wimboot"`
	Bootmgr string   `yaml:"bootmgr"`
	BCD     string   `yaml:"bcd"`
	BootSDI string   `yaml:"boot_sdi"`
	BootWIM string   `yaml:"boot_wim"`
	ISO     string   `yaml:"iso"`
	URL     string   `yaml:"url"`
	// Image boots a built image instead of kernel/initrds or the wimboot
	// files: NAME (its active version) or NAME@CONSTRAINT (the highest
	// built version that meets it, e.g. debian-12@^1.2).
	Image string `yaml:"image"`
}

// Host is an inventory record as written in YAML.
type Host struct {
	Name    string   `yaml:"name" json:"name"`
	MACs    []string `yaml:"macs" json:"macs"`
	UUID    string   `yaml:"uuid" json:"uuid"`
	Labels  []string `yaml:"labels" json:"labels"`
	Profile string   `yaml:"profile" json:"profile"`
	// SecureBoot sends this host down the shim → signed GRUB chain.
	SecureBoot bool `yaml:"secure_boot" json:"secure_boot"`
}

// Item is one decoded list item with the line it starts on.
type Item[T any] struct {
	Value T
	Line  int
}

// DecodeItems strictly decodes a file holding one T or a list of them.
// Errors name the file, line and key, like config errors.
func DecodeItems[T any](name string, data []byte) ([]Item[T], error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if err.Error() == "EOF" {
			return nil, nil
		}
		return nil, inFile(yamlError(err), name, nil)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	nodes := []*yaml.Node{root}
	if root.Kind == yaml.SequenceNode {
		nodes = root.Content
	}
	var out []Item[T]
	d := decoder{lines: map[string]int{}}
	for i, n := range nodes {
		var v T
		path := ""
		if root.Kind == yaml.SequenceNode {
			path = fmt.Sprintf("[%d]", i)
		}
		d.value(n, reflect.ValueOf(&v).Elem(), path)
		out = append(out, Item[T]{Value: v, Line: n.Line})
	}
	if len(d.errs) > 0 {
		return nil, inFile(d.errs, name, nil)
	}
	return out, nil
}
