package menu

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"

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
// listener it came by, else http. Empty when host is. An IPv6 literal
// comes out bracketed ("[2001:db8::1]:8080" as the Host header has it,
// and a bare "2001:db8::1" too), with a zone written %25 as RFC 6874 asks.
func BaseURL(protocol, host string) string {
	if host == "" {
		return ""
	}
	scheme := "http://"
	if protocol == "https" {
		scheme = "https://"
	}
	return scheme + urlHost(host)
}

// urlHost writes host (host, host:port, [v6]:port or a bare v6 address)
// as the authority of a URL.
func urlHost(host string) string {
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		h, port = host, "" // no port, or a bare IPv6 address
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	a, err := netip.ParseAddr(strings.Replace(h, "%25", "%", 1)) // a zone as a URL writes it
	if err != nil || !a.Is6() {
		return host
	}
	if port != "" {
		return "[" + v6Literal(a) + "]:" + port
	}
	return "[" + v6Literal(a) + "]"
}

func v6Literal(a netip.Addr) string {
	zone := a.Zone()
	a = a.WithZone("")
	if zone == "" {
		return a.String()
	}
	return a.String() + "%25" + url.PathEscape(zone)
}

// Render writes decision d in format ft for site: Make's text.
func Render(d boot.Decision, ft Format, site Site) (string, error) {
	m, err := Make(d, ft, site)
	return m.Text, err
}

// Make writes decision d in format ft for site. A menu is refused (an
// error) when it has nothing it can boot, or when d's one-shot entry has
// a command line the loader cannot carry; other entries with such a
// command line are left out (Rendered.LeftOut).
func Make(d boot.Decision, ft Format, site Site) (Rendered, error) {
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
	return r.render(ft)
}

// Rendered is a menu as one loader reads it.
type Rendered struct {
	Text string
	// LeftOut has one error for each entry left out of the menu, naming
	// it and saying why: this loader cannot pass its command line on to
	// the kernel as written (CheckCmdline warns about it). The menu says
	// so in a comment; the operator should be told too, as a refused
	// menu is.
	LeftOut []error
}

// render writes r's menu in format ft.
func (r Request) render(ft Format) (Rendered, error) {
	p, err := r.page(ft)
	if err != nil {
		return Rendered{}, err
	}
	write := ipxeMenu
	switch ft {
	case FormatPXELinux:
		write = pxelinuxMenu
	case FormatGRUB:
		write = grubMenu
	}
	return Rendered{Text: write(r, p), LeftOut: p.leftOut}, nil
}
