package boot

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Resolver decides what each client gets. It is configured once and has no
// mutable state, so one value serves every goroutine.
type Resolver struct {
	// Loaders are the first-stage loaders fetched over TFTP, by firmware.
	Loaders map[Firmware]string
	// HTTPLoaders are the loaders UEFI HTTP boot fetches, as paths below
	// the HTTP root.
	HTTPLoaders map[Firmware]string
	// Script is the path of the iPXE script below the HTTP root.
	Script string
	// HTTPPort is the port of our HTTP server in URLs.
	HTTPPort int
	// HTTPSPort, if not 0, is the port of the boot TLS listener: UEFI HTTP
	// boot clients (which can all do HTTPS, trusting the CA they were
	// given) get https:// loader URLs on it.
	HTTPSPort int
	// IPXEHTTPS says that the iPXE we serve can do HTTPS and trusts our
	// CA (an operator's build; Debian's iPXE cannot): it gets an https://
	// script URL on HTTPSPort. Without HTTPSPort it has no effect.
	IPXEHTTPS bool
	// SecureBootLoader is the shim that x64 UEFI clients on the Secure Boot
	// path get instead of their loader; shim then fetches grubx64.efi from
	// the same directory, and GRUB its grub.cfg.
	SecureBootLoader string
	// SecureBootSubnets put every x64 UEFI client in them on that path.
	SecureBootSubnets []netip.Prefix
}

// Resolve answers one client at one step. inv, if not nil, gives the
// client's profile, which with its host says whether it takes the Secure
// Boot chain.
func (r *Resolver) Resolve(c Client, inv *Inventory) Plan {
	if !c.PXE() {
		return Plan{Reason: "not a network-boot client"}
	}
	// The client's profile, chosen once: it names the menu to come and
	// may put the client on the Secure Boot chain.
	var choice *Choice
	if inv != nil {
		if c.Firmware == FirmwareUnknown && c.HasArch {
			c.Firmware, _ = c.Arch.Firmware()
		}
		if ch, ok := inv.Choose(c); ok {
			choice = &ch
		}
	}
	plan := r.resolve(c, choice)
	if choice != nil && plan.Boot {
		plan.Profile = choice.Profile.Name
	}
	return plan
}

func (r *Resolver) resolve(c Client, choice *Choice) Plan {
	fw, httpArch := c.Arch.Firmware()
	switch {
	case c.IsIPXE():
		// iPXE gets the script, never the loader again: that would loop.
		if r.IPXEHTTPS && r.HTTPSPort != 0 {
			return Plan{Boot: true, Firmware: fw, Stage: StageIPXE,
				BootFile: url("https", c.Server, r.HTTPSPort, r.Script), Reason: "iPXE (built with HTTPS): chain to the boot script over HTTPS"}
		}
		return Plan{Boot: true, Firmware: fw, Stage: StageIPXE,
			BootFile: url("http", c.Server, r.HTTPPort, r.Script), Reason: "iPXE: chain to the boot script"}
	case !c.HasArch:
		// A PXE client without option 93 is an old BIOS ROM (RFC 4578 made
		// the option mandatory later).
		fw = FirmwareBIOS
	case fw == FirmwareUnknown:
		return Plan{Reason: fmt.Sprintf("no loader for client architecture %d", c.Arch)}
	}
	if c.HTTPClient() || httpArch {
		path := r.HTTPLoaders[fw]
		if path == "" {
			return Plan{Firmware: fw, Reason: fmt.Sprintf("no HTTP boot loader configured for %s", fw)}
		}
		if r.HTTPSPort != 0 {
			return Plan{Boot: true, Firmware: fw, Stage: StageFirmware, BootFile: url("https", c.Server, r.HTTPSPort, path),
				HTTPClient: true, Reason: "UEFI HTTP boot: loader over HTTPS"}
		}
		return Plan{Boot: true, Firmware: fw, Stage: StageFirmware, BootFile: url("http", c.Server, r.HTTPPort, path),
			HTTPClient: true, Reason: "UEFI HTTP boot: loader over HTTP"}
	}
	if fw == FirmwareEFIx64 {
		if why := r.secureBoot(c, choice); why != "" {
			if r.SecureBootLoader == "" {
				return Plan{Firmware: fw, Reason: why + ", but no Secure Boot loader is configured"}
			}
			return Plan{Boot: true, Firmware: fw, Stage: StageFirmware, BootFile: r.SecureBootLoader, SecureBoot: true,
				Reason: why + ": shim, then grubx64.efi, then grub.cfg, all over TFTP"}
		}
	}
	path := r.Loaders[fw]
	if path == "" {
		return Plan{Firmware: fw, Reason: fmt.Sprintf("no loader configured for %s", fw)}
	}
	return Plan{Boot: true, Firmware: fw, Stage: StageFirmware, BootFile: path,
		Reason: fmt.Sprintf("%s PXE: loader over TFTP", fw)}
}

// secureBoot says why an x64 UEFI client takes the Secure Boot chain, or
// "": its subnet, its host or its profile (choice, nil if none) says so.
func (r *Resolver) secureBoot(c Client, choice *Choice) string {
	for _, p := range r.SecureBootSubnets {
		if c.OnNetwork(p) {
			return fmt.Sprintf("Secure Boot for subnet %s", p)
		}
	}
	switch {
	case choice == nil:
		return ""
	case choice.Host != nil && choice.Host.SecureBoot:
		return fmt.Sprintf("Secure Boot for host %q", choice.Host.Name)
	case choice.Profile.SecureBoot:
		return fmt.Sprintf("Secure Boot for profile %q", choice.Profile.Name)
	}
	return ""
}

// FormatUUID writes a 16-byte UUID (option 97) as iPXE prints ${uuid}.
func FormatUUID(b []byte) string {
	if len(b) != 16 {
		return ""
	}
	// By hand rather than fmt's %x of five slices: every DHCP packet
	// with option 97 comes here, and fmt boxes each slice.
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}

// url makes a scheme:// URL for path on our server at port. An unknown
// server address (a preview that names none) is written SERVER.
func url(scheme string, server netip.Addr, port int, path string) string {
	host := server.String()
	switch {
	case !server.IsValid():
		host = "SERVER"
	case server.Is6():
		host = "[" + host + "]"
	}
	hostport := host
	if port != 0 && !(scheme == "http" && port == 80) && !(scheme == "https" && port == 443) {
		hostport += ":" + strconv.Itoa(port)
	}
	return scheme + "://" + hostport + "/" + strings.TrimPrefix(path, "/")
}
