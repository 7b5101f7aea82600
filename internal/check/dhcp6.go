package check

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// DHCPv6Server is one server that answered a Solicit with an Advertise.
type DHCPv6Server struct {
	DUID        string   `json:"duid"`                    // its server identifier, hex
	Source      string   `json:"source"`                  // the (link-local) address the Advertise came from
	Addresses   []string `json:"addresses,omitempty"`     // IA_NA addresses offered
	BootFileURL string   `json:"boot_file_url,omitempty"` // option 59
	Status      string   `json:"status,omitempty"`        // a status other than Success, e.g. NoAddrsAvail
	// Kind is "authoritative" when it offers addresses, else "boot-only"
	// (a proxy beside the network's DHCPv6 server or SLAAC).
	Kind string `json:"kind"`
}

// DHCPv6Result is the outcome of a DHCPv6 probe.
type DHCPv6Result struct {
	Interface string         `json:"interface"`
	Servers   []DHCPv6Server `json:"servers"`
	// Conflict is true when more than one server offers addresses.
	Conflict bool `json:"conflict"`
}

// ProbeDHCPv6 sends a Solicit (asking for an address and a boot file
// URL, as UEFI PXE over IPv6 does) to ff02::1:2 on iface and lists every
// server that advertises within wait. It needs udp/546 on the interface's
// link-local address, so no DHCPv6 client may hold it. Addresses are
// offered, never requested: nothing is leased.
func ProbeDHCPv6(iface string, wait time.Duration) (DHCPv6Result, error) {
	res := DHCPv6Result{Interface: iface}
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return res, err
	}
	conn, err := listen6(iface, 3*time.Second)
	if err != nil {
		return res, fmt.Errorf("binding udp/546 on %s's link-local address: %w", iface, err)
	}
	defer conn.Close()
	mac := ifc.HardwareAddr
	if len(mac) < 4 {
		mac = net.HardwareAddr{0x02, 0xbf, 0, 0, 0, 1}
	}
	sol, err := dhcpv6.NewSolicit(mac,
		dhcpv6.WithRequestedOptions(dhcpv6.OptionBootfileURL, dhcpv6.OptionBootfileParam),
		dhcpv6.WithArchType(iana.EFI_X86_64),
		dhcpv6.WithOption(&dhcpv6.OptVendorClass{EnterpriseNumber: 343, Data: [][]byte{[]byte("PXEClient:Arch:00007:UNDI:003016")}}))
	if err != nil {
		return res, err
	}
	dst := &net.UDPAddr{IP: net.ParseIP("ff02::1:2"), Port: dhcpv6.DefaultServerPort, Zone: iface}
	deadline := time.Now().Add(wait)
	seen := map[string]bool{}
	buf := make([]byte, 65536)
	for sent := 0; time.Now().Before(deadline); {
		if sent < 2 { // a second Solicit halfway, in case one is lost
			if _, err := conn.WriteTo(sol.ToBytes(), dst); err != nil {
				return res, fmt.Errorf("sending Solicit: %w", err)
			}
			sent++
		}
		next := time.Now().Add(wait / 2)
		if next.After(deadline) {
			next = deadline
		}
		conn.SetReadDeadline(next)
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return res, err
		}
		m, err := dhcpv6.MessageFromBytes(buf[:n])
		if err != nil || m.MessageType != dhcpv6.MessageTypeAdvertise || m.TransactionID != sol.TransactionID {
			continue
		}
		s := advertised(m)
		if ua, ok := from.(*net.UDPAddr); ok {
			a, _ := netip.AddrFromSlice(ua.IP)
			s.Source = a.Unmap().String()
		}
		if key := s.DUID + "/" + s.Source; !seen[key] {
			seen[key] = true
			res.Servers = append(res.Servers, s)
		}
	}
	sort.Slice(res.Servers, func(i, j int) bool { return res.Servers[i].Source < res.Servers[j].Source })
	auth := map[string]bool{}
	for _, s := range res.Servers {
		if s.Kind == "authoritative" {
			auth[s.DUID] = true
		}
	}
	res.Conflict = len(auth) > 1
	return res, nil
}

// advertised reads what an Advertise offers.
func advertised(m *dhcpv6.Message) DHCPv6Server {
	s := DHCPv6Server{Kind: "boot-only", BootFileURL: m.Options.BootFileURL()}
	if id := m.Options.ServerID(); id != nil {
		s.DUID = hexColons(id.ToBytes())
	}
	status := func(st *dhcpv6.OptStatusCode) {
		if st != nil && st.StatusCode != iana.StatusSuccess && s.Status == "" {
			s.Status = st.StatusCode.String()
			if st.StatusMessage != "" {
				s.Status += ": " + st.StatusMessage
			}
		}
	}
	status(m.Options.Status())
	for _, ia := range m.Options.IANA() {
		status(ia.Options.Status())
		for _, a := range ia.Options.Addresses() {
			if ip, ok := netip.AddrFromSlice(a.IPv6Addr); ok && !ip.IsUnspecified() {
				s.Addresses = append(s.Addresses, ip.String())
			}
		}
	}
	if len(s.Addresses) > 0 {
		s.Kind = "authoritative"
	}
	return s
}

// listen6 binds udp/546 on iface's link-local address. Right after the
// link comes up that address is still tentative (duplicate address
// detection, about a second) and cannot be bound: wait for it up to
// patience.
func listen6(iface string, patience time.Duration) (net.PacketConn, error) {
	deadline := time.Now().Add(patience)
	for {
		ll, err := dhcpv6.GetLinkLocalAddr(iface)
		if err == nil {
			var conn *net.UDPConn
			conn, err = net.ListenUDP("udp6", &net.UDPAddr{IP: ll, Port: dhcpv6.DefaultClientPort, Zone: iface})
			if err == nil {
				return conn, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		if !errors.Is(err, syscall.EADDRNOTAVAIL) && !strings.Contains(err.Error(), "no matching address") {
			return nil, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func hexColons(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02x", c)
	}
	return strings.Join(parts, ":")
}
