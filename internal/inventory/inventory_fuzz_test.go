package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bootforge/internal/config"
)

// FuzzLoad writes arbitrary text as a profile file and a host file and
// loads the inventory from them: it never panics, a refusal names the
// file at fault, and an accepted inventory has named profiles and hosts.
func FuzzLoad(f *testing.F) {
	f.Add(goodProfile, "- {name: pc1, macs: [\"52:54:00:00:00:01\"], labels: [x], profile: lab}\n")
	f.Add("- {name: a, priority: 1, menu: {entries: [{name: x, kind: shell}]}}\n- {name: b, priority: 2}\n",
		"- {name: pc2, uuid: 4C4C4544-0000-1000-8000-000000000001}\n")
	f.Add("name: lab\nmatch: [{manufacturer: \"Dell*\", product: \"OptiPlex 70?0\"}, {subnet: 198.51.100.0/24, labels: [kiosk]}]\n"+
		"menu: {title: Lab, default: install, timeout: 5s, entries: [{name: install, kind: linux, kernel: images/debian/vmlinuz, "+
		"initrds: [images/debian/initrd.gz], cmdline: \"console=ttyS0 hostname={hostname}\"}, {name: live, kind: iso, iso: iso/live.iso}, "+
		"{name: other, kind: chain, url: \"http://192.0.2.9/menu.ipxe\"}, {name: disk, kind: local}]}\n"+
		"variants: {efi-x64: {default: disk, entries: [{name: disk, kind: local}]}}\n",
		"name: pc1\nmacs: [\"52:54:00:12:34:56\"]\nlabels: [kiosk]\nprofile: lab\nsecure_boot: true\n")
	f.Add("name: lab\nmatch: [{mac: \"zz\"}]\n", "- {name: \"a/b\", macs: [\"\"]}\n")
	f.Add("- {name: a}\n- {name: a}\n", "- {name: h, macs: [\"52:54:00:00:00:01\"]}\n- {name: h2, macs: [\"52:54:00:00:00:01\"]}\n")
	dir := f.TempDir()
	for _, sub := range []string{"profiles", "hosts"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	profileFile := filepath.Join(dir, "profiles", "p.yaml")
	hostFile := filepath.Join(dir, "hosts", "h.yaml")
	f.Fuzz(func(t *testing.T, profile, host string) {
		if err := os.WriteFile(profileFile, []byte(profile), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(hostFile, []byte(host), 0o644); err != nil {
			t.Fatal(err)
		}
		inv, err := Load(Source{Dir: dir, Config: config.Inventory{}})
		if err != nil {
			if msg := err.Error(); !strings.Contains(msg, profileFile) && !strings.Contains(msg, hostFile) {
				t.Fatalf("refusal names neither file: %v", err)
			}
			return
		}
		for _, p := range inv.Profiles() {
			if p.Name == "" {
				t.Fatalf("profile without a name: %+v", p)
			}
		}
		for _, h := range inv.Hosts() {
			if h.Name == "" {
				t.Fatalf("host without a name: %+v", h)
			}
		}
	})
}
