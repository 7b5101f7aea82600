package e2e

// gc beside a running server, as an operator meets it: a menu entry that
// pins an old version keeps it through `image gc`; a version directory
// copied by hand (its manifest describes another version) is named and
// left out, while list, verify, gc and the server's menus go on; and the
// work directory of a build that was killed is removed.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestImageGCBesideMenus(t *testing.T) {
	need(t, "curl")
	root, invDir := t.TempDir(), t.TempDir()
	cfg := "inventory:\n  dir: " + invDir + "\n  default_profile: lab\n"
	os.MkdirAll(filepath.Join(invDir, "profiles"), 0o755)
	if err := os.WriteFile(filepath.Join(invDir, "profiles", "lab.yaml"), []byte("name: lab\nmenu: {entries: [{name: disk, kind: local}]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := StartServer(t, ServerOptions{Root: root, Config: cfg})
	cliCfg := filepath.Join(t.TempDir(), "bootforge.yaml")
	if err := os.WriteFile(cliCfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cli := func(wantOK bool, args ...string) string {
		t.Helper()
		out, err := run(t, 60*time.Second, binary, append(args, "--config", cliCfg, "--root", root, "--data-dir", s.DataDir)...)
		if (err == nil) != wantOK {
			t.Fatalf("bootforge %s: err %v, want ok=%v\n%s", strings.Join(args, " "), err, wantOK, out)
		}
		return out
	}
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0"} {
		icWriteVersion(t, root, "deb@"+v, map[string][]byte{"vmlinuz": icRandom(t, 3000), "initrd.gz": icRandom(t, 500)})
		cli(true, "image", "promote", "deb@"+v)
	}
	reloads := func() int { return s.CountLog(`msg="inventory loaded"`) }
	before := reloads()
	profile := "name: lab\nmenu:\n  default: install\n  entries:\n    - {name: install, image: deb}\n    - {name: previous, image: \"deb@~1.0.0\"}\n"
	if err := os.WriteFile(filepath.Join(invDir, "profiles", "lab.yaml"), []byte(profile), 0o644); err != nil {
		t.Fatal(err)
	}
	menu := func() string {
		t.Helper()
		res := htCurl(t, "http://"+s.HTTPAddr+"/bootforge/ipxe?mac=52:54:00:00:00:01")
		if res.code != 200 {
			t.Fatalf("menu: status %d\n%s", res.code, res.body)
		}
		return string(res.body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for reloads() <= before || !strings.Contains(menu(), "images/deb/1.0.0/vmlinuz") {
		if time.Now().After(deadline) {
			t.Fatalf("the menu never named deb@1.0.0:\n%s\n%s", menu(), s.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Retired: 1.0.0, 1.1.0, 1.2.0. With --keep 1, 1.1.0 goes; 1.0.0 stays
	// because "previous" boots it.
	out := cli(true, "image", "gc", "--keep", "1")
	if !strings.Contains(out, "kept deb@1.0.0: a menu entry boots it") || !strings.Contains(out, "removed deb@1.1.0") || strings.Contains(out, "removed deb@1.0.0") {
		t.Fatalf("image gc:\n%s", out)
	}
	if res := htCurl(t, "http://"+s.HTTPAddr+"/images/deb/1.0.0/vmlinuz"); res.code != 200 {
		t.Errorf("the kernel of deb@1.0.0 after gc: status %d", res.code)
	}
	time.Sleep(2500 * time.Millisecond) // past the server's inventory check
	if !strings.Contains(menu(), "images/deb/1.0.0/vmlinuz") || s.CountLog("inventory refused") != 0 {
		t.Errorf("the menu after gc lost deb@1.0.0:\n%s\n%s", menu(), s.Log())
	}

	// A version directory copied by hand: its manifest says deb@1.3.0.
	copyDir(t, filepath.Join(root, "images", "deb", "1.3.0"), filepath.Join(root, "images", "deb", "1.3.1"))
	out = cli(true, "image", "list")
	if !strings.Contains(out, "deb@1.3.1: ") || !strings.Contains(out, "describes deb@1.3.0") || !strings.Contains(out, "1.3.0") {
		t.Errorf("image list with a copied version:\n%s", out)
	}
	out = cli(false, "image", "verify")
	if !strings.Contains(out, "DRIFT deb@1.3.1: manifest.json: unreadable") {
		t.Errorf("image verify with a copied version:\n%s", out)
	}
	if out := cli(true, "image", "verify", "deb@1.3.0"); !strings.Contains(out, "no drift") {
		t.Errorf("image verify of a sound version beside a broken one:\n%s", out)
	}
	if !strings.Contains(menu(), "images/deb/1.3.0/vmlinuz") {
		t.Errorf("the menu with a broken version beside:\n%s", menu())
	}

	// The work directory of a build that was killed (no process holds it).
	killed := filepath.Join(root, "images", ".build-deb-4242")
	os.MkdirAll(filepath.Join(killed, "version"), 0o755)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(killed, old, old)
	out = cli(true, "image", "gc")
	if !strings.Contains(out, "removed "+killed) || !strings.Contains(out, "no blob removed while it is there") {
		t.Errorf("image gc with a killed build's directory and a broken version:\n%s", out)
	}
	if _, err := os.Stat(killed); !os.IsNotExist(err) {
		t.Errorf("the killed build's directory: %v", err)
	}
}

// copyDir copies a tree of directories and regular files.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if info.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
