package e2e

// Image versions in menus, booted by real firmware: two versions of one
// image differ only in their command line marker; promote and rollback
// move the active pointer, and a VM booting `image: deb` gets the version
// active at the time. A constraint entry keeps its version whatever is
// active.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestImageVersionsBoot(t *testing.T) {
	t.Parallel()
	const mac = "52:54:00:1a:0e:01"
	kernel, initrd := NetbootKernel(t)
	invDir := t.TempDir()
	m := newMenuLab(t, menuLabOptions{
		Inventory: `inventory:
  dir: ` + invDir + `
  default_profile: plain
  profiles:
    - name: plain
      menu:
        entries:
` + linuxEntries("", "p"),
	})
	for _, v := range []struct{ version, marker string }{{"1.0.0", "img-v1"}, {"1.1.0", "img-v2"}} {
		out := m.cli(t, "image", "build", "deb@"+v.version, "--template", "linux", "--kernel", kernel, "--initrd", initrd,
			"--cmdline", "console=ttyS0 quiet panic=-1 bfmarker="+v.marker)
		t.Logf("image build deb@%s:\n%s", v.version, out)
	}
	m.cli(t, "image", "promote", "deb@1.0.0")

	// A profile for this VM: its default boots the active version; the
	// other entry pins ~1.0.0.
	reloads := func() int { return m.Server.CountLog(`msg="inventory loaded"`) }
	waitReload := func(after int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for reloads() <= after {
			if time.Now().After(deadline) {
				t.Fatalf("the server did not reload its inventory:\n%s", m.Server.Log())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	before := reloads()
	profile := `name: img
match: [{mac: "` + mac + `"}]
menu:
  default: current
  timeout: 1s
  entries:
    - {name: current, image: deb}
    - {name: old, image: "deb@~1.0.0"}
`
	if err := os.MkdirAll(filepath.Join(invDir, "profiles"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(invDir, "profiles", "img.yaml"), []byte(profile), 0o644); err != nil {
		t.Fatal(err)
	}
	waitReload(before)

	render := func() string {
		return m.cli(t, "menu", "render", "--mac", mac, "--arch", "bios")
	}
	bootMarker := func(want string) {
		t.Helper()
		vm, cmdline := m.boot(t, "bios", mac)
		defer vm.Kill()
		if got := markers(cmdline); len(got) != 1 || got[0] != "bfmarker="+want {
			t.Fatalf("the VM booted markers %v, want [bfmarker=%s]\nmenu render:\n%s", got, want, render())
		}
	}

	out := render()
	for _, w := range []string{`entry "current" boots deb@1.0.0`, `entry "old" boots deb@1.0.0`, "images/deb/1.0.0/"} {
		if !strings.Contains(out, w) {
			t.Errorf("menu render with deb@1.0.0 active lacks %q:\n%s", w, out)
		}
	}
	bootMarker("img-v1")

	before = reloads()
	m.cli(t, "image", "promote", "deb@1.1.0")
	waitReload(before)
	out = render()
	for _, w := range []string{`entry "current" boots deb@1.1.0`, `entry "old" boots deb@1.0.0`} {
		if !strings.Contains(out, w) {
			t.Errorf("menu render after promoting deb@1.1.0 lacks %q:\n%s", w, out)
		}
	}
	bootMarker("img-v2")

	before = reloads()
	m.cli(t, "image", "rollback", "deb")
	waitReload(before)
	if out := render(); !strings.Contains(out, `entry "current" boots deb@1.0.0`) {
		t.Errorf("menu render after rollback:\n%s", out)
	}
	bootMarker("img-v1")

	// The boot log names the version each kernel fetch belonged to.
	logOut := m.cli(t, "log", "--mac", mac, "--json")
	for _, w := range []string{`"image":"deb@1.0.0"`, `"image":"deb@1.1.0"`} {
		if !strings.Contains(strings.ReplaceAll(logOut, " ", ""), w) {
			t.Errorf("bootforge log --mac %s --json has no event with %s", mac, w)
		}
	}
}
