package dhcp

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"bootforge/internal/allow"
	"bootforge/internal/boot"
	"bootforge/internal/dhcp/lease"
	"bootforge/internal/logline"
)

// Modes.
const (
	ModeOff           = "off"
	ModeProxy         = "proxy"
	ModeAuthoritative = "authoritative"
)

// Subnet is one served subnet: its pool and the options its clients get.
type Subnet struct {
	Pool      *lease.Pool
	Router    netip.Addr
	DNS       []netip.Addr
	NTP       []netip.Addr
	Domain    string
	LeaseTime time.Duration
}

// Handler decides the reply to one request. It holds no sockets; Server
// feeds it and sends what it returns.
type Handler struct {
	Mode     string
	Resolver *boot.Resolver
	// Inventory, if set, gives the profiles and hosts that decide who takes
	// the Secure Boot chain.
	Inventory func() *boot.Inventory
	Subnets   []*Subnet
	OfferHold time.Duration
	// ServerAddress, if valid, is the boot server address given to clients;
	// otherwise the receiving interface's address.
	ServerAddress netip.Addr
	Log           *slog.Logger
	// Sightings, if set, learns each client and the address it has or
	// gets, so that later steps (a pxelinux.cfg by IP, the iPXE script)
	// know who asks and what its firmware said.
	Sightings boot.Sightings
	// BootServerDiscovery, in proxy mode, leaves the boot file out of the
	// offer to PXE firmware and sends the firmware to the boot server on
	// udp/4011 instead (PXE 2.1 boot server discovery), whose ACK names
	// the file.
	BootServerDiscovery bool
	// TFTPAllow, if not empty, is the TFTP listener's allow-list: a
	// reply that sends a client to a TFTP boot file the TFTP server will
	// not answer it for is still sent (the client may be allowed
	// elsewhere), but says so in the log and the boot log.
	TFTPAllow allow.List
}

// Result is what the handler did with one request, and why: the client as
// the packet showed it, the plan the resolver made for it, and the reply,
// or, when it stays silent, the reason. The server sends the reply and
// builds the boot-log event from the Result.
type Result struct {
	Client boot.Client
	Plan   boot.Plan
	Reply  *dhcpv4.DHCPv4 // nil: nothing sent
	// Silent says why no reply is sent; empty when one is, or when the
	// request needs none (RELEASE, DECLINE).
	Silent string
	// Refused says the silence turns away a client in scope that asked
	// for an address and got none: the pool has none free, the shared
	// store cannot be reached or other servers won every claim, or its
	// reserved address is held. The server warns and the boot log
	// records it as refused, with Silent as the reason.
	Refused bool
	// Port is the local port the request came in on: 67, or 4011 for the
	// PXE boot server.
	Port int
	// Discovery says the reply is a proxy offer that names no boot file
	// and sends the client to the boot server on udp/4011 for it.
	Discovery bool
	// Unreachable says why the boot file in the reply cannot be fetched
	// by this client (TFTP's allow-list refuses its address); empty when
	// it can, or when that is not known.
	Unreachable string
}

// request is one packet with where it came from.
type request struct {
	pkt     *dhcpv4.DHCPv4
	iface   string
	ifAddrs []netip.Prefix // the receiving interface's IPv4 addresses
	src     netip.AddrPort
	port    int // the local port: 67 or 4011
}

// handle decides the answer to req.
func (h *Handler) handle(req request) Result {
	if len(req.ifAddrs) == 0 {
		return Result{Silent: "receiving interface has no IPv4 address"}
	}
	local := req.ifAddrs[0].Addr()
	server := local
	if h.ServerAddress.IsValid() {
		server = h.ServerAddress
	}
	c := clientOf(req.pkt, req.iface, server)
	if !c.Relay.IsValid() {
		c.Link = h.link(req.ifAddrs)
	}
	var inv *boot.Inventory
	if h.Inventory != nil {
		inv = h.Inventory()
	}
	res := Result{Client: c, Plan: h.Resolver.Resolve(c, inv), Port: req.port}
	switch {
	case req.port == pxePort:
		h.bootServer(req, &res, local, server)
	case h.Mode == ModeProxy:
		h.proxy(req, &res, local, server)
	case h.Mode == ModeAuthoritative:
		h.authoritative(req, &res, local, server)
	default:
		res.Silent = "dhcp is off"
	}
	h.seen(res.Client) // with the address a lease gave it
	res.Unreachable = h.unreachable(res)
	return res
}

// unreachable checks a reply that names a TFTP boot file against TFTP's
// allow-list, for the address the client will fetch from: the one the
// reply gives it, else the one it has.
func (h *Handler) unreachable(res Result) string {
	r := res.Reply
	if h.TFTPAllow.Empty() || r == nil || r.BootFileName == "" || strings.Contains(r.BootFileName, "://") {
		return ""
	}
	addr, ok := addr4(r.YourIPAddr)
	if !ok {
		if addr, ok = addr4(r.ClientIPAddr); !ok {
			if !res.Client.IP.IsValid() {
				return ""
			}
			addr = res.Client.IP
		}
	}
	if d := h.TFTPAllow.Check(addr); !d.Allowed {
		return "boot file " + r.BootFileName + " is unreachable over TFTP: " + d.Reason
	}
	return ""
}

// link picks the receiving interface's address that names the client's
// network: the one inside a served subnet, else the first.
func (h *Handler) link(ifAddrs []netip.Prefix) netip.Addr {
	for _, a := range ifAddrs {
		for _, s := range h.Subnets {
			if s.Pool.Subnet.Contains(a.Addr()) {
				return a.Addr()
			}
		}
		for _, p := range h.Resolver.SecureBootSubnets {
			if p.Contains(a.Addr()) {
				return a.Addr()
			}
		}
	}
	return ifAddrs[0].Addr()
}

func (h *Handler) seen(c boot.Client) {
	if h.Sightings != nil {
		h.Sightings.Seen(c)
	}
}

// proxy answers a PXE client's DISCOVER beside another DHCP server: no
// address, just where to boot from (PXE spec 2.1, "ProxyDHCP").
func (h *Handler) proxy(req request, res *Result, local, server netip.Addr) {
	switch {
	case req.pkt.MessageType() == dhcpv4.MessageTypeRequest && res.Client.PXE():
		// The client takes the network's DHCP server's offer: the address
		// it asks for is where its loader will ask from, so that a
		// pxelinux.cfg by hex IP finds this MAC (boot.Sightings).
		if ip, ok := addr4(req.pkt.RequestedIPAddress()); ok && !res.Client.IP.IsValid() {
			c := res.Client
			c.IP = ip
			h.seen(c)
		}
		res.Silent = "proxy mode answers only DISCOVER on port 67"
	case req.pkt.MessageType() != dhcpv4.MessageTypeDiscover:
		res.Silent = "proxy mode answers only DISCOVER on port 67"
	case !res.Client.PXE():
		res.Silent = "not a PXE client"
	case !res.Plan.Boot:
		res.Silent = res.Plan.Reason
	case h.BootServerDiscovery && discoverable(res.Plan):
		res.Discovery = true
		res.Reply = discoveryOffer(req.pkt, local, server)
	default:
		res.Reply = &bootReply(req.pkt, dhcpv4.MessageTypeOffer, res.Plan, local, server).DHCPv4
	}
}

// discoverable says whether a plan's client can be sent to the boot server
// on 4011: PXE firmware loading over TFTP. iPXE gets its script from the
// offer, and UEFI HTTP boot knows no boot servers.
func discoverable(plan boot.Plan) bool {
	return plan.Stage == boot.StageFirmware && !plan.HTTPClient
}

// discoveryOffer is a proxy offer that names no boot file: PXEClient and
// the discovery options that send the client to the boot server at server,
// udp/4011, for its boot file (PXE 2.1, "Boot Server Discovery").
func discoveryOffer(p *dhcpv4.DHCPv4, local, server netip.Addr) *dhcpv4.DHCPv4 {
	r := newReply(p, dhcpv4.MessageTypeOffer, 3+copied(p, dhcpv4.OptionClientMachineIdentifier)) // echoUUID's
	r.setIPs(dhcpv4.OptionServerIdentifier, local)
	r.setText(dhcpv4.OptionClassIdentifier, "PXEClient")
	r.set(dhcpv4.OptionVendorSpecificInformation, discoveryOptions(server))
	echoUUID(r, p)
	return &r.DHCPv4
}

// bootServer answers the PXE boot-server request on port 4011: a REQUEST
// or INFORM from a client that already has its address.
func (h *Handler) bootServer(req request, res *Result, local, server netip.Addr) {
	switch mt := req.pkt.MessageType(); {
	case mt != dhcpv4.MessageTypeRequest && mt != dhcpv4.MessageTypeInform:
		res.Silent = "port 4011 answers only REQUEST and INFORM"
	case !res.Plan.Boot:
		res.Silent = res.Plan.Reason
	default:
		reply := bootReply(req.pkt, dhcpv4.MessageTypeAck, res.Plan, local, server)
		if item := bootItem(req.pkt); item != nil {
			// A request after discovery names the boot item it chose; the
			// ACK answers for that item (PXE 2.1, "Boot Server Discovery").
			reply.set(dhcpv4.OptionVendorSpecificInformation, append([]byte{pxeBootItem, 4}, append(item, pxeEnd)...))
		}
		res.Reply = &reply.DHCPv4
	}
}

// bootReply is a reply that carries only where to boot from: no address,
// no lease (the proxy offer and the boot server's ACK).
func bootReply(p *dhcpv4.DHCPv4, mt dhcpv4.MessageType, plan boot.Plan, local, server netip.Addr) *draft {
	r := newReply(p, mt, 1+bootOptions(p, plan))
	r.setIPs(dhcpv4.OptionServerIdentifier, local)
	withBoot(r, p, plan, server)
	r.setText(dhcpv4.OptionClassIdentifier, classFor(plan))
	return r
}

func classFor(plan boot.Plan) string {
	if plan.HTTPClient {
		return "HTTPClient"
	}
	return "PXEClient"
}

// subnetFor picks the subnet by the relay's address, else by the receiving
// interface's addresses.
func (h *Handler) subnetFor(req request) *Subnet {
	if gi, ok := addr4(req.pkt.GatewayIPAddr); ok {
		for _, s := range h.Subnets {
			if s.Pool.Subnet.Contains(gi) {
				return s
			}
		}
		return nil
	}
	for _, a := range req.ifAddrs {
		for _, s := range h.Subnets {
			if s.Pool.Subnet.Contains(a.Addr()) {
				return s
			}
		}
	}
	return nil
}

func (h *Handler) authoritative(req request, res *Result, local, server netip.Addr) {
	p, plan := req.pkt, res.Plan
	sub := h.subnetFor(req)
	if sub == nil {
		res.Silent = "no subnet for this client (giaddr or interface)"
		return
	}
	mac, id := p.ClientHWAddr, res.Client.ClientID
	switch p.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		requested, _ := addr4(p.RequestedIPAddress())
		l, err := sub.Pool.Offer(mac, id, requested, h.OfferHold)
		if errors.Is(err, lease.ErrNoAddress) {
			res.Refused, res.Silent = true, fmt.Sprintf("no offer: %v of %s", err, sub.Pool.Subnet)
			return
		}
		if err != nil {
			res.Refused, res.Silent = true, "no offer: "+err.Error()
			return
		}
		res.Reply = h.reply(p, sub, l.IP, dhcpv4.MessageTypeOffer, plan, local, server, sub.LeaseTime)

	case dhcpv4.MessageTypeRequest:
		h.request(req, sub, res, local, server)

	case dhcpv4.MessageTypeDecline:
		ip, ok := addr4(p.RequestedIPAddress())
		switch sid, hasSID := addr4(p.ServerIdentifier()); {
		case hasSID && sid != local:
			res.Silent = "DECLINE for another server"
		case !ok:
			res.Silent = "DECLINE without requested address"
		default:
			if err := sub.Pool.Decline(ip, mac, id, sub.LeaseTime); err != nil {
				res.Silent = "DECLINE: " + err.Error()
				return
			}
			h.Log.Warn("dhcp: address declined, quarantined", "ip", ip, "mac", mac.String())
		}

	case dhcpv4.MessageTypeRelease:
		ip, ok := addr4(p.ClientIPAddr)
		if !ok {
			res.Silent = "RELEASE without ciaddr"
			return
		}
		if err := sub.Pool.Release(ip, mac, id); err != nil {
			res.Silent = "RELEASE: " + err.Error()
			return
		}
		h.Log.Info("dhcp: lease released", "ip", ip, "mac", mac.String())

	case dhcpv4.MessageTypeInform:
		res.Reply = h.reply(p, sub, netip.Addr{}, dhcpv4.MessageTypeAck, plan, local, server, 0)

	default:
		res.Silent = fmt.Sprintf("message type %s not served", p.MessageType())
	}
}

// request handles DHCPREQUEST in its three forms (RFC 2131 4.3.2).
func (h *Handler) request(req request, sub *Subnet, res *Result, local, server netip.Addr) {
	p := req.pkt
	mac, id := p.ClientHWAddr, res.Client.ClientID
	sid, hasSID := addr4(p.ServerIdentifier())
	requested, hasReq := addr4(p.RequestedIPAddress())
	ciaddr, hasCI := addr4(p.ClientIPAddr)

	var ip netip.Addr
	switch {
	case hasSID: // SELECTING: the client chose an offer
		if sid != local && (!h.ServerAddress.IsValid() || sid != h.ServerAddress) {
			res.Silent = "client chose another server"
			if err := sub.Pool.Forget(mac, id); err != nil {
				res.Silent += "; our offer's claim stays until its hold ends: " + err.Error()
			}
			return
		}
		if !hasReq {
			res.Silent = "REQUEST with server id but no requested address"
			return
		}
		ip = requested
	case hasReq: // INIT-REBOOT: the client asks to keep its address
		ip = requested
	case hasCI: // RENEWING or REBINDING
		ip = ciaddr
	default:
		res.Silent = "REQUEST without an address"
		return
	}
	if !sub.Pool.Subnet.Contains(ip) {
		res.Reply = h.nak(p, local, fmt.Sprintf("%s is not on this network", ip))
		return
	}
	l, err := sub.Pool.Bind(ip, mac, id, p.HostName(), sub.LeaseTime)
	switch {
	case errors.Is(err, lease.ErrCached):
		// The store is unreachable: the client keeps its unexpired lease
		// for the time it has left, and nothing new is bound.
		h.Log.Warn("dhcp: store unreachable, renewal answered from the cache", "ip", l.IP, "mac", mac.String(),
			"expires", l.Expires.Format(time.RFC3339), "err", err)
	case errors.Is(err, lease.ErrStore):
		res.Silent = "lease not stored, no ACK: " + err.Error()
		return
	case err != nil:
		res.Reply = h.nak(p, local, err.Error())
		return
	}
	res.Client.IP = l.IP
	if line := logline.Start(h.Log, slog.LevelInfo, "dhcp: lease"); line != nil {
		line.Str("ip", l.IP.String()).Str("mac", mac.String()).Str("expires", l.Expires.Format(time.RFC3339)).Str("boot", res.Plan.BootFile).Write()
	}
	res.Reply = h.reply(p, sub, l.IP, dhcpv4.MessageTypeAck, res.Plan, local, server, time.Until(l.Expires))
}

func (h *Handler) nak(p *dhcpv4.DHCPv4, local netip.Addr, msg string) *dhcpv4.DHCPv4 {
	h.Log.Debug("dhcp: NAK", "mac", p.ClientHWAddr.String(), "reason", msg)
	r := newReply(p, dhcpv4.MessageTypeNak, 2)
	r.setIPs(dhcpv4.OptionServerIdentifier, local)
	r.setText(dhcpv4.OptionMessage, msg)
	if p.GatewayIPAddr != nil && !p.GatewayIPAddr.IsUnspecified() {
		// RFC 2131 4.3.2: through a relay the NAK MUST have the broadcast
		// bit, so that the relay broadcasts it: the client's address is
		// the one being refused.
		r.SetBroadcast()
	}
	return &r.DHCPv4
}

// reply builds an OFFER or ACK with the subnet's options and the boot plan.
func (h *Handler) reply(p *dhcpv4.DHCPv4, sub *Subnet, ip netip.Addr, mt dhcpv4.MessageType, plan boot.Plan, local, server netip.Addr, leaseTime time.Duration) *dhcpv4.DHCPv4 {
	name := sub.Pool.ReservedName(p.ClientHWAddr, p.Options.Get(dhcpv4.OptionClientIdentifier))
	n := 2 + bootOptions(p, plan) // the options set below: server identifier, mask, ...
	if leaseTime > 0 {
		n += 3
	}
	for _, set := range []bool{sub.Router.IsValid(), len(sub.DNS) > 0, len(sub.NTP) > 0, sub.Domain != "", name != ""} {
		if set {
			n++
		}
	}
	r := newReply(p, mt, n)
	r.setIPs(dhcpv4.OptionServerIdentifier, local)
	r.setMask(dhcpv4.OptionSubnetMask, sub.Pool.Subnet.Bits())
	if leaseTime > 0 {
		leaseTime = leaseTime.Round(time.Second)
		r.setSeconds(dhcpv4.OptionIPAddressLeaseTime, leaseTime)
		r.setSeconds(dhcpv4.OptionRenewTimeValue, leaseTime/2)
		r.setSeconds(dhcpv4.OptionRebindingTimeValue, leaseTime*7/8)
	}
	if sub.Router.IsValid() {
		r.setIPs(dhcpv4.OptionRouter, sub.Router)
	}
	if len(sub.DNS) > 0 {
		r.setIPs(dhcpv4.OptionDomainNameServer, sub.DNS...)
	}
	if len(sub.NTP) > 0 {
		r.setIPs(dhcpv4.OptionNTPServers, sub.NTP...)
	}
	if sub.Domain != "" {
		r.setText(dhcpv4.OptionDomainName, sub.Domain)
	}
	if name != "" {
		r.setText(dhcpv4.OptionHostName, name)
	}
	if ip.IsValid() {
		r.YourIPAddr = ip.AsSlice()
	} else if mt == dhcpv4.MessageTypeAck {
		r.ClientIPAddr = p.ClientIPAddr // INFORM
	}
	withBoot(r, p, plan, server)
	return &r.DHCPv4
}
