package dhcp6

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"bootforge/internal/allow"
	"bootforge/internal/boot"
	"bootforge/internal/dhcp/lease"
)

// Modes.
const (
	ModeOff           = "off"
	ModeProxy         = "proxy"
	ModeAuthoritative = "authoritative"
)

const (
	// BootServerPort is where EDK2's PXE client asks a proxy for its boot
	// file after it took another server's address (PxeBcRequestBootService).
	BootServerPort = 4011
	// maxHops bounds relay nesting and hop-count: RFC 3315's
	// HOP_COUNT_LIMIT. A relay agent discards a Relay-forward whose
	// hop-count has reached the limit rather than relay it again, so a
	// client's message reaches a server inside at most maxHops+1 of them,
	// the outermost with hop-count maxHops. RFC 8415 §7.6 lowered the
	// limit to 8; a server that takes up to 32 serves relays of both.
	maxHops = 32
	// maxOptionDepth bounds options inside options. RFC 8415's deepest is
	// two: an IA holds addresses or prefixes, and they hold a status code;
	// twice that leaves room for what a later RFC nests.
	maxOptionDepth = 4
	// enterprisePXE is the enterprise number of the PXE vendor class (Intel's,
	// which EDK2 requires in option 16).
	enterprisePXE = 343
)

// ErrPanic is a packet that made the decoder or the handler panic: the
// server survives it, and the fuzz target fails on it.
var ErrPanic = errors.New("panic while handling a packet")

// Subnet is one served /64: its pool and the options its clients get.
type Subnet struct {
	Pool      *Pool
	DNS       []netip.Addr
	LeaseTime time.Duration
}

// Handler decides the reply to one packet. It holds no sockets; Server
// feeds it and sends what it returns.
type Handler struct {
	Mode     string
	Resolver *boot.Resolver
	// Inventory, if set, gives the profiles and hosts.
	Inventory func() *boot.Inventory
	Subnets   []*Subnet
	// ServerID is our DUID (option 2).
	ServerID dhcpv6.DUID
	// ServerAddress, if valid, is the address in boot URLs; otherwise
	// the one the packet reached us at, or the receiving interface's.
	ServerAddress netip.Addr
	Preference    int
	OfferHold     time.Duration
	Log           *slog.Logger
	Sightings     boot.Sightings
	// Allow, if set, is the allow-list: dhcp.allow, else the top-level
	// allow (the server swaps it on reload). Empty: every client of a
	// served interface, and in authoritative mode only the served subnets.
	Allow func() allow.List
}

// Request is one packet with where it came from.
type Request struct {
	Data  []byte
	Iface string
	// IfAddrs are the receiving interface's global IPv6 addresses.
	IfAddrs []netip.Prefix
	// Dst is the address the packet was sent to: ff02::1:2 from a client
	// on the link, one of ours from a relay or a boot-server request.
	Dst  netip.Addr
	Src  netip.AddrPort
	Port int // 547, or BootServerPort
}

// Result is what the handler did with one packet, and why. The server
// sends Packet to Src and builds the boot-log event from the Result.
type Result struct {
	Client boot.Client
	Plan   boot.Plan
	// Type is the client's message type (inside any relay).
	Type dhcpv6.MessageType
	// Reply is the answer to the client; Packet is what goes on the wire:
	// Reply, or Reply inside Relay-reply messages.
	Reply  *dhcpv6.Message
	Packet []byte
	// URL is the boot file URL in the reply, "" if none.
	URL string
	// Addrs are the addresses the reply gives the client.
	Addrs []netip.Addr
	// Relayed says the request came through relay agents.
	Relayed bool
	// Malformed says the packet could not be parsed.
	Malformed bool
	// Denied says the client's link is outside the allow-list.
	Denied bool
	// Silent says why no reply is sent.
	Silent string
	// Err is a failure of ours.
	Err  error
	Port int
}

// request is a parsed packet.
type request struct {
	Request
	outer dhcpv6.DHCPv6
	msg   *dhcpv6.Message
	relay *dhcpv6.RelayMessage // the relay closest to the client, or nil
	// link is the link-address of the relay closest to the client that
	// names one: a Lightweight Relay Agent (RFC 6221, a switch port)
	// leaves it unspecified, and the relay beyond it names the link.
	// Invalid when no relay does: the client is on the receiving link.
	link    netip.Addr
	server  netip.Addr
	subnet  *Subnet
	duid    []byte
	mac     net.HardwareAddr
	ourID   bool // the message names our server id
	otherID bool // the message names another server's id
}

// Handle decides the answer to req.
func (h *Handler) Handle(req Request) (res Result) {
	res.Port = req.Port
	defer func() {
		// The library decodes untrusted bytes; a panic in it must cost
		// one packet, not the server.
		if r := recover(); r != nil {
			res = Result{Port: req.Port, Malformed: true, Silent: fmt.Sprintf("malformed: %v", r), Err: fmt.Errorf("%w: %v", ErrPanic, r)}
		}
	}()
	r, why := h.parse(req)
	if r == nil {
		return Result{Port: req.Port, Malformed: true, Silent: why}
	}
	res.Type, res.Relayed = r.msg.MessageType, r.relay != nil
	res.Client = h.clientOf(r)
	if ok, denied := h.allowed(res.Client); !ok && why == "" {
		res.Denied, res.Silent = true, denied
		return res
	}
	var inv *boot.Inventory
	if h.Inventory != nil {
		inv = h.Inventory()
	}
	res.Plan = h.Resolver.Resolve(res.Client, inv)
	h.seen(res.Client)
	if why != "" {
		res.Silent = why
		return res
	}
	switch {
	case req.Port == BootServerPort:
		h.bootServer(r, &res)
	case h.Mode == ModeProxy:
		h.proxy(r, &res)
	case h.Mode == ModeAuthoritative:
		h.authoritative(r, &res)
	default:
		res.Silent = "dhcpv6 is off"
	}
	if res.Reply != nil && res.Err == nil {
		res.Packet, res.Err = h.wrap(r, res.Reply)
		if res.Err != nil {
			res.Reply, res.Silent = nil, "failed: "+res.Err.Error()
		}
	}
	return res
}

// parse decodes req, unwraps relays, and checks what RFC 8415 §16 asks
// of each message type. A nil request means garbage; a reason with a
// request means a well-formed message that gets no answer.
func (h *Handler) parse(req Request) (*request, string) {
	if why := nesting(req.Data, 0); why != "" {
		return nil, why
	}
	p, err := dhcpv6.FromBytes(req.Data)
	if err != nil {
		return nil, "malformed: " + err.Error()
	}
	r := &request{Request: req, outer: p}
	for p.IsRelay() { // Relay-forward messages only (nesting)
		rm := p.(*dhcpv6.RelayMessage)
		r.relay = rm
		if link, ok := netip.AddrFromSlice(rm.LinkAddr); ok && !link.IsUnspecified() {
			r.link = link.Unmap()
		}
		if p = rm.Options.RelayMessage(); p == nil {
			return nil, "relay-forward without a relay message"
		}
	}
	r.msg = p.(*dhcpv6.Message)
	if cid := r.msg.Options.ClientID(); cid != nil {
		r.duid = cid.ToBytes()
		switch d := cid.(type) {
		case *dhcpv6.DUIDLL:
			r.mac = d.LinkLayerAddr
		case *dhcpv6.DUIDLLT:
			r.mac = d.LinkLayerAddr
		}
	}
	if r.relay != nil {
		if _, lla := r.relay.Options.ClientLinkLayerAddress(); len(lla) > 0 {
			r.mac = lla // RFC 6939: the relay saw the client's own address
		}
	}
	if sid := r.msg.Options.ServerID(); sid != nil {
		r.ourID = h.ServerID != nil && sid.Equal(h.ServerID)
		r.otherID = !r.ourID
	}
	r.server = h.serverAddr(r)
	r.subnet = h.subnetFor(r)
	mt := r.msg.MessageType
	switch {
	case mt != dhcpv6.MessageTypeSolicit && mt != dhcpv6.MessageTypeRequest && mt != dhcpv6.MessageTypeConfirm &&
		mt != dhcpv6.MessageTypeRenew && mt != dhcpv6.MessageTypeRebind && mt != dhcpv6.MessageTypeRelease &&
		mt != dhcpv6.MessageTypeDecline && mt != dhcpv6.MessageTypeInformationRequest:
		return r, fmt.Sprintf("%s is not a client message", mt)
	case r.duid == nil && mt != dhcpv6.MessageTypeInformationRequest:
		return r, fmt.Sprintf("%s without a client identifier", mt)
	case r.otherID:
		return r, fmt.Sprintf("%s for another server", mt)
	case !r.ourID && (mt == dhcpv6.MessageTypeRequest || mt == dhcpv6.MessageTypeRenew ||
		mt == dhcpv6.MessageTypeRelease || mt == dhcpv6.MessageTypeDecline):
		return r, fmt.Sprintf("%s without our server identifier", mt)
	case r.ourID && (mt == dhcpv6.MessageTypeSolicit || mt == dhcpv6.MessageTypeRebind || mt == dhcpv6.MessageTypeConfirm):
		return r, fmt.Sprintf("%s must not carry a server identifier", mt)
	case r.relay == nil && req.Port != BootServerPort && req.Dst.IsValid() && !req.Dst.IsMulticast() &&
		(mt == dhcpv6.MessageTypeSolicit || mt == dhcpv6.MessageTypeRebind || mt == dhcpv6.MessageTypeConfirm):
		// RFC 8415 16: these go to every server on the link
		// (ff02::1:2); one sent to a single server's address is
		// discarded, so that a client cannot bind to one server past
		// the others' say.
		return r, fmt.Sprintf("%s sent unicast to %s; RFC 8415 16 has the server discard it", mt, req.Dst)
	}
	return r, ""
}

// containers are the options the decoder reads options out of, by the
// bytes of fixed fields before them (RFC 8415 21.4-21.6, 21.21, 21.22;
// RFC 7600 4.8 for 4RD). It reads those options at every level, and
// copies what an option holds at each: see nesting.
var containers = map[dhcpv6.OptionCode]int{
	dhcpv6.OptionIANA: 12, dhcpv6.OptionIATA: 4, dhcpv6.OptionIAAddr: 24,
	dhcpv6.OptionIAPD: 12, dhcpv6.OptionIAPrefix: 25, dhcpv6.Option4RD: 0,
}

// nesting checks message b, held in relays Relay-forward messages, before
// the decoder reads it, and returns why it must be dropped ("" if not).
// The decoder recurses into every relay message and every option that
// holds options, as deep as the packet goes, and copies each option's
// contents at each level: 64 KiB of IA_NA inside IA_NA, 4,000 deep, took
// 44 ms here to decode (some 128 MB copied), and 1,700 Relay-forward
// messages in one packet as many nested calls. A server takes no Relay-reply, and a
// relay message belongs in a Relay-forward only. What is too short or
// cut off is left to the decoder to refuse.
func nesting(b []byte, relays int) string {
	if len(b) == 0 {
		return ""
	}
	header, relay := 4, false // message type, transaction id
	switch mt := dhcpv6.MessageType(b[0]); {
	case mt == dhcpv6.MessageTypeRelayReply:
		return "a Relay-reply: only relay agents take one"
	case mt != dhcpv6.MessageTypeRelayForward:
	case relays > maxHops:
		return fmt.Sprintf("inside more than %d Relay-forward messages (HOP_COUNT_LIMIT %d)", maxHops+1, maxHops)
	case len(b) > 1 && b[1] > maxHops:
		return fmt.Sprintf("Relay-forward with hop-count %d, over HOP_COUNT_LIMIT %d", b[1], maxHops)
	default:
		header, relay = 34, true // type, hop-count, link-address, peer-address
	}
	if len(b) < header {
		return ""
	}
	return optionNesting(b[header:], relays, relay, 0)
}

// optionNesting checks options b, depth options deep in a message held
// in relays Relay-forward messages (relay: b are a Relay-forward's own).
func optionNesting(b []byte, relays int, relay bool, depth int) string {
	for len(b) >= 4 {
		code, n := dhcpv6.OptionCode(binary.BigEndian.Uint16(b)), int(binary.BigEndian.Uint16(b[2:]))
		if len(b)-4 < n {
			return ""
		}
		data := b[4 : 4+n]
		b = b[4+n:]
		if code == dhcpv6.OptionRelayMsg {
			if !relay {
				return "a relay message option outside a Relay-forward"
			}
			if why := nesting(data, relays+1); why != "" {
				return why
			}
			continue
		}
		if h, ok := containers[code]; ok && n >= h {
			if depth >= maxOptionDepth {
				return fmt.Sprintf("options nested more than %d deep", maxOptionDepth)
			}
			if why := optionNesting(data[h:], relays, false, depth+1); why != "" {
				return why
			}
		}
	}
	return ""
}

// allowed checks the client's link — its relay's link-address, else the
// receiving interface's address — against the allow-list, as the IPv4
// server checks giaddr or the interface. Before a client has an address,
// its link is all there is to check.
func (h *Handler) allowed(c boot.Client) (bool, string) {
	if h.Allow == nil {
		return true, ""
	}
	l := h.Allow()
	if l.Empty() {
		return true, ""
	}
	link := c.Link
	if c.Relay.IsValid() {
		link = c.Relay
	}
	if !link.IsValid() {
		return false, "the client's link has no IPv6 address to check against the allow-list"
	}
	d := l.Check(link)
	return d.Allowed, d.Reason
}

// serverAddr is the address a client fetches its boot files from.
func (h *Handler) serverAddr(r *request) netip.Addr {
	if h.ServerAddress.IsValid() {
		return h.ServerAddress
	}
	if r.Dst.IsValid() && r.Dst.IsGlobalUnicast() && !r.Dst.IsLinkLocalUnicast() {
		return r.Dst.WithZone("")
	}
	if l := h.link(r.IfAddrs); l.IsValid() {
		return l
	}
	return netip.Addr{}
}

// link picks the receiving interface's address on the client's link: the
// one inside a served subnet, else the first.
func (h *Handler) link(ifAddrs []netip.Prefix) netip.Addr {
	for _, a := range ifAddrs {
		for _, s := range h.Subnets {
			if s.Pool.Subnet.Contains(a.Addr()) {
				return a.Addr()
			}
		}
	}
	if len(ifAddrs) > 0 {
		return ifAddrs[0].Addr()
	}
	return netip.Addr{}
}

// subnetFor picks the subnet by the relays' link-address, else by the
// receiving interface's addresses.
func (h *Handler) subnetFor(r *request) *Subnet {
	if r.link.IsValid() {
		for _, s := range h.Subnets {
			if s.Pool.Subnet.Contains(r.link) {
				return s
			}
		}
		return nil
	}
	for _, a := range r.IfAddrs {
		for _, s := range h.Subnets {
			if s.Pool.Subnet.Contains(a.Addr()) {
				return s
			}
		}
	}
	return nil
}

// clientOf is what the packet says about the client, for the resolver.
func (h *Handler) clientOf(r *request) boot.Client {
	o := r.msg.Options
	c := boot.Client{MAC: r.mac, ClientID: r.duid, Interface: r.Iface, Server: r.server}
	if archs := o.ArchTypes(); len(archs) > 0 {
		c.Arch, c.HasArch = boot.Arch(archs[0]), true
	}
	for _, vc := range o.VendorClasses() {
		if v := boot.VendorClass6(vc.Data); v != "" && c.VendorClass == "" {
			c.VendorClass = v
		}
	}
	if c.HasArch && !strings.HasPrefix(c.VendorClass, "PXEClient") && !strings.HasPrefix(c.VendorClass, "HTTPClient") {
		c.VendorClass = boot.ClassOfArch(c.Arch)
	}
	for _, uc := range o.UserClasses() {
		c.UserClass = append(c.UserClass, string(uc))
	}
	if c.HasArch {
		c.Firmware, _ = c.Arch.Firmware()
	}
	if r.link.IsValid() {
		c.Relay = r.link
	} else {
		c.Link = h.link(r.IfAddrs)
	}
	return c
}

func (h *Handler) seen(c boot.Client) {
	if h.Sightings != nil && c.MAC != nil {
		h.Sightings.Seen(c)
	}
}

// bootOptions adds where to boot from to m: the boot file URL and, for
// UEFI HTTP boot, vendor class HTTPClient, without which EDK2 takes no
// URL. pxeClass also adds vendor class PXEClient, which makes EDK2's PXE
// client treat an answer without an address as a proxy offer
// (PxeOfferTypeProxyBinl) and ask the boot server on udp/4011 for its
// file. It reports the URL.
func (h *Handler) bootOptions(m *dhcpv6.Message, res *Result, server netip.Addr, pxeClass bool) {
	u := boot.URL6(res.Plan, server)
	if u == "" {
		return
	}
	res.URL = u
	m.AddOption(dhcpv6.OptBootFileURL(u))
	switch {
	case res.Plan.HTTPClient:
		m.AddOption(&dhcpv6.OptVendorClass{EnterpriseNumber: enterprisePXE, Data: [][]byte{[]byte("HTTPClient")}})
	case pxeClass && res.Plan.Stage == boot.StageFirmware:
		m.AddOption(&dhcpv6.OptVendorClass{EnterpriseNumber: enterprisePXE, Data: [][]byte{[]byte("PXEClient")}})
	}
}

// reply starts the answer to r's message: Advertise to a Solicit, Reply to
// the others, with the client's and our identifiers.
func (h *Handler) reply(r *request) (*dhcpv6.Message, error) {
	m := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeReply, TransactionID: r.msg.TransactionID}
	if r.msg.MessageType == dhcpv6.MessageTypeSolicit {
		m.MessageType = dhcpv6.MessageTypeAdvertise
	}
	if cid := r.msg.GetOneOption(dhcpv6.OptionClientID); cid != nil {
		m.AddOption(cid)
	}
	if h.ServerID == nil {
		return nil, errors.New("no server DUID")
	}
	m.AddOption(dhcpv6.OptServerID(h.ServerID))
	return m, nil
}

// proxy answers boot clients beside the network's own DHCPv6 server or
// SLAAC: boot options only, no address.
func (h *Handler) proxy(r *request, res *Result) {
	mt := r.msg.MessageType
	switch {
	case mt != dhcpv6.MessageTypeSolicit && mt != dhcpv6.MessageTypeRequest && mt != dhcpv6.MessageTypeInformationRequest:
		res.Silent = "proxy mode answers only Solicit, Request and Information-request"
		return
	case !res.Client.BootClient6():
		res.Silent = "not a boot client"
		return
	case !res.Plan.Boot:
		res.Silent = res.Plan.Reason
		return
	}
	m, err := h.reply(r)
	if err != nil {
		res.Err, res.Silent = err, "failed: "+err.Error()
		return
	}
	h.bootOptions(m, res, r.server, true)
	if mt == dhcpv6.MessageTypeRequest {
		// The client took our advertisement, which had no address: say
		// so for each IA (RFC 8415 §18.3.2).
		for _, ia := range r.msg.Options.IANA() {
			m.AddOption(&dhcpv6.OptIANA{IaId: ia.IaId, Options: dhcpv6.IdentityOptions{Options: dhcpv6.Options{
				&dhcpv6.OptStatusCode{StatusCode: iana.StatusNoAddrsAvail, StatusMessage: "boot options only"}}}})
		}
	}
	res.Reply = m
}

// bootServer answers EDK2's request on udp/4011: a Request (or
// Information-request) naming our server id, sent after the client took
// another server's address, whose Reply must carry the boot file URL.
func (h *Handler) bootServer(r *request, res *Result) {
	mt := r.msg.MessageType
	switch {
	case mt != dhcpv6.MessageTypeRequest && mt != dhcpv6.MessageTypeInformationRequest:
		res.Silent = "port 4011 answers only Request and Information-request"
		return
	case !res.Plan.Boot:
		res.Silent = res.Plan.Reason
		return
	}
	m, err := h.reply(r)
	if err != nil {
		res.Err, res.Silent = err, "failed: "+err.Error()
		return
	}
	h.bootOptions(m, res, r.server, true)
	res.Reply = m
}

// authoritative gives addresses from the subnet's pool, and boot options
// to boot clients.
func (h *Handler) authoritative(r *request, res *Result) {
	mt := r.msg.MessageType
	sub := r.subnet
	if sub == nil {
		res.Silent = "no subnet for this client (relay link-address or interface)"
		return
	}
	m, err := h.reply(r)
	if err != nil {
		res.Err, res.Silent = err, "failed: "+err.Error()
		return
	}
	if h.Preference > 0 && mt == dhcpv6.MessageTypeSolicit {
		m.AddOption(dhcpv6.OptPreference(uint8(h.Preference)))
	}
	valid := sub.LeaseTime
	ias := r.msg.Options.IANA()
	switch mt {
	case dhcpv6.MessageTypeSolicit:
		for _, ia := range ias {
			l, err := sub.Pool.Offer(IAKey(r.duid, ia.IaId), r.mac, hint(ia), h.OfferHold)
			if err != nil {
				m.AddOption(iaStatus(ia, iana.StatusNoAddrsAvail, err.Error()))
				continue
			}
			m.AddOption(iaAddr(ia, l.IP, valid))
			res.Addrs = append(res.Addrs, l.IP)
		}
	case dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRebind:
		for _, ia := range ias {
			key := IAKey(r.duid, ia.IaId)
			want := hint(ia)
			if mt == dhcpv6.MessageTypeRequest && !(want.IsValid() && sub.Pool.Holds(key, want)) {
				l, err := sub.Pool.Offer(key, r.mac, want, h.OfferHold)
				if err != nil {
					m.AddOption(iaStatus(ia, iana.StatusNoAddrsAvail, err.Error()))
					continue
				}
				want = l.IP
			}
			switch {
			case !want.IsValid():
				m.AddOption(iaStatus(ia, iana.StatusNoBinding, "no address in the IA"))
				continue
			case !sub.Pool.Subnet.Contains(want):
				// Not on this link: lifetimes 0 tell the client to drop it.
				m.AddOption(iaAddr(ia, want, 0))
				continue
			case mt != dhcpv6.MessageTypeRequest && !sub.Pool.Holds(key, want):
				m.AddOption(iaStatus(ia, iana.StatusNoBinding, "no binding for this address"))
				continue
			}
			l, err := sub.Pool.Bind(key, r.mac, want, valid)
			switch {
			case errors.Is(err, lease.ErrStore):
				res.Silent, res.Err = "lease not stored, no Reply: "+err.Error(), err
				return
			case err != nil:
				m.AddOption(iaStatus(ia, iana.StatusNoAddrsAvail, err.Error()))
				continue
			}
			m.AddOption(iaAddr(ia, l.IP, valid))
			res.Addrs = append(res.Addrs, l.IP)
			h.Log.Info("dhcp6: lease", "ip", l.IP, "duid", fmt.Sprintf("%x", r.duid), "iaid", fmt.Sprintf("%x", ia.IaId),
				"expires", l.Expires.Format(time.RFC3339), "boot", res.Plan.BootFile)
		}
	case dhcpv6.MessageTypeRelease, dhcpv6.MessageTypeDecline:
		for _, ia := range ias {
			// RFC 8415 18.3.7, 18.3.8: an IA the server has no binding
			// for (none of its addresses is the IA's) comes back with
			// NoBinding; the addresses it does hold are freed or
			// quarantined, and the others ignored.
			bound := false
			for _, a := range ia.Options.Addresses() {
				ip, ok := netip.AddrFromSlice(a.IPv6Addr)
				if !ok {
					continue
				}
				key := IAKey(r.duid, ia.IaId)
				if mt == dhcpv6.MessageTypeRelease {
					err = sub.Pool.Release(key, ip.Unmap())
				} else {
					err = sub.Pool.Decline(key, ip.Unmap(), valid)
				}
				if !errors.Is(err, ErrNoBinding) {
					bound = true
				}
				if err != nil {
					h.Log.Debug("dhcp6: "+strings.ToLower(mt.String()), "ip", ip, "err", err)
				}
			}
			if !bound {
				m.AddOption(iaStatus(ia, iana.StatusNoBinding, "no binding for this IA"))
			}
		}
		m.AddOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusSuccess})
	case dhcpv6.MessageTypeConfirm:
		code, addrs := iana.StatusSuccess, 0
		for _, ia := range ias {
			for _, a := range ia.Options.Addresses() {
				addrs++
				if ip, ok := netip.AddrFromSlice(a.IPv6Addr); !ok || !sub.Pool.Subnet.Contains(ip.Unmap()) {
					code = iana.StatusNotOnLink
				}
			}
		}
		if addrs == 0 {
			// RFC 8415 18.3.3: with no addresses to check, the server
			// MUST NOT send a Reply.
			res.Silent = "CONFIRM without addresses"
			return
		}
		m.AddOption(&dhcpv6.OptStatusCode{StatusCode: code})
	case dhcpv6.MessageTypeInformationRequest:
	}
	if len(sub.DNS) > 0 && mt != dhcpv6.MessageTypeRelease && mt != dhcpv6.MessageTypeDecline {
		dns := make([]net.IP, len(sub.DNS))
		for i, a := range sub.DNS {
			dns[i] = a.AsSlice()
		}
		m.AddOption(dhcpv6.OptDNS(dns...))
	}
	if res.Client.BootClient6() && mt != dhcpv6.MessageTypeRelease && mt != dhcpv6.MessageTypeDecline {
		// No PXEClient class here: with an address and a boot file URL,
		// EDK2 boots from this answer alone (a "DhcpOnly" offer with a
		// boot file); with the class it would ask udp/4011 again.
		h.bootOptions(m, res, r.server, false)
	}
	if len(res.Addrs) > 0 {
		res.Client.IP = res.Addrs[0]
		h.seen(res.Client)
	}
	res.Reply = m
}

// hint is the address a client asks for in an IA, if any.
func hint(ia *dhcpv6.OptIANA) netip.Addr {
	if a := ia.Options.OneAddress(); a != nil {
		if ip, ok := netip.AddrFromSlice(a.IPv6Addr); ok && !ip.IsUnspecified() {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}

func iaAddr(ia *dhcpv6.OptIANA, ip netip.Addr, valid time.Duration) *dhcpv6.OptIANA {
	valid = valid.Round(time.Second)
	return &dhcpv6.OptIANA{IaId: ia.IaId, T1: valid / 2, T2: valid * 4 / 5, Options: dhcpv6.IdentityOptions{Options: dhcpv6.Options{
		&dhcpv6.OptIAAddress{IPv6Addr: ip.AsSlice(), PreferredLifetime: valid, ValidLifetime: valid}}}}
}

func iaStatus(ia *dhcpv6.OptIANA, code iana.StatusCode, msg string) *dhcpv6.OptIANA {
	return &dhcpv6.OptIANA{IaId: ia.IaId, Options: dhcpv6.IdentityOptions{Options: dhcpv6.Options{
		&dhcpv6.OptStatusCode{StatusCode: code, StatusMessage: msg}}}}
}

// wrap puts the reply to a relayed message into Relay-reply messages,
// each echoing its relay's link-address, peer-address and interface-id
// (RFC 8415 §19.3), and encodes it.
func (h *Handler) wrap(r *request, reply *dhcpv6.Message) ([]byte, error) {
	if r.relay == nil {
		return reply.ToBytes(), nil
	}
	out, err := dhcpv6.NewRelayReplFromRelayForw(r.outer.(*dhcpv6.RelayMessage), reply)
	if err != nil {
		return nil, err
	}
	return out.ToBytes(), nil
}
