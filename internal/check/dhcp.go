// Package check runs bootforge's validation checklist against a live
// network and a running server. Each check returns findings that the CLI
// prints as a checklist (or JSON) and turns into an exit code.
package check

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
)

// DHCPServer is one server that answered a probe.
type DHCPServer struct {
	ServerID   string `json:"server_id"`
	Source     string `json:"source"`     // IP the offer came from
	OfferedIP  string `json:"offered_ip"` // empty for a proxy offer
	NextServer string `json:"next_server,omitempty"`
	BootFile   string `json:"boot_file,omitempty"`
	Kind       string `json:"kind"` // "authoritative" or "proxy"
}

// DHCPResult is the outcome of a rogue-server probe.
type DHCPResult struct {
	Interface string       `json:"interface"`
	Servers   []DHCPServer `json:"servers"`
	// Conflict is true when more than one server hands out addresses on
	// the segment: clients will get whichever answers first.
	Conflict bool `json:"conflict"`
}

// ProbeDHCP broadcasts a DISCOVER (with PXE options, so that proxyDHCP
// servers answer too) on iface and lists every server that offers within
// wait. It needs udp/68 on the interface, so no DHCP client may hold it.
func ProbeDHCP(iface string, wait time.Duration) (DHCPResult, error) {
	res := DHCPResult{Interface: iface}
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return res, err
	}
	conn, err := server4.NewIPv4UDPConn(iface, &net.UDPAddr{Port: dhcpv4.ClientPort})
	if err != nil {
		return res, fmt.Errorf("binding udp/68 on %s: %w", iface, err)
	}
	defer conn.Close()
	mac := ifc.HardwareAddr
	if len(mac) != 6 {
		mac = net.HardwareAddr{0x02, 0xbf, 0, 0, 0, 1}
	}
	disc, err := dhcpv4.NewDiscovery(mac,
		dhcpv4.WithBroadcast(true),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClientSystemArchitectureType, []byte{0, 0})))
	if err != nil {
		return res, err
	}
	bcast := &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ServerPort}
	deadline := time.Now().Add(wait)
	seen := map[string]bool{}
	buf := make([]byte, 65536)
	for sent := 0; time.Now().Before(deadline); {
		if sent < 2 { // a second DISCOVER halfway, in case one is lost
			if _, err := conn.WriteTo(disc.ToBytes(), bcast); err != nil {
				return res, fmt.Errorf("sending DISCOVER: %w", err)
			}
			sent++
		}
		next := time.Now().Add(wait / 2)
		if next.After(deadline) {
			next = deadline
		}
		conn.SetReadDeadline(next)
		n, src, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return res, err
		}
		p, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || p.OpCode != dhcpv4.OpcodeBootReply || p.TransactionID != disc.TransactionID ||
			p.MessageType() != dhcpv4.MessageTypeOffer {
			continue
		}
		s := DHCPServer{Source: src.Addr().Unmap().String(), BootFile: p.BootFileName, Kind: "authoritative"}
		if id := p.ServerIdentifier(); id != nil {
			s.ServerID = id.String()
		}
		if ip, ok := netip.AddrFromSlice(p.YourIPAddr.To4()); ok && !ip.IsUnspecified() {
			s.OfferedIP = ip.String()
		} else {
			s.Kind = "proxy"
		}
		if ip, ok := netip.AddrFromSlice(p.ServerIPAddr.To4()); ok && !ip.IsUnspecified() {
			s.NextServer = ip.String()
		}
		key := s.ServerID + "/" + s.Source + "/" + s.Kind
		if !seen[key] {
			seen[key] = true
			res.Servers = append(res.Servers, s)
		}
	}
	sort.Slice(res.Servers, func(i, j int) bool { return res.Servers[i].ServerID < res.Servers[j].ServerID })
	auth := map[string]bool{}
	for _, s := range res.Servers {
		if s.Kind == "authoritative" {
			auth[s.ServerID] = true
		}
	}
	res.Conflict = len(auth) > 1
	return res, nil
}
