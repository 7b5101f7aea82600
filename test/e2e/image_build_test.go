package e2e

// `bootforge image build` as an operator runs it (issue #12, Build and
// Result): ISOs made by xorriso and genisoimage, WIMs made and read back
// by wimlib-imagex, digests checked against sha256sum. Booting the built
// versions is `image test`'s part.

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"bootforge/internal/image"
)

// debianSigner signs Debian's kernels for Secure Boot.
const debianSigner = "Debian Secure Boot Signer 2022 - linux"

// imgEnv is a served root and data directory for image commands.
type imgEnv struct {
	root, data string
}

func newImgEnv(t *testing.T) imgEnv {
	t.Helper()
	d := t.TempDir()
	e := imgEnv{root: filepath.Join(d, "root"), data: filepath.Join(d, "data")}
	os.MkdirAll(e.root, 0o755)
	os.MkdirAll(e.data, 0o755)
	return e
}

// build runs bootforge image build with the env's root and data dir.
func (e imgEnv) build(t *testing.T, args ...string) (string, int) {
	t.Helper()
	args = append([]string{"image", "build", "--root", e.root, "--data-dir", e.data}, args...)
	return clRun(t, 2*time.Minute, nil, args...)
}

func (e imgEnv) mustBuild(t *testing.T, args ...string) string {
	t.Helper()
	out, code := e.build(t, args...)
	if code != 0 {
		t.Fatalf("bootforge image build %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

func (e imgEnv) versionDir(name, version string) string {
	return filepath.Join(e.root, "images", name, version)
}

// imagesDirHolds fails unless root/images holds exactly names: no
// temporary build directory, nothing half-made.
func (e imgEnv) imagesDirHolds(t *testing.T, names ...string) {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(e.root, "images"))
	if err != nil && !(os.IsNotExist(err) && len(names) == 0) {
		t.Fatal(err)
	}
	var got []string
	for _, de := range des {
		got = append(got, de.Name())
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Fatalf("images/ holds %v, want %v", got, names)
	}
}

func loadManifest(t *testing.T, dir string) image.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m image.Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("manifest.json: %v\n%s", err, b)
	}
	return m
}

// sha256sums runs the real sha256sum on files and returns path → digest.
func sha256sums(t *testing.T, files ...string) map[string]string {
	t.Helper()
	need(t, "sha256sum")
	out, err := exec.Command("sha256sum", files...).Output()
	if err != nil {
		t.Fatalf("sha256sum: %v", err)
	}
	sums := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		sum, file, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("sha256sum printed %q", line)
		}
		sums[file] = sum
	}
	return sums
}

// checkFiles compares every manifest file with the version's directory:
// the listing, sizes, and SHA-256 as sha256sum computes it.
func checkFiles(t *testing.T, dir string, m image.Manifest, want ...string) {
	t.Helper()
	des, _ := os.ReadDir(dir)
	var onDisk, listed, paths []string
	for _, de := range des {
		if de.Name() != "manifest.json" {
			onDisk = append(onDisk, de.Name())
		}
	}
	for _, f := range m.Files {
		listed = append(listed, f.Path)
		paths = append(paths, filepath.Join(dir, f.Path))
	}
	if strings.Join(listed, " ") != strings.Join(want, " ") || strings.Join(onDisk, " ") != strings.Join(want, " ") {
		t.Fatalf("manifest lists %v, the directory holds %v, want %v (sorted)", listed, onDisk, want)
	}
	sums := sha256sums(t, paths...)
	for _, f := range m.Files {
		p := filepath.Join(dir, f.Path)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if f.Size != st.Size() || f.SHA256 != sums[p] {
			t.Fatalf("%s: manifest says %d bytes %s; the file has %d bytes, sha256sum %s", f.Path, f.Size, f.SHA256, st.Size(), sums[p])
		}
	}
}

// isoOf makes an ISO of dir with xorriso (Rock Ridge names) or genisoimage
// (plain ISO 9660 level 1: upper-case 8.3 names like VMLINUZ.;1).
func isoOf(t *testing.T, dir, tool string) string {
	t.Helper()
	need(t, tool)
	out := filepath.Join(t.TempDir(), tool+".iso")
	var cmd *exec.Cmd
	if tool == "xorriso" {
		cmd = exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-r", "-V", "TESTIMG", "-o", out, dir)
	} else {
		cmd = exec.Command("genisoimage", "-quiet", "-V", "TESTIMG", "-o", out, dir)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, b)
	}
	return out
}

func copyFileTo(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(to), 0o755)
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sameExceptBuilt compares two manifests apart from built and version.
func sameExceptBuilt(t *testing.T, a, b image.Manifest) {
	t.Helper()
	a.Built, a.Version = b.Built, b.Version
	if !reflect.DeepEqual(a, b) {
		ja, _ := json.MarshalIndent(a, "", " ")
		jb, _ := json.MarshalIndent(b, "", " ")
		t.Fatalf("manifests differ beyond built and version:\n%s\n%s", ja, jb)
	}
}

// TestImageBuildLinux: the suite's Debian kernel and test initrd in an
// ISO, built into a version; the layout, the manifest against sha256sum,
// Debian's signature; twice from the same inputs, the same manifest.
func TestImageBuildLinux(t *testing.T) {
	kernel, initrd := NetbootKernel(t)
	src := t.TempDir()
	copyFileTo(t, kernel, filepath.Join(src, "install", "vmlinuz"))
	copyFileTo(t, initrd, filepath.Join(src, "install", "initrd.gz"))
	os.WriteFile(filepath.Join(src, "README.txt"), []byte("test image\n"), 0o644)
	for _, tool := range []string{"xorriso", "genisoimage"} {
		t.Run(tool, func(t *testing.T) {
			iso := isoOf(t, src, tool)
			e := newImgEnv(t)
			args := []string{"--template", "linux", "--from", iso, "--kernel", "/install/vmlinuz", "--initrd", "install/initrd.gz",
				"--cmdline", "console=ttyS0 bfmarker=" + tool}
			out := e.mustBuild(t, append([]string{"test-linux@1.0.0"}, args...)...)
			dir := e.versionDir("test-linux", "1.0.0")
			for _, want := range []string{"built test-linux@1.0.0 (linux) in " + dir, iso, "vmlinuz", "signed by " + debianSigner, "initrd.gz"} {
				if !strings.Contains(out, want) {
					t.Fatalf("output lacks %q:\n%s", want, out)
				}
			}
			m := loadManifest(t, dir)
			if m.Name != "test-linux" || m.Version != "1.0.0" || m.Template != "linux" || time.Since(m.Built) > time.Hour {
				t.Fatalf("manifest header: %+v", m)
			}
			checkFiles(t, dir, m, "initrd.gz", "vmlinuz")
			sums := sha256sums(t, iso, kernel, initrd)
			st, _ := os.Stat(iso)
			if len(m.Sources) != 1 || m.Sources[0] != (image.Source{Origin: iso, Size: st.Size(), SHA256: sums[iso]}) {
				t.Fatalf("sources: %+v, want %s %d %s", m.Sources, iso, st.Size(), sums[iso])
			}
			k, _ := m.File("vmlinuz")
			i, _ := m.File("initrd.gz")
			if k.SHA256 != sums[kernel] || i.SHA256 != sums[initrd] {
				t.Fatal("the built files are not the kernel and initrd put into the ISO")
			}
			if a := k.Authenticode; a == nil || !a.Signed || a.Signer != debianSigner {
				t.Fatalf("kernel Authenticode: %+v, want signed by %q", a, debianSigner)
			}
			if i.Authenticode != nil {
				t.Fatalf("the initrd is not PE but has %+v", i.Authenticode)
			}
			want := image.Boot{Kind: "linux", Kernel: "vmlinuz", Initrds: []string{"initrd.gz"}, Cmdline: "console=ttyS0 bfmarker=" + tool}
			if !reflect.DeepEqual(m.Boot, want) {
				t.Fatalf("boot: %+v", m.Boot)
			}

			// The same inputs under another version: the same manifest
			// apart from built and version, byte-identical files.
			time.Sleep(1100 * time.Millisecond) // a different build time
			e.mustBuild(t, append([]string{"test-linux@1.0.1"}, args...)...)
			dir2 := e.versionDir("test-linux", "1.0.1")
			m2 := loadManifest(t, dir2)
			if m2.Built.Equal(m.Built) {
				t.Fatal("both builds have the same build time")
			}
			sameExceptBuilt(t, m, m2)
			for _, f := range []string{"vmlinuz", "initrd.gz"} {
				if out, err := exec.Command("cmp", filepath.Join(dir, f), filepath.Join(dir2, f)).CombinedOutput(); err != nil {
					t.Fatalf("cmp %s: %v %s", f, err, out)
				}
			}

			// A version is never rebuilt.
			before, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
			out, code := e.build(t, append([]string{"test-linux@1.0.0"}, args...)...)
			if code == 0 || !strings.Contains(out, "test-linux@1.0.0 exists") || !strings.Contains(out, "immutable") {
				t.Fatalf("rebuilding a version: exit %d\n%s", code, out)
			}
			if after, _ := os.ReadFile(filepath.Join(dir, "manifest.json")); !bytes.Equal(before, after) {
				t.Fatal("a refused rebuild changed the manifest")
			}
			// A path the ISO does not hold is refused by name; nothing is
			// left behind.
			out, code = e.build(t, "test-linux@2.0.0", "--template", "linux", "--from", iso, "--kernel", "/install/linux")
			if code == 0 || !strings.Contains(out, "/install/linux not found in "+iso) {
				t.Fatalf("missing kernel: exit %d\n%s", code, out)
			}
			e.imagesDirHolds(t, "test-linux")
			if des, _ := os.ReadDir(filepath.Join(e.root, "images", "test-linux")); len(des) != 2 {
				t.Fatalf("images/test-linux holds %d entries, want 1.0.0 and 1.0.1", len(des))
			}
		})
	}
}

// TestImageBuildRecipe: a recipe in images/ beside the config, with the
// root and data_dir from that config; a changed source is refused.
func TestImageBuildRecipe(t *testing.T) {
	kernel, initrd := NetbootKernel(t)
	e := newImgEnv(t)
	repo := t.TempDir()
	copyFileTo(t, kernel, filepath.Join(repo, "files", "vmlinuz"))
	copyFileTo(t, initrd, filepath.Join(repo, "files", "initrd.gz"))
	cfg := filepath.Join(repo, "bootforge.yaml")
	os.WriteFile(cfg, []byte("root: "+e.root+"\ndata_dir: "+e.data+"\n"), 0o644)
	sums := sha256sums(t, filepath.Join(repo, "files", "vmlinuz"), filepath.Join(repo, "files", "initrd.gz"))
	recipe := filepath.Join(repo, "images", "test-recipe.yaml")
	text := `name: test-recipe
version: 3.1.0
template: linux
kernel: ../files/vmlinuz
initrds: [../files/initrd.gz]
cmdline: console=ttyS0 bfmarker=recipe
sources:
  - origin: ../files/vmlinuz
    sha256: ` + sums[filepath.Join(repo, "files", "vmlinuz")] + `
  - origin: ../files/initrd.gz
    sha256: ` + sums[filepath.Join(repo, "files", "initrd.gz")] + "\n"
	os.MkdirAll(filepath.Dir(recipe), 0o755)
	os.WriteFile(recipe, []byte(text), 0o644)

	out, code := clRun(t, 2*time.Minute, nil, "--config", cfg, "image", "build", "--recipe", recipe, "--json")
	if code != 0 {
		t.Fatalf("image build --recipe: exit %d\n%s", code, out)
	}
	var printed image.Manifest
	if err := json.Unmarshal([]byte(out), &printed); err != nil {
		t.Fatalf("--json printed %v:\n%s", err, out)
	}
	dir := e.versionDir("test-recipe", "3.1.0")
	m := loadManifest(t, dir)
	if !reflect.DeepEqual(m, printed) {
		t.Fatal("--json printed another manifest than the one written")
	}
	checkFiles(t, dir, m, "initrd.gz", "vmlinuz")
	if len(m.Sources) != 2 || m.Sources[0].Origin != "../files/vmlinuz" || m.Boot.Cmdline != "console=ttyS0 bfmarker=recipe" {
		t.Fatalf("manifest: %+v", m)
	}
	// A command line GRUB cannot hand the kernel as written is built, and
	// warned about.
	os.WriteFile(recipe, []byte(strings.NewReplacer("3.1.0", "3.0.9", "bfmarker=recipe", `'a="b c"'`).Replace(text)), 0o644)
	out, code = clRun(t, 2*time.Minute, nil, "--config", cfg, "image", "build", "--recipe", recipe)
	if code != 0 || !strings.Contains(out, "warning: test-recipe@3.0.9: cmdline: GRUB would not pass it on as written") {
		t.Fatalf("a cmdline GRUB cannot carry: exit %d, want a warning naming GRUB\n%s", code, out)
	}
	os.WriteFile(recipe, []byte(text), 0o644)
	// Flags beside a recipe are refused.
	out, code = clRun(t, time.Minute, nil, "--config", cfg, "image", "build", "--recipe", recipe, "--cmdline", "x")
	if code == 0 || !strings.Contains(out, "drop --cmdline") {
		t.Fatalf("--recipe with --cmdline: exit %d\n%s", code, out)
	}
	// A source that changed since the recipe pinned it is refused.
	os.WriteFile(recipe, []byte(strings.Replace(text, "3.1.0", "3.2.0", 1)), 0o644)
	f, _ := os.OpenFile(filepath.Join(repo, "files", "initrd.gz"), os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte{0})
	f.Close()
	out, code = clRun(t, time.Minute, nil, "--config", cfg, "image", "build", "--recipe", recipe)
	if code == 0 || !strings.Contains(out, `source "../files/initrd.gz" has SHA-256`) || !strings.Contains(out, "the recipe expects "+sums[filepath.Join(repo, "files", "initrd.gz")]) {
		t.Fatalf("changed source: exit %d\n%s", code, out)
	}
	e.imagesDirHolds(t, "test-recipe")
}

// winpeMedium is a WinPE medium's tree: bootmgr, boot/bcd, boot/boot.sdi
// (dummy contents) and sources/boot.wim captured by wimlib-imagex from a
// tree holding Windows/System32/startnet.cmd.
func winpeMedium(t *testing.T) string {
	t.Helper()
	need(t, "wimlib-imagex")
	tree := t.TempDir()
	for p, body := range map[string]string{
		"Windows/System32/startnet.cmd":        "wpeinit\r\n",
		"Windows/System32/config/SYSTEM":       "hive",
		"Windows/Boot/EFI/bootmgfw.efi":        "efi",
		"Program Files/WindowsPowerShell/x.ps": "ps",
	} {
		copyBytes(t, filepath.Join(tree, p), body)
	}
	src := t.TempDir()
	copyBytes(t, filepath.Join(src, "bootmgr"), "dummy bootmgr")
	copyBytes(t, filepath.Join(src, "boot", "bcd"), "dummy BCD store")
	copyBytes(t, filepath.Join(src, "boot", "boot.sdi"), "dummy boot.sdi")
	os.MkdirAll(filepath.Join(src, "sources"), 0o755)
	if out, err := exec.Command("wimlib-imagex", "capture", tree, filepath.Join(src, "sources", "boot.wim"), "Microsoft Windows PE (amd64)", "--boot").CombinedOutput(); err != nil {
		t.Fatalf("wimlib-imagex capture: %v\n%s", err, out)
	}
	return src
}

func copyBytes(t *testing.T, p, body string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func wimlib(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("wimlib-imagex", args...).Output()
	if err != nil {
		t.Fatalf("wimlib-imagex %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// TestImageBuildWinPE: a WinPE ISO and a wimboot file give the wimboot
// layout and manifest; drivers and startnet.cmd go into boot.wim, as
// wimlib-imagex dir shows; a missing BCD is refused by name.
func TestImageBuildWinPE(t *testing.T) {
	src := winpeMedium(t)
	wimboot := filepath.Join(t.TempDir(), "wimboot")
	copyBytes(t, wimboot, "dummy wimboot, supplied by the operator")
	sourceWIM := filepath.Join(src, "sources", "boot.wim")

	for _, tool := range []string{"xorriso", "genisoimage"} {
		t.Run(tool, func(t *testing.T) {
			iso := isoOf(t, src, tool)
			e := newImgEnv(t)
			out := e.mustBuild(t, "test-winpe@1.0.0", "--template", "winpe", "--from", iso, "--wimboot", wimboot)
			dir := e.versionDir("test-winpe", "1.0.0")
			if !strings.Contains(out, "built test-winpe@1.0.0 (winpe) in "+dir) || !strings.Contains(out, "boot.wim") {
				t.Fatalf("output:\n%s", out)
			}
			m := loadManifest(t, dir)
			checkFiles(t, dir, m, "BCD", "boot.sdi", "boot.wim", "bootmgr", "wimboot")
			want := image.Boot{Kind: "wimboot", Wimboot: "wimboot", Bootmgr: "bootmgr", BCD: "BCD", BootSDI: "boot.sdi", BootWIM: "boot.wim"}
			if !reflect.DeepEqual(m.Boot, want) || m.Template != "winpe" {
				t.Fatalf("manifest: %+v", m)
			}
			sums := sha256sums(t, iso, wimboot, sourceWIM, filepath.Join(src, "boot", "bcd"))
			if len(m.Sources) != 2 || m.Sources[0].Origin != iso || m.Sources[0].SHA256 != sums[iso] ||
				m.Sources[1].Origin != wimboot || m.Sources[1].SHA256 != sums[wimboot] {
				t.Fatalf("sources: %+v", m.Sources)
			}
			if f, _ := m.File("boot.wim"); f.SHA256 != sums[sourceWIM] {
				t.Fatal("without injection boot.wim is not copied unchanged")
			}
			if f, _ := m.File("BCD"); f.SHA256 != sums[filepath.Join(src, "boot", "bcd")] {
				t.Fatal("BCD is not boot/bcd")
			}
		})
	}

	t.Run("inject", func(t *testing.T) {
		iso := isoOf(t, src, "xorriso")
		drivers := t.TempDir()
		copyBytes(t, filepath.Join(drivers, "net", "e1000e.inf"), "[Version]\r\nSignature=\"$WINDOWS NT$\"\r\n")
		copyBytes(t, filepath.Join(drivers, "net", "e1000e.sys"), "driver")
		copyBytes(t, filepath.Join(drivers, "storage", "vioscsi.inf"), "[Version]\r\n")
		startnet := filepath.Join(t.TempDir(), "startnet.cmd")
		copyBytes(t, startnet, "wpeinit\r\nfor /r X:\\drivers %%i in (*.inf) do drvload \"%%i\"\r\necho bootforge-startnet\r\n")
		e := newImgEnv(t)
		args := []string{"--template", "winpe", "--from", iso, "--wimboot", wimboot, "--drivers", drivers, "--startnet", startnet}
		e.mustBuild(t, append([]string{"test-winpe@2.0.0"}, args...)...)
		dir := e.versionDir("test-winpe", "2.0.0")
		wim := filepath.Join(dir, "boot.wim")
		listing := wimlib(t, "dir", wim, "1")
		for _, p := range []string{"/drivers/net/e1000e.inf", "/drivers/net/e1000e.sys", "/drivers/storage/vioscsi.inf",
			"/Windows/System32/startnet.cmd", "/Windows/System32/config/SYSTEM", "/Windows/Boot/EFI/bootmgfw.efi"} {
			if !strings.Contains(listing, p+"\n") {
				t.Fatalf("wimlib-imagex dir does not show %s:\n%s", p, listing)
			}
		}
		if got := wimlib(t, "extract", wim, "1", "/Windows/System32/startnet.cmd", "--to-stdout"); !strings.Contains(got, "bootforge-startnet") {
			t.Fatalf("startnet.cmd in boot.wim: %q", got)
		}
		if info := wimlib(t, "info", wim); !strings.Contains(info, "Boot Index:     1") {
			t.Fatalf("the updated WIM lost its boot index:\n%s", info)
		}
		// The source WIM is untouched; the manifest describes the new one.
		if wimlib(t, "dir", sourceWIM, "1") == listing {
			t.Fatal("the source WIM was changed")
		}
		m := loadManifest(t, dir)
		checkFiles(t, dir, m, "BCD", "boot.sdi", "boot.wim", "bootmgr", "wimboot")
		if len(m.Sources) != 4 || m.Sources[2].Origin != drivers || m.Sources[3].Origin != startnet {
			t.Fatalf("sources: %+v", m.Sources)
		}
		// Injection is reproducible: the same inputs, the same boot.wim.
		time.Sleep(1100 * time.Millisecond)
		e.mustBuild(t, append([]string{"test-winpe@2.0.1"}, args...)...)
		m2 := loadManifest(t, e.versionDir("test-winpe", "2.0.1"))
		sameExceptBuilt(t, m, m2)
	})

	t.Run("missing BCD", func(t *testing.T) {
		noBCD := t.TempDir()
		for _, p := range []string{"bootmgr", "boot/boot.sdi", "sources/boot.wim"} {
			copyFileTo(t, filepath.Join(src, p), filepath.Join(noBCD, p))
		}
		iso := isoOf(t, noBCD, "xorriso")
		e := newImgEnv(t)
		out, code := e.build(t, "test-winpe@1.0.0", "--template", "winpe", "--from", iso, "--wimboot", wimboot)
		if code == 0 || !strings.Contains(out, "winpe: BCD not found in "+iso+" (looked for boot/bcd, BCD)") {
			t.Fatalf("missing BCD: exit %d\n%s", code, out)
		}
		e.imagesDirHolds(t)
	})

	t.Run("not a WIM", func(t *testing.T) {
		bad := t.TempDir()
		for _, p := range []string{"bootmgr", "boot/bcd", "boot/boot.sdi"} {
			copyFileTo(t, filepath.Join(src, p), filepath.Join(bad, p))
		}
		copyBytes(t, filepath.Join(bad, "sources", "boot.wim"), "MSWIM but not really")
		e := newImgEnv(t)
		out, code := e.build(t, "test-winpe@1.0.0", "--template", "winpe", "--from", isoOf(t, bad, "xorriso"), "--wimboot", wimboot)
		if code == 0 || !strings.Contains(out, "is not a valid WIM: [ERROR]") {
			t.Fatalf("bad WIM: exit %d\n%s", code, out)
		}
		e.imagesDirHolds(t)
	})
}
