package boot

import (
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
}

// Resolve answers one client at one step.
func (r *Resolver) Resolve(c Client) Plan {
	if !c.PXE() {
		return Plan{Reason: "not a network-boot client"}
	}
	fw, httpArch := c.Arch.Firmware()
	switch {
	case c.IsIPXE():
		// iPXE gets the script, never the loader again: that would loop.
		return Plan{Boot: true, Firmware: fw, Stage: StageIPXE,
			BootFile: r.url(c.Server, r.Script), Reason: "iPXE: chain to the boot script"}
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
		return Plan{Boot: true, Firmware: fw, Stage: StageFirmware, BootFile: r.url(c.Server, path),
			HTTPClient: true, Reason: "UEFI HTTP boot: loader over HTTP"}
	}
	path := r.Loaders[fw]
	if path == "" {
		return Plan{Firmware: fw, Reason: fmt.Sprintf("no loader configured for %s", fw)}
	}
	return Plan{Boot: true, Firmware: fw, Stage: StageFirmware, BootFile: path,
		Reason: fmt.Sprintf("%s PXE: loader over TFTP", fw)}
}

// url makes an HTTP URL for path on our server.
func (r *Resolver) url(server netip.Addr, path string) string {
	host := server.String()
	if server.Is6() {
		host = "[" + host + "]"
	}
	port := ""
	if r.HTTPPort != 0 && r.HTTPPort != 80 {
		port = ":" + strconv.Itoa(r.HTTPPort)
	}
	return "http://" + host + port + "/" + strings.TrimPrefix(path, "/")
}
