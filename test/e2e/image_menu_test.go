package e2e

// A built WinPE image in a menu: the entry is filled from its manifest,
// and each menu language renders it as far as its loader can.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestImageWinPEMenuEntry(t *testing.T) {
	t.Parallel()
	src := winpeMedium(t)
	wimboot := filepath.Join(t.TempDir(), "wimboot")
	copyBytes(t, wimboot, "dummy wimboot, supplied by the operator")
	e := newImgEnv(t)
	e.mustBuild(t, "winpe@1.0.0", "--template", "winpe", "--from", isoOf(t, src, "xorriso"), "--wimboot", wimboot)

	const mac = "52:54:00:1a:0e:02"
	cfg := filepath.Join(t.TempDir(), "bootforge.yaml")
	write := func(inventory string) {
		t.Helper()
		text := fmt.Sprintf("root: %s\ndata_dir: %s\n%s", e.root, e.data, inventory)
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cli := func(args ...string) (string, int) {
		t.Helper()
		return clRun(t, time.Minute, nil, append([]string{"--config", cfg}, args...)...)
	}
	write(`inventory:
  default_profile: pe
  profiles:
    - name: pe
      menu:
        entries:
          - {name: winpe, label: "Windows PE", image: winpe}
`)
	// Built but not active: refused, naming profile and entry.
	out, code := cli("menu", "render", "--mac", mac)
	if code == 0 || !strings.Contains(out, `profile "pe"`) || !strings.Contains(out, `entry "winpe"`) || !strings.Contains(out, "no version is active") {
		t.Fatalf("an image with no active version: exit %d, want a refusal naming profile and entry:\n%s", code, out)
	}
	if out, code := cli("image", "promote", "winpe@1.0.0"); code != 0 {
		t.Fatalf("image promote: %s", out)
	}
	dir := "images/winpe/1.0.0/"
	want := map[string][]string{
		"ipxe": {"# image: entry \"winpe\" boots winpe@1.0.0",
			"kernel http://SERVER:8080/" + dir + "wimboot\n",
			"initrd http://SERVER:8080/" + dir + "bootmgr bootmgr\n",
			"initrd http://SERVER:8080/" + dir + "BCD BCD\n",
			"initrd http://SERVER:8080/" + dir + "boot.sdi boot.sdi\n",
			"initrd http://SERVER:8080/" + dir + "boot.wim boot.wim\n"},
		// pxelinux runs wimboot through linux.c32 with named initrds;
		// GRUB says the entry needs iPXE.
		"pxelinux": {"Windows PE", "COM32 linux.c32\n", "APPEND " + dir + "wimboot initrdfile=" + dir + "bootmgr@bootmgr,"},
		"grub":     {"Windows PE", "needs iPXE"},
	}
	for format, ws := range want {
		out, code := cli("menu", "render", "--mac", mac, "--format", format)
		if code != 0 {
			t.Fatalf("menu render --format %s: exit %d\n%s", format, code, out)
		}
		for _, w := range ws {
			if !strings.Contains(out, w) {
				t.Errorf("menu render --format %s lacks %q:\n%s", format, w, out)
			}
		}
	}

	// A constraint no version meets refuses the inventory, naming both.
	write(`inventory:
  default_profile: pe
  profiles:
    - name: pe
      menu:
        entries:
          - {name: winpe, image: "winpe@^2"}
`)
	out, code = cli("menu", "render", "--mac", mac)
	if code == 0 || !strings.Contains(out, `profile "pe"`) || !strings.Contains(out, `entry "winpe"`) || !strings.Contains(out, "no built version matches") {
		t.Fatalf("winpe@^2: exit %d, want a refusal:\n%s", code, out)
	}
}
