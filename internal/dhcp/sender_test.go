package dhcp

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"golang.org/x/sys/unix"
)

// A listener and its sender share a port: every datagram for it reaches
// the listener, none waits unread at the sender, and what the sender sends
// leaves from the listener's port. Real sockets on loopback, as Start
// opens them.
func TestSenderSharesTheListenersPort(t *testing.T) {
	port := loopbackPort(t)
	conn, err := server4.NewIPv4UDPConn("lo", &net.UDPAddr{Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	out, err := newSender(conn, "lo", port)
	if err != nil {
		t.Fatal(err)
	}
	defer out.close()

	client, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	// Many source ports: the kernel's own spreading hashes on them.
	const n = 64
	for i := range n {
		c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte{byte(i)})
		c.Close()
	}
	buf := make([]byte, 16)
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	for i := range n {
		if _, _, err := conn.ReadFromUDPAddrPort(buf); err != nil {
			t.Fatalf("the listener got %d of %d datagrams: %v", i, n, err)
		}
	}
	if queued, err := unix.IoctlGetInt(out.fd, unix.SIOCINQ); err != nil || queued != 0 {
		t.Errorf("the sender holds %d bytes it will never read (%v)", queued, err)
	}

	dst := client.LocalAddr().(*net.UDPAddr).AddrPort()
	if err := out.send([]byte("reply"), dst); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(2 * time.Second))
	m, from, err := client.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:m]) != "reply" || from.Port() != uint16(port) {
		t.Errorf("got %q from %v, want \"reply\" from port %d", buf[:m], from, port)
	}
	if err := out.send([]byte("x"), netip.MustParseAddrPort("[2001:db8::1]:67")); err == nil {
		t.Error("an IPv6 destination was accepted")
	}
}

// loopbackPort is a UDP port free on loopback a moment ago, for sockets
// bound to interface lo as Start binds its own (which needs root).
func loopbackPort(t *testing.T) int {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("binding a socket to an interface needs root: run the tests as root")
	}
	free, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer free.Close()
	return free.LocalAddr().(*net.UDPAddr).Port
}

// A sender keeps nothing it is sent: the kernel gives every socket on a
// port a copy of each broadcast, whatever the steering says.
func TestSenderReceivesNothing(t *testing.T) {
	port := loopbackPort(t)
	out, err := openSender("lo", port)
	if err != nil {
		t.Fatal(err)
	}
	defer out.close()
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 8 {
		if _, err := c.Write([]byte("request")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // loopback delivers within the send; this is slack
	if queued, err := unix.IoctlGetInt(out.fd, unix.SIOCINQ); err != nil || queued != 0 {
		t.Errorf("the sender holds %d bytes (%v)", queued, err)
	}
}

// A listener gets a sender only on a port that was free: beside another
// process's socket (here one made as a second bootforge's would be), the
// replies go out through the listener, and no steering is set that could
// hand every request to that socket.
func TestListenSenderOnlyOnAFreePort(t *testing.T) {
	s := NewServer(nil, Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	port := loopbackPort(t)
	ic, err := s.listen("lo", port)
	if err != nil {
		t.Fatal(err)
	}
	if ic.out == nil {
		t.Error("no sender on a free port")
	} else {
		ic.out.close()
	}
	ic.conn.Close()

	port = loopbackPort(t)
	other, err := server4.NewIPv4UDPConn("lo", &net.UDPAddr{Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ic, err = s.listen("lo", port)
	if err != nil {
		t.Fatal(err)
	}
	defer ic.conn.Close()
	if ic.out != nil {
		ic.out.close()
		t.Error("a sender beside another process's socket on the port")
	}
}
