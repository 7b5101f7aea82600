package boot

import (
	"fmt"
	"strconv"
	"strings"
)

// Arch is the client system architecture of DHCP option 93 (RFC 4578 and
// the IANA "Processor Architecture Types" registry).
type Arch uint16

// The architectures a boot server meets. RFC 4578 lists 7 as "EFI BC" and
// 9 as "EFI x86-64"; its errata swap them, and firmware in the field sends
// both for x64 UEFI, so both mean x64 here.
const (
	ArchBIOS       Arch = 0  // Intel x86PC: a BIOS PXE ROM
	ArchEFIia32    Arch = 6  // 32-bit x86 UEFI
	ArchEFIx64     Arch = 7  // x64 UEFI (RFC errata)
	ArchEFIBC      Arch = 9  // x64 UEFI as well (RFC 4578 text)
	ArchEFIarm32   Arch = 10 // 32-bit ARM UEFI
	ArchEFIarm64   Arch = 11 // 64-bit ARM UEFI
	ArchHTTPia32   Arch = 15 // x86 UEFI HTTP boot
	ArchHTTPx64    Arch = 16 // x64 UEFI HTTP boot
	ArchHTTPBC     Arch = 17 // EFI BC HTTP boot (x64 in practice)
	ArchHTTParm32  Arch = 18 // ARM32 UEFI HTTP boot
	ArchHTTParm64  Arch = 19 // ARM64 UEFI HTTP boot
	ArchHTTPBIOS   Arch = 20 // x86 BIOS HTTP boot
	ArchRISCV64    Arch = 27 // RISC-V 64 UEFI
	ArchRISCV64HTP Arch = 28 // RISC-V 64 UEFI HTTP boot
)

// Firmware is the kind of loader a client can run.
type Firmware string

// Firmware kinds.
const (
	FirmwareUnknown  Firmware = ""
	FirmwareBIOS     Firmware = "bios"
	FirmwareEFIia32  Firmware = "efi-ia32"
	FirmwareEFIx64   Firmware = "efi-x64"
	FirmwareEFIarm32 Firmware = "efi-arm32"
	FirmwareEFIarm64 Firmware = "efi-arm64"
	FirmwareEFIrv64  Firmware = "efi-riscv64"
)

// firmwares is the one table of firmware kinds: the option 93 codes each
// sends for PXE and for HTTP boot (the first is the one it is known by),
// and how iPXE names its build (${buildarch}, ${platform}). Every other
// mapping in bootforge — parsing names and numbers, iPXE's report, the
// errors that list the names — reads it.
var firmwares = []struct {
	fw        Firmware
	pxe, http []Arch
	buildarch string // iPXE ${buildarch}
	efi       bool   // iPXE ${platform} is "efi" rather than "pcbios"
}{
	{FirmwareBIOS, []Arch{ArchBIOS}, []Arch{ArchHTTPBIOS}, "i386", false},
	{FirmwareEFIia32, []Arch{ArchEFIia32}, []Arch{ArchHTTPia32}, "i386", true},
	{FirmwareEFIx64, []Arch{ArchEFIx64, ArchEFIBC}, []Arch{ArchHTTPx64, ArchHTTPBC}, "x86_64", true},
	{FirmwareEFIarm32, []Arch{ArchEFIarm32}, []Arch{ArchHTTParm32}, "arm32", true},
	{FirmwareEFIarm64, []Arch{ArchEFIarm64}, []Arch{ArchHTTParm64}, "arm64", true},
	{FirmwareEFIrv64, []Arch{ArchRISCV64}, []Arch{ArchRISCV64HTP}, "riscv64", true},
}

// Firmwares lists every known firmware kind, in the table's order.
func Firmwares() []Firmware {
	out := make([]Firmware, len(firmwares))
	for i, f := range firmwares {
		out[i] = f.fw
	}
	return out
}

// FirmwareNames is the list of names for error messages.
func FirmwareNames() string {
	names := make([]string, len(firmwares))
	for i, f := range firmwares {
		names[i] = string(f.fw)
	}
	return strings.Join(names, ", ")
}

// Known reports whether fw is in the table.
func (fw Firmware) Known() bool {
	for _, f := range firmwares {
		if f.fw == fw {
			return true
		}
	}
	return false
}

// ParseFirmware reads a firmware name such as efi-x64.
func ParseFirmware(s string) (Firmware, error) {
	if fw := Firmware(s); fw.Known() {
		return fw, nil
	}
	return FirmwareUnknown, fmt.Errorf("%q is not one of %s", s, FirmwareNames())
}

// EFI reports whether the firmware is UEFI.
func (fw Firmware) EFI() bool { return fw.Known() && fw != FirmwareBIOS }

// Arch is the option 93 code this firmware sends when it PXE-boots (or
// HTTP-boots, if http).
func (fw Firmware) Arch(http bool) (Arch, bool) {
	for _, f := range firmwares {
		if f.fw == fw {
			if http {
				return f.http[0], true
			}
			return f.pxe[0], true
		}
	}
	return 0, false
}

// Firmware returns what kind of loader the architecture runs and whether it
// boots over HTTP rather than TFTP.
func (a Arch) Firmware() (fw Firmware, http bool) {
	for _, f := range firmwares {
		for _, c := range f.pxe {
			if c == a {
				return f.fw, false
			}
		}
		for _, c := range f.http {
			if c == a {
				return f.fw, true
			}
		}
	}
	return FirmwareUnknown, false
}

func (a Arch) String() string {
	fw, http := a.Firmware()
	if fw == FirmwareUnknown {
		return fmt.Sprintf("arch-%d", uint16(a))
	}
	if http {
		return string(fw) + "-http"
	}
	return string(fw)
}

// ParseArch reads an option 93 architecture: a number (0, 7, 16, ...), a
// firmware name (efi-x64: its PXE code) or a name with -http (efi-x64-http:
// its UEFI HTTP boot code).
func ParseArch(s string) (Arch, error) {
	if n, err := strconv.ParseUint(s, 10, 16); err == nil {
		a := Arch(n)
		if fw, _ := a.Firmware(); fw == FirmwareUnknown {
			return 0, fmt.Errorf("%s is not a known client architecture number", s)
		}
		return a, nil
	}
	name, http := strings.CutSuffix(s, "-http")
	if a, ok := Firmware(name).Arch(http); ok {
		return a, nil
	}
	return 0, fmt.Errorf("%q is not one of %s (add -http for UEFI HTTP boot), nor an option 93 number", s, FirmwareNames())
}

// FirmwareOfIPXE maps what iPXE reports as ${buildarch} and ${platform}.
func FirmwareOfIPXE(buildarch, platform string) Firmware {
	if platform == "pcbios" {
		return FirmwareBIOS
	}
	for _, f := range firmwares {
		// i386 is BIOS or 32-bit UEFI by platform; the others are UEFI only.
		if f.buildarch == buildarch && (buildarch != "i386" || f.efi == (platform == "efi")) {
			return f.fw
		}
	}
	return FirmwareUnknown
}

// IPXE is how an iPXE built for fw reports itself: ${buildarch} and
// ${platform}, the inverse of FirmwareOfIPXE.
func (fw Firmware) IPXE() (buildarch, platform string, ok bool) {
	for _, f := range firmwares {
		if f.fw == fw {
			if f.efi {
				return f.buildarch, "efi", true
			}
			return f.buildarch, "pcbios", true
		}
	}
	return "", "", false
}

// Arches are every option 93 code this firmware sends when it PXE-boots
// (or HTTP-boots, if http), the one it is known by first.
func (fw Firmware) Arches(http bool) []Arch {
	for _, f := range firmwares {
		if f.fw == fw {
			if http {
				return append([]Arch(nil), f.http...)
			}
			return append([]Arch(nil), f.pxe...)
		}
	}
	return nil
}
