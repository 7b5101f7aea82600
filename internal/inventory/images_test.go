package inventory

import (
	"errors"
	"strings"
	"testing"

	"bootforge/internal/config"
	"bootforge/internal/image"
)

// fakeImages is a catalog in memory.
type fakeImages struct {
	versions  []image.Version
	manifests map[string]*image.Manifest
}

func (f *fakeImages) Versions() ([]image.Version, error) { return f.versions, nil }

func (f *fakeImages) Manifest(id image.ID) (*image.Manifest, error) {
	if m, ok := f.manifests[id.String()]; ok {
		return m, nil
	}
	return nil, errors.New("no manifest")
}

func testImages(t *testing.T) *fakeImages {
	t.Helper()
	f := &fakeImages{manifests: map[string]*image.Manifest{}}
	add := func(id string, state image.State, b image.Boot) {
		i, err := image.ParseID(id)
		if err != nil {
			t.Fatal(err)
		}
		f.versions = append(f.versions, image.Version{ID: i, State: state})
		f.manifests[id] = &image.Manifest{Name: i.Name, Version: i.Version.String(), Boot: b}
	}
	linux := func(marker string) image.Boot {
		return image.Boot{Kind: "linux", Kernel: "vmlinuz", Initrds: []string{"initrd.gz"}, Cmdline: "bfmarker=" + marker}
	}
	add("deb@1.0.0", image.Retired, linux("one"))
	add("deb@1.1.0", image.Active, linux("two"))
	add("deb@2.0.0", image.Staged, linux("three"))
	add("pe@1.0.0", image.Active, image.Boot{Kind: "wimboot", Wimboot: "wimboot", BCD: "BCD", BootSDI: "boot.sdi", BootWIM: "boot.wim"})
	return f
}

func TestImageEntries(t *testing.T) {
	tests := []struct {
		entry   string
		want    string // a part of the entry as resolved, or of the error
		refused bool
	}{
		{`{name: e, image: deb, cmdline: "quiet"}`, "images/deb/1.1.0/vmlinuz [images/deb/1.1.0/initrd.gz] bfmarker=two quiet deb@1.1.0", false},
		{`{name: e, image: "deb@^1.0"}`, "images/deb/1.1.0/vmlinuz", false},
		{`{name: e, image: "deb@~1.0.0"}`, "bfmarker=one deb@1.0.0", false},
		{`{name: e, image: "deb@>=2"}`, "bfmarker=three deb@2.0.0", false},
		{`{name: e, image: pe}`, "wimboot [] images/pe/1.0.0/wimboot images/pe/1.0.0/BCD", false},
		{`{name: e, image: "deb@^3"}`, `profile "p": entry "e": image "deb@^3": no built version matches; built: 1.0.0 (retired), 1.1.0 (active), 2.0.0 (staged)`, true},
		{`{name: e, image: other}`, `entry "e": image "other": no version of other is built`, true},
		{`{name: e, image: deb, kernel: vmlinuz}`, "drop them from the entry", true},
		{`{name: e, kind: wimboot, image: deb}`, "boots as kind linux, not wimboot", true},
		{`{name: e, image: "Deb"}`, "lower-case", true},
	}
	for _, tt := range tests {
		t.Run(tt.entry, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "profiles/p.yaml", "name: p\nmenu:\n  entries:\n    - "+tt.entry+"\n")
			inv, err := Load(Source{Dir: dir, Images: testImages(t), Config: configWithDefault("p")})
			if tt.refused {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want one with %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p, _ := inv.Profile("p")
			e := p.Menu.Entries[0]
			got := strings.Join([]string{e.Kind, e.Kernel, "[" + strings.Join(e.Initrds, " ") + "]", e.Wimboot, e.BCD, e.Cmdline, e.ImageVersion}, " ")
			if !strings.Contains(strings.Join(strings.Fields(got), " "), tt.want) {
				t.Fatalf("entry %q, want %q", got, tt.want)
			}
		})
	}
}

func TestImageEntriesWithoutCatalog(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "profiles/p.yaml", "name: p\nmenu:\n  entries:\n    - {name: e, image: deb}\n")
	if _, err := Load(Source{Dir: dir}); err == nil || !strings.Contains(err.Error(), "no image catalog") {
		t.Fatalf("err = %v", err)
	}
}

func configWithDefault(name string) config.Inventory { return config.Inventory{DefaultProfile: name} }
