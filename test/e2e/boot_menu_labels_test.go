package e2e

// Entry names that differ only in characters a menu label cannot hold:
// each entry keeps a label of its own, and a menu where two would still
// be one is refused when it is loaded.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBootMenuNonASCIINames: a menu whose entries are named диск ("Erase
// disk and install", first) and сеть ("Rescue shell", the default) boots
// сеть when iPXE's timeout picks the default. When both names were the
// label ____, iPXE's goto found the first :____ and ran the erase entry.
func TestBootMenuNonASCIINames(t *testing.T) {
	t.Parallel()
	const mac = "52:54:00:b7:00:01"
	entry := func(name, label, mark string) string {
		return "          - {name: " + name + ", label: \"" + label + "\", kind: linux, kernel: vmlinuz, initrds: [initrd.gz], cmdline: \"" +
			bmCmdline + " bfentry=" + mark + "\"}\n"
	}
	m := newMenuLab(t, menuLabOptions{
		Inventory: `inventory:
  default_profile: ru
  profiles:
    - name: ru
      menu:
        default: сеть
        timeout: 1s
        entries:
` + entry("диск", "Erase disk and install", "erase") + entry("сеть", "Rescue shell", "rescue"),
	})
	vm, cmdline := m.boot(t, "bios", mac)
	requireTokens(t, vm, cmdline, "bfentry=rescue")
	if strings.Contains(cmdline, "bfentry=erase") {
		t.Errorf("the default of the menu booted the erase entry: %q", cmdline)
	}
}

// TestMenuLabelClashRefused: two entries whose labels would be equal
// (a.b is written a_2eb) are refused at load, naming both, the label and
// the profile's file and line.
func TestMenuLabelClashRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bootforge.yaml")
	profile := filepath.Join(dir, "profiles", "lab.yaml")
	for name, text := range map[string]string{
		cfg: "root: " + filepath.Join(dir, "root") + "\ndata_dir: " + filepath.Join(dir, "data") + "\ninventory:\n  default_profile: lab\n",
		profile: `# a.b and a_2eb
name: lab
menu:
  entries:
    - {name: a.b, kind: local}
    - {name: a_2eb, kind: shell}
`,
		filepath.Join(dir, "root", ".keep"): "",
	} {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, code := clRun(t, 30*time.Second, nil, "--config", cfg, "menu", "render", "--mac", "52:54:00:b7:00:02")
	if code == 0 {
		t.Fatalf("a menu with two entries labelled a_2eb rendered:\n%s", out)
	}
	for _, want := range []string{profile + ":2: ", `profile "lab"`, `"a.b"`, `"a_2eb"`, `label "a_2eb"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal lacks %s:\n%s", want, out)
		}
	}
}
