package boot

import (
	"fmt"
	"net/netip"
	neturl "net/url"
	"strings"
)

// URL6 is where plan sends a DHCPv6 client, as OPT_BOOTFILE_URL (59)
// carries it: DHCPv6 has no next-server field, so a loader fetched over
// TFTP is named by a tftp:// URL with the server's address in brackets
// (RFC 5970 §3.1; EDK2 accepts exactly tftp://[address]/file). Plans for
// HTTP clients and iPXE already hold a URL, built on the client's Server
// address, and are returned as they are. "" when the plan boots nothing.
func URL6(plan Plan, server netip.Addr) string {
	switch {
	case !plan.Boot || plan.BootFile == "":
		return ""
	case strings.Contains(plan.BootFile, "://"):
		return plan.BootFile
	}
	host := "SERVER"
	if server.IsValid() {
		host = "[" + server.WithZone("").String() + "]"
	}
	u := neturl.URL{Scheme: "tftp", Host: host, Path: "/" + strings.TrimPrefix(plan.BootFile, "/")}
	return u.String()
}

// VendorClass6 is the client's class as DHCPv6 option 16 carries it,
// read into the form of DHCPv4 option 60 that Client.VendorClass holds
// ("PXEClient:Arch:00007:UNDI:003000"): the first vendor-class-data item
// that names a boot client, else the first item.
func VendorClass6(items [][]byte) string {
	for _, it := range items {
		if s := string(it); strings.HasPrefix(s, "PXEClient") || strings.HasPrefix(s, "HTTPClient") {
			return s
		}
	}
	if len(items) > 0 {
		return string(items[0])
	}
	return ""
}

// ClassOfArch is the vendor class a boot client of architecture a sends
// over DHCPv4 ("PXEClient:Arch:00007", "HTTPClient:Arch:00016"). A DHCPv6
// client may send option 61 without option 16, and the resolver knows
// boot clients by their class.
func ClassOfArch(a Arch) string {
	if _, http := a.Firmware(); http {
		return fmt.Sprintf("HTTPClient:Arch:%05d", uint16(a))
	}
	return fmt.Sprintf("PXEClient:Arch:%05d", uint16(a))
}

// BootClient6 reports whether a DHCPv6 client is network-booting: it sent
// a client architecture (option 61), a PXEClient or HTTPClient vendor
// class (option 16), or is iPXE. A proxy answers only these.
func (c Client) BootClient6() bool { return c.HasArch || c.PXE() }
