// Package relaydoc writes the configuration that network equipment needs
// to bring DHCP to bootforge: the IP helper (relay) lines for each relayed
// subnet, in the syntax of ISC dhcrelay, Cisco IOS, Juniper Junos and
// MikroTik RouterOS, and the options 66/67 that an existing DHCP server
// needs when bootforge runs beside it. The specification asks for relay
// configuration documented for audit; generating it from the config that
// serves the subnets keeps the two from drifting apart.
package relaydoc

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// Formats are the syntaxes Write knows, in the order it writes them.
var Formats = []string{"isc", "cisco", "juniper", "mikrotik", "options"}

// Input is what the documentation is made from.
type Input struct {
	// Server is the address relays forward to (the helper address).
	Server netip.Addr
	// Relayed are the subnets whose clients reach bootforge through a
	// relay, each with its gateway (the relay's address on it; invalid
	// if the config names no router).
	Relayed []Subnet
	// ClientIface and UpstreamIface name the relay's interfaces toward
	// the clients and toward bootforge, where the syntax needs them.
	ClientIface, UpstreamIface string
	// BootFiles are option 67 by client kind, for an existing server.
	BootFiles []BootFile
}

// Subnet is one relayed subnet.
type Subnet struct {
	Prefix  netip.Prefix
	Gateway netip.Addr
}

// BootFile is the boot file one kind of client gets.
type BootFile struct {
	Clients string   // e.g. "UEFI x64 PXE"
	Arches  []uint16 // option 93 codes; empty for iPXE (user class)
	IPXE    bool
	File    string
}

// Write writes the sections named in formats (all of Formats if empty).
func Write(w io.Writer, in Input, formats []string) error {
	if len(formats) == 0 {
		formats = Formats
	}
	fmt.Fprintf(w, "# bootforge: DHCP relay (IP helper) configuration, for audit\n")
	fmt.Fprintf(w, "# Helper address (bootforge's DHCP server, udp/67): %s\n", in.Server)
	if len(in.Relayed) == 0 {
		fmt.Fprintf(w, "# Relayed subnets: none (every configured subnet is on a served interface)\n")
	}
	for _, s := range in.Relayed {
		fmt.Fprintf(w, "# Relayed subnet %s, gateway %s\n", s.Prefix, gateway(s))
	}
	for _, f := range formats {
		fmt.Fprintln(w)
		switch f {
		case "isc":
			isc(w, in)
		case "cisco":
			cisco(w, in)
		case "juniper":
			juniper(w, in)
		case "mikrotik":
			mikrotik(w, in)
		case "options":
			options(w, in)
		default:
			return fmt.Errorf("unknown format %q (one of %s)", f, strings.Join(Formats, ", "))
		}
	}
	return nil
}

func gateway(s Subnet) string {
	if s.Gateway.IsValid() {
		return s.Gateway.String()
	}
	return "<gateway>"
}

// isc is ISC dhcrelay (Debian's isc-dhcp-relay): one relay per client-side
// interface. -a adds the agent information (option 82), whose circuit id
// profiles can match on.
func isc(w io.Writer, in Input) {
	fmt.Fprintf(w, "## ISC dhcrelay (Debian: isc-dhcp-relay)\n")
	fmt.Fprintf(w, "dhcrelay -4 -a -id %s -iu %s %s\n", in.ClientIface, in.UpstreamIface, in.Server)
	fmt.Fprintf(w, "# or in /etc/default/isc-dhcp-relay:\n")
	fmt.Fprintf(w, "#   SERVERS=\"%s\"\n#   INTERFACES=\"\"\n#   OPTIONS=\"-a -id %s -iu %s\"\n", in.Server, in.ClientIface, in.UpstreamIface)
}

func cisco(w io.Writer, in Input) {
	fmt.Fprintf(w, "## Cisco IOS: on each client-side interface (SVI)\n")
	for _, s := range in.relayedOrPlaceholder() {
		fmt.Fprintf(w, "interface %s\n", in.ClientIface)
		fmt.Fprintf(w, " description provisioning %s\n", s.Prefix)
		if s.Gateway.IsValid() {
			fmt.Fprintf(w, " ip address %s %s\n", s.Gateway, mask(s.Prefix))
		}
		fmt.Fprintf(w, " ip helper-address %s\n!\n", in.Server)
	}
}

func juniper(w io.Writer, in Input) {
	fmt.Fprintf(w, "## Juniper Junos\n")
	fmt.Fprintf(w, "set forwarding-options dhcp-relay server-group bootforge %s\n", in.Server)
	fmt.Fprintf(w, "set forwarding-options dhcp-relay group provisioning active-server-group bootforge\n")
	fmt.Fprintf(w, "set forwarding-options dhcp-relay group provisioning interface %s\n", in.ClientIface)
}

func mikrotik(w io.Writer, in Input) {
	fmt.Fprintf(w, "## MikroTik RouterOS\n")
	for _, s := range in.relayedOrPlaceholder() {
		fmt.Fprintf(w, "/ip dhcp-relay add name=%s interface=%s dhcp-server=%s local-address=%s disabled=no\n",
			relayName(s.Prefix), in.ClientIface, in.Server, gateway(s))
	}
}

// options are what an existing DHCP server hands out so that its own
// clients boot from bootforge (the specification's proxy option: 66/67).
func options(w io.Writer, in Input) {
	fmt.Fprintf(w, "## An existing DHCP server pointing clients at bootforge (options 66/67)\n")
	fmt.Fprintf(w, "# option 66 (TFTP server name), and siaddr (next-server): %s\n", in.Server)
	fmt.Fprintf(w, "# option 67 (boot file name) by client:\n")
	for _, b := range in.BootFiles {
		fmt.Fprintf(w, "#   %-28s %-22s %s\n", b.Clients, match(b), b.File)
	}
	fmt.Fprintf(w, "# ISC dhcpd:\n")
	fmt.Fprintf(w, "option arch code 93 = unsigned integer 16;\n")
	fmt.Fprintf(w, "next-server %s;\n", in.Server)
	fmt.Fprintf(w, "option tftp-server-name \"%s\";\n", in.Server)
	first := true
	for _, b := range in.BootFiles {
		var cond string
		if b.IPXE {
			cond = `exists user-class and option user-class = "iPXE"`
		} else {
			var or []string
			for _, a := range b.Arches {
				or = append(or, fmt.Sprintf("option arch = %d", a))
			}
			cond = strings.Join(or, " or ")
		}
		kw := "elsif"
		if first {
			kw, first = "if", false
		}
		fmt.Fprintf(w, "%s %s {\n  filename \"%s\";\n}\n", kw, cond, b.File)
	}
}

func match(b BootFile) string {
	if b.IPXE {
		return `user class "iPXE"`
	}
	codes := make([]string, len(b.Arches))
	for i, a := range b.Arches {
		codes[i] = fmt.Sprint(a)
	}
	return "option 93 = " + strings.Join(codes, ", ")
}

// relayedOrPlaceholder lists the relayed subnets, or one placeholder so
// that the syntax is shown even before a relayed subnet is configured.
func (in Input) relayedOrPlaceholder() []Subnet {
	if len(in.Relayed) > 0 {
		return in.Relayed
	}
	return []Subnet{{}}
}

func mask(p netip.Prefix) string {
	var m [4]byte
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(m).String()
}

func relayName(p netip.Prefix) string {
	if !p.IsValid() {
		return "bootforge"
	}
	return "bootforge-" + strings.NewReplacer(".", "-", "/", "-").Replace(p.String())
}
