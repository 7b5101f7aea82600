// Package boot is bootforge's domain core: what we know about a client at
// one step of its boot (Client), and what it gets next (Plan).
//
// Every boot is a conversation over several protocols: the firmware's DHCP
// asks which loader to fetch, the loader asks again, iPXE asks for a script,
// the script fetches kernels and images. At each step the question is the
// same, so the answer comes from one pure function, Resolver.Resolve, with
// no I/O. DHCP, TFTP and HTTP code only turns packets into a Client and a
// Plan into bytes. That keeps the decisions in one place, testable with a
// table, and keeps the protocol code ignorant of policy.
package boot

import (
	"fmt"
	"net"
	"net/netip"
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

// Firmware returns what kind of loader the architecture runs and whether it
// boots over HTTP rather than TFTP.
func (a Arch) Firmware() (fw Firmware, http bool) {
	switch a {
	case ArchBIOS:
		return FirmwareBIOS, false
	case ArchEFIia32:
		return FirmwareEFIia32, false
	case ArchEFIx64, ArchEFIBC:
		return FirmwareEFIx64, false
	case ArchEFIarm32:
		return FirmwareEFIarm32, false
	case ArchEFIarm64:
		return FirmwareEFIarm64, false
	case ArchRISCV64:
		return FirmwareEFIrv64, false
	case ArchHTTPia32:
		return FirmwareEFIia32, true
	case ArchHTTPx64, ArchHTTPBC:
		return FirmwareEFIx64, true
	case ArchHTTParm32:
		return FirmwareEFIarm32, true
	case ArchHTTParm64:
		return FirmwareEFIarm64, true
	case ArchHTTPBIOS:
		return FirmwareBIOS, true
	case ArchRISCV64HTP:
		return FirmwareEFIrv64, true
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

// Stage is which program is asking.
type Stage string

// Stages of a boot.
const (
	StageFirmware Stage = "firmware" // the PXE ROM or UEFI's own PXE/HTTP client
	StageIPXE     Stage = "ipxe"     // iPXE, chainloaded or built in
)

// Client is what we know about a client at one step.
type Client struct {
	MAC         net.HardwareAddr
	ClientID    []byte // DHCP option 61
	UUID        []byte // option 97: the machine's UUID (type byte stripped)
	Arch        Arch   // option 93
	HasArch     bool
	VendorClass string   // option 60, e.g. "PXEClient:Arch:00007:UNDI:003016"
	UserClass   []string // option 77, e.g. "iPXE"
	IPXE        bool     // option 175 present (iPXE's encapsulated options)

	IP        netip.Addr // the client's address, if it has one
	Relay     netip.Addr // giaddr, if relayed
	CircuitID []byte     // option 82.1
	RemoteID  []byte     // option 82.2
	Interface string     // the interface the request arrived on
	Server    netip.Addr // the address the client reaches us at
}

// PXE reports whether the client is network-booting: vendor class
// PXEClient or HTTPClient, or iPXE.
func (c Client) PXE() bool {
	return strings.HasPrefix(c.VendorClass, "PXEClient") || c.HTTPClient() || c.IsIPXE()
}

// HTTPClient reports whether the client asked for UEFI HTTP boot.
func (c Client) HTTPClient() bool { return strings.HasPrefix(c.VendorClass, "HTTPClient") }

// IsIPXE reports whether the client is iPXE: user class "iPXE" or option
// 175. Either is enough, because some builds send only one.
func (c Client) IsIPXE() bool {
	if c.IPXE {
		return true
	}
	for _, u := range c.UserClass {
		if u == "iPXE" {
			return true
		}
	}
	return false
}

// Plan is the answer for one step.
type Plan struct {
	// Boot is false for clients that are not network-booting: they get an
	// address (in authoritative mode) and nothing else.
	Boot bool
	// Firmware and Stage say what we took the client for.
	Firmware Firmware
	Stage    Stage
	// BootFile is a path served over TFTP, or a URL for HTTP clients.
	BootFile string
	// HTTPClient means the answer must carry vendor class HTTPClient, as
	// UEFI HTTP boot requires.
	HTTPClient bool
	// SecureBoot means the client takes the shim → signed GRUB chain.
	SecureBoot bool
	// Reason explains the plan in logs and previews.
	Reason string
}
