package e2e

// bootforge's DHCP server against real peers, in network namespaces:
// ISC dhclient and busybox udhcpc as clients, nmap's DHCP discovery script,
// dnsmasq as the plain DHCP server beside bootforge's proxyDHCP, and ISC
// dhcrelay as a relay agent. Where a peer cannot show the bytes, a raw
// client written here (its own encoder and decoder, not the library the
// server uses) sends and checks them.
//
// Every namespace comes from netlab_test.go and is removed when the test
// ends. Addresses: 192.0.2.0/24 (the lab), 198.51.100.0/24 (behind a relay),
// 198.18.0.0/15 (a second link).

import (
	"bufio"
	"bytes"
	"context"
	binenc "encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// dhServerIP is bootforge's address on the lab bridge.
const dhServerIP = "192.0.2.1"

// dhReplyWait bounds the wait for a reply that must come (generous: QEMU
// tests may share the CPUs); dhSilence is how long a reply that must not
// come is waited for.
const (
	dhReplyWait = 5 * time.Second
	dhSilence   = 2 * time.Second
)

// DHCP message types (RFC 2132 9.6).
const (
	dhDiscover = 1
	dhOffer    = 2
	dhRequest  = 3
	dhDecline  = 4
	dhAck      = 5
	dhNak      = 6
	dhRelease  = 7
	dhInform   = 8
)

var dhTypeNames = map[byte]string{1: "DISCOVER", 2: "OFFER", 3: "REQUEST", 4: "DECLINE", 5: "ACK", 6: "NAK", 7: "RELEASE", 8: "INFORM"}

// ---------------------------------------------------------------------------
// Server and log helpers

// dhStart runs bootforge in the lab namespace on 192.0.2.1 with config.
func dhStart(t testing.TB, lab *Lab, config string, args ...string) *Server {
	t.Helper()
	s := StartServer(t, ServerOptions{Netns: lab.Netns, Addr: dhServerIP, Config: config, Args: args})
	if !strings.Contains(s.Log(), "dhcp_on=") {
		t.Fatalf("bootforge is ready but serves no DHCP:\n%s", s.Log())
	}
	return s
}

// dhRec is one logfmt line of bootforge's text log.
type dhRec map[string]string

var dhLogfmtRE = regexp.MustCompile(`([A-Za-z0-9_.]+)=("(?:[^"\\]|\\.)*"|\S*)`)

// dhRecords returns the log records of s whose msg is msg and that match
// (nil: all).
func dhRecords(s *Server, msg string, match func(dhRec) bool) []dhRec {
	var out []dhRec
	sc := bufio.NewScanner(strings.NewReader(s.Log()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		rec := dhRec{}
		for _, m := range dhLogfmtRE.FindAllStringSubmatch(sc.Text(), -1) {
			v := m[2]
			if strings.HasPrefix(v, `"`) {
				if u, err := strconv.Unquote(v); err == nil {
					v = u
				}
			}
			rec[m[1]] = v
		}
		if rec["msg"] == msg && (match == nil || match(rec)) {
			out = append(out, rec)
		}
	}
	return out
}

// dhWaitRecord waits until a record like dhRecords(s, msg, match) exists.
func dhWaitRecord(t testing.TB, s *Server, timeout time.Duration, msg string, match func(dhRec) bool) dhRec {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if recs := dhRecords(s, msg, match); len(recs) > 0 {
			return recs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q record as expected in the server log within %s:\n%s", msg, timeout, s.Log())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// dhByMAC matches records of one client.
func dhByMAC(mac string) func(dhRec) bool {
	mac = strings.ToLower(mac)
	return func(r dhRec) bool { return strings.ToLower(r["mac"]) == mac }
}

// dhReplies returns bootforge's "dhcp: replied" records for mac, of type typ
// ("" for all).
func dhReplies(s *Server, mac, typ string) []dhRec {
	return dhRecords(s, "dhcp: replied", func(r dhRec) bool {
		return dhByMAC(mac)(r) && (typ == "" || r["type"] == typ)
	})
}

// ---------------------------------------------------------------------------
// Namespaces, links and addresses

// dhInNetns runs fn on an OS thread switched into the named namespace.
// Sockets fn creates stay in that namespace and can be used from any
// goroutine afterwards.
func dhInNetns(netns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// On failure to switch back the thread stays locked and is
		// discarded when this goroutine ends.
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/var/run/netns", netns))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		var was, want, now unix.Stat_t
		if err := unix.Fstat(int(orig.Fd()), &was); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		if err := unix.Fstat(int(target.Fd()), &want); err != nil || want.Ino == was.Ino {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("namespace %s is this process's own namespace (or unreadable: %v): refusing", netns, err)
			return
		}
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", netns, err)
			return
		}
		// Never touch the host's interfaces: check where this thread is.
		var ferr error
		if err := unix.Stat(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), &now); err != nil || now.Ino != want.Ino || now.Dev != want.Dev {
			ferr = fmt.Errorf("thread is not in namespace %s after setns (%v)", netns, err)
		} else {
			ferr = fn()
		}
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("returning from %s: %w", netns, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// dhLink creates a new namespace joined by a veth pair to the namespace
// from: fromIface (with fromAddr, CIDR, may be "") on that side, eth0 (with
// addr, CIDR, may be "") in the new one. The new namespace is deleted when
// the test ends.
func dhLink(t testing.TB, lab *Lab, from, fromIface, fromAddr, addr string) *LabHost {
	t.Helper()
	h := &LabHost{Lab: lab, Netns: newNetnsName(), Iface: "eth0"}
	for _, a := range []string{fromAddr, addr} {
		if a != "" {
			p, err := netip.ParsePrefix(a)
			if err != nil {
				t.Fatalf("address %q: %v", a, err)
			}
			checkAllowed(t, p)
		}
	}
	addNetns(t, h.Netns) // with a private resolv.conf: DHCP clients must never touch the host's
	in := func(ns string, args ...string) {
		t.Helper()
		if out, err := netnsRun(ns, 30*time.Second, "ip", args...); err != nil {
			t.Fatalf("in %s: ip %s: %v\n%s", ns, strings.Join(args, " "), err, out)
		}
	}
	in(from, "link", "add", fromIface, "type", "veth", "peer", "name", "eth0", "netns", h.Netns)
	if fromAddr != "" {
		in(from, "addr", "add", fromAddr, "dev", fromIface)
	}
	in(from, "link", "set", fromIface, "up")
	in(h.Netns, "link", "set", "lo", "up")
	if addr != "" {
		h.Addr = netip.MustParsePrefix(addr)
		in(h.Netns, "addr", "add", addr, "dev", "eth0")
	}
	in(h.Netns, "link", "set", "eth0", "up")
	dhWaitLink(t, h.Netns, "eth0", from)
	return h
}

var dhEtherRE = regexp.MustCompile(`link/ether ([0-9a-f:]{17})`)

// dhMAC returns the MAC address of h's interface.
func dhMAC(t testing.TB, h *LabHost) string {
	t.Helper()
	out := h.MustExec("ip", "-o", "link", "show", "dev", h.Iface)
	m := dhEtherRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no MAC address in %q", out)
	}
	return m[1]
}

// dhSetMAC gives h's interface the MAC address mac.
func dhSetMAC(t testing.TB, h *LabHost, mac string) {
	t.Helper()
	h.MustExec("ip", "link", "set", "dev", h.Iface, "down")
	h.MustExec("ip", "link", "set", "dev", h.Iface, "address", mac)
	h.MustExec("ip", "link", "set", "dev", h.Iface, "up")
	dhWaitLink(t, h.Netns, h.Iface, h.Lab.Netns)
}

var dhPeerRE = regexp.MustCompile(`^\d+: [^:@]+@if(\d+):`)

// dhWaitLink waits until iface in netns and its veth peer in peerNetns
// can pass frames: carrier on both ends, a real qdisc (the kernel keeps
// "noop", which drops everything, until linkwatch has seen the carrier, up
// to a second later), and a bridge port in forwarding state. Real DHCP
// clients ride over this by retrying; a test that sends one packet must not
// race it.
func dhWaitLink(t testing.TB, netns, iface, peerNetns string) {
	t.Helper()
	ready := func(line string) bool {
		return strings.Contains(line, "LOWER_UP") && !strings.Contains(line, "qdisc noop") &&
			(!strings.Contains(line, "bridge_slave") || strings.Contains(line, "bridge_slave state forwarding"))
	}
	deadline := time.Now().Add(10 * time.Second)
	var own, peer string
	for time.Now().Before(deadline) {
		own, _ = netnsRun(netns, 10*time.Second, "ip", "-d", "-o", "link", "show", "dev", iface)
		if m := dhPeerRE.FindStringSubmatch(own); m != nil && ready(own) {
			all, _ := netnsRun(peerNetns, 10*time.Second, "ip", "-d", "-o", "link", "show")
			for _, line := range strings.Split(all, "\n") {
				if strings.HasPrefix(line, m[1]+": ") {
					peer = line
				}
			}
			if ready(peer) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("link %s in %s not ready:\n%s\npeer in %s:\n%s", iface, netns, own, peerNetns, peer)
}

// dhAddHost is lab.AddHost, returning once the host's link passes frames.
func dhAddHost(t testing.TB, lab *Lab, ip string) *LabHost {
	t.Helper()
	h := lab.AddHost(t, ip)
	dhWaitLink(t, h.Netns, h.Iface, lab.Netns)
	return h
}

// dhAddrs returns the IPv4 addresses on h's interface.
func dhAddrs(t testing.TB, h *LabHost) string {
	t.Helper()
	return h.MustExec("ip", "-4", "-o", "addr", "show", "dev", h.Iface)
}

// dhInPool reports whether ip is in first..last.
func dhInPool(ip, first, last string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	return !a.Less(netip.MustParseAddr(first)) && !netip.MustParseAddr(last).Less(a)
}

// ---------------------------------------------------------------------------
// Raw DHCP: an encoder and a decoder of our own, independent of the server's

// dhOpt is one option as it is on the wire.
type dhOpt struct {
	Code byte
	Data []byte
}

func dhO(code byte, data ...byte) dhOpt      { return dhOpt{code, data} }
func dhOS(code byte, s string) dhOpt         { return dhOpt{code, []byte(s)} }
func dhOIP(code byte, ip string) dhOpt       { a := netip.MustParseAddr(ip).As4(); return dhOpt{code, a[:]} }
func dhOType(mt byte) dhOpt                  { return dhO(53, mt) }
func dhORaw(code byte, data []byte) dhOpt    { return dhOpt{code, data} }
func dhOArch(arch uint16) dhOpt              { return dhO(93, byte(arch>>8), byte(arch)) }
func dhOUUID(uuid []byte) dhOpt              { return dhORaw(97, append([]byte{0}, uuid...)) }
func dhOPRL(codes ...byte) dhOpt             { return dhORaw(55, codes) }
func dhOClientID(mac net.HardwareAddr) dhOpt { return dhORaw(61, append([]byte{1}, mac...)) }

// dhMsg is a request to encode. Zero addresses encode as 0.0.0.0.
type dhMsg struct {
	Op, HType, HLen, Hops          byte
	XID                            uint32
	Secs, Flags                    uint16
	CIAddr, YIAddr, SIAddr, GIAddr string
	CHAddr                         []byte
	SName, File                    []byte // raw field contents
	Opts                           []dhOpt
	NoEnd                          bool // leave out the END option
	Tail                           []byte
}

// dhNewMsg is a BOOTREQUEST from mac with a random xid, the broadcast flag
// and the message type first.
func dhNewMsg(mac string, mt byte, opts ...dhOpt) dhMsg {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		panic(err)
	}
	return dhMsg{Op: 1, HType: 1, HLen: byte(len(hw)), XID: rand.Uint32(), Flags: 0x8000,
		CHAddr: hw, Opts: append([]dhOpt{dhOType(mt)}, opts...)}
}

func dhPutIP(b []byte, s string) {
	if s != "" {
		a := netip.MustParseAddr(s).As4()
		copy(b, a[:])
	}
}

// Bytes encodes m.
func (m dhMsg) Bytes() []byte {
	b := make([]byte, 240)
	b[0], b[1], b[2], b[3] = m.Op, m.HType, m.HLen, m.Hops
	binenc.BigEndian.PutUint32(b[4:], m.XID)
	binenc.BigEndian.PutUint16(b[8:], m.Secs)
	binenc.BigEndian.PutUint16(b[10:], m.Flags)
	dhPutIP(b[12:], m.CIAddr)
	dhPutIP(b[16:], m.YIAddr)
	dhPutIP(b[20:], m.SIAddr)
	dhPutIP(b[24:], m.GIAddr)
	copy(b[28:44], m.CHAddr)
	copy(b[44:108], m.SName)
	copy(b[108:236], m.File)
	copy(b[236:], []byte{99, 130, 83, 99})
	for _, o := range m.Opts {
		b = append(b, o.Code, byte(len(o.Data)))
		b = append(b, o.Data...)
	}
	if !m.NoEnd {
		b = append(b, 255)
	}
	b = append(b, m.Tail...)
	return b
}

// dhOptBytes encodes options (for the file and sname fields), ending with END.
func dhOptBytes(opts ...dhOpt) []byte {
	var b []byte
	for _, o := range opts {
		b = append(b, o.Code, byte(len(o.Data)))
		b = append(b, o.Data...)
	}
	return append(b, 255)
}

// dhPkt is a decoded reply.
type dhPkt struct {
	Raw                            []byte
	From                           netip.AddrPort
	Op, HLen, Hops                 byte
	XID                            uint32
	Flags                          uint16
	CIAddr, YIAddr, SIAddr, GIAddr string
	CHAddr                         net.HardwareAddr
	SName, File                    string
	Opts                           []dhOpt // in wire order, END excluded
	End                            bool    // the options ended with END
	EndAt, LastEnd                 int     // offsets of END and of the byte after the last option
}

func dhCString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func dhIPAt(b []byte) string { return netip.AddrFrom4([4]byte(b[:4])).String() }

// dhParse decodes a BOOTP/DHCP packet, strictly: every option must fit.
func dhParse(b []byte) (*dhPkt, error) {
	if len(b) < 240 {
		return nil, fmt.Errorf("%d bytes: shorter than a BOOTP header and cookie", len(b))
	}
	if !bytes.Equal(b[236:240], []byte{99, 130, 83, 99}) {
		return nil, fmt.Errorf("bad magic cookie % x", b[236:240])
	}
	p := &dhPkt{Raw: b, Op: b[0], HLen: b[2], Hops: b[3], XID: binenc.BigEndian.Uint32(b[4:]),
		Flags:  binenc.BigEndian.Uint16(b[10:]),
		CIAddr: dhIPAt(b[12:]), YIAddr: dhIPAt(b[16:]), SIAddr: dhIPAt(b[20:]), GIAddr: dhIPAt(b[24:]),
		SName: dhCString(b[44:108]), File: dhCString(b[108:236])}
	hl := min(int(p.HLen), 16)
	p.CHAddr = net.HardwareAddr(append([]byte(nil), b[28:28+hl]...))
	for i := 240; i < len(b); {
		code := b[i]
		if code == 0 {
			i++
			continue
		}
		if code == 255 {
			p.End, p.EndAt = true, i
			break
		}
		if i+1 >= len(b) || i+2+int(b[i+1]) > len(b) {
			return nil, fmt.Errorf("option %d at offset %d runs past the end of the packet", code, i)
		}
		n := int(b[i+1])
		p.Opts = append(p.Opts, dhOpt{code, append([]byte(nil), b[i+2:i+2+n]...)})
		i += 2 + n
		p.LastEnd = i
	}
	if !p.End {
		return nil, errors.New("options do not end with END")
	}
	return p, nil
}

// Opt returns option code, concatenated over repeats (RFC 3396).
func (p *dhPkt) Opt(code byte) ([]byte, bool) {
	var v []byte
	found := false
	for _, o := range p.Opts {
		if o.Code == code {
			v = append(v, o.Data...)
			found = true
		}
	}
	return v, found
}

// Type is the DHCP message type, 0 if none.
func (p *dhPkt) Type() byte {
	if v, ok := p.Opt(53); ok && len(v) == 1 {
		return v[0]
	}
	return 0
}

// IPs returns an address-list option as "a b c".
func (p *dhPkt) IPs(code byte) string {
	v, _ := p.Opt(code)
	var out []string
	for i := 0; i+4 <= len(v); i += 4 {
		out = append(out, dhIPAt(v[i:]))
	}
	return strings.Join(out, " ")
}

// Str returns a string option.
func (p *dhPkt) Str(code byte) string { v, _ := p.Opt(code); return string(v) }

// U32 returns a 4-byte option as a number, -1 if absent or malformed.
func (p *dhPkt) U32(code byte) int64 {
	v, ok := p.Opt(code)
	if !ok || len(v) != 4 {
		return -1
	}
	return int64(binenc.BigEndian.Uint32(v))
}

// Codes lists the option codes in wire order.
func (p *dhPkt) Codes() []byte {
	var c []byte
	for _, o := range p.Opts {
		c = append(c, o.Code)
	}
	return c
}

func (p *dhPkt) String() string {
	return fmt.Sprintf("%s from %s: xid=%08x yiaddr=%s siaddr=%s giaddr=%s chaddr=%s file=%q options=%v",
		dhTypeNames[p.Type()], p.From, p.XID, p.YIAddr, p.SIAddr, p.GIAddr, p.CHAddr, p.File, p.Codes())
}

// dhSocket opens a UDP socket on port in netns, bound to iface (if not
// empty), allowed to broadcast. It is closed when the test ends.
func dhSocket(t testing.TB, netns, iface string, port int) *net.UDPConn {
	t.Helper()
	var conn *net.UDPConn
	err := dhInNetns(netns, func() error {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
				if serr == nil {
					serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
				}
				if serr == nil && iface != "" {
					serr = unix.BindToDevice(int(fd), iface)
				}
			})
			if err != nil {
				return err
			}
			return serr
		}}
		pc, err := lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf("0.0.0.0:%d", port))
		if err != nil {
			return err
		}
		conn = pc.(*net.UDPConn)
		return nil
	})
	if err != nil {
		t.Fatalf("udp socket on port %d in %s: %v", port, netns, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// dhSendRaw sends b to dst ("ip:port").
func dhSendRaw(t testing.TB, c *net.UDPConn, dst string, b []byte) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(b, netip.MustParseAddrPort(dst)); err != nil {
		t.Fatalf("sending %d bytes to %s: %v", len(b), dst, err)
	}
}

// dhCollect reads BOOTREPLYs with xid on c for wait, or until max have come
// (max 0: no limit). Packets that do not decode fail the test: a server
// must never send them.
func dhCollect(t testing.TB, c *net.UDPConn, xid uint32, wait time.Duration, max int) []*dhPkt {
	t.Helper()
	var out []*dhPkt
	deadline := time.Now().Add(wait)
	buf := make([]byte, 65536)
	for time.Now().Before(deadline) {
		c.SetReadDeadline(deadline)
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			t.Fatalf("reading replies: %v", err)
		}
		if n >= 8 && buf[0] == 1 {
			continue // a request (ours or another client's broadcast)
		}
		p, err := dhParse(append([]byte(nil), buf[:n]...))
		if err != nil {
			t.Errorf("undecodable packet of %d bytes from %s: %v\n% x", n, from, err, buf[:n])
			continue
		}
		p.From = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if p.Op != 2 || p.XID != xid {
			continue
		}
		out = append(out, p)
		if max > 0 && len(out) >= max {
			break
		}
	}
	return out
}

// dhExchange sends m to dst, and again every second as clients do, and
// returns the first reply within wait, or nil.
func dhExchange(t testing.TB, c *net.UDPConn, dst string, m dhMsg, wait time.Duration) *dhPkt {
	t.Helper()
	deadline := time.Now().Add(wait)
	for left := wait; left > 0; left = time.Until(deadline) {
		dhSendRaw(t, c, dst, m.Bytes())
		if r := dhCollect(t, c, m.XID, min(left, time.Second), 1); len(r) > 0 {
			return r[0]
		}
	}
	return nil
}

// dhMustExchange is dhExchange that fails the test without a reply of type want.
func dhMustExchange(t testing.TB, c *net.UDPConn, dst string, m dhMsg, want byte, wait time.Duration) *dhPkt {
	t.Helper()
	r := dhExchange(t, c, dst, m, wait)
	if r == nil {
		t.Fatalf("no reply to %s from %s (xid %08x) within %s", dhTypeNames[m.Opts[0].Data[0]], net.HardwareAddr(m.CHAddr), m.XID, wait)
	}
	if r.Type() != want {
		t.Fatalf("reply is %s, want %s: %s", dhTypeNames[r.Type()], dhTypeNames[want], r)
	}
	return r
}

// dhFind returns the reply whose server identifier is sid.
func dhFind(replies []*dhPkt, sid string) *dhPkt {
	for _, r := range replies {
		if r.IPs(54) == sid {
			return r
		}
	}
	return nil
}

// dhCheckAgentLast checks that option 82 is in p, equals want (if not
// nil), and is the last option before END (RFC 3046 2.1).
func dhCheckAgentLast(t testing.TB, p *dhPkt, want []byte) {
	t.Helper()
	v, ok := p.Opt(82)
	if !ok {
		t.Errorf("relay agent information (82) not echoed: %s", p)
		return
	}
	if want != nil && !bytes.Equal(v, want) {
		t.Errorf("option 82 echoed as % x, sent % x", v, want)
	}
	codes := p.Codes()
	if codes[len(codes)-1] != 82 {
		t.Errorf("option 82 is not the last option before END: order %v", codes)
	}
	// END must follow option 82 directly (padding only after END).
	if p.EndAt != p.LastEnd {
		t.Errorf("%d pad bytes between the last option and END:\n% x", p.EndAt-p.LastEnd, p.Raw)
	}
}

// ---------------------------------------------------------------------------
// Peers: udhcpc, dhclient, dnsmasq, dhcrelay

// dhLease is what a client script was told.
type dhLease map[string]string

var dhUdhcpcVars = []string{"interface", "ip", "mask", "subnet", "router", "dns", "domain", "lease", "serverid", "ntpsrv", "siaddr", "boot_file", "message"}

// dhUdhcpc runs busybox udhcpc once in h (-q: exit when bound, -n: exit
// if not) with a script that records what it is told, and returns the
// bound lease (nil if none), udhcpc's output and its error.
func dhUdhcpc(t testing.TB, h *LabHost, tries int, extra ...string) (dhLease, string, error) {
	t.Helper()
	need(t, "udhcpc")
	dir := t.TempDir()
	dump := filepath.Join(dir, "events")
	var sb strings.Builder
	sb.WriteString("#!/bin/sh\n{\necho \"event=$1\"\n")
	for _, v := range dhUdhcpcVars {
		fmt.Fprintf(&sb, "echo \"%s=$%s\"\n", v, v)
	}
	fmt.Fprintf(&sb, "echo --\n} >> %s\n", dump)
	sb.WriteString("case \"$1\" in bound|renew) ip addr flush dev \"$interface\"; ip addr add \"$ip/$mask\" dev \"$interface\";; esac\nexit 0\n")
	script := filepath.Join(dir, "udhcpc.script")
	if err := os.WriteFile(script, []byte(sb.String()), 0o755); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-f", "-q", "-n", "-i", h.Iface, "-s", script, "-t", strconv.Itoa(tries), "-T", "1", "-A", "1"}, extra...)
	out, err := h.Exec(time.Duration(tries)*3*time.Second+10*time.Second, "udhcpc", args...)
	var lease dhLease
	for _, ev := range dhReadEvents(dump) {
		if ev["event"] == "bound" || ev["event"] == "renew" {
			lease = ev
		}
	}
	return lease, out, err
}

// dhMustUdhcpc is dhUdhcpc that fails the test without a lease.
func dhMustUdhcpc(t testing.TB, h *LabHost, extra ...string) dhLease {
	t.Helper()
	l, out, err := dhUdhcpc(t, h, 6, extra...)
	if err != nil || l == nil {
		t.Fatalf("udhcpc in %s got no lease (err %v):\n%s", h.Netns, err, out)
	}
	return l
}

// dhReadEvents reads the blocks a client script appended ("k=v" lines,
// "--" between calls).
func dhReadEvents(path string) []dhLease {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []dhLease
	cur := dhLease{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "--" {
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = dhLease{}
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			cur[k] = strings.Trim(v, "'")
		}
	}
	return out
}

// dhClient is ISC dhclient in one namespace, with its own config, lease
// file, pid file and a script that records what it is told and configures
// the address.
type dhClient struct {
	t                                 testing.TB
	h                                 *LabHost
	conf, leases, pidFile, script, ev string
}

const dhClientConf = `timeout 10;
retry 1;
initial-interval 1;
backoff-cutoff 2;
request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers, ntp-servers, host-name;
`

func newDhclient(t testing.TB, h *LabHost, extraConf string) *dhClient {
	t.Helper()
	need(t, "dhclient")
	dir := t.TempDir()
	c := &dhClient{t: t, h: h, conf: filepath.Join(dir, "dhclient.conf"), leases: filepath.Join(dir, "dhclient.leases"),
		pidFile: filepath.Join(dir, "dhclient.pid"), script: filepath.Join(dir, "dhclient.script"), ev: filepath.Join(dir, "events")}
	script := fmt.Sprintf(`#!/bin/sh
{ echo "reason=$reason"; env | grep -E '^(new|old)_' | sort; echo --; } >> %s
case "$reason" in
BOUND|RENEW|REBIND|REBOOT) ip addr flush dev "$interface"; ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
RELEASE|EXPIRE) ip addr flush dev "$interface" ;;
esac
exit 0
`, c.ev)
	for path, text := range map[string]string{c.conf: dhClientConf + extraConf, c.leases: "", c.script: script} {
		if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// Run runs dhclient with args before the interface name.
func (c *dhClient) Run(timeout time.Duration, args ...string) (string, error) {
	all := append([]string{"-4", "-v", "-cf", c.conf, "-lf", c.leases, "-pf", c.pidFile, "-sf", c.script}, args...)
	return c.h.Exec(timeout, "dhclient", append(all, c.h.Iface)...)
}

// Get runs dhclient -1 (one try: exit if no lease) and returns the lease;
// dhclient stays in the background to renew.
func (c *dhClient) Get() (dhLease, string) {
	c.t.Helper()
	out, err := c.Run(40*time.Second, "-1")
	l := c.Last()
	if err != nil || l == nil {
		c.t.Fatalf("dhclient in %s got no lease (err %v):\n%s", c.h.Netns, err, out)
	}
	return l, out
}

// Last returns the last lease the script was told about, or nil.
func (c *dhClient) Last() dhLease {
	var l dhLease
	for _, ev := range dhReadEvents(c.ev) {
		switch ev["reason"] {
		case "BOUND", "RENEW", "REBIND", "REBOOT":
			l = ev
		}
	}
	return l
}

// Events returns every script call.
func (c *dhClient) Events() []dhLease { return dhReadEvents(c.ev) }

// Kill stops the background dhclient (SIGKILL: no release, no script).
func (c *dhClient) Kill() {
	c.t.Helper()
	b, err := os.ReadFile(c.pidFile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100; i++ {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("dhclient %d did not exit", pid)
}

// dhProc is a peer daemon whose output is collected.
type dhProc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// dhDaemon starts name in netns and waits until its output contains ready.
func dhDaemon(t testing.TB, netns, ready string, name string, args ...string) *dhProc {
	t.Helper()
	need(t, name)
	p := &dhProc{cmd: netnsCommand(netns, name, args...), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(p.out.String(), ready) {
		select {
		case <-p.done:
			t.Fatalf("%s exited at start:\n%s", name, p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not print %q:\n%s", name, ready, p.out.String())
		}
	}
	return p
}

// dhDnsmasq runs dnsmasq as a plain DHCP server (addresses only) on h.
func dhDnsmasq(t testing.TB, h *LabHost, first, last string) *dhProc {
	t.Helper()
	dir := t.TempDir()
	return dhDaemon(t, h.Netns, "DHCP, IP range", "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0",
		"--interface="+h.Iface, "--bind-interfaces", "--dhcp-range="+first+","+last+",1h",
		"--dhcp-leasefile="+filepath.Join(dir, "leases"), "--pid-file="+filepath.Join(dir, "pid"),
		"--user=root", "--no-ping", "--log-dhcp", "--log-facility=-")
}

// ---------------------------------------------------------------------------
// Packet capture: AF_PACKET in a namespace, no tcpdump needed

// dhCaptured is one UDP datagram seen on an interface.
type dhCaptured struct {
	Src, Dst netip.AddrPort
	Payload  []byte
}

type dhSniffer struct {
	mu   sync.Mutex
	pkts []dhCaptured
	stop chan struct{}
	done chan struct{}
}

func dhHtons(v uint16) uint16 { return v<<8 | v>>8 }

// dhSniff captures the IPv4 UDP datagrams on iface in netns until the test
// ends.
func dhSniff(t testing.TB, netns, iface string) *dhSniffer {
	t.Helper()
	fd := -1
	err := dhInNetns(netns, func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(dhHtons(unix.ETH_P_IP)))
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: dhHtons(unix.ETH_P_IP), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		tv := unix.Timeval{Usec: 100000}
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	if err != nil {
		t.Fatalf("capturing on %s in %s: %v", iface, netns, err)
	}
	s := &dhSniffer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 65536)
		for {
			select {
			case <-s.stop:
				return
			default:
			}
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil || n < 28 {
				continue
			}
			b := buf[:n]
			ihl := int(b[0]&0x0f) * 4
			if b[0]>>4 != 4 || b[9] != 17 || n < ihl+8 {
				continue
			}
			src, dst := netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
			u := b[ihl:]
			c := dhCaptured{
				Src:     netip.AddrPortFrom(src, binenc.BigEndian.Uint16(u[0:])),
				Dst:     netip.AddrPortFrom(dst, binenc.BigEndian.Uint16(u[2:])),
				Payload: append([]byte(nil), u[8:]...),
			}
			s.mu.Lock()
			s.pkts = append(s.pkts, c)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { close(s.stop); <-s.done; unix.Close(fd) })
	return s
}

// Packets returns what was captured so far.
func (s *dhSniffer) Packets() []dhCaptured {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pkts)
}

// ---------------------------------------------------------------------------
// Configurations

// dhAuthConfig is the authoritative config of the brief, with pool first..last.
func dhAuthConfig(first, last, extra string) string {
	return fmt.Sprintf(`log: {level: debug, format: text}
dhcp:
  mode: authoritative
  interfaces: [br0]
%s  subnets:
    - subnet: 192.0.2.0/24
      pools: ["%s-%s"]
      router: 192.0.2.1
      dns: [192.0.2.53, 192.0.2.54]
      ntp: [192.0.2.123]
      domain: lab.test
      lease_time: 10m
      reservations:
        - {mac: "52:54:00:aa:bb:02", ip: 192.0.2.50}
        - {client_id: "01:52:54:00:aa:bb:03", ip: 192.0.2.51}
`, extra, first, last)
}

// dhRelayConfig serves the lab and 198.51.100.0/24 behind a relay.
func dhRelayConfig(extra string) string {
	return `log: {level: debug, format: text}
dhcp:
  mode: authoritative
  interfaces: [br0]
` + extra + `  subnets:
    - subnet: 192.0.2.0/24
      pools: ["192.0.2.100-192.0.2.200"]
      router: 192.0.2.1
    - subnet: 198.51.100.0/24
      pools: ["198.51.100.100-198.51.100.150"]
      router: 198.51.100.1
      domain: far.test
      lease_time: 20m
`
}

const dhProxyConfig = `log: {level: debug, format: text}
dhcp:
  mode: proxy
  interfaces: [br0]
`

// ---------------------------------------------------------------------------
// 1. Authoritative mode

// dhclient and udhcpc get leases with every configured option.
func TestDHCPAuthoritativeLeaseOptions(t *testing.T) {
	t.Parallel()
	lab := NewLab(t)
	s := dhStart(t, lab, dhAuthConfig("192.0.2.100", "192.0.2.200", ""))
	hd, hu := dhAddHost(t, lab, ""), dhAddHost(t, lab, "")

	dc := newDhclient(t, hd, "")
	dl, _ := dc.Get()
	want := map[string]string{
		"new_routers":                "192.0.2.1",
		"new_domain_name_servers":    "192.0.2.53 192.0.2.54",
		"new_domain_name":            "lab.test",
		"new_ntp_servers":            "192.0.2.123",
		"new_subnet_mask":            "255.255.255.0",
		"new_dhcp_server_identifier": "192.0.2.1",
	}
	for k, v := range want {
		if dl[k] != v {
			t.Errorf("dhclient: %s=%q, want %q", k, dl[k], v)
		}
	}
	if lt, _ := strconv.Atoi(dl["new_dhcp_lease_time"]); lt < 590 || lt > 600 {
		t.Errorf("dhclient: lease time %q, want 600 s (10m)", dl["new_dhcp_lease_time"])
	}
	if rt, _ := strconv.Atoi(dl["new_dhcp_renewal_time"]); rt < 290 || rt > 300 {
		t.Errorf("dhclient: renewal time (T1) %q, want 300 s", dl["new_dhcp_renewal_time"])
	}
	dip := dl["new_ip_address"]
	if !dhInPool(dip, "192.0.2.100", "192.0.2.200") {
		t.Errorf("dhclient: address %q is outside the pool", dip)
	}
	if a := dhAddrs(t, hd); !strings.Contains(a, " "+dip+"/24 ") {
		t.Errorf("dhclient's address %s is not configured on %s: %s", dip, hd.Iface, a)
	}

	ul := dhMustUdhcpc(t, hu)
	uwant := map[string]string{"router": "192.0.2.1", "dns": "192.0.2.53 192.0.2.54", "domain": "lab.test",
		"ntpsrv": "192.0.2.123", "mask": "24", "serverid": "192.0.2.1"}
	for k, v := range uwant {
		if strings.TrimSpace(ul[k]) != v {
			t.Errorf("udhcpc: $%s=%q, want %q", k, ul[k], v)
		}
	}
	if lt, _ := strconv.Atoi(ul["lease"]); lt < 590 || lt > 600 {
		t.Errorf("udhcpc: $lease=%q, want 600", ul["lease"])
	}
	uip := ul["ip"]
	if !dhInPool(uip, "192.0.2.100", "192.0.2.200") {
		t.Errorf("udhcpc: address %q is outside the pool", uip)
	}
	if uip == dip {
		t.Errorf("dhclient and udhcpc were both given %s", uip)
	}

	// The server logged each lease for the right client.
	for mac, ip := range map[string]string{dhMAC(t, hd): dip, dhMAC(t, hu): uip} {
		recs := dhRecords(s, "dhcp: lease", dhByMAC(mac))
		if len(recs) == 0 || recs[len(recs)-1]["ip"] != ip {
			t.Errorf("server log: no \"dhcp: lease\" of %s for %s: %v", ip, mac, recs)
		}
	}
}

// A lease survives a crash (SIGKILL right after the ACK) and a clean
// restart, with the same data dir: another client is not given it, and the
// holder keeps it by INIT-REBOOT (dhclient with its lease file) and by
// RENEWING (unicast REQUEST with ciaddr).
func TestDHCPLeaseSurvivesRestart(t *testing.T) {
	t.Parallel()
	eachStore(t, testDHCPLeaseSurvivesRestart)
}

func testDHCPLeaseSurvivesRestart(t *testing.T, st e2eStore) {
	lab := NewLab(t)
	dataDir := t.TempDir()
	// Two addresses: if the server forgot A's lease, B would be given A's
	// address (the allocator starts at the pool's first address).
	cfg := dhAuthConfig("192.0.2.100", "192.0.2.101", "") + st.yaml()
	checkDataDir := func(s *Server) {
		t.Helper()
		r := dhRecords(s, "bootforge ready", nil)
		if len(r) != 1 || r[0]["data_dir"] != dataDir {
			t.Fatalf("server does not use data dir %s (a later --data-dir must win): %v", dataDir, r)
		}
	}
	s1 := dhStart(t, lab, cfg, "--data-dir", dataDir)
	checkDataDir(s1)
	ha, hb := dhAddHost(t, lab, ""), dhAddHost(t, lab, "")
	macA, macB := dhMAC(t, ha), dhMAC(t, hb)

	a := newDhclient(t, ha, "")
	la, _ := a.Get()
	ipA := la["new_ip_address"]
	if !dhInPool(ipA, "192.0.2.100", "192.0.2.101") {
		t.Fatalf("A got %q, outside the pool", ipA)
	}

	// Crash: the lease was acknowledged, so it must be on disk.
	s1.cmd.Process.Kill()
	if _, ok := s1.Exited(10 * time.Second); !ok {
		t.Fatal("bootforge did not die on SIGKILL")
	}
	s2 := dhStart(t, lab, cfg, "--data-dir", dataDir)
	checkDataDir(s2)

	lb := dhMustUdhcpc(t, hb)
	if lb["ip"] == ipA {
		t.Fatalf("after the restart, B (%s) was given A's address %s: the lease was lost", macB, ipA)
	}
	if !dhInPool(lb["ip"], "192.0.2.100", "192.0.2.101") {
		t.Errorf("B got %q, outside the pool", lb["ip"])
	}

	// A restarts dhclient with its lease file: INIT-REBOOT, same address.
	a.Kill()
	la2, out := a.Get()
	if la2["reason"] != "REBOOT" || la2["new_ip_address"] != ipA {
		t.Errorf("dhclient re-run: reason=%s ip=%s, want REBOOT of %s\n%s", la2["reason"], la2["new_ip_address"], ipA, out)
	}
	if !strings.Contains(out, "DHCPREQUEST for "+ipA) || !strings.Contains(out, "DHCPACK of "+ipA+" from 192.0.2.1") {
		t.Errorf("dhclient did not renew %s by REQUEST/ACK:\n%s", ipA, out)
	}
	if strings.Contains(out, "DHCPNAK") || strings.Contains(out, "DHCPDISCOVER") {
		t.Errorf("dhclient was refused its address and started over:\n%s", out)
	}
	acks := dhReplies(s2, macA, "ACK")
	if len(acks) == 0 || acks[len(acks)-1]["yiaddr"] != ipA {
		t.Errorf("server log after restart: no ACK of %s for A %s: %v", ipA, macA, acks)
	}
	if offers := dhReplies(s2, macA, "OFFER"); len(offers) > 0 {
		t.Errorf("server offered A %s an address again after restart: %v", macA, offers)
	}
	if naks := dhReplies(s2, macA, "NAK"); len(naks) > 0 {
		t.Errorf("server NAKed A %s after restart: %v", macA, naks)
	}

	// Clean restart, then RENEWING: unicast REQUEST with ciaddr, from A's address.
	a.Kill()
	s2.Stop()
	s3 := dhStart(t, lab, cfg, "--data-dir", dataDir)
	checkDataDir(s3)
	c := dhSocket(t, ha.Netns, ha.Iface, 68)
	m := dhNewMsg(macA, dhRequest)
	m.Flags, m.CIAddr = 0, ipA
	r := dhMustExchange(t, c, dhServerIP+":67", m, dhAck, 5*time.Second)
	if r.YIAddr != ipA || (r.CIAddr != ipA && r.CIAddr != "0.0.0.0") {
		t.Errorf("RENEWING ACK: yiaddr=%s ciaddr=%s, want %s (ciaddr: the request's or 0, RFC 2131 table 3)", r.YIAddr, r.CIAddr, ipA)
	}
	if lt := r.U32(51); lt < 590 || lt > 600 {
		t.Errorf("RENEWING ACK: lease time %d, want 600", lt)
	}
	if r.From.Addr().String() != dhServerIP || r.From.Port() != 67 {
		t.Errorf("RENEWING ACK came from %s", r.From)
	}
	// B (udhcpc: identified by client id 01:MAC) renews its address too.
	cb := dhSocket(t, hb.Netns, hb.Iface, 68)
	rb := dhNewMsg(macB, dhRequest, dhOClientID(net.HardwareAddr(dhMustMAC(macB))))
	rb.Flags, rb.CIAddr = 0, lb["ip"]
	if r := dhExchange(t, cb, dhServerIP+":67", rb, dhReplyWait); r == nil || r.Type() != dhAck || r.YIAddr != lb["ip"] {
		t.Errorf("B (client id) renewing %s after the restarts: want ACK, got %v", lb["ip"], r)
	}
	// And A's lease is still A's.
	mb := dhNewMsg(macB, dhRequest, dhOClientID(net.HardwareAddr(dhMustMAC(macB))), dhOIP(50, ipA))
	if r := dhExchange(t, cb, "255.255.255.255:67", mb, dhReplyWait); r == nil || r.Type() != dhNak {
		t.Errorf("B asking for A's address %s after the restarts: want NAK, got %v", ipA, r)
	}
}

func dhMustMAC(s string) []byte {
	hw, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return hw
}

// RELEASE frees the address: with a pool of one, B gets nothing while A
// holds it (a RELEASE spoofed by another client changes nothing), and gets
// it once A released it, across a restart.
func TestDHCPReleaseFreesAddress(t *testing.T) {
	t.Parallel()
	lab := NewLab(t)
	dataDir := t.TempDir()
	cfg := dhAuthConfig("192.0.2.100", "192.0.2.100", "")
	s := dhStart(t, lab, cfg, "--data-dir", dataDir)
	ha, hb := dhAddHost(t, lab, ""), dhAddHost(t, lab, "")
	macA, macB := dhMAC(t, ha), dhMAC(t, hb)

	a := newDhclient(t, ha, "")
	la, _ := a.Get()
	if la["new_ip_address"] != "192.0.2.100" {
		t.Fatalf("A got %q, want the only address 192.0.2.100", la["new_ip_address"])
	}
	if l, out, err := dhUdhcpc(t, hb, 2); err == nil || l != nil {
		t.Fatalf("B got a lease from a pool of one that A holds: %v\n%s", l, out)
	}
	dhWaitRecord(t, s, dhReplyWait, "dhcp: not answered", func(r dhRec) bool {
		return dhByMAC(macB)(r) && strings.Contains(r["reason"], "no free address")
	})

	// A RELEASE of A's address from another client is ignored.
	hs := dhAddHost(t, lab, "192.0.2.10")
	cs := dhSocket(t, hs.Netns, hs.Iface, 68)
	spoof := dhNewMsg("02:00:00:00:66:66", dhRelease, dhOIP(54, dhServerIP))
	spoof.Flags, spoof.CIAddr = 0, "192.0.2.100"
	dhSendRaw(t, cs, dhServerIP+":67", spoof.Bytes())
	dhWaitRecord(t, s, dhReplyWait, "dhcp: not answered", func(r dhRec) bool {
		return dhByMAC("02:00:00:00:66:66")(r) && strings.Contains(r["reason"], "RELEASE")
	})
	if r := dhRecords(s, "dhcp: lease released", nil); len(r) > 0 {
		t.Fatalf("a RELEASE from another client freed A's lease: %v", r)
	}
	if r := dhExchange(t, cs, "255.255.255.255:67", dhNewMsg("02:00:00:00:66:67", dhDiscover), dhSilence); r != nil {
		t.Errorf("after a spoofed RELEASE, A's address was offered to another client: %s", r)
	}

	out, err := a.Run(20*time.Second, "-r")
	if err != nil {
		t.Fatalf("dhclient -r: %v\n%s", err, out)
	}
	dhWaitRecord(t, s, dhReplyWait, "dhcp: lease released", func(r dhRec) bool {
		return dhByMAC(macA)(r) && r["ip"] == "192.0.2.100"
	})
	if a := dhAddrs(t, ha); strings.Contains(a, "192.0.2.100") {
		t.Errorf("A still has the address after release: %s", a)
	}

	// The release is stored too: a restart does not bring the lease back.
	s.Stop()
	dhStart(t, lab, cfg, "--data-dir", dataDir)

	lb := dhMustUdhcpc(t, hb)
	if lb["ip"] != "192.0.2.100" {
		t.Errorf("B got %q after A's release, want 192.0.2.100", lb["ip"])
	}
}

// A reservation always gets its address, however other clients ask for
// it: in DISCOVER (udhcpc -r), in REQUEST (dhclient "send
// dhcp-requested-address", raw INIT-REBOOT and SELECTING).
func TestDHCPReservation(t *testing.T) {
	t.Parallel()
	lab := NewLab(t)
	s := dhStart(t, lab, dhAuthConfig("192.0.2.100", "192.0.2.200", ""))
	const reserved = "192.0.2.50"

	// udhcpc asks for the reserved address in its DISCOVER.
	hx := dhAddHost(t, lab, "")
	lx := dhMustUdhcpc(t, hx, "-r", reserved)
	if lx["ip"] == reserved || !dhInPool(lx["ip"], "192.0.2.100", "192.0.2.200") {
		t.Errorf("udhcpc -r %s from a non-reserved client got %q, want a pool address", reserved, lx["ip"])
	}

	// Raw REQUESTs for it: INIT-REBOOT (option 50, no server id) and
	// SELECTING (server id 192.0.2.1).
	hy := dhAddHost(t, lab, "192.0.2.10")
	cy := dhSocket(t, hy.Netns, hy.Iface, 68)
	for _, sel := range []bool{false, true} {
		m := dhNewMsg("02:00:00:00:00:77", dhRequest, dhOIP(50, reserved))
		if sel {
			m.Opts = append(m.Opts, dhOIP(54, dhServerIP))
		}
		r := dhExchange(t, cy, "255.255.255.255:67", m, dhReplyWait)
		if r != nil && r.Type() == dhAck {
			t.Errorf("REQUEST (selecting=%v) for reserved %s from another client was ACKed: %s", sel, reserved, r)
		} else if r == nil || r.Type() != dhNak {
			t.Errorf("REQUEST (selecting=%v) for reserved %s from another client: want NAK, got %v", sel, reserved, r)
		}
	}

	// dhclient that sends option 50 = reserved in every packet never gets
	// it (the server NAKs each REQUEST; the client never binds).
	hz := dhAddHost(t, lab, "")
	z := newDhclient(t, hz, "send dhcp-requested-address "+reserved+";\n")
	zout, _ := z.Run(6*time.Second, "-1", "-d")
	for _, ev := range z.Events() {
		if ev["new_ip_address"] == reserved && ev["reason"] != "PREINIT" {
			t.Errorf("dhclient asking for %s bound it (%s):\n%s", reserved, ev["reason"], zout)
		}
	}
	if acks := dhReplies(s, dhMAC(t, hz), "ACK"); len(acks) > 0 {
		for _, a := range acks {
			if a["yiaddr"] == reserved {
				t.Errorf("server ACKed reserved %s to %s: %v", reserved, dhMAC(t, hz), a)
			}
		}
	}

	// The owner by MAC (dhclient, no client id) gets it.
	hr := dhAddHost(t, lab, "")
	dhSetMAC(t, hr, "52:54:00:aa:bb:02")
	r := newDhclient(t, hr, "")
	lr, out := r.Get()
	if lr["new_ip_address"] != reserved {
		t.Errorf("reserved client 52:54:00:aa:bb:02 got %q, want %s\n%s", lr["new_ip_address"], reserved, out)
	}
	if lr["new_routers"] != "192.0.2.1" || lr["new_domain_name"] != "lab.test" {
		t.Errorf("reserved client lacks the subnet's options: %v", lr)
	}

	// The owner by client id (udhcpc sends 01:MAC) gets its address.
	hc := dhAddHost(t, lab, "")
	dhSetMAC(t, hc, "52:54:00:aa:bb:03")
	if lc := dhMustUdhcpc(t, hc); lc["ip"] != "192.0.2.51" {
		t.Errorf("client id 01:52:54:00:aa:bb:03 got %q, want its reservation 192.0.2.51", lc["ip"])
	}
}

// Ten clients at once (five dhclient, five udhcpc) get ten distinct addresses.
func TestDHCPParallelClientsDistinct(t *testing.T) {
	t.Parallel()
	lab := NewLab(t)
	s := dhStart(t, lab, dhAuthConfig("192.0.2.100", "192.0.2.200", ""))
	const n = 10
	hosts := make([]*LabHost, n)
	clients := make([]*dhClient, n)
	for i := range hosts {
		hosts[i] = dhAddHost(t, lab, "")
		if i%2 == 0 {
			clients[i] = newDhclient(t, hosts[i], "")
		}
	}
	ips := make([]string, n)
	errs := make([]string, n)
	var wg sync.WaitGroup
	for i := range hosts {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if c := clients[i]; c != nil {
				out, err := c.Run(40*time.Second, "-1")
				if l := c.Last(); err == nil && l != nil {
					ips[i] = l["new_ip_address"]
				} else {
					errs[i] = fmt.Sprintf("dhclient: %v\n%s", err, out)
				}
				return
			}
			l, out, err := dhUdhcpc(t, hosts[i], 5)
			if err == nil && l != nil {
				ips[i] = l["ip"]
			} else {
				errs[i] = fmt.Sprintf("udhcpc: %v\n%s", err, out)
			}
		}(i)
	}
	wg.Wait()
	seen := map[string]int{}
	for i, ip := range ips {
		if ip == "" {
			t.Errorf("client %d got no lease: %s", i, errs[i])
			continue
		}
		if !dhInPool(ip, "192.0.2.100", "192.0.2.200") {
			t.Errorf("client %d got %s, outside the pool", i, ip)
		}
		if j, dup := seen[ip]; dup {
			t.Errorf("clients %d and %d share %s", j, i, ip)
		}
		seen[ip] = i
	}
	// The server's own record agrees: one address per MAC, no address twice.
	byIP := map[string]string{}
	for _, r := range dhRecords(s, "dhcp: lease", nil) {
		if other, ok := byIP[r["ip"]]; ok && other != r["mac"] {
			t.Errorf("server leased %s to both %s and %s", r["ip"], other, r["mac"])
		}
		byIP[r["ip"]] = r["mac"]
	}
	if len(byIP) != n {
		t.Errorf("server logged %d leased addresses, want %d: %v", len(byIP), n, byIP)
	}
}

// Wrong REQUESTs get NAK: dhclient with a stale lease from another network
// (INIT-REBOOT), raw INIT-REBOOT for an address off the subnet or held by
// another client; a REQUEST that chose another server gets silence.
func TestDHCPNakWrongRequests(t *testing.T) {
	t.Parallel()
	lab := NewLab(t)
	s := dhStart(t, lab, dhAuthConfig("192.0.2.100", "192.0.2.200", ""))

	// dhclient believes it holds 198.51.100.5.
	hd := dhAddHost(t, lab, "")
	d := newDhclient(t, hd, "")
	stale := `lease {
  interface "eth0";
  fixed-address 198.51.100.5;
  option subnet-mask 255.255.255.0;
  option dhcp-server-identifier 198.51.100.1;
  option dhcp-lease-time 86400;
  renew 4 2037/12/31 00:00:00;
  rebind 4 2037/12/31 00:00:00;
  expire 4 2037/12/31 00:00:00;
}
`
	if err := os.WriteFile(d.leases, []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	ld, out := d.Get()
	if !strings.Contains(out, "DHCPREQUEST for 198.51.100.5") || !strings.Contains(out, "DHCPNAK from 192.0.2.1") {
		t.Errorf("dhclient with a stale lease was not NAKed:\n%s", out)
	}
	if !dhInPool(ld["new_ip_address"], "192.0.2.100", "192.0.2.200") {
		t.Errorf("after the NAK dhclient got %q, want a pool address\n%s", ld["new_ip_address"], out)
	}
	dhWaitRecord(t, s, dhReplyWait, "dhcp: NAK", func(r dhRec) bool {
		return dhByMAC(dhMAC(t, hd))(r) && strings.Contains(r["reason"], "198.51.100.5")
	})

	// Raw: the same INIT-REBOOT, byte by byte.
	hr := dhAddHost(t, lab, "192.0.2.10")
	c := dhSocket(t, hr.Netns, hr.Iface, 68)
	const mac = "02:00:00:00:01:01"
	r := dhMustExchange(t, c, "255.255.255.255:67", dhNewMsg(mac, dhRequest, dhOIP(50, "198.51.100.5")), dhNak, dhReplyWait)
	if r.YIAddr != "0.0.0.0" || r.SIAddr != "0.0.0.0" || r.IPs(54) != dhServerIP {
		t.Errorf("NAK: yiaddr=%s siaddr=%s server id=%q, want 0.0.0.0, 0.0.0.0, %s", r.YIAddr, r.SIAddr, r.IPs(54), dhServerIP)
	}
	if r.CHAddr.String() != mac {
		t.Errorf("NAK for chaddr %s, want %s", r.CHAddr, mac)
	}
	for _, code := range []byte{1, 3, 6, 51} {
		if _, ok := r.Opt(code); ok {
			t.Errorf("NAK carries option %d (RFC 2131 table 3: MUST NOT)", code)
		}
	}

	// INIT-REBOOT for the address dhclient holds.
	held := ld["new_ip_address"]
	r = dhExchange(t, c, "255.255.255.255:67", dhNewMsg("02:00:00:00:01:02", dhRequest, dhOIP(50, held)), dhReplyWait)
	if r == nil || r.Type() != dhNak {
		t.Errorf("REQUEST for %s, held by another client: want NAK, got %v", held, r)
	}

	// SELECTING another server's offer: no reply, the offer is forgotten.
	m := dhNewMsg("02:00:00:00:01:03", dhRequest, dhOIP(50, "192.0.2.150"), dhOIP(54, "192.0.2.99"))
	if r := dhExchange(t, c, "255.255.255.255:67", m, dhSilence); r != nil {
		t.Errorf("REQUEST that chose server 192.0.2.99 was answered: %s", r)
	}
	dhWaitRecord(t, s, dhReplyWait, "dhcp: not answered", func(r dhRec) bool {
		return dhByMAC("02:00:00:00:01:03")(r) && strings.Contains(r["reason"], "another server")
	})
}

// ---------------------------------------------------------------------------
// 2. Proxy mode beside dnsmasq

// dhNmapPXEScript is nmap's broadcast-dhcp-discover with PXE options
// (60, 93, 97) added: the stock script can set only the MAC and option 61.
func dhNmapPXEScript(t testing.TB) string {
	t.Helper()
	stock := "/usr/share/nmap/scripts/broadcast-dhcp-discover.nse"
	b, err := os.ReadFile(stock)
	if err != nil {
		t.Fatalf("nmap's DHCP script: %v", err)
	}
	const old = "  local options = {}\n"
	if bytes.Count(b, []byte(old)) != 1 {
		t.Fatalf("%s changed: no single %q to extend", stock, old)
	}
	pxe := `  local options = {
    {number = 60, type = "string", value = "PXEClient:Arch:00000:UNDI:002001"},
    {number = 93, type = "string", value = "\0\0"},
    {number = 97, type = "string", value = "\0\1\2\3\4\5\6\7\8\9\10\11\12\13\14\15\16"},
  }
`
	p := filepath.Join(t.TempDir(), "pxe-dhcp-discover.nse")
	if err := os.WriteFile(p, bytes.Replace(b, []byte(old), []byte(pxe), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var dhNmapRespRE = regexp.MustCompile(`(?m)^\|\s+Response (\d+) of (\d+):`)

// dhNmapResponses splits nmap's script output into one map per response.
func dhNmapResponses(out string) []map[string]string {
	var res []map[string]string
	idx := dhNmapRespRE.FindAllStringIndex(out, -1)
	for i, loc := range idx {
		end := len(out)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		m := map[string]string{}
		for _, line := range strings.Split(out[loc[1]:end], "\n") {
			line = strings.TrimLeft(line, "|_ ")
			if k, v, ok := strings.Cut(line, ": "); ok {
				m[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
		res = append(res, m)
	}
	return res
}

// nmap, dhclient and a raw PXE client against bootforge (proxy) beside
// dnsmasq (addresses only).
func TestDHCPProxyBesideDnsmasq(t *testing.T) {
	t.Parallel()
	need(t, "nmap", "dnsmasq")
	lab := NewLab(t)
	s := dhStart(t, lab, dhProxyConfig)
	if !strings.Contains(s.Log(), "br0:4011") {
		t.Errorf("proxy mode does not listen on 4011: %s", s.Log())
	}
	hd := dhAddHost(t, lab, "192.0.2.2")
	dhDnsmasq(t, hd, "192.0.2.100", "192.0.2.200")

	// nmap, stock script: a plain DISCOVER gets dnsmasq's offer only.
	hn := dhAddHost(t, lab, "192.0.2.20")
	const plainMAC, pxeMAC = "de:ad:c0:de:00:01", "de:ad:c0:de:00:02"
	out, err := hn.Exec(60*time.Second, "nmap", "-v", "-e", hn.Iface, "--script", "broadcast-dhcp-discover",
		"--script-args", "broadcast-dhcp-discover.mac="+plainMAC+",broadcast-dhcp-discover.timeout=3")
	if err != nil {
		t.Fatalf("nmap: %v\n%s", err, out)
	}
	resp := dhNmapResponses(out)
	if len(resp) != 1 || resp[0]["Server Identifier"] != "192.0.2.2" || !dhInPool(resp[0]["IP Offered"], "192.0.2.100", "192.0.2.200") {
		t.Errorf("nmap, plain DISCOVER: want one offer, from dnsmasq (192.0.2.2) with a pool address; got %v\n%s", resp, out)
	}
	dhWaitRecord(t, s, dhReplyWait, "dhcp: not answered", func(r dhRec) bool {
		return dhByMAC(plainMAC)(r) && r["reason"] == "not a PXE client"
	})
	if r := dhReplies(s, plainMAC, ""); len(r) > 0 {
		t.Errorf("bootforge answered nmap's plain DISCOVER: %v", r)
	}

	// nmap with PXE options: dnsmasq's offer and bootforge's proxy offer.
	out, err = hn.Exec(60*time.Second, "nmap", "-v", "-e", hn.Iface, "--script", dhNmapPXEScript(t),
		"--script-args", "pxe-dhcp-discover.mac="+pxeMAC+",broadcast-dhcp-discover.timeout=3")
	if err != nil {
		t.Fatalf("nmap: %v\n%s", err, out)
	}
	resp = dhNmapResponses(out)
	var proxy, plain map[string]string
	for _, r := range resp {
		switch r["Server Identifier"] {
		case "192.0.2.1":
			proxy = r
		case "192.0.2.2":
			plain = r
		}
	}
	if len(resp) != 2 || proxy == nil || plain == nil {
		t.Fatalf("nmap, PXE DISCOVER: want two offers (192.0.2.1 and 192.0.2.2), got %v\n%s", resp, out)
	}
	for k, v := range map[string]string{"IP Offered": "0.0.0.0", "DHCP Message Type": "DHCPOFFER",
		"Class Identifier": "PXEClient", "Bootfile Name": "undionly.kpxe", "Vendor Specific Information": `\x06\x01\x08\xFF`} {
		if proxy[k] != v {
			t.Errorf("nmap, proxy offer: %s = %q, want %q\n%s", k, proxy[k], v, out)
		}
	}
	for _, k := range []string{"IP Address Lease Time", "Router", "Subnet Mask"} {
		if v, ok := proxy[k]; ok {
			t.Errorf("nmap, proxy offer carries %s (%s): a proxy gives no address options", k, v)
		}
	}
	if !dhInPool(plain["IP Offered"], "192.0.2.100", "192.0.2.200") || plain["Class Identifier"] != "" {
		t.Errorf("nmap, dnsmasq's offer: %v", plain)
	}

	// Raw PXE DISCOVER: the bytes nmap does not show (siaddr, file, 97).
	hr := dhAddHost(t, lab, "192.0.2.21")
	c := dhSocket(t, hr.Netns, hr.Iface, 68)
	uuid := []byte("0123456789abcdef")
	m := dhNewMsg("52:54:00:12:34:56", dhDiscover, dhOS(60, "PXEClient:Arch:00000:UNDI:002001"), dhOArch(0), dhOUUID(uuid),
		dhOPRL(1, 3, 43, 60, 66, 67, 97))
	dhSendRaw(t, c, "255.255.255.255:67", m.Bytes())
	replies := dhCollect(t, c, m.XID, dhReplyWait, 2)
	bf, dq := dhFind(replies, "192.0.2.1"), dhFind(replies, "192.0.2.2")
	if bf == nil || dq == nil {
		t.Fatalf("raw PXE DISCOVER: want offers from 192.0.2.1 and 192.0.2.2, got %v", replies)
	}
	if bf.Type() != dhOffer || bf.YIAddr != "0.0.0.0" || bf.SIAddr != dhServerIP || bf.File != "undionly.kpxe" ||
		bf.Str(67) != "undionly.kpxe" || bf.Str(60) != "PXEClient" {
		t.Errorf("proxy offer: %s (siaddr %s, option 67 %q, option 60 %q)", bf, bf.SIAddr, bf.Str(67), bf.Str(60))
	}
	if v, _ := bf.Opt(43); !bytes.Equal(v, []byte{6, 1, 8, 255}) {
		t.Errorf("proxy offer: option 43 = % x, want 06 01 08 ff", v)
	}
	if v, _ := bf.Opt(97); !bytes.Equal(v, append([]byte{0}, uuid...)) {
		t.Errorf("proxy offer: option 97 = % x, want the client's UUID echoed", v)
	}
	for _, code := range []byte{1, 3, 51} {
		if _, ok := bf.Opt(code); ok {
			t.Errorf("proxy offer carries address option %d", code)
		}
	}
	if !dhInPool(dq.YIAddr, "192.0.2.100", "192.0.2.200") || dq.Str(60) == "PXEClient" {
		t.Errorf("dnsmasq's offer: %s", dq)
	}

	// A plain dhclient: its address comes from dnsmasq; bootforge stays out.
	hc := dhAddHost(t, lab, "")
	dc := newDhclient(t, hc, "")
	l, dout := dc.Get()
	if l["new_dhcp_server_identifier"] != "192.0.2.2" || !dhInPool(l["new_ip_address"], "192.0.2.100", "192.0.2.200") {
		t.Errorf("plain dhclient: server %q address %q, want dnsmasq's (192.0.2.2)\n%s", l["new_dhcp_server_identifier"], l["new_ip_address"], dout)
	}
	if l["new_next_server"] == dhServerIP || l["new_filename"] != "" {
		t.Errorf("plain dhclient got bootforge's boot settings: next server %q file %q", l["new_next_server"], l["new_filename"])
	}
	cmac := dhMAC(t, hc)
	dhWaitRecord(t, s, dhReplyWait, "dhcp: not answered", func(r dhRec) bool {
		return dhByMAC(cmac)(r) && r["reason"] == "not a PXE client"
	})
	if r := dhReplies(s, cmac, ""); len(r) > 0 {
		t.Errorf("bootforge answered a plain client in proxy mode: %v", r)
	}
}

// The PXE boot server on 4011 answers REQUESTs by architecture; iPXE gets
// the script URL on 67.
func TestDHCPProxyBootServer(t *testing.T) {
	t.Parallel()
	lab := NewLab(t)
	s := dhStart(t, lab, dhProxyConfig)
	h := dhAddHost(t, lab, "192.0.2.30")
	c := dhSocket(t, h.Netns, h.Iface, 68)
	uuid := []byte("fedcba9876543210")
	bootReq := func(mac string, arch uint16, vendor string, mt byte) dhMsg {
		m := dhNewMsg(mac, mt, dhOS(60, vendor), dhOArch(arch), dhOUUID(uuid), dhOPRL(43, 60, 66, 67))
		m.Flags, m.CIAddr = 0, "192.0.2.30"
		return m
	}
	for _, tc := range []struct {
		arch   uint16
		vendor string
		file   string
	}{
		{7, "PXEClient:Arch:00007:UNDI:003016", "snponly.efi"},
		{9, "PXEClient:Arch:00009:UNDI:003016", "snponly.efi"}, // RFC 4578 errata: 9 is x64 too
		{0, "PXEClient:Arch:00000:UNDI:002001", "undionly.kpxe"},
	} {
		mac := fmt.Sprintf("52:54:00:00:40:%02x", tc.arch)
		r := dhMustExchange(t, c, dhServerIP+":4011", bootReq(mac, tc.arch, tc.vendor, dhRequest), dhAck, dhReplyWait)
		if r.File != tc.file || r.Str(67) != tc.file {
			t.Errorf("arch %d on 4011: file %q, option 67 %q, want %s", tc.arch, r.File, r.Str(67), tc.file)
		}
		if r.SIAddr != dhServerIP || r.Str(60) != "PXEClient" || r.IPs(54) != dhServerIP {
			t.Errorf("arch %d on 4011: siaddr %s, option 60 %q, server id %q", tc.arch, r.SIAddr, r.Str(60), r.IPs(54))
		}
		if v, _ := r.Opt(97); !bytes.Equal(v, append([]byte{0}, uuid...)) {
			t.Errorf("arch %d on 4011: option 97 = % x, want the UUID echoed", tc.arch, v)
		}
		if r.From.Port() != 4011 || r.From.Addr().String() != dhServerIP {
			t.Errorf("arch %d: the boot server answered from %s, want %s:4011", tc.arch, r.From, dhServerIP)
		}
	}
	// 4011 answers only REQUEST (and INFORM) from PXE clients.
	if r := dhExchange(t, c, dhServerIP+":4011", bootReq("52:54:00:00:41:01", 7, "PXEClient:Arch:00007:UNDI:003016", dhDiscover), dhSilence); r != nil {
		t.Errorf("DISCOVER on 4011 was answered: %s", r)
	}
	if r := dhExchange(t, c, dhServerIP+":4011", bootReq("52:54:00:00:41:02", 7, "MSFT 5.0", dhRequest), dhSilence); r != nil {
		t.Errorf("non-PXE REQUEST on 4011 was answered: %s", r)
	}

	// iPXE (user class "iPXE", option 175) gets the script over HTTP.
	m := dhNewMsg("52:54:00:00:42:01", dhDiscover, dhOS(60, "PXEClient:Arch:00000:UNDI:002001"), dhOArch(0),
		dhOS(77, "iPXE"), dhO(175, 0xb1, 1, 1))
	r := dhMustExchange(t, c, "255.255.255.255:67", m, dhOffer, dhReplyWait)
	want := fmt.Sprintf("http://%s:%s/boot.ipxe", dhServerIP, Port(s.HTTPAddr))
	if r.File != want || r.Str(67) != want {
		t.Errorf("iPXE: file %q option 67 %q, want %s", r.File, r.Str(67), want)
	}
	if _, ok := r.Opt(43); ok {
		t.Errorf("iPXE got PXE discovery control (43): it is past the firmware stage")
	}

	// UEFI HTTP boot (arch 16, vendor class HTTPClient) gets a URL and
	// vendor class HTTPClient back, or the firmware ignores the offer.
	m = dhNewMsg("52:54:00:00:43:01", dhDiscover, dhOS(60, "HTTPClient:Arch:00016:UNDI:003001"), dhOArch(16))
	r = dhMustExchange(t, c, "255.255.255.255:67", m, dhOffer, dhReplyWait)
	want = fmt.Sprintf("http://%s:%s/ipxe.efi", dhServerIP, Port(s.HTTPAddr))
	if r.Str(67) != want || r.Str(60) != "HTTPClient" || r.YIAddr != "0.0.0.0" {
		t.Errorf("UEFI HTTP boot: option 67 %q, option 60 %q, yiaddr %s; want %s, HTTPClient, 0.0.0.0", r.Str(67), r.Str(60), r.YIAddr, want)
	}
}

// ---------------------------------------------------------------------------
// 3. Relay

// dhRelayLab is the lab with a relay namespace (192.0.2.2 on the bridge)
// and bootforge's route to 198.51.100.0/24 through it.
func dhRelayLab(t *testing.T) (*Lab, *LabHost) {
	lab := NewLab(t)
	relay := dhAddHost(t, lab, "192.0.2.2")
	relay.MustExec("sysctl", "-qw", "net.ipv4.ip_forward=0")
	lab.MustExec("ip", "route", "add", "198.51.100.0/24", "via", "192.0.2.2")
	return lab, relay
}

// ISC dhcrelay with agent information: a client behind it gets an address
// from 198.51.100.0/24, and every reply to the relay echoes option 82
// last (captured on the relay's upstream interface).
func TestDHCPRelayDhcrelay(t *testing.T) {
	t.Parallel()
	need(t, "dhcrelay")
	lab, relay := dhRelayLab(t)
	s := dhStart(t, lab, dhRelayConfig(""))
	client := dhLink(t, lab, relay.Netns, "eth1", "198.51.100.1/24", "")
	sniff := dhSniff(t, relay.Netns, relay.Iface)
	// The relay runs as `bootforge dhcp relay-config` prints it for this
	// config (in the server's namespace, where it sees the served
	// interface), in the foreground and with a pid file of its own.
	cfgFile := filepath.Join(t.TempDir(), "bootforge.yaml")
	if err := os.WriteFile(cfgFile, []byte(dhRelayConfig("")), 0o644); err != nil {
		t.Fatal(err)
	}
	doc, err := lab.Exec(30*time.Second, binary, "dhcp", "relay-config", "--config", cfgFile, "--format", "isc",
		"--client-iface", "eth1", "--upstream-iface", relay.Iface)
	if err != nil || !strings.Contains(doc, "# Relayed subnet 198.51.100.0/24, gateway 198.51.100.1\n") || strings.Contains(doc, "192.0.2.0/24") {
		t.Fatalf("relay-config: %v\n%s", err, doc)
	}
	var relayCmd []string
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "dhcrelay ") {
			relayCmd = strings.Fields(line)
		}
	}
	if len(relayCmd) == 0 || relayCmd[len(relayCmd)-1] != dhServerIP {
		t.Fatalf("relay-config prints no dhcrelay line to %s:\n%s", dhServerIP, doc)
	}
	args := append([]string{"-d", "-pf", filepath.Join(t.TempDir(), "dhcrelay.pid")}, relayCmd[1:]...)
	dhDaemon(t, relay.Netns, "Sending on   Socket/fallback", "dhcrelay", args...)

	l := dhMustUdhcpc(t, client)
	if !dhInPool(l["ip"], "198.51.100.100", "198.51.100.150") {
		t.Errorf("relayed udhcpc got %q, want an address from 198.51.100.100-150", l["ip"])
	}
	if l["router"] != "198.51.100.1" || l["mask"] != "24" || l["domain"] != "far.test" || l["serverid"] != dhServerIP || l["lease"] != "1200" {
		t.Errorf("relayed udhcpc: router %q mask %q domain %q server %q lease %q; want the 198.51.100.0/24 subnet's options",
			l["router"], l["mask"], l["domain"], l["serverid"], l["lease"])
	}
	mac := dhMAC(t, client)
	for _, r := range dhReplies(s, mac, "") {
		if r["to"] != "198.51.100.1:67" {
			t.Errorf("reply to a relayed client went to %s, want the relay 198.51.100.1:67", r["to"])
		}
	}

	// The server's replies, as the relay received them.
	time.Sleep(200 * time.Millisecond)
	var seen []byte
	for _, cp := range sniff.Packets() {
		if cp.Src.String() != dhServerIP+":67" {
			continue
		}
		p, err := dhParse(cp.Payload)
		if err != nil {
			t.Errorf("undecodable reply to the relay: %v", err)
			continue
		}
		p.From = cp.Src
		if p.CHAddr.String() != mac {
			continue
		}
		seen = append(seen, p.Type())
		if cp.Dst.String() != "198.51.100.1:67" || p.GIAddr != "198.51.100.1" {
			t.Errorf("%s went to %s with giaddr %s, want 198.51.100.1:67", dhTypeNames[p.Type()], cp.Dst, p.GIAddr)
		}
		dhCheckAgentLast(t, p, nil)
		ai, _ := p.Opt(82)
		if sub := dhSubOpt(ai, 1); string(sub) != "eth1" {
			t.Errorf("%s: circuit id %q, want dhcrelay's \"eth1\" (agent info % x)", dhTypeNames[p.Type()], sub, ai)
		}
	}
	if !bytes.Contains(seen, []byte{dhOffer}) || !bytes.Contains(seen, []byte{dhAck}) {
		t.Errorf("captured replies to the relay: types %v, want an OFFER and an ACK", seen)
	}

	// dhclient behind the same relay (no client id: a client of its own).
	client.MustExec("ip", "addr", "flush", "dev", client.Iface)
	dc := newDhclient(t, client, "")
	dl, out := dc.Get()
	if !dhInPool(dl["new_ip_address"], "198.51.100.100", "198.51.100.150") || dl["new_routers"] != "198.51.100.1" ||
		dl["new_dhcp_server_identifier"] != dhServerIP {
		t.Errorf("relayed dhclient: address %q router %q server %q\n%s", dl["new_ip_address"], dl["new_routers"], dl["new_dhcp_server_identifier"], out)
	}
}

// dhSubOpt returns sub-option code of relay agent information v.
func dhSubOpt(v []byte, code byte) []byte {
	for i := 0; i+2 <= len(v); {
		c, n := v[i], int(v[i+1])
		if i+2+n > len(v) {
			return nil
		}
		if c == code {
			return v[i+2 : i+2+n]
		}
		i += 2 + n
	}
	return nil
}

// dhAgentInfo is a relay's option 82: circuit id, remote id, subscriber id.
var dhAgentInfo = []byte{
	1, 10, 'g', 'e', '-', '0', '/', '0', '/', '7', '.', '0',
	2, 6, 0x00, 0x1b, 0x21, 0x3c, 0x4d, 0x5e,
	6, 4, 's', 'u', 'b', '1',
}

// dhRelayed is a request as a relay forwards it: giaddr, hops 1, and
// option 82 in the middle of the options (the server must move it last).
func dhRelayed(mac string, mt byte, giaddr string, agent []byte, opts ...dhOpt) dhMsg {
	m := dhNewMsg(mac, mt)
	m.GIAddr, m.Hops, m.Flags = giaddr, 1, 0
	if agent != nil {
		m.Opts = append(m.Opts, dhORaw(82, agent))
	}
	m.Opts = append(m.Opts, dhOClientID(net.HardwareAddr(dhMustMAC(mac))))
	m.Opts = append(m.Opts, opts...)
	m.Opts = append(m.Opts, dhOPRL(1, 3, 6, 15, 51, 54))
	return m
}

// A raw relay agent (giaddr 198.51.100.1, listening on udp/67): the server
// picks the subnet by giaddr, answers to giaddr:67, and echoes option 82
// byte for byte as the last option.
func TestDHCPRelayOption82Raw(t *testing.T) {
	t.Parallel()
	lab, relay := dhRelayLab(t)
	relay.MustExec("ip", "addr", "add", "198.51.100.1/24", "dev", relay.Iface)
	s := dhStart(t, lab, dhRelayConfig(""))
	c := dhSocket(t, relay.Netns, relay.Iface, 67)
	const mac = "02:00:00:00:82:01"

	d := dhRelayed(mac, dhDiscover, "198.51.100.1", dhAgentInfo)
	o := dhMustExchange(t, c, dhServerIP+":67", d, dhOffer, dhReplyWait)
	if !dhInPool(o.YIAddr, "198.51.100.100", "198.51.100.150") || o.GIAddr != "198.51.100.1" || o.IPs(3) != "198.51.100.1" {
		t.Errorf("relayed OFFER: %s router %q; want an address of 198.51.100.0/24 and giaddr kept", o, o.IPs(3))
	}
	if o.Hops != 0 {
		t.Errorf("relayed OFFER: hops %d, want 0", o.Hops)
	}
	if o.From.String() != dhServerIP+":67" {
		t.Errorf("relayed OFFER came from %s, want %s:67", o.From, dhServerIP)
	}
	dhCheckAgentLast(t, o, dhAgentInfo)

	rq := dhRelayed(mac, dhRequest, "198.51.100.1", dhAgentInfo, dhOIP(50, o.YIAddr), dhOIP(54, dhServerIP))
	a := dhMustExchange(t, c, dhServerIP+":67", rq, dhAck, dhReplyWait)
	if a.YIAddr != o.YIAddr || a.U32(51) != 1200 {
		t.Errorf("relayed ACK: %s lease %d; want %s for 1200 s", a, a.U32(51), o.YIAddr)
	}
	dhCheckAgentLast(t, a, dhAgentInfo)
	dhWaitRecord(t, s, dhReplyWait, "dhcp: lease", func(r dhRec) bool { return dhByMAC(mac)(r) && r["ip"] == o.YIAddr })

	// A relay that adds no agent information gets none back.
	n := dhMustExchange(t, c, dhServerIP+":67", dhRelayed("02:00:00:00:82:02", dhDiscover, "198.51.100.1", nil), dhOffer, dhReplyWait)
	if _, ok := n.Opt(82); ok {
		t.Errorf("OFFER carries option 82 the relay never sent: %s", n)
	}
	// A NAK to a relayed client goes to the relay too, with option 82.
	k := dhMustExchange(t, c, dhServerIP+":67", dhRelayed("02:00:00:00:82:03", dhRequest, "198.51.100.1", dhAgentInfo, dhOIP(50, "192.0.2.150")), dhNak, dhReplyWait)
	dhCheckAgentLast(t, k, dhAgentInfo)
}

// ---------------------------------------------------------------------------
// 4. Scope

// dhcp.allow: a relayed request from a subnet that is configured but not
// allow-listed gets no answer, while the lab still does; without the
// allow-list the same request is answered (so the silence is the
// allow-list's doing).
func TestDHCPAllowList(t *testing.T) {
	t.Parallel()
	lab, relay := dhRelayLab(t)
	relay.MustExec("ip", "addr", "add", "198.51.100.1/24", "dev", relay.Iface)
	s := dhStart(t, lab, dhRelayConfig("  allow: [192.0.2.0/24]\n"))
	c := dhSocket(t, relay.Netns, relay.Iface, 67)
	const mac = "02:00:00:00:a1:01"

	m := dhRelayed(mac, dhDiscover, "198.51.100.1", dhAgentInfo)
	if r := dhExchange(t, c, dhServerIP+":67", m, 3*time.Second); r != nil {
		t.Errorf("request relayed from 198.51.100.0/24, outside dhcp.allow, was answered: %s", r)
	}
	dhWaitRecord(t, s, dhReplyWait, "dhcp: outside the allowed subnets", func(r dhRec) bool {
		return dhByMAC(mac)(r) && r["giaddr"] == "198.51.100.1"
	})
	if r := dhReplies(s, mac, ""); len(r) > 0 {
		t.Errorf("server replied to a denied client: %v", r)
	}

	h := dhAddHost(t, lab, "")
	if l := dhMustUdhcpc(t, h); !dhInPool(l["ip"], "192.0.2.100", "192.0.2.200") {
		t.Errorf("allowed lab client got %q", l["ip"])
	}

	// Control: the same request, the allow-list removed.
	s.Stop()
	dhStart(t, lab, dhRelayConfig(""))
	m.XID++
	if r := dhExchange(t, c, dhServerIP+":67", m, dhReplyWait); r == nil || r.Type() != dhOffer {
		t.Errorf("control without dhcp.allow: the relayed DISCOVER got %v, want an OFFER", r)
	}
}

// A request arriving on an interface not in dhcp.interfaces gets nothing,
// even though its subnet is configured; once the interface is listed, it is
// served.
func TestDHCPInterfaceScope(t *testing.T) {
	t.Parallel()
	lab := NewLab(t)
	cfg := func(ifaces string) string {
		return `log: {level: debug, format: text}
dhcp:
  mode: authoritative
  interfaces: [` + ifaces + `]
  subnets:
    - subnet: 192.0.2.0/24
      pools: ["192.0.2.100-192.0.2.200"]
    - subnet: 198.18.0.0/24
      pools: ["198.18.0.100-198.18.0.110"]
      router: 198.18.0.1
`
	}
	s := dhStart(t, lab, cfg("br0"))
	other := dhLink(t, lab, lab.Netns, "lan2", "198.18.0.1/24", "")
	mac := dhMAC(t, other)
	if l, out, err := dhUdhcpc(t, other, 3); err == nil || l != nil {
		t.Errorf("client on lan2 (not in dhcp.interfaces) got a lease: %v\n%s", l, out)
	}
	// Unicast to 192.0.2.1:67 through lan2, as a relay would send it, is
	// delivered to the lab namespace but must not reach the server either.
	other.MustExec("ip", "addr", "add", "198.18.0.2/24", "dev", other.Iface)
	other.MustExec("ip", "route", "add", "192.0.2.0/24", "via", "198.18.0.1")
	rc := dhSocket(t, other.Netns, other.Iface, 67)
	m := dhRelayed(mac, dhDiscover, "198.18.0.2", dhAgentInfo)
	if r := dhExchange(t, rc, dhServerIP+":67", m, 2*time.Second); r != nil {
		t.Errorf("unicast relayed DISCOVER arriving on lan2 was answered: %s", r)
	}
	if strings.Contains(strings.ToLower(s.Log()), mac) {
		t.Errorf("server saw the lan2 client %s at all:\n%s", mac, s.Log())
	}
	other.MustExec("ip", "addr", "flush", "dev", other.Iface)
	if l := dhMustUdhcpc(t, dhAddHost(t, lab, "")); !dhInPool(l["ip"], "192.0.2.100", "192.0.2.200") {
		t.Errorf("br0 client got %q", l["ip"])
	}

	// Control: list lan2 and the same client is served from its subnet.
	s.Stop()
	dhStart(t, lab, cfg("br0, lan2"))
	if l := dhMustUdhcpc(t, other); !dhInPool(l["ip"], "198.18.0.100", "198.18.0.110") || l["router"] != "198.18.0.1" || l["serverid"] != "198.18.0.1" {
		t.Errorf("control with lan2 listed: got %v, want a 198.18.0.100-110 lease from server id 198.18.0.1 (lan2's address)", l)
	}
}

// DECLINE quarantines the address (across a restart); INFORM gets the
// subnet's options and no address or lease time.
func TestDHCPDeclineAndInform(t *testing.T) {
	t.Parallel()
	lab := NewLab(t)
	dataDir := t.TempDir()
	cfg := dhAuthConfig("192.0.2.100", "192.0.2.101", "")
	s := dhStart(t, lab, cfg, "--data-dir", dataDir)
	h := dhAddHost(t, lab, "192.0.2.10")
	c := dhSocket(t, h.Netns, h.Iface, 68)
	const macA, macB = "02:00:00:00:dc:0a", "02:00:00:00:dc:0b"

	o := dhMustExchange(t, c, "255.255.255.255:67", dhNewMsg(macA, dhDiscover), dhOffer, dhReplyWait)
	ipX := o.YIAddr
	dhMustExchange(t, c, "255.255.255.255:67", dhNewMsg(macA, dhRequest, dhOIP(50, ipX), dhOIP(54, dhServerIP)), dhAck, dhReplyWait)
	if r := dhExchange(t, c, "255.255.255.255:67", dhNewMsg(macA, dhDecline, dhOIP(50, ipX), dhOIP(54, dhServerIP)), dhSilence); r != nil {
		t.Errorf("DECLINE was answered: %s", r)
	}
	dhWaitRecord(t, s, dhReplyWait, "dhcp: address declined, quarantined", func(r dhRec) bool { return r["ip"] == ipX })

	if r := dhExchange(t, c, "255.255.255.255:67", dhNewMsg(macA, dhDiscover), dhReplyWait); r == nil || r.Type() != dhOffer || r.YIAddr == ipX {
		t.Errorf("after declining %s, the client's DISCOVER got %v, want an OFFER of the other address", ipX, r)
	}
	if r := dhExchange(t, c, "255.255.255.255:67", dhNewMsg(macB, dhDiscover), 2*time.Second); r != nil && r.YIAddr == ipX {
		t.Errorf("declined %s was offered to another client: %s", ipX, r)
	}

	// The quarantine is stored: after a restart it still holds.
	s.Stop()
	dhStart(t, lab, cfg, "--data-dir", dataDir)
	if r := dhExchange(t, c, "255.255.255.255:67", dhNewMsg(macB, dhDiscover), dhReplyWait); r == nil || r.Type() != dhOffer || r.YIAddr == ipX {
		t.Errorf("after a restart, DISCOVER got %v; want an OFFER, not of declined %s", r, ipX)
	}

	// INFORM from a client with its own address.
	m := dhNewMsg("02:00:00:00:dc:0c", dhInform, dhOPRL(1, 3, 6, 15, 42))
	m.Flags, m.CIAddr = 0, h.IP()
	r := dhMustExchange(t, c, dhServerIP+":67", m, dhAck, dhReplyWait)
	if r.YIAddr != "0.0.0.0" {
		t.Errorf("INFORM ACK: yiaddr %s, want 0.0.0.0", r.YIAddr)
	}
	if _, ok := r.Opt(51); ok {
		t.Errorf("INFORM ACK carries a lease time (RFC 2131 table 3: MUST NOT)")
	}
	if r.IPs(3) != "192.0.2.1" || r.IPs(6) != "192.0.2.53 192.0.2.54" || r.Str(15) != "lab.test" || r.IPs(42) != "192.0.2.123" || r.IPs(54) != dhServerIP {
		t.Errorf("INFORM ACK options: router %q dns %q domain %q ntp %q server %q", r.IPs(3), r.IPs(6), r.Str(15), r.IPs(42), r.IPs(54))
	}
}

// An offer is held for its client for dhcp.offer_hold, then the address
// can go to another client; the first client's late REQUEST is refused.
func TestDHCPOfferHold(t *testing.T) {
	t.Parallel()
	lab := NewLab(t)
	dhStart(t, lab, dhAuthConfig("192.0.2.100", "192.0.2.100", "  offer_hold: 2s\n"))
	h := dhAddHost(t, lab, "192.0.2.10")
	c := dhSocket(t, h.Netns, h.Iface, 68)
	const macA, macB = "02:00:00:00:0f:0a", "02:00:00:00:0f:0b"

	o := dhMustExchange(t, c, "255.255.255.255:67", dhNewMsg(macA, dhDiscover), dhOffer, dhReplyWait)
	offered := time.Now()
	if o.YIAddr != "192.0.2.100" {
		t.Fatalf("OFFER of %s, want 192.0.2.100", o.YIAddr)
	}
	if r := dhExchange(t, c, "255.255.255.255:67", dhNewMsg(macB, dhDiscover), 700*time.Millisecond); r != nil {
		t.Errorf("the address offered to A was offered to B within the hold: %s", r)
	}
	time.Sleep(time.Until(offered.Add(2500 * time.Millisecond)))
	ob := dhMustExchange(t, c, "255.255.255.255:67", dhNewMsg(macB, dhDiscover), dhOffer, dhReplyWait)
	if ob.YIAddr != "192.0.2.100" {
		t.Errorf("after the hold, B was offered %s, want 192.0.2.100", ob.YIAddr)
	}
	if r := dhExchange(t, c, "255.255.255.255:67", dhNewMsg(macA, dhRequest, dhOIP(50, "192.0.2.100"), dhOIP(54, dhServerIP)), dhReplyWait); r == nil || r.Type() != dhNak {
		t.Errorf("A's late REQUEST for the address now offered to B: want NAK, got %v", r)
	}
	dhMustExchange(t, c, "255.255.255.255:67", dhNewMsg(macB, dhRequest, dhOIP(50, "192.0.2.100"), dhOIP(54, dhServerIP)), dhAck, dhReplyWait)
}

// Where replies go without a relay (RFC 2131 4.1), as seen on the client's
// wire: broadcast when the client asks for it, unicast to yiaddr at chaddr
// when it does not (the server installs the ARP entry itself), unicast to
// ciaddr when the client has an address, NAK always broadcast.
func TestDHCPReplyRouting(t *testing.T) {
	t.Parallel()
	lab := NewLab(t)
	dhStart(t, lab, dhAuthConfig("192.0.2.100", "192.0.2.200", ""))
	h := dhAddHost(t, lab, "192.0.2.10")
	mac := dhMAC(t, h)
	sniff := dhSniff(t, h.Netns, h.Iface)
	c := dhSocket(t, h.Netns, h.Iface, 68)

	// dst returns where the server's reply with xid went.
	dst := func(xid uint32) string {
		t.Helper()
		deadline := time.Now().Add(dhReplyWait)
		for time.Now().Before(deadline) {
			for _, cp := range sniff.Packets() {
				if cp.Src.Addr().String() != dhServerIP {
					continue
				}
				if p, err := dhParse(cp.Payload); err == nil && p.Op == 2 && p.XID == xid {
					return cp.Dst.String()
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("no reply with xid %08x seen on the client's interface", xid)
		return ""
	}

	b := dhNewMsg(mac, dhDiscover)
	dhSendRaw(t, c, "255.255.255.255:67", b.Bytes())
	if d := dst(b.XID); d != "255.255.255.255:68" {
		t.Errorf("DISCOVER with the broadcast flag: OFFER went to %s, want 255.255.255.255:68", d)
	}

	u := dhNewMsg(mac, dhDiscover)
	u.Flags = 0
	dhSendRaw(t, c, "255.255.255.255:67", u.Bytes())
	d := dst(u.XID)
	var offered string
	for _, cp := range sniff.Packets() {
		if p, err := dhParse(cp.Payload); err == nil && p.Op == 2 && p.XID == u.XID {
			offered = p.YIAddr
		}
	}
	if d != offered+":68" || !dhInPool(offered, "192.0.2.100", "192.0.2.200") {
		t.Errorf("DISCOVER without the broadcast flag: OFFER of %s went to %s, want unicast to %s:68", offered, d, offered)
	}
	if neigh := lab.MustExec("ip", "neigh", "show", offered, "dev", "br0"); !strings.Contains(neigh, mac) {
		t.Errorf("server has no ARP entry %s -> %s for the unicast OFFER: %q", offered, mac, neigh)
	}

	n := dhNewMsg(mac, dhRequest, dhOIP(50, "198.51.100.5"))
	n.Flags = 0
	dhSendRaw(t, c, "255.255.255.255:67", n.Bytes())
	if d := dst(n.XID); d != "255.255.255.255:68" {
		t.Errorf("NAK went to %s, want 255.255.255.255:68 (RFC 2131 4.1: NAKs are broadcast)", d)
	}

	i := dhNewMsg(mac, dhInform)
	i.Flags, i.CIAddr = 0, h.IP()
	dhSendRaw(t, c, dhServerIP+":67", i.Bytes())
	if d := dst(i.XID); d != h.IP()+":68" {
		t.Errorf("ACK to INFORM from %s went to %s, want unicast to ciaddr %s:68", h.IP(), d, h.IP())
	}
}
