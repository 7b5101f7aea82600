package build

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"bootforge/internal/image"
)

// winpeSrc is a WinPE medium's layout, spelled as Windows media spell it,
// with a real WIM captured from a small tree.
func winpeSrc(t *testing.T) string {
	t.Helper()
	tree := t.TempDir()
	writeFiles(t, tree, map[string]string{
		"Windows/System32/startnet.cmd": "wpeinit\r\n",
		"Windows/System32/drivers/":     "",
		"readme.txt":                    "winpe",
	})
	src := t.TempDir()
	writeFiles(t, src, map[string]string{
		"bootmgr":       "bootmgr",
		"Boot/BCD":      "bcd store",
		"Boot/boot.sdi": "sdi",
		"sources/":      "",
	})
	makeWIM(t, tree, filepath.Join(src, "sources", "boot.wim"))
	return src
}

func wimboot(t *testing.T) string {
	t.Helper()
	// wimboot is an EFI binary too; an unsigned one stands in for it.
	p := filepath.Join(t.TempDir(), "wimboot")
	copyInto(t, filepath.Dir(p), "wimboot", unsignedEFI)
	return p
}

func TestBuildWinPE(t *testing.T) {
	src := winpeSrc(t)
	wb := wimboot(t)
	for name, from := range map[string]string{"iso": makeISO(t, src, true), "level-1 iso": makeISO(t, src, false), "directory": src} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			res := e.mustBuild(t, Spec{ID: id(t, "winpe@1.0.0"), Template: image.TemplateWinPE, From: from, Wimboot: wb})
			m := readManifest(t, res.Dir)
			want := image.Boot{Kind: "wimboot", Wimboot: "wimboot", Bootmgr: "bootmgr", BCD: "BCD", BootSDI: "boot.sdi", BootWIM: "boot.wim"}
			if !reflect.DeepEqual(m.Boot, want) {
				t.Fatalf("boot: %+v", m.Boot)
			}
			var paths []string
			for _, f := range m.Files {
				paths = append(paths, f.Path)
			}
			if strings.Join(paths, " ") != "BCD boot.sdi boot.wim bootmgr wimboot" {
				t.Fatalf("files: %v", paths)
			}
			// Copied unchanged without injection.
			for out, in := range map[string]string{"BCD": "Boot/BCD", "boot.wim": "sources/boot.wim", "bootmgr": "bootmgr"} {
				f, _ := m.File(out)
				if f.SHA256 != sum(t, filepath.Join(src, in)) {
					t.Fatalf("%s is not %s", out, in)
				}
			}
			w, _ := m.File("wimboot")
			if w.Authenticode == nil || w.Authenticode.Signed {
				t.Fatalf("wimboot signature: %+v", w.Authenticode)
			}
			if len(m.Sources) != 2 || m.Sources[0].Origin != from || m.Sources[1].Origin != wb || m.Sources[1].SHA256 != sum(t, wb) {
				t.Fatalf("sources: %+v", m.Sources)
			}
			e.noLeftovers(t, "winpe")
		})
	}
}

func wimDir(t *testing.T, wim string) string {
	t.Helper()
	out, err := exec.Command("wimlib-imagex", "dir", wim, "1").CombinedOutput()
	if err != nil {
		t.Fatalf("wimlib-imagex dir: %v\n%s", err, out)
	}
	return string(out)
}

func wimCat(t *testing.T, wim, p string) string {
	t.Helper()
	out, err := exec.Command("wimlib-imagex", "extract", wim, "1", p, "--to-stdout").Output()
	if err != nil {
		t.Fatalf("wimlib-imagex extract %s: %v", p, err)
	}
	return string(out)
}

// Drivers and startnet.cmd go into the copied boot.wim; the source is
// untouched, and two builds give the same bytes.
func TestBuildWinPEInjects(t *testing.T) {
	src := winpeSrc(t)
	iso := makeISO(t, src, true)
	wb := wimboot(t)
	drivers := t.TempDir()
	writeFiles(t, drivers, map[string]string{"net/e1000.inf": "[Version]", "net/e1000.sys": "sys", "storage/nvme.inf": "nvme"})
	startnet := filepath.Join(t.TempDir(), "startnet.cmd")
	os.WriteFile(startnet, []byte("wpeinit\r\nfor /r X:\\drivers %%i in (*.inf) do drvload \"%%i\"\r\n"), 0o644)
	srcWIM := sum(t, filepath.Join(src, "sources", "boot.wim"))

	e := newEnv(t)
	spec := Spec{ID: id(t, "pe@1.0.0"), Template: "winpe", From: iso, Wimboot: wb, Drivers: drivers, Startnet: startnet}
	a := e.mustBuild(t, spec)
	wim := filepath.Join(a.Dir, "boot.wim")
	dir := wimDir(t, wim)
	for _, p := range []string{"/drivers/net/e1000.inf", "/drivers/net/e1000.sys", "/drivers/storage/nvme.inf", "/Windows/System32/startnet.cmd", "/readme.txt"} {
		if !strings.Contains(dir, p+"\n") {
			t.Fatalf("%s is not in boot.wim:\n%s", p, dir)
		}
	}
	if got := wimCat(t, wim, "/Windows/System32/startnet.cmd"); !strings.Contains(got, "drvload") {
		t.Fatalf("startnet.cmd not replaced: %q", got)
	}
	f, _ := a.Manifest.File("boot.wim")
	if f.SHA256 == srcWIM || f.SHA256 != sum(t, wim) {
		t.Fatal("the manifest does not describe the updated boot.wim")
	}
	if len(a.Manifest.Sources) != 4 || a.Manifest.Sources[2].Origin != drivers || a.Manifest.Sources[3].Origin != startnet {
		t.Fatalf("sources: %+v", a.Manifest.Sources)
	}
	// Touch the inputs: their times must not reach the WIM.
	os.Chtimes(startnet, injectedTime.AddDate(30, 0, 0), injectedTime.AddDate(30, 0, 0))
	spec.ID = id(t, "pe@1.0.1")
	b := e.mustBuild(t, spec)
	x, _ := os.ReadFile(wim)
	y, _ := os.ReadFile(filepath.Join(b.Dir, "boot.wim"))
	if !bytes.Equal(x, y) {
		t.Fatal("two builds from the same inputs give different boot.wim files")
	}
	// --drivers through a link is the directory it leads to: the same
	// drivers go in (a walk of the link itself found none).
	link := filepath.Join(t.TempDir(), "drivers-current")
	if err := os.Symlink(drivers, link); err != nil {
		t.Fatal(err)
	}
	spec.ID, spec.Drivers = id(t, "pe@1.0.2"), link
	c := e.mustBuild(t, spec)
	if z, _ := os.ReadFile(filepath.Join(c.Dir, "boot.wim")); !bytes.Equal(x, z) {
		t.Fatalf("--drivers %s gives another boot.wim than the directory it leads to:\n%s", link, wimDir(t, filepath.Join(c.Dir, "boot.wim")))
	}
}

func TestBuildWinPERefusals(t *testing.T) {
	src := winpeSrc(t)
	wb := wimboot(t)
	e := newEnv(t)
	pe := func(from string) Spec {
		return Spec{ID: id(t, "pe@1.0.0"), Template: "winpe", From: from, Wimboot: wb}
	}

	noBCD := t.TempDir()
	os.CopyFS(noBCD, os.DirFS(src))
	os.Remove(filepath.Join(noBCD, "Boot", "BCD"))
	iso := makeISO(t, noBCD, true)
	_, err := e.build(t, pe(iso))
	mustContain(t, err, "winpe: BCD not found in "+iso+" (looked for boot/bcd, BCD)")
	if strings.Contains(err.Error(), "boot.sdi") {
		t.Fatalf("names pieces that are there: %v", err)
	}

	// Several missing pieces are all named.
	bare := t.TempDir()
	writeFiles(t, bare, map[string]string{"bootmgr": "x"})
	_, err = e.build(t, pe(bare))
	mustContain(t, err, "BCD not found", "boot.sdi not found in "+bare+" (looked for boot/boot.sdi)", "boot.wim not found in "+bare+" (looked for sources/boot.wim)")

	// Windows media hold their files on UDF, with only a README in ISO 9660.
	readme := t.TempDir()
	writeFiles(t, readme, map[string]string{"README.TXT": "This disc contains a UDF file system"})
	_, err = e.build(t, pe(makeISO(t, readme, false)))
	mustContain(t, err, "bootmgr not found", "holds only README.TXT", "give the directory to --from")

	badWIM := t.TempDir()
	os.CopyFS(badWIM, os.DirFS(src))
	os.WriteFile(filepath.Join(badWIM, "sources", "boot.wim"), []byte("not a wim"), 0o644)
	_, err = e.build(t, pe(badWIM))
	mustContain(t, err, "winpe: sources/boot.wim in "+badWIM+" is not a valid WIM: [ERROR]")

	s := pe(src)
	s.Wimboot = ""
	_, err = e.build(t, s)
	mustContain(t, err, "--wimboot FILE is required")
	s = pe(src)
	s.Kernel = "vmlinuz"
	_, err = e.build(t, s)
	mustContain(t, err, "--kernel belong to the other template")
	s = pe(src)
	s.Drivers = wb
	_, err = e.build(t, s)
	mustContain(t, err, "--drivers "+wb+" is not a directory")
	_, err = e.build(t, pe(wb))
	mustContain(t, err, "neither an ISO nor a directory")
	e.noLeftovers(t)
}

func TestLastModified(t *testing.T) {
	enc := func(s string) []byte {
		var b []byte
		b = append(b, 0xFF, 0xFE)
		for _, r := range s {
			b = append(b, byte(r), byte(r>>8))
		}
		return b
	}
	doc := `<WIM><IMAGE INDEX="1"><CREATIONTIME><HIGHPART>0x01DD815D</HIGHPART><LOWPART>0x729117FE</LOWPART></CREATIONTIME>` +
		`<LASTMODIFICATIONTIME><HIGHPART>0x01DD815E</HIGHPART><LOWPART>0x00000001</LOWPART></LASTMODIFICATIONTIME></IMAGE>` +
		`<IMAGE INDEX="2"><CREATIONTIME><HIGHPART>0x01DD8160</HIGHPART><LOWPART>0x00000002</LOWPART></CREATIONTIME></IMAGE></WIM>`
	for idx, want := range map[int]string{1: "0x01DD815E 0x00000001", 2: "0x01DD8160 0x00000002", 3: "0x01A8E79F 0xE1D58000"} {
		h, l, err := lastModified(enc(doc), idx)
		if err != nil || h+" "+l != want {
			t.Fatalf("image %d: %s %s %v, want %s", idx, h, l, err, want)
		}
	}
	// A value that is not a hex number never reaches the command line.
	h, l, err := lastModified(enc(`<WIM><IMAGE INDEX="1"><LASTMODIFICATIONTIME><HIGHPART>--x</HIGHPART><LOWPART>1</LOWPART></LASTMODIFICATIONTIME></IMAGE></WIM>`), 1)
	if err != nil || h != "0x01A8E79F" || l != "0xE1D58000" {
		t.Fatalf("bad value: %s %s %v", h, l, err)
	}
	if _, _, err := lastModified([]byte{1, 2, 3}, 1); err == nil {
		t.Fatal("odd-length UTF-16 accepted")
	}
}

func TestParseWIMInfo(t *testing.T) {
	m, err := parseWIMInfo("WIM Information:\n----\nPath:  x\nImage Count:    2\nCompression:    LZX\nBoot Index:     2\n")
	if err != nil || m.images != 2 || m.bootIndex != 2 || m.image() != 2 {
		t.Fatalf("%+v %v", m, err)
	}
	if m, _ := parseWIMInfo("Image Count: 3\nBoot Index: 0\n"); m.image() != 1 {
		t.Fatalf("no boot index: image %d", m.image())
	}
	for _, bad := range []string{"", "Image Count: x\nBoot Index: 1", "Image Count: 0\nBoot Index: 0", "Image Count: 1\n"} {
		if _, err := parseWIMInfo(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

// FuzzLastModified feeds untrusted WIM XML: an error or a hex pair, never
// a panic or anything else on the command line.
func FuzzLastModified(f *testing.F) {
	f.Add([]byte("\xff\xfe<\x00W\x00I\x00M\x00>\x00"), 1)
	f.Add([]byte(`<WIM><IMAGE INDEX="1"><LASTMODIFICATIONTIME><HIGHPART>0x1</HIGHPART><LOWPART>0x2</LOWPART></LASTMODIFICATIONTIME></IMAGE></WIM>`), 1)
	f.Fuzz(func(t *testing.T, raw []byte, idx int) {
		h, l, err := lastModified(raw, idx)
		if err == nil && (!hexPart.MatchString(h) || !hexPart.MatchString(l)) {
			t.Fatalf("%q %q", h, l)
		}
	})
}

// The sources a build hashed are the sources it copies. A wrapper of
// wimlib-imagex changes --startnet or a file of --drivers when the build
// first runs it (after every source was hashed, before the two are copied
// into boot.wim), as anything else writing there at that moment would.
// Before, the build read them again by name: it put the new bytes into
// boot.wim under the pinned digest of the old ones, skipped a driver that
// had become a link, and blocked for good opening a FIFO put in
// startnet.cmd's place.
func TestBuildWinPECopiesWhatItHashed(t *testing.T) {
	need(t, "wimlib-imagex")
	src := winpeSrc(t)
	wb := wimboot(t)
	tests := []struct {
		name string
		swap string // shell, run in the directory holding drivers/ and startnet.cmd
		want string // in the error; "" for a build that succeeds with the hashed startnet.cmd
	}{
		{"startnet renamed over", `echo evil > new && mv new startnet.cmd`, ""},
		{"startnet a FIFO", `mkfifo new && mv new startnet.cmd`, ""},
		{"startnet rewritten", `echo evil > startnet.cmd`, "staging --startnet: it changed while the build read it"},
		{"driver renamed over", `echo evil > new && mv new drivers/net/e1000.sys`, "net/e1000.sys: it changed while the build read it"},
		{"driver a link", `ln -sf /etc/passwd drivers/net/e1000.sys`, "1 of its files are gone or no longer regular files"},
		{"driver added", `echo new > drivers/net/new.sys`, "net/new.sys appeared after the source was hashed"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"drivers/net/e1000.inf": "[Version]", "drivers/net/e1000.sys": "sys", "startnet.cmd": "wpeinit\r\n"})
			wrapper := filepath.Join(t.TempDir(), "wimlib-imagex")
			script := "#!/bin/sh\nif [ ! -e " + dir + "/swapped ]; then touch " + dir + "/swapped; (cd " + dir + " && " + tt.swap + ") || exit 9; fi\nexec wimlib-imagex \"$@\"\n"
			if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			e := newEnv(t)
			e.b.Wimlib = wrapper
			spec := Spec{ID: id(t, fmt.Sprintf("pe@1.0.%d", i)), Template: "winpe", From: src, Wimboot: wb,
				Drivers: filepath.Join(dir, "drivers"), Startnet: filepath.Join(dir, "startnet.cmd"),
				Pins: map[string]string{src: "", wb: sum(t, wb), filepath.Join(dir, "startnet.cmd"): sum(t, filepath.Join(dir, "startnet.cmd"))}}
			spec.Pins[src] = pinOf(t, src)
			spec.Pins[spec.Drivers] = pinOf(t, spec.Drivers)
			type result struct {
				res *Result
				err error
			}
			done := make(chan result, 1)
			go func() {
				res, err := e.build(t, spec)
				done <- result{res, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(30 * time.Second):
				// Not a time limit on the build: it is blocked in open(2)
				// on the FIFO and would stay there; a writer that comes
				// and goes lets it return, to end the test.
				if w, err := os.OpenFile(spec.Startnet, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					w.Close()
				}
				<-done
				t.Fatal("the build blocked opening a FIFO that took the place of a source it had hashed")
			}
			if tt.want != "" {
				if r.err == nil {
					t.Fatalf("%s: built, though what it copied is not what it hashed", tt.name)
				}
				mustContain(t, r.err, tt.want)
				e.noLeftovers(t)
				return
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			if got := wimCat(t, filepath.Join(r.res.Dir, "boot.wim"), "/Windows/System32/startnet.cmd"); got != "wpeinit\r\n" {
				t.Fatalf("startnet.cmd in boot.wim is %q, not the bytes hashed and pinned", got)
			}
			if d := wimDir(t, filepath.Join(r.res.Dir, "boot.wim")); !strings.Contains(d, "/drivers/net/e1000.sys\n") {
				t.Fatalf("a driver is missing from boot.wim:\n%s", d)
			}
		})
	}
}

// pinOf is the digest a recipe pins a directory source to.
func pinOf(t *testing.T, dir string) string {
	t.Helper()
	_, digest := hashDirAt(t, dir)
	return digest
}
