package menu

import (
	"fmt"

	"bootforge/internal/boot"
)

// Format is a menu language.
type Format int

// Menu formats.
const (
	FormatIPXE Format = iota
	FormatPXELinux
	FormatGRUB
)

func (f Format) String() string {
	return [...]string{"ipxe", "pxelinux", "grub"}[f]
}

// ParseFormat names a menu format: "ipxe", "pxelinux" or "grub".
func ParseFormat(name string) (Format, error) {
	switch name {
	case "ipxe":
		return FormatIPXE, nil
	case "pxelinux":
		return FormatPXELinux, nil
	case "grub":
		return FormatGRUB, nil
	}
	return 0, fmt.Errorf("format %q is not one of ipxe, pxelinux, grub", name)
}

// Render writes decision d in format ft. host ("192.0.2.1:8080"), if not
// empty, is where relative paths are fetched over HTTP.
func Render(d boot.Decision, ft Format, host string) (string, error) {
	c := d.Client
	r := Request{Menu: d.Choice.Menu, Profile: d.Choice.Profile.Name, EFI: c.Firmware.EFI(), Boot: d.Boot, Signed: d.Choice.Profile.Signed}
	if host != "" {
		r.BaseURL = "http://" + host
	}
	r.Vars = map[string]string{"profile": d.Choice.Profile.Name, "arch": string(c.Firmware), "uuid": c.UUID}
	if c.MAC != nil {
		r.Vars["mac"] = c.MAC.String()
	}
	if c.IP.IsValid() {
		r.Vars["ip"] = c.IP.String()
	}
	if d.Choice.Host != nil {
		r.Vars["hostname"] = d.Choice.Host.Name
	}
	switch ft {
	case FormatPXELinux:
		return PXELinux(r)
	case FormatGRUB:
		return GRUB(r)
	}
	return IPXE(r)
}
