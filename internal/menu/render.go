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

// Site is where a rendered menu sends its client, and how far the client
// is trusted to check what it loads.
type Site struct {
	// BaseURL prefixes relative paths, e.g. "http://192.0.2.1:8080"; see
	// BaseURL. Empty: paths stay relative.
	BaseURL string
	// Trust (iPXE only) makes the script verify every file it loads
	// against its detached CMS signature: an operator's iPXE built with
	// image trust. Debian's iPXE has no imgtrust.
	Trust bool
	// Mirror (iPXE only), if it has a URL, serves the files of image
	// entries whose versions it holds: boot.ChooseMirror's choice.
	Mirror boot.Mirror
}

// BaseURL is the URL base for a menu fetched with protocol ("http",
// "https", "tftp") from host ("192.0.2.1:8080", the request's Host):
// https for a menu fetched over HTTPS, so that its client stays on the
// listener it came by, else http. Empty when host is.
func BaseURL(protocol, host string) string {
	switch {
	case host == "":
		return ""
	case protocol == "https":
		return "https://" + host
	}
	return "http://" + host
}

// Render writes decision d in format ft for site.
func Render(d boot.Decision, ft Format, site Site) (string, error) {
	c := d.Client
	r := Request{Menu: d.Choice.Menu, Profile: d.Choice.Profile.Name, EFI: c.Firmware.EFI(), Boot: d.Boot, Signed: d.Choice.Profile.Signed,
		BaseURL: site.BaseURL, Trust: site.Trust, Mirror: site.Mirror}
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
