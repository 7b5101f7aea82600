package vmtest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// qemuBinary is the emulator; it always runs with TCG.
const qemuBinary = "qemu-system-x86_64"

// hostFile is a file from a Debian package that the test needs.
type hostFile struct {
	Src string // path on this machine
	Dst string // name in the private root ("" for firmware, not served)
	Pkg string // the Debian package that installs it
}

// loaderFiles are the boot loaders copied into the private root, from the
// paths `bootforge init` copies them from, with the firmware that cannot
// boot without each. The others are copied when present, so that a client
// that asks for them gets them.
var loaderFiles = []struct {
	hostFile
	NeededBy []Firmware
}{
	{hostFile{"/usr/lib/ipxe/undionly.kpxe", "undionly.kpxe", "ipxe"}, nil},
	{hostFile{"/usr/lib/ipxe/snponly.efi", "snponly.efi", "ipxe"}, []Firmware{UEFI}},
	{hostFile{"/usr/lib/ipxe/ipxe.efi", "ipxe.efi", "ipxe"}, nil},
	{hostFile{"/usr/lib/shim/shimx64.efi.signed", "shimx64.efi", "shim-signed"}, []Firmware{SecureBoot}},
	{hostFile{"/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed", "grubx64.efi", "grub-efi-amd64-signed"}, []Firmware{SecureBoot}},
}

// vmFirmware is what QEMU needs per firmware: the NIC's option ROM for
// BIOS (QEMU's iPXE), the OVMF code and variable store for UEFI. The
// variable store is copied per VM, as the firmware writes it.
type vmFirmware struct {
	ROM, Code, Vars hostFile
}

var vmFirmwares = map[Firmware]vmFirmware{
	BIOS: {ROM: hostFile{Src: "/usr/lib/ipxe/qemu/pxe-e1000.rom", Pkg: "ipxe-qemu"}},
	UEFI: {
		Code: hostFile{Src: "/usr/share/OVMF/OVMF_CODE_4M.fd", Pkg: "ovmf"},
		Vars: hostFile{Src: "/usr/share/OVMF/OVMF_VARS_4M.fd", Pkg: "ovmf"},
	},
	SecureBoot: {
		Code: hostFile{Src: "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", Pkg: "ovmf"},
		Vars: hostFile{Src: "/usr/share/OVMF/OVMF_VARS_4M.ms.fd", Pkg: "ovmf"},
	},
}

// system is what preflight asks of the machine; tests replace it.
type system struct {
	Geteuid  func() int
	LookPath func(string) (string, error)
	Exists   func(string) bool
}

var realSystem = system{
	Geteuid:  os.Geteuid,
	LookPath: exec.LookPath,
	Exists: func(p string) bool {
		st, err := os.Stat(p)
		return err == nil && st.Mode().IsRegular()
	},
}

// preflight says, all at once and before anything is set up, what this
// machine lacks to run a test with fw: root, the programs, the firmware
// and the loaders, each with the Debian package that brings it.
func (s system) preflight(fw Firmware) error {
	var miss []string
	if s.Geteuid() != 0 {
		miss = append(miss, "root: image test creates a network namespace, a bridge and a tap device (run it as root, e.g. with sudo)")
	}
	for _, p := range []struct{ name, pkg string }{{qemuBinary, "qemu-system-x86"}, {"ip", "iproute2"}} {
		if _, err := s.LookPath(p.name); err != nil {
			miss = append(miss, fmt.Sprintf("%s: not found in PATH (Debian package %s)", p.name, p.pkg))
		}
	}
	vf := vmFirmwares[fw]
	for _, f := range []hostFile{vf.ROM, vf.Code, vf.Vars} {
		if f.Src != "" && !s.Exists(f.Src) {
			miss = append(miss, fmt.Sprintf("%s: missing, the %s firmware (Debian package %s)", f.Src, fw, f.Pkg))
		}
	}
	for _, l := range loaderFiles {
		if slices.Contains(l.NeededBy, fw) && !s.Exists(l.Src) {
			miss = append(miss, fmt.Sprintf("%s: missing, the loader %s (Debian package %s)", l.Src, l.Dst, l.Pkg))
		}
	}
	if len(miss) > 0 {
		return fmt.Errorf("image test cannot run here; it needs:\n  %s", strings.Join(miss, "\n  "))
	}
	return nil
}

// copyLoaders copies the loaders there are into root.
func copyLoaders(root string) error {
	for _, l := range loaderFiles {
		if err := copyFile(l.Src, filepath.Join(root, l.Dst)); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // preflight checked the ones this firmware needs
			}
			return fmt.Errorf("loader %s: %w", l.Dst, err)
		}
	}
	return nil
}

// linkFile makes dst the same file as src (a hard link: no copy, no
// space), or copies it where a link cannot be made (another file system).
func linkFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	return copyFile(src, dst)
}

// copyFile copies src to a new file dst, readable by all.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
