package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// GRUB that enforces bootforge's OpenPGP signatures (issue 13, part 3):
// the GRUB comes from `bootforge grub build`, the profile has
// `signed: true`, and bootforge serves <path>.sig for the client's menu,
// the kernel and the initrd.

func signedGRUBLab(t *testing.T, loaders string, write map[string]string) *menuLab {
	return newMenuLab(t, menuLabOptions{
		DHCP: "  loaders: {" + loaders + "}\n",
		Inventory: `inventory:
  profiles:
    - name: signed
      signed: true
      match: [{oui: "52:54:00"}]
      menu:
        default: one
        timeout: 1s
        entries:
` + linuxEntries("", "one"),
		Write: write,
	})
}

// sigTransfers returns the .sig files bootforge sent over TFTP.
func sigTransfers(m *menuLab) map[string]bool {
	out := map[string]bool{}
	for _, r := range serverRecordsAny(m.Server, "tftp transfer") {
		if f := strings.TrimPrefix(r["file"], "/"); r["result"] == "ok" && strings.HasSuffix(f, ".sig") {
			out[f] = true
		}
	}
	return out
}

func requireSigs(t *testing.T, m *menuLab, mac string) {
	t.Helper()
	got := sigTransfers(m)
	// The menu comes by the path that carries GRUB's SMBIOS facts
	// (bootforge/grub/<mac>/uuid=.../grub.cfg): smbios and test are
	// built into this GRUB.
	menuSig := "bootforge/grub/" + mac + "/uuid=....../grub.cfg.sig"
	for f := range got {
		if strings.HasPrefix(f, "bootforge/grub/"+mac+"/uuid=") && strings.HasSuffix(f, "/grub.cfg.sig") {
			menuSig = f
		}
	}
	for _, want := range []string{menuSig, "vmlinuz.sig", "initrd.gz.sig"} {
		if !got[want] {
			t.Errorf("GRUB did not fetch %s over TFTP; .sig transfers: %v; log: %v", want, got, tftpLog(m.Server, `^192\.0\.2\.1\d\d`))
		}
	}
}

// gsBoot boots to the marker, with a shorter wait than the menu tests.
func gsBoot(t *testing.T, m *menuLab, firmware, mac string) (*VM, string) {
	t.Helper()
	vm, got := BootVM(t, VMOptions{Lab: m.Lab, Firmware: firmware, MAC: mac, Timeout: gsTimeout, Expect: bmMarkerRE})
	t.Logf("%s %s: marker after %s", firmware, mac, vm.Elapsed().Round(time.Millisecond))
	return vm, got[1]
}

const gsTimeout = 180 * time.Second

func TestGRUBSignedUEFI(t *testing.T) {
	const mac = "52:54:00:b9:00:01"
	m := signedGRUBLab(t, "efi_x64: grub/bootforge-signed-x64.efi", nil)
	out := m.cli(t, "grub", "build")
	if !strings.Contains(out, "dhcp.loaders.efi_x64: grub/bootforge-signed-x64.efi") {
		t.Fatalf("grub build printed:\n%s", out)
	}
	if st, err := os.Stat(filepath.Join(m.Server.DataDir, "keys", "openpgp.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("OpenPGP private key: %v", err)
	}

	vm, cmdline := gsBoot(t, m, "uefi", mac)
	if got := markers(cmdline); len(got) != 1 || got[0] != "bfmarker=signed-one" {
		t.Errorf("markers %v, want [bfmarker=signed-one]", got)
	}
	if !strings.Contains(vm.Console(), "bootforge: initrd verified") {
		t.Errorf("the console does not show the signed menu's checks:\n%s", vm.Tail(30))
	}
	vm.Kill()
	requireSigs(t, m, mac)

	// Swap in an initrd with one byte changed, same size and time:
	// bootforge's signature cache (path, size, mtime) keeps serving the
	// original's signature, which no longer matches.
	initrd := filepath.Join(m.Server.Root, "initrd.gz")
	st, err := os.Stat(initrd)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(initrd)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(initrd, b, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(initrd, st.ModTime(), st.ModTime())

	vm = StartVM(t, VMOptions{Lab: m.Lab, Firmware: "uefi", MAC: mac})
	stop := regexp.MustCompile(`bootforge: the initrd did not load or its signature is bad; not booting`)
	if _, err := vm.WaitFor(stop, gsTimeout); err != nil {
		t.Fatalf("tampered initrd: %v\nconsole tail:\n%s", err, vm.Tail(40))
	}
	time.Sleep(3 * time.Second)
	con := vm.Console()
	if !strings.Contains(con, "bad signature") {
		t.Errorf("console shows no GRUB signature error:\n%s", vm.Tail(40))
	}
	if strings.Contains(con, BootMarker) {
		t.Errorf("the kernel booted despite the tampered initrd:\n%s", vm.Tail(40))
	}
	t.Logf("tampered initrd refused:\n%s", vm.Tail(8))
	vm.Kill()
}

func TestGRUBSignedBIOS(t *testing.T) {
	const mac = "52:54:00:b9:00:02"
	const core = "grub/bootforge-signed-i386-pc.0"
	// QEMU's ROM is iPXE, which gets this script (a disk file wins over the
	// generated one) and loads the GRUB PXE core over TFTP, as a plain PXE
	// ROM given dhcp.loaders.bios would.
	m := signedGRUBLab(t, "bios: "+core, map[string]string{"boot.ipxe": "#!ipxe\n" +
		"echo bootforge-e2e: chaining the GRUB core over TFTP\n" +
		"set net0/filename " + core + "\n" +
		"chain tftp://192.0.2.1/" + core + "\n"})
	out := m.cli(t, "grub", "build", "--platform", "i386-pc")
	if !strings.Contains(out, "dhcp.loaders.bios: "+core) {
		t.Fatalf("grub build printed:\n%s", out)
	}
	vm, cmdline := gsBoot(t, m, "bios", mac)
	if got := markers(cmdline); len(got) != 1 || got[0] != "bfmarker=signed-one" {
		t.Errorf("markers %v, want [bfmarker=signed-one]", got)
	}
	vm.Kill()
	requireSigs(t, m, mac)
}
