// Package relayclient plays many PXE firmware DHCPv4 clients behind one
// relay agent, for the load generators bench/dhcpload and bench/pxestorm.
//
// Both generators need the same thing: one UDP socket bound on the relay
// address (sent as giaddr) carrying every simulated client's relayed
// DISCOVER and REQUEST to the server, a reader handing each reply to the
// client waiting for its transaction id, PXE-looking options (93, 60, 94,
// 97, 55, 82) and distinct client MACs. It lives here, once, so the two
// programs send the same packets and count replies the same way; each
// program keeps its own DORA logic, accounting and output.
//
// Packets are built and parsed with github.com/insomniacslk/dhcp/dhcpv4.
package relayclient

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// Config describes the relay and the clients behind it.
type Config struct {
	Relay  net.IP // bound on Port and sent as giaddr
	Server net.IP // DISCOVERs and REQUESTs go to its Port
	Port   int    // UDP port of the server and of the relay (67)

	// InFlight is about how many clients wait for replies at once (a
	// size hint only).
	InFlight int

	// Archs are the client architectures (option 93): client i is
	// Archs[i%len(Archs)]. Option 60 follows the architecture.
	Archs []iana.Arch
	// ParamRequest is the parameter request list (option 55).
	ParamRequest []dhcpv4.OptionCode
	// RemoteID is the relay's remote id (option 82 suboption 2).
	RemoteID string
}

// EDK2ParamRequest is the parameter request list of EDK2's PXE client.
var EDK2ParamRequest = []dhcpv4.OptionCode{
	dhcpv4.OptionSubnetMask, dhcpv4.OptionTimeOffset, dhcpv4.OptionRouter,
	dhcpv4.OptionTimeServer, dhcpv4.OptionNameServer, dhcpv4.OptionDomainNameServer,
	dhcpv4.OptionHostName, dhcpv4.OptionBootFileSize, dhcpv4.OptionDomainName,
	dhcpv4.OptionRootPath, dhcpv4.OptionExtensionsPath, dhcpv4.OptionMaximumDatagramAssemblySize,
	dhcpv4.OptionDefaultIPTTL, dhcpv4.OptionBroadcastAddress, dhcpv4.OptionNetworkInformationServiceDomain,
	dhcpv4.OptionNetworkInformationServers, dhcpv4.OptionNTPServers, dhcpv4.OptionVendorSpecificInformation,
	dhcpv4.OptionRequestedIPAddress, dhcpv4.OptionIPAddressLeaseTime, dhcpv4.OptionServerIdentifier,
	dhcpv4.OptionRenewTimeValue, dhcpv4.OptionRebindingTimeValue, dhcpv4.OptionClassIdentifier,
	dhcpv4.OptionTFTPServerName, dhcpv4.OptionBootfileName,
	dhcpv4.GenericOptionCode(128), dhcpv4.GenericOptionCode(129), dhcpv4.GenericOptionCode(130),
	dhcpv4.GenericOptionCode(131), dhcpv4.GenericOptionCode(132), dhcpv4.GenericOptionCode(133),
	dhcpv4.GenericOptionCode(134), dhcpv4.GenericOptionCode(135),
}

// Reply is one parsed BOOTREPLY and when the reader received it.
type Reply struct {
	Msg *dhcpv4.DHCPv4
	At  time.Time
}

// Stats counts what the relay saw besides the replies clients took.
type Stats struct {
	Stray       int64 // replies for no waiting client, of a type it did not want, or beyond its queue
	Bad         int64 // datagrams that failed to parse or were not a BOOTREPLY
	Retransmits int64 // messages sent again by Exchange
}

// Relay is the relay agent's socket and the clients waiting on it.
type Relay struct {
	cfg     Config
	conn    *net.UDPConn
	dst     *net.UDPAddr
	xidBase uint32
	done    chan struct{} // closed when the reader returns

	mu      sync.Mutex
	waiting map[uint32]chan Reply

	stray, bad, retrans atomic.Int64
}

// Listen binds cfg.Relay:cfg.Port and starts reading replies. Close it.
func Listen(cfg Config) (*Relay, error) {
	if len(cfg.Archs) == 0 {
		return nil, errors.New("relayclient: no client architectures")
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: cfg.Relay, Port: cfg.Port})
	if err != nil {
		return nil, fmt.Errorf("bind relay %s:%d: %w", cfg.Relay, cfg.Port, err)
	}
	_ = conn.SetReadBuffer(8 << 20)
	_ = conn.SetWriteBuffer(8 << 20)
	var xb [4]byte
	if _, err := rand.Read(xb[:]); err != nil {
		conn.Close()
		return nil, err
	}
	r := &Relay{
		cfg:     cfg,
		conn:    conn,
		dst:     &net.UDPAddr{IP: cfg.Server, Port: cfg.Port},
		xidBase: binary.BigEndian.Uint32(xb[:]),
		done:    make(chan struct{}),
		waiting: make(map[uint32]chan Reply, max(cfg.InFlight, 0)),
	}
	go func() { defer close(r.done); r.readLoop() }()
	return r, nil
}

// Close closes the socket and waits for the reader to stop. Clients
// still waiting get no more replies.
func (r *Relay) Close() error {
	err := r.conn.Close()
	<-r.done
	return err
}

// Stats returns the counts so far.
func (r *Relay) Stats() Stats {
	return Stats{Stray: r.stray.Load(), Bad: r.bad.Load(), Retransmits: r.retrans.Load()}
}

func (r *Relay) readLoop() {
	buf := make([]byte, 4096)
	for {
		n, _, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		at := time.Now()
		msg, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || msg.OpCode != dhcpv4.OpcodeBootReply {
			r.bad.Add(1)
			continue
		}
		xid := binary.BigEndian.Uint32(msg.TransactionID[:])
		r.mu.Lock()
		ch := r.waiting[xid]
		r.mu.Unlock()
		if ch == nil {
			r.stray.Add(1)
			continue
		}
		select {
		case ch <- Reply{msg, at}:
		default:
			r.stray.Add(1)
		}
	}
}

// Client is simulated client i: its MAC, its transaction id (the same
// for all its messages) and its queue of replies. A Client is used by one
// goroutine at a time.
type Client struct {
	r     *Relay
	mac   net.HardwareAddr
	key   uint32
	xid   dhcpv4.TransactionID
	ch    chan Reply
	opts  []dhcpv4.Modifier
	timer *time.Timer // reused by every wait
}

// Client registers client i, with hardware address mac, to receive the
// replies to its transaction id. Call Close when it is done. Two clients
// with the same i must not be open at once.
func (r *Relay) Client(i int, mac net.HardwareAddr) *Client {
	c := &Client{
		r:    r,
		mac:  mac,
		key:  r.xidBase + uint32(i),
		ch:   make(chan Reply, 8),
		opts: r.cfg.options(i, mac),
	}
	binary.BigEndian.PutUint32(c.xid[:], c.key)
	r.mu.Lock()
	r.waiting[c.key] = c.ch
	r.mu.Unlock()
	return c
}

// Close stops the client's replies; later ones count as stray.
func (c *Client) Close() {
	c.r.mu.Lock()
	delete(c.r.waiting, c.key)
	c.r.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
	}
}

// MAC is the client's hardware address.
func (c *Client) MAC() net.HardwareAddr { return c.mac }

// vendorClass is option 60 of a PXE ROM of architecture a: UNDI 2.1 as
// BIOS ROMs say, 3.16 as UEFI ones do.
func vendorClass(a iana.Arch) string {
	undi := "003016"
	if a == iana.INTEL_X86PC {
		undi = "002001"
	}
	return fmt.Sprintf("PXEClient:Arch:%05d:UNDI:%s", uint16(a), undi)
}

// CircuitIDPrefix starts the circuit id (option 82 suboption 1) of every
// client: "sw1/0/" and a port number from 1 to 48.
const CircuitIDPrefix = "sw1/0/"

// options are what a PXE client with index i and hardware address mac
// sends, plus the relay agent information the relay adds (last, as RFC
// 3046 2.1 says).
func (cfg *Config) options(i int, mac net.HardwareAddr) []dhcpv4.Modifier {
	arch := cfg.Archs[i%len(cfg.Archs)]
	// Option 97: type 0, then a 16-byte UUID derived from the MAC.
	uuid := make([]byte, 17)
	copy(uuid[1:], []byte{0x4b, 0x46, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x80, 0x00})
	copy(uuid[11:], mac)
	return []dhcpv4.Modifier{
		func(d *dhcpv4.DHCPv4) { d.HopCount = 1 },
		dhcpv4.WithGatewayIP(cfg.Relay),
		dhcpv4.WithBroadcast(true),
		dhcpv4.WithOption(dhcpv4.OptMaxMessageSize(1472)),
		dhcpv4.WithOption(dhcpv4.OptClientArch(arch)),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClientNetworkInterfaceIdentifier, []byte{1, 3, 16})),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier(vendorClass(arch))),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, uuid)),
		dhcpv4.WithOption(dhcpv4.OptParameterRequestList(cfg.ParamRequest...)),
		dhcpv4.WithOption(dhcpv4.OptRelayAgentInfo(
			dhcpv4.OptGeneric(dhcpv4.AgentCircuitIDSubOption, fmt.Appendf(nil, "%s%d", CircuitIDPrefix, i%48+1)),
			dhcpv4.OptGeneric(dhcpv4.AgentRemoteIDSubOption, []byte(cfg.RemoteID)),
		)),
	}
}

// Discover builds the client's relayed DISCOVER.
func (c *Client) Discover() (*dhcpv4.DHCPv4, error) {
	return dhcpv4.NewDiscovery(c.mac, append(slices.Clip(c.opts), dhcpv4.WithTransactionID(c.xid))...)
}

// ErrBadOffer is the error of Request for an OFFER without a usable
// yiaddr or for another client hardware address.
var ErrBadOffer = errors.New("bad OFFER")

// Request builds the client's relayed REQUEST for offer: option 50 is the
// offer's yiaddr (returned as yi), option 54 its server identifier or,
// without one, the relay's server address. A bad offer gives an error
// wrapping ErrBadOffer.
func (c *Client) Request(offer *dhcpv4.DHCPv4) (req *dhcpv4.DHCPv4, yi net.IP, err error) {
	yi = offer.YourIPAddr.To4()
	if yi == nil || yi.IsUnspecified() || string(offer.ClientHWAddr) != string(c.mac) {
		return nil, nil, fmt.Errorf("%w (yiaddr %v, chaddr %v)", ErrBadOffer, offer.YourIPAddr, offer.ClientHWAddr)
	}
	sid := offer.ServerIdentifier()
	if sid == nil {
		sid = c.r.cfg.Server
	}
	req, err = dhcpv4.New(append(slices.Clip(c.opts),
		dhcpv4.WithTransactionID(c.xid),
		dhcpv4.WithHwAddr(c.mac),
		dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(yi)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(sid)),
	)...)
	if err != nil {
		return nil, nil, err
	}
	return req, yi, nil
}

// EchoesRelayInfo reports whether m carries back the relay agent
// information a client sent (RFC 3046 2.2: the server must echo it).
func EchoesRelayInfo(m *dhcpv4.DHCPv4) bool {
	rai := m.RelayAgentInfo()
	return rai != nil && strings.HasPrefix(string(rai.Get(dhcpv4.AgentCircuitIDSubOption)), CircuitIDPrefix)
}

// Schedule is how long Exchange waits for an answer before it sends again.
type Schedule struct {
	// Waits are the waits after the first send, the second, and so on;
	// there is at least one.
	Waits []time.Duration
	// Forever resends at the last wait until the context ends. Without
	// it Exchange gives up, with ErrNoAnswer, after the last wait.
	Forever bool
}

// PXESchedule is the PXE spec's DISCOVER schedule (4, 8, 16, 32 s, then
// 32 s again): only the context bounds it.
var PXESchedule = Schedule{Waits: []time.Duration{4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second}, Forever: true}

// Once is the schedule of a client that sends once and waits timeout.
func Once(timeout time.Duration) Schedule { return Schedule{Waits: []time.Duration{timeout}} }

// ErrNoAnswer is the error of Exchange when a schedule without Forever
// runs out.
var ErrNoAnswer = errors.New("no answer")

var errExpired = errors.New("wait expired")

// Exchange sends m to the server and returns the first reply of one of
// the wanted types, sending m again on schedule s (each resend counts in
// Stats.Retransmits) until s runs out or ctx ends. Replies of other types
// are dropped and count as stray. Errors: a failed send; ErrNoAnswer; or,
// when ctx ends, an error wrapping ctx.Err().
func (c *Client) Exchange(ctx context.Context, m *dhcpv4.DHCPv4, s Schedule, want ...dhcpv4.MessageType) (Reply, error) {
	if len(s.Waits) == 0 {
		return Reply{}, errors.New("relayclient: empty schedule")
	}
	var b []byte
	for try := 0; ; try++ {
		if try >= len(s.Waits) && !s.Forever {
			return Reply{}, fmt.Errorf("%w to %s after %d tries", ErrNoAnswer, m.MessageType(), try)
		}
		deadline := time.Now().Add(s.Waits[min(try, len(s.Waits)-1)])
		if try == 0 {
			b = m.ToBytes()
		} else {
			c.r.retrans.Add(1)
		}
		if _, err := c.r.conn.WriteToUDP(b, c.r.dst); err != nil {
			return Reply{}, fmt.Errorf("send %s: %w", m.MessageType(), err)
		}
		r, err := c.wait(ctx, deadline, want)
		switch {
		case err == nil:
			return r, nil
		case err != errExpired:
			return Reply{}, fmt.Errorf("no answer to %s: %w", m.MessageType(), err)
		}
	}
}

// wait returns the next reply of a wanted type, errExpired at deadline,
// or ctx.Err() when ctx ends first.
func (c *Client) wait(ctx context.Context, deadline time.Time, want []dhcpv4.MessageType) (Reply, error) {
	for {
		d := time.Until(deadline)
		if d <= 0 {
			return Reply{}, errExpired
		}
		if c.timer == nil {
			c.timer = time.NewTimer(d)
		} else {
			c.timer.Reset(d)
		}
		select {
		case r := <-c.ch:
			// Go 1.23+ timers: Stop (and Reset) discard a pending fire,
			// so there is nothing to drain.
			c.timer.Stop()
			if slices.Contains(want, r.Msg.MessageType()) {
				return r, nil
			}
			c.r.stray.Add(1)
		case <-c.timer.C:
			return Reply{}, errExpired
		case <-ctx.Done():
			c.timer.Stop()
			return Reply{}, ctx.Err()
		}
	}
}
