package vmtest

import (
	"fmt"
	"regexp"
	"strings"
)

// vmSpec is one VM.
type vmSpec struct {
	Firmware Firmware
	Tap      string // tap device in the namespace
	MAC      string
	Memory   int    // MiB
	ROM      string // BIOS: the NIC's option ROM (QEMU's iPXE)
	Code     string // UEFI: OVMF code, read-only
	Vars     string // UEFI: this VM's copy of the variable store
}

// qemuArgs is the QEMU command line: TCG always (KVM is not assumed), no
// default devices, the serial console on stdout and nothing else there
// (-nographic, no monitor), no reboot (a reset ends QEMU), one NIC on the
// tap.
//
//   - BIOS: SeaBIOS, an e1000 with QEMU's iPXE ROM, boot from the network.
//     -nographic also makes SeaBIOS copy its and iPXE's screen to the
//     serial port, so a failing boot shows how far it got.
//   - UEFI: OVMF, virtio-net with no option ROM, so that EDK2's own PXE
//     client does DHCP and TFTP, as on real UEFI machines.
//   - Secure Boot: as UEFI, with the Secure Boot OVMF on a q35 machine
//     with SMM (which it requires) and S3 off.
func qemuArgs(s vmSpec) []string {
	args := []string{"-accel", "tcg", "-nodefaults", "-nographic",
		"-serial", "stdio", "-monitor", "none", "-parallel", "none", "-no-reboot",
		"-m", fmt.Sprint(s.Memory),
		"-netdev", "tap,id=n0,ifname=" + s.Tap + ",script=no,downscript=no"}
	switch s.Firmware {
	case BIOS:
		args = append(args, "-boot", "n",
			"-device", "e1000,netdev=n0,mac="+s.MAC+",romfile="+s.ROM)
	case UEFI, SecureBoot:
		if s.Firmware == SecureBoot {
			args = append(args, "-machine", "q35,smm=on", "-global", "ICH9-LPC.disable_s3=1")
		}
		args = append(args,
			"-drive", "if=pflash,format=raw,readonly=on,file="+s.Code,
			"-drive", "if=pflash,format=raw,file="+s.Vars,
			"-device", "virtio-net-pci,netdev=n0,mac="+s.MAC+",romfile=")
	}
	return args
}

// logLinesFor picks the server's log lines about one VM: those naming its
// MAC or its address (as a whole address: 192.0.2.10 is not 192.0.2.100),
// and every warning and error, which may be why the VM got nothing.
func logLinesFor(lines []string, mac, ip string) []string {
	ipRE := regexp.MustCompile(`(^|[^0-9.])` + regexp.QuoteMeta(ip) + `($|[^0-9])`)
	mac = strings.ToLower(mac)
	var out []string
	for _, l := range lines {
		switch {
		case mac != "" && strings.Contains(strings.ToLower(l), mac),
			ip != "" && ipRE.MatchString(l),
			strings.Contains(l, "level=WARN"), strings.Contains(l, "level=ERROR"):
			out = append(out, l)
		}
	}
	return out
}
