package inventory

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bootforge/internal/config"
)

func write(t *testing.T, dir, name, text string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

const goodProfile = `name: lab
priority: 10
match:
  - oui: "52:54:00"
    arch: efi-x64
menu:
  default: install
  timeout: 3s
  entries:
    - {name: install, kind: linux, kernel: vmlinuz, initrds: [initrd.gz]}
    - {name: disk, kind: local}
`

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "profiles/lab.yaml", goodProfile)
	write(t, dir, "profiles/more.yaml", "- {name: a, priority: 1, menu: {entries: [{name: x, kind: shell}]}}\n- {name: b, priority: 2}\n")
	write(t, dir, "hosts/site.yaml", "- {name: pc1, macs: [\"52:54:00:00:00:01\"], labels: [x]}\n- {name: pc2, uuid: 4C4C4544-0000-1000-8000-000000000001}\n")
	inv, err := Load(Source{Dir: dir, Config: config.Inventory{DefaultProfile: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(inv.Profiles()); n != 3 {
		t.Fatalf("%d profiles", n)
	}
	if n := len(inv.Hosts()); n != 2 {
		t.Fatalf("%d hosts", n)
	}
	p, _ := inv.Profile("lab")
	if p.Menu.Timeout != 3*time.Second || len(p.Match) != 1 || p.Source != filepath.Join(dir, "profiles/lab.yaml")+":1" {
		t.Fatalf("profile %+v", p)
	}
}

func TestLoadErrorsNameFileLineField(t *testing.T) {
	tests := []struct {
		name, file, text string
		want             []string
	}{
		{"bad selector", "profiles/p.yaml", "name: p\nmatch:\n  - mac: nope\n", []string{"p.yaml:1", "match[0]", `mac "nope"`}},
		{"unknown arch", "profiles/p.yaml", "name: p\nmatch:\n  - arch: efi-z80\n", []string{"p.yaml:1", "match[0]", "arch"}},
		{"unknown key", "profiles/p.yaml", "name: p\nmenu:\n  entires: []\n", []string{"p.yaml:3", "menu.entires", "unknown key", `did you mean "entries"`}},
		{"empty rule", "profiles/p.yaml", "name: p\nmatch:\n  - {}\n", []string{"p.yaml:1", "match[0]", "every client"}},
		{"bad kind", "profiles/p.yaml", "name: p\nmenu: {entries: [{name: e, kind: floppy}]}\n", []string{"p.yaml:1", `entry "e"`, "unknown kind"}},
		{"host without mac", "hosts/h.yaml", "- name: h\n", []string{"h.yaml:1", "macs"}},
		{"host bad mac", "hosts/h.yaml", "- {name: h, macs: [zz]}\n", []string{"h.yaml:1", `"zz"`}},
		{"host pins unknown profile", "hosts/h.yaml", "- {name: h, macs: [\"52:54:00:00:00:01\"], profile: ghost}\n", []string{"h.yaml:1", `"ghost" does not exist`}},
		{"bad YAML", "profiles/p.yaml", "name: [p\n", []string{"p.yaml:"}},
		{"rule UUID", "profiles/p.yaml", "name: p\nmatch:\n  - uuid: u-1\n", []string{"p.yaml:1", "match[0]", `"u-1" is not a UUID`}},
		{"rule label", "profiles/p.yaml", "name: p\nmatch:\n  - labels: [\"a b\"]\n", []string{"p.yaml:1", "match[0]", "single word"}},
		{"host UUID", "hosts/h.yaml", "- {name: h, uuid: 4c4c4544-0000}\n", []string{"h.yaml:1", "uuid", "not a UUID"}},
		{"host label", "hosts/h.yaml", "- {name: h, macs: [\"52:54:00:00:00:01\"], labels: [\"a\\tb\"]}\n", []string{"h.yaml:1", "labels[0]", "single word"}},
		{"bad subnet", "profiles/p.yaml", "name: p\nmatch:\n  - subnet: 2001:db8::/129\n", []string{"p.yaml:1", "match[0]", `subnet "2001:db8::/129" is not like 192.0.2.0/24 or 2001:db8:10::/48`}},
		{"v4-mapped subnet", "profiles/p.yaml", "name: p\nmatch:\n  - subnet: \"::ffff:192.0.2.0/120\"\n", []string{"p.yaml:1", "match[0]", "IPv4-mapped", "192.0.2.0/24"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, tt.file, tt.text)
			_, err := Load(Source{Dir: dir})
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	// A host name in two files, or in a file and the config, in any case:
	// refused, naming both places.
	dir0 := t.TempDir()
	write(t, dir0, "hosts/a.yaml", "- {name: srv, macs: [\"52:54:00:00:00:01\"]}\n")
	write(t, dir0, "hosts/b.yaml", "- {name: other, macs: [\"52:54:00:00:00:03\"]}\n- {name: srv, macs: [\"52:54:00:00:00:02\"]}\n")
	_, err := Load(Source{Dir: dir0})
	if err == nil || !strings.Contains(err.Error(), "b.yaml:2: host \"srv\": host \"srv\" (") || !strings.Contains(err.Error(), "a.yaml:1) has the same name") {
		t.Errorf("one host name in two files: %v, want a refusal naming both", err)
	}
	_, err = Load(Source{Dir: dir0, ConfigFile: "bootforge.yaml", Config: config.Inventory{Hosts: []config.Host{{Name: "OTHER", UUID: "4c4c4544-0000-1000-8000-000000000001"}}}})
	if err == nil || !strings.Contains(err.Error(), `b.yaml:1: host "other": host "OTHER" (bootforge.yaml: inventory.hosts[0]) has the same name`) {
		t.Errorf("a file host named as a config host but for case: %v, want a refusal naming both", err)
	}

	// Duplicate priorities across two files name both.
	dir := t.TempDir()
	write(t, dir, "profiles/a.yaml", "name: a\npriority: 5\n")
	write(t, dir, "profiles/b.yaml", "name: b\npriority: 5\n")
	_, err = Load(Source{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "priority 5") || !strings.Contains(err.Error(), ".yaml:1") {
		t.Fatalf("duplicate priority: %v", err)
	}
}

// A profile subnet rule takes an IPv6 prefix as it takes an IPv4 one.
func TestSubnetRuleIPv6(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "profiles/v6.yaml", "name: v6\nmatch:\n  - subnet: \"2001:db8:10::/48\"\n  - subnet: 192.0.2.0/24\n")
	inv, err := Load(Source{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := inv.Profile("v6")
	if len(p.Match) != 2 || p.Match[0].Subnet.String() != "2001:db8:10::/48" || p.Match[1].Subnet.String() != "192.0.2.0/24" {
		t.Fatalf("rules %+v", p.Match)
	}
}

func TestWatcherKeepsLastGood(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "profiles/lab.yaml", goodProfile)
	w, err := NewWatcher(Source{Dir: dir}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "profiles/broken.yaml", "name: broken\npriority: 10\n") // clashes with lab
	if err := w.reload(); err == nil {
		t.Fatal("broken inventory accepted")
	}
	if _, ok := w.Current().Profile("lab"); !ok {
		t.Fatal("last good inventory lost")
	}
	os.Remove(filepath.Join(dir, "profiles/broken.yaml"))
	write(t, dir, "profiles/new.yaml", "name: new\npriority: 3\n")
	stamp := w.fingerprint()
	if stamp == w.stamp {
		t.Fatal("fingerprint did not change")
	}
	if err := w.reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.Current().Profile("new"); !ok {
		t.Fatal("new profile not loaded")
	}
}
