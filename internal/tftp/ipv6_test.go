package tftp

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bootforge/internal/allow"
	"bootforge/internal/bootfs"
)

// startDual serves root on a dual-stack socket ([::]:0), as ":69" does.
// Each of prepare runs on the server before it serves.
func startDual(t *testing.T, st Settings, files map[string][]byte, prepare ...func(*Server)) (*Server, int, *events, bootfs.FS) {
	t.Helper()
	root := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(root, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := bootfs.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	srv := New(dir, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ev := &events{}
	srv.Events = ev
	for _, p := range prepare {
		p(srv)
	}
	conn, err := srv.Listen("[::]:0")
	if err != nil {
		t.Fatalf("dual-stack listen: %v", err)
	}
	go srv.Serve(conn)
	t.Cleanup(func() { srv.Shutdown(t.Context()) })
	return srv, conn.LocalAddr().(*net.UDPAddr).Port, ev, dir
}

// fetch reads name in lockstep from server, checking that every packet
// comes from the address it was sent to, and returns the data.
func fetch(t *testing.T, network string, server netip.AddrPort, name string) ([]byte, error) {
	t.Helper()
	c, err := net.ListenUDP(network, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteToUDPAddrPort([]byte("\x00\x01"+name+"\x00octet\x00"), server); err != nil {
		t.Fatal(err)
	}
	var data []byte
	buf := make([]byte, 1024)
	for {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return data, err
		}
		if got := from.Addr().Unmap(); got != server.Addr() {
			t.Fatalf("reply from %s, asked %s", got, server.Addr())
		}
		pkt := buf[:n]
		if pkt[1] != opDATA {
			return data, &net.AddrError{Err: "not DATA: " + string(pkt[4:]), Addr: from.String()}
		}
		data = append(data, pkt[4:]...)
		c.WriteToUDPAddrPort([]byte{0, opACK, pkt[2], pkt[3]}, from)
		if n-4 < defaultBlockSize {
			return data, nil
		}
	}
}

// One dual-stack socket serves IPv4 and IPv6 clients, each from the
// address it asked, and logs the client as it is (unmapped).
func TestDualStackServesBothFamilies(t *testing.T) {
	want := bytes.Repeat([]byte("6"), 1300)
	_, port, ev, _ := startDual(t, Settings{MaxWindowSize: 1, Timeout: time.Second, Retries: 2, MaxTransfers: 4, MaxPerClient: 4},
		map[string][]byte{"snponly.efi": want})
	// 127.0.0.2 is on lo too; an answer from any address but the one
	// asked would come from 127.0.0.1.
	for _, c := range []struct{ network, addr string }{{"udp6", "::1"}, {"udp4", "127.0.0.1"}, {"udp4", "127.0.0.2"}} {
		got, err := fetch(t, c.network, netip.AddrPortFrom(netip.MustParseAddr(c.addr), uint16(port)), "snponly.efi")
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes, %v", c.addr, len(got), err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(ev.all()) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	ips := map[string]bool{}
	for _, e := range ev.all() {
		ips[e.IP] = e.Result == "ok"
	}
	if !ips["::1"] || !ips["127.0.0.1"] || len(ev.all()) != 3 {
		t.Errorf("boot-log events %+v, want three ok transfers, of ::1 and 127.0.0.1", ev.all())
	}
}

// An IPv6 allow-list: a client outside it gets nothing, one inside is
// served; an IPv4 list does not let an IPv6 client through.
func TestAllowListIPv6(t *testing.T) {
	st := Settings{MaxWindowSize: 1, Timeout: time.Second, Retries: 1, MaxTransfers: 4, MaxPerClient: 4,
		Allow: allow.List{Key: "tftp.allow", Prefixes: []netip.Prefix{
			netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("127.0.0.0/8")}}}
	srv, port, ev, dir := startDual(t, st, map[string][]byte{"pxelinux.0": []byte("loader")})
	server := netip.AddrPortFrom(netip.MustParseAddr("::1"), uint16(port))
	if got, err := fetch(t, "udp6", server, "pxelinux.0"); err == nil || len(got) != 0 {
		t.Fatalf("::1 outside the list got %q, %v", got, err)
	}
	if n := srv.Stats.Refusals.NotAllowed.Load(); n != 1 {
		t.Errorf("NotAllowed = %d, want 1", n)
	}
	if e := ev.all(); len(e) != 1 || e[0].IP != "::1" || e[0].Reason != "::1 is not in tftp.allow" {
		t.Errorf("events %+v, want one refusal of ::1", e)
	}
	st.Allow.Prefixes = append(st.Allow.Prefixes, netip.MustParsePrefix("::1/128"))
	srv.Update(dir, st)
	if got, err := fetch(t, "udp6", server, "pxelinux.0"); err != nil || string(got) != "loader" {
		t.Fatalf("::1 inside the list: %q, %v", got, err)
	}
}

// max_per_client counts an IPv6 client by its address: a second transfer
// from ::1 is refused while the first runs. The refusal comes from the
// well-known socket, from the address the client asked, for IPv4 clients
// of the dual-stack socket too.
func TestPerClientIPv6(t *testing.T) {
	_, port, _, _ := startDual(t, Settings{MaxWindowSize: 1, Timeout: 2 * time.Second, Retries: 1, MaxTransfers: 4, MaxPerClient: 1},
		map[string][]byte{"big.img": bytes.Repeat([]byte("x"), 4096)})
	for _, c := range []struct{ network, addr string }{{"udp6", "::1"}, {"udp4", "127.0.0.2"}} {
		server := netip.AddrPortFrom(netip.MustParseAddr(c.addr), uint16(port))
		first, err := net.ListenUDP(c.network, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer first.Close()
		first.WriteToUDPAddrPort([]byte("\x00\x01big.img\x00octet\x00"), server)
		buf := make([]byte, 1024)
		first.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, _, err := first.ReadFromUDPAddrPort(buf); err != nil || buf[1] != opDATA {
			t.Fatalf("%s: first transfer: % x, %v", c.addr, buf[:n], err)
		}
		// The first transfer waits for its ACK; a second one is one too many.
		got, err := fetch(t, c.network, server, "big.img")
		if want := "too many transfers from this client"; err == nil || len(got) != 0 || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: second transfer: %d bytes, %v; want %q", c.addr, len(got), err, want)
		}
	}
}

func TestScopeID(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		addr    string
		ifindex int
		want    uint32
	}{
		{"fe80::1", 7, 7},                   // no zone: the receiving interface
		{"fe80::1%lo", 7, uint32(lo.Index)}, // a zone wins
		{"fe80::1%12", 7, 12},
		{"2001:db8::1", 7, 0}, // global: no scope
		{"192.0.2.1", 7, 0},
		{"ff02::1:2", 7, 7}, // link-local multicast
		{"ff05::1:3", 7, 0}, // site-local multicast
	} {
		if got := scopeID(netip.MustParseAddr(tt.addr), tt.ifindex); got != tt.want {
			t.Errorf("scopeID(%s, %d) = %d, want %d", tt.addr, tt.ifindex, got, tt.want)
		}
	}
}
