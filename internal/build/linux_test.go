package build

import (
	blobpkg "bootforge/internal/blob"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"bootforge/internal/image"
)

// linuxSrc is a directory like an installer ISO: a signed PE "kernel"
// (Debian's signed GRUB stands in), an initrd and a second one.
func linuxSrc(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	copyInto(t, src, "install.amd/vmlinuz", signedEFI)
	writeFiles(t, src, map[string]string{
		"install.amd/initrd.gz":      "initrd contents",
		"install.amd/extra.img":      "firmware",
		"install.amd/gtk/initrd.gz":  "another initrd.gz",
		"EFI/boot/bootx64.efi":       "not really",
		"isolinux/isolinux.cfg":      "x",
		"install.amd/xen/vmlinuz.gz": "y",
	})
	return src
}

func readManifest(t *testing.T, dir string) image.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, image.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	var m image.Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("\n  \"name\": ")) {
		t.Fatalf("manifest is not indented:\n%s", b)
	}
	return m
}

func TestBuildLinuxFromISO(t *testing.T) {
	for _, rr := range []bool{true, false} {
		t.Run(map[bool]string{true: "rock-ridge", false: "level-1"}[rr], func(t *testing.T) {
			src := linuxSrc(t)
			iso := makeISO(t, src, rr)
			e := newEnv(t)
			res := e.mustBuild(t, Spec{ID: id(t, "debian-12@1.0.0"), Template: image.TemplateLinux, From: iso,
				Kernel: "/install.amd/vmlinuz", Initrds: []string{"install.amd/initrd.gz", "/install.amd/extra.img"},
				Cmdline: "console=ttyS0 marker=one"})
			want := filepath.Join(e.root, "images", "debian-12", "1.0.0")
			if res.Dir != want {
				t.Fatalf("dir %s, want %s", res.Dir, want)
			}
			e.noLeftovers(t, "debian-12")
			des, _ := os.ReadDir(res.Dir)
			var names []string
			for _, de := range des {
				names = append(names, de.Name())
			}
			if got := strings.Join(names, " "); got != "extra.img initrd.gz manifest.json vmlinuz" {
				t.Fatalf("layout: %s", got)
			}
			if st, _ := os.Stat(res.Dir); st.Mode().Perm() != 0o755 {
				t.Fatalf("version dir mode %v", st.Mode())
			}
			m := readManifest(t, res.Dir)
			if !reflect.DeepEqual(m, res.Manifest) {
				t.Fatalf("manifest on disk differs from the result:\n%+v\n%+v", m, res.Manifest)
			}
			if m.Name != "debian-12" || m.Version != "1.0.0" || m.Template != "linux" || m.Built.IsZero() {
				t.Fatalf("header: %+v", m)
			}
			if len(m.Sources) != 1 || m.Sources[0].Origin != iso || m.Sources[0].SHA256 != sum(t, iso) {
				t.Fatalf("sources: %+v", m.Sources)
			}
			if st, _ := os.Stat(iso); m.Sources[0].Size != st.Size() {
				t.Fatalf("source size %d, want %d", m.Sources[0].Size, st.Size())
			}
			wantBoot := image.Boot{Kind: "linux", Kernel: "vmlinuz", Initrds: []string{"initrd.gz", "extra.img"}, Cmdline: "console=ttyS0 marker=one"}
			if !reflect.DeepEqual(m.Boot, wantBoot) {
				t.Fatalf("boot: %+v", m.Boot)
			}
			var paths []string
			for _, f := range m.Files {
				paths = append(paths, f.Path)
				full := filepath.Join(res.Dir, f.Path)
				st, _ := os.Stat(full)
				if f.Size != st.Size() || f.SHA256 != sum(t, full) {
					t.Fatalf("%s: manifest %d %s, file %d %s", f.Path, f.Size, f.SHA256, st.Size(), sum(t, full))
				}
				switch f.Path {
				case "vmlinuz":
					if f.SHA256 != sum(t, signedEFI) {
						t.Fatal("vmlinuz is not the kernel")
					}
					a := f.Authenticode
					if a == nil || !a.Signed || !strings.HasPrefix(a.Signer, "Debian Secure Boot Signer") {
						t.Fatalf("kernel signature: %+v", a)
					}
				default:
					if f.Authenticode != nil {
						t.Fatalf("%s is not PE but has a signature entry", f.Path)
					}
				}
			}
			if strings.Join(paths, " ") != "extra.img initrd.gz vmlinuz" {
				t.Fatalf("files not sorted or incomplete: %v", paths)
			}
		})
	}
}

func TestBuildLinuxFromFiles(t *testing.T) {
	e := newEnv(t)
	d := t.TempDir()
	kernel := filepath.Join(d, "vmlinuz-6.1")
	copyInto(t, d, "vmlinuz-6.1", unsignedEFI)
	writeFiles(t, d, map[string]string{"initrd.img-6.1": "initrd", "other": "x"})
	initrd := filepath.Join(d, "initrd.img-6.1")

	// --from left out.
	res := e.mustBuild(t, Spec{ID: id(t, "files@1.0.0"), Template: "linux", Kernel: kernel, Initrds: []string{initrd}})
	m := res.Manifest
	if m.Boot.Kernel != "vmlinuz-6.1" || m.Boot.Initrds[0] != "initrd.img-6.1" {
		t.Fatalf("boot: %+v", m.Boot)
	}
	if len(m.Sources) != 2 || m.Sources[0].Origin != kernel || m.Sources[1].Origin != initrd || m.Sources[1].Size != 6 {
		t.Fatalf("sources: %+v", m.Sources)
	}
	k, _ := m.File("vmlinuz-6.1")
	if k.Authenticode == nil || k.Authenticode.Signed {
		t.Fatalf("unsigned kernel: %+v", k.Authenticode)
	}
	// --from naming the kernel or the initrd is the same build.
	for i, from := range []string{kernel, initrd} {
		res2 := e.mustBuild(t, Spec{ID: id(t, fmt.Sprintf("files@1.0.1-%d", i)), Template: "linux", From: from, Kernel: kernel, Initrds: []string{initrd}})
		if !reflect.DeepEqual(res2.Manifest.Sources, m.Sources) {
			t.Fatalf("--from %s: %+v", from, res2.Manifest.Sources)
		}
	}
	// --from naming something else is refused.
	_, err := e.build(t, Spec{ID: id(t, "files@1.0.2"), Template: "linux", From: filepath.Join(d, "other"), Kernel: kernel})
	mustContain(t, err, "is neither an ISO, a directory, nor one of --kernel/--initrd")
	// A directory as --from: paths inside it.
	res3 := e.mustBuild(t, Spec{ID: id(t, "files@1.0.3"), Template: "linux", From: d, Kernel: "vmlinuz-6.1", Initrds: []string{"/initrd.img-6.1"}})
	if len(res3.Manifest.Sources) != 1 || res3.Manifest.Sources[0].Origin != d {
		t.Fatalf("dir source: %+v", res3.Manifest.Sources)
	}
	e.noLeftovers(t, "files")
}

// Two builds from the same inputs: the same files, and the same manifest
// apart from the build time and the version.
func TestBuildReproducible(t *testing.T) {
	iso := makeISO(t, linuxSrc(t), true)
	e := newEnv(t)
	spec := Spec{Template: "linux", From: iso, Kernel: "install.amd/vmlinuz", Initrds: []string{"install.amd/initrd.gz"}, Cmdline: "quiet"}
	spec.ID = id(t, "repro@1.0.0")
	a := e.mustBuild(t, spec)
	e.b.Now = nil // a different build time
	spec.ID = id(t, "repro@1.0.1")
	b := e.mustBuild(t, spec)
	ma, mb := a.Manifest, b.Manifest
	if ma.Built.Equal(mb.Built) {
		t.Fatal("the builds share a build time; the test proves nothing")
	}
	ma.Built, ma.Version, mb.Version = mb.Built, "x", "x"
	if !reflect.DeepEqual(ma, mb) {
		t.Fatalf("manifests differ:\n%+v\n%+v", ma, mb)
	}
	for _, f := range a.Manifest.Files {
		x, _ := os.ReadFile(filepath.Join(a.Dir, f.Path))
		y, _ := os.ReadFile(filepath.Join(b.Dir, f.Path))
		if !bytes.Equal(x, y) {
			t.Fatalf("%s differs between the builds", f.Path)
		}
	}
}

func TestBuildRefusals(t *testing.T) {
	src := linuxSrc(t)
	iso := makeISO(t, src, true)
	e := newEnv(t)
	ok := Spec{ID: id(t, "img@1.0.0"), Template: "linux", From: iso, Kernel: "/install.amd/vmlinuz", Initrds: []string{"/install.amd/initrd.gz"}}
	e.mustBuild(t, ok)
	before := snapshot(t, e.root)
	for name, c := range map[string]struct {
		spec func(s *Spec)
		want []string
	}{
		"version exists": {func(s *Spec) {}, []string{"img@1.0.0 exists in", "versions are immutable"}},
		"same version, other build metadata": {func(s *Spec) { s.ID = id(t, "img@1.0.0+rebuild") },
			[]string{"version 1.0.0 exists", "differs only in build metadata"}},
		"same base name": {func(s *Spec) {
			s.ID = id(t, "img@2.0.0")
			s.Initrds = []string{"/install.amd/initrd.gz", "/install.amd/gtk/initrd.gz"}
		}, []string{"--initrd /install.amd/initrd.gz and --initrd /install.amd/gtk/initrd.gz have the same base name \"initrd.gz\""}},
		"missing kernel": {func(s *Spec) { s.ID = id(t, "img@2.0.0"); s.Kernel = "/install.amd/linux" },
			[]string{`linux: --kernel: /install.amd/linux not found in ` + iso, `no "linux"`, "it holds", "initrd.gz"}},
		"directory as kernel": {func(s *Spec) { s.ID = id(t, "img@2.0.0"); s.Kernel = "/install.amd/gtk" },
			[]string{"/install.amd/gtk in " + iso + " is a directory"}},
		"escape": {func(s *Spec) { s.ID = id(t, "img@2.0.0"); s.Kernel = "../etc/passwd" },
			[]string{"may not contain .."}},
		"no kernel":         {func(s *Spec) { s.ID = id(t, "img@2.0.0"); s.Kernel = "" }, []string{"linux: --kernel is required"}},
		"no template":       {func(s *Spec) { s.ID = id(t, "img@2.0.0"); s.Template = "" }, []string{"use --template linux or --template winpe"}},
		"unknown template":  {func(s *Spec) { s.ID = id(t, "img@2.0.0"); s.Template = "bsd" }, []string{`template "bsd"`}},
		"winpe flags":       {func(s *Spec) { s.ID = id(t, "img@2.0.0"); s.Wimboot = "w"; s.Startnet = "s" }, []string{"--wimboot, --startnet belong to the other template"}},
		"missing --from":    {func(s *Spec) { s.ID = id(t, "img@2.0.0"); s.From = "/nonexistent.iso" }, []string{"--from: stat /nonexistent.iso"}},
		"device as kernel":  {func(s *Spec) { s.ID = id(t, "img@2.0.0"); s.From = ""; s.Kernel = "/dev/null" }, []string{"/dev/null is neither a regular file nor a directory: it is a device"}},
		"missing blob":      {func(s *Spec) { s.ID = id(t, "img@2.0.0"); s.From = "sha256:" + strings.Repeat("ab", 32) }, []string{"is not in the store", "image import"}},
		"manifest as name":  {func(s *Spec) { s.ID = id(t, "img@2.0.0"); s.From = ""; s.Kernel = writeTemp(t, "manifest.json") }, []string{`output name "manifest.json" is the manifest's`}},
		"name with a space": {func(s *Spec) { s.ID = id(t, "img@2.0.0"); s.From = ""; s.Kernel = writeTemp(t, "my kernel") }, []string{`output name "my kernel"`}},
	} {
		t.Run(name, func(t *testing.T) {
			s := ok
			c.spec(&s)
			_, err := e.build(t, s)
			mustContain(t, err, c.want...)
			if after := snapshot(t, e.root); after != before {
				t.Fatalf("a refused build changed the root:\n%s\nwas:\n%s", after, before)
			}
		})
	}
}

func writeTemp(t *testing.T, name string) string {
	p := filepath.Join(t.TempDir(), name)
	os.WriteFile(p, []byte("x"), 0o644)
	return p
}

// snapshot lists every path below dir with its size.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b.WriteString(rel)
		if !info.IsDir() {
			fmt.Fprintf(&b, " %d", info.Size())
		}
		b.WriteString("\n")
		return nil
	})
	return b.String()
}

// A build that fails after files were copied, or is cancelled, leaves no
// temporary directory and no empty name directory behind.
func TestBuildCleansUpOnFailure(t *testing.T) {
	src := linuxSrc(t)
	iso := makeISO(t, src, true)
	e := newEnv(t)
	_, err := e.build(t, Spec{ID: id(t, "late@1.0.0"), Template: "linux", From: iso,
		Kernel: "/install.amd/vmlinuz", Initrds: []string{"/install.amd/initrd.gz", "/install.amd/missing.gz"}})
	mustContain(t, err, "missing.gz not found")
	e.noLeftovers(t)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = e.b.Build(ctx, Spec{ID: id(t, "cancelled@1.0.0"), Template: "linux", From: iso, Kernel: "/install.amd/vmlinuz"})
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("cancelled build: %v", err)
	}
	e.noLeftovers(t)

	// A failure in a name that has versions keeps them.
	e.mustBuild(t, Spec{ID: id(t, "late@1.0.0"), Template: "linux", From: iso, Kernel: "/install.amd/vmlinuz"})
	_, err = e.build(t, Spec{ID: id(t, "late@1.1.0"), Template: "linux", From: iso, Kernel: "/nope"})
	mustContain(t, err, "/nope not found")
	e.noLeftovers(t, "late")
	des, _ := os.ReadDir(filepath.Join(e.root, "images", "late"))
	if len(des) != 1 || des[0].Name() != "1.0.0" {
		t.Fatalf("images/late holds %v", des)
	}
}

func TestBuildFromBlob(t *testing.T) {
	iso := makeISO(t, linuxSrc(t), true)
	e := newEnv(t)
	digest := sum(t, iso)
	blob, _ := blobpkg.PathIn(e.data, digest)
	os.MkdirAll(filepath.Dir(blob), 0o755)
	b, _ := os.ReadFile(iso)
	os.WriteFile(blob, b, 0o644) // no .iso extension: found by its signature
	res := e.mustBuild(t, Spec{ID: id(t, "blob@1.0.0"), Template: "linux", From: "sha256:" + strings.ToUpper(digest), Kernel: "/install.amd/vmlinuz"})
	if s := res.Manifest.Sources; len(s) != 1 || s[0].Origin != "blob" || s[0].SHA256 != digest || s[0].Size != int64(len(b)) {
		t.Fatalf("sources: %+v", s)
	}
	// A blob whose content no longer matches its name is refused.
	b[len(b)-1] ^= 1
	os.WriteFile(blob, b, 0o644)
	_, err := e.build(t, Spec{ID: id(t, "blob@1.0.1"), Template: "linux", From: digest, Kernel: "/install.amd/vmlinuz"})
	mustContain(t, err, "blob sha256:"+digest+" is damaged: its content hashes to")
	// A blob that is not an ISO cannot give named files.
	other := writeTemp(t, "k")
	d := sum(t, other)
	p, _ := blobpkg.PathIn(e.data, d)
	os.WriteFile(p, []byte("x"), 0o644)
	_, err = e.build(t, Spec{ID: id(t, "blob@1.0.2"), Template: "linux", From: d, Kernel: "vmlinuz"})
	mustContain(t, err, "is a blob but not an ISO")
}

// A directory source's digest is what the shell formula in hashDir's
// comment prints; symbolic links are not followed.
func TestHashDirMatchesSha256sum(t *testing.T) {
	need(t, "sha256sum", "sh")
	d := t.TempDir()
	// sha256sum escapes a name with a backslash, a newline or a carriage
	// return, and starts its line with a backslash; hashDir wrote such
	// names raw, so the documented command gave another digest (and
	// "a\n<hex>  b" listed like two files, a and b).
	writeFiles(t, d, map[string]string{"b": "2", "a/z": "1", "a/B": "3", "c d/e": "spaces", `back\slash`: "4", "new\nline": "5", "cr\rx": "6"})
	os.Symlink(".", filepath.Join(d, "debian"))
	os.Symlink("/etc/passwd", filepath.Join(d, "passwd"))
	size, digest := hashDirAt(t, d)
	cmd := exec.Command("sh", "-c", `find . -type f -print0 | sed -z 's|^\./||' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum`)
	cmd.Dir = d
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Fields(string(out))[0]; digest != want || size != 12 {
		t.Fatalf("hashDir: %d %s, shell: %s", size, digest, want)
	}
}

func TestBuildNeedsRoot(t *testing.T) {
	b := &Builder{Root: filepath.Join(t.TempDir(), "missing")}
	_, err := b.Build(context.Background(), Spec{ID: id(t, "a@1.0.0"), Template: "linux", Kernel: "k"})
	mustContain(t, err, "missing is not a directory: set root")
}

// A --from directory named through a symbolic link (/srv/isos/debian ->
// debian-12.5) is the directory it leads to: its files are recorded in
// the manifest's source, and a recipe's pin checks them.
func TestBuildFromSymlinkedDir(t *testing.T) {
	e := newEnv(t)
	real := linuxSrc(t)
	link := filepath.Join(t.TempDir(), "current")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	spec := Spec{Template: "linux", Kernel: "install.amd/vmlinuz", Initrds: []string{"install.amd/initrd.gz"}}
	spec.ID, spec.From = id(t, "deb@1.0.0"), real
	want := e.mustBuild(t, spec).Manifest.Sources[0]
	spec.ID, spec.From = id(t, "deb@1.0.1"), link
	got := e.mustBuild(t, spec).Manifest.Sources[0]
	if got.Size != want.Size || got.SHA256 != want.SHA256 || got.Origin != link {
		t.Fatalf("--from %s: source %+v; the directory it leads to: %+v", link, got, want)
	}
	// A pin of an empty directory's digest does not match it.
	_, empty := hashDirAt(t, t.TempDir())
	spec.ID, spec.Pins = id(t, "deb@1.0.2"), map[string]string{link: empty}
	_, err := e.build(t, spec)
	mustContain(t, err, "has SHA-256 "+want.SHA256+", the recipe expects "+empty)
}
