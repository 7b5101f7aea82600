package config

import (
	"os"
	"strings"
	"testing"
)

// readmeYAML returns the YAML examples of the README, as seeds: what an
// operator starts from.
func readmeYAML(tb testing.TB) []string {
	tb.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, block := range strings.Split(string(b), "```yaml\n")[1:] {
		text, _, ok := strings.Cut(block, "```")
		if ok {
			out = append(out, text)
		}
	}
	if len(out) == 0 {
		tb.Fatal("no YAML examples in README.md")
	}
	return out
}

// FuzzParse feeds arbitrary text to the config parser: it never panics, an
// error names the file, and a config it accepts validates again and
// differs from itself in nothing.
func FuzzParse(f *testing.F) {
	for _, s := range readmeYAML(f) {
		f.Add(s)
	}
	f.Add(siblingPaths + "tftp:\n  max_window_size: 8\n  timeout: 2s\n")
	f.Add("tftp:\n  max_windw_size: 8\n")
	f.Add("dhcp:\n  mode: authoritative\n  interfaces: [eth1]\n  subnets:\n    - subnet: 192.0.2.0/24\n      pools: [\"192.0.2.100-192.0.2.200\"]\n      router: 192.0.2.1\n")
	f.Add("a: &a [*a]\n")
	f.Add("inventory:\n  profiles:\n    - &p {name: x, menu: {entries: [{name: e, kind: local}]}}\n    - *p\n")
	f.Add("---\n---\n")
	f.Fuzz(func(t *testing.T, text string) {
		cfg, err := Parse("bootforge.yaml", []byte(text))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "bootforge.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted config fails validation again: %v", err)
		}
		if c := Changed(cfg, cfg); len(c) != 0 {
			t.Fatalf("config differs from itself in %v", c)
		}
	})
}

// FuzzDecodeItems feeds arbitrary text to the inventory file decoder, for
// both item types: it never panics, an error names the file, and every
// item carries a line.
func FuzzDecodeItems(f *testing.F) {
	for _, s := range readmeYAML(f) {
		f.Add(s)
	}
	f.Add("- {name: pc1, macs: [\"52:54:00:00:00:01\"], labels: [x]}\n- {name: pc2, uuid: 4C4C4544-0000-1000-8000-000000000001}\n")
	f.Add("name: a\nmenu: {entries: [{name: x, kind: shell}]}\nvariants: {efi-x64: {default: x}}\n")
	f.Add("- &h {name: a}\n- *h\n")
	f.Fuzz(func(t *testing.T, text string) {
		check := func(lines []int, err error) {
			if err != nil {
				if !strings.HasPrefix(err.Error(), "hosts/x.yaml") {
					t.Fatalf("error does not name the file: %v", err)
				}
				return
			}
			for i, l := range lines {
				if l <= 0 {
					t.Fatalf("item %d without a line", i)
				}
			}
		}
		hosts, err := DecodeItems[Host]("hosts/x.yaml", []byte(text))
		check(itemLines(hosts), err)
		profiles, err := DecodeItems[Profile]("hosts/x.yaml", []byte(text))
		check(itemLines(profiles), err)
	})
}

func itemLines[T any](items []Item[T]) []int {
	var out []int
	for _, it := range items {
		out = append(out, it.Line)
	}
	return out
}
