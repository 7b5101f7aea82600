package e2e

// Hostile TFTP input, sent by a raw UDP client that builds every packet by
// hand: path escapes, malformed and truncated packets, option floods and
// out-of-range options, Sorcerer's Apprentice, wrong TIDs, timeouts and the
// per-client cap. After each attack the server must still serve a normal
// download.

import (
	"bytes"
	binenc "encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	tfOpRRQ   = 1
	tfOpWRQ   = 2
	tfOpDATA  = 3
	tfOpACK   = 4
	tfOpERROR = 5
	tfOpOACK  = 6
)

// tfPkt is one packet the raw client received.
type tfPkt struct {
	raw   []byte
	from  *net.UDPAddr
	op    uint16
	block uint16            // DATA, ACK
	data  []byte            // DATA payload
	code  uint16            // ERROR
	msg   string            // ERROR
	opts  map[string]string // OACK
}

func (p tfPkt) String() string {
	switch p.op {
	case tfOpDATA:
		return fmt.Sprintf("DATA %d (%d bytes) from %s", p.block, len(p.data), p.from)
	case tfOpACK:
		return fmt.Sprintf("ACK %d from %s", p.block, p.from)
	case tfOpERROR:
		return fmt.Sprintf("ERROR %d %q from %s", p.code, p.msg, p.from)
	case tfOpOACK:
		return fmt.Sprintf("OACK %v from %s", p.opts, p.from)
	}
	return fmt.Sprintf("opcode %d (%d bytes) from %s", p.op, len(p.raw), p.from)
}

func tfParse(b []byte, from *net.UDPAddr) tfPkt {
	p := tfPkt{raw: b, from: from}
	if len(b) < 2 {
		return p
	}
	p.op = binenc.BigEndian.Uint16(b)
	switch p.op {
	case tfOpDATA, tfOpACK:
		if len(b) >= 4 {
			p.block = binenc.BigEndian.Uint16(b[2:])
			p.data = b[4:]
		}
	case tfOpERROR:
		if len(b) >= 4 {
			p.code = binenc.BigEndian.Uint16(b[2:])
			p.msg = string(bytes.TrimRight(b[4:], "\x00"))
		}
	case tfOpOACK:
		p.opts = map[string]string{}
		f := bytes.Split(bytes.TrimSuffix(b[2:], []byte{0}), []byte{0})
		for i := 0; i+1 < len(f); i += 2 {
			p.opts[strings.ToLower(string(f[i]))] = string(f[i+1])
		}
	}
	return p
}

// Packet builders. Names and options go on the wire exactly as given, NULs
// and all.
func tfRequest(op uint16, name, mode string, opts ...string) []byte {
	b := binenc.BigEndian.AppendUint16(nil, op)
	for _, f := range append([]string{name, mode}, opts...) {
		b = append(b, f...)
		b = append(b, 0)
	}
	return b
}

func tfRRQ(name, mode string, opts ...string) []byte { return tfRequest(tfOpRRQ, name, mode, opts...) }

func tfACK(block uint16) []byte {
	return binenc.BigEndian.AppendUint16(binenc.BigEndian.AppendUint16(nil, tfOpACK), block)
}

func tfError(code uint16, msg string) []byte {
	b := binenc.BigEndian.AppendUint16(binenc.BigEndian.AppendUint16(nil, tfOpERROR), code)
	return append(append(b, msg...), 0)
}

// tfClient is a raw TFTP client on its own loopback socket.
type tfClient struct {
	t    testing.TB
	conn *net.UDPConn
	got  [][]byte // everything received, for the secret check
}

func newTFClient(t testing.TB) *tfClient {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &tfClient{t: t, conn: conn}
}

func (c *tfClient) port() int { return c.conn.LocalAddr().(*net.UDPAddr).Port }

func (c *tfClient) send(to string, b []byte) {
	c.t.Helper()
	addr, err := net.ResolveUDPAddr("udp4", to)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendAddr(addr, b)
}

func (c *tfClient) sendAddr(to *net.UDPAddr, b []byte) {
	c.t.Helper()
	if _, err := c.conn.WriteToUDP(b, to); err != nil {
		c.t.Fatalf("send to %s: %v", to, err)
	}
}

// recv waits up to d for one packet.
func (c *tfClient) recv(d time.Duration) (tfPkt, bool) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 70000)
	n, from, err := c.conn.ReadFromUDP(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return tfPkt{}, false
		}
		c.t.Fatalf("recv: %v", err)
	}
	c.got = append(c.got, buf[:n])
	return tfParse(buf[:n], from), true
}

// mustRecv waits up to d for one packet or fails.
func (c *tfClient) mustRecv(d time.Duration, what string) tfPkt {
	c.t.Helper()
	p, ok := c.recv(d)
	if !ok {
		c.t.Fatalf("no packet within %s, waiting for %s", d, what)
	}
	return p
}

// tfFetch is a completed raw download.
type tfFetch struct {
	data    []byte
	oack    map[string]string // nil: the server answered with DATA 1
	maxData int               // largest DATA payload seen
	tid     *net.UDPAddr
}

// fetch downloads name with RFC 7440 receiver rules: ACK every window-th
// block and the last one; on a gap, ACK the last block received in order.
// hook, if set, runs after each new DATA block is taken, before any ACK.
func (c *tfClient) fetch(server, name, mode string, hook func(block uint16, tid *net.UDPAddr), opts ...string) (tfFetch, error) {
	c.t.Helper()
	c.send(server, tfRRQ(name, mode, opts...))
	res := tfFetch{}
	blksize, window := 512, 1
	p, ok := c.recv(3 * time.Second)
	if !ok {
		return res, errors.New("no answer to the RRQ")
	}
	res.tid = p.from
	switch p.op {
	case tfOpOACK:
		res.oack = p.opts
		if v, ok := p.opts["blksize"]; ok {
			blksize, _ = strconv.Atoi(v)
		}
		if v, ok := p.opts["windowsize"]; ok {
			window, _ = strconv.Atoi(v)
		}
		c.sendAddr(res.tid, tfACK(0))
		if p, ok = c.recv(3 * time.Second); !ok {
			return res, errors.New("no DATA after ACK 0")
		}
	case tfOpERROR:
		return res, fmt.Errorf("server: %s", p)
	}
	var next uint64 = 1
	inWindow := 0
	for {
		if p.from.String() != res.tid.String() {
			return res, fmt.Errorf("packet from %s, transfer is with %s: %s", p.from, res.tid, p)
		}
		if p.op != tfOpDATA {
			return res, fmt.Errorf("want DATA %d, got %s", uint16(next), p)
		}
		res.maxData = max(res.maxData, len(p.data))
		if len(p.data) > blksize {
			return res, fmt.Errorf("DATA %d carries %d bytes, over the blksize %d", p.block, len(p.data), blksize)
		}
		if p.block == uint16(next) {
			res.data = append(res.data, p.data...)
			if hook != nil {
				hook(p.block, res.tid)
			}
			next++
			inWindow++
			if len(p.data) < blksize {
				c.sendAddr(res.tid, tfACK(p.block))
				return res, nil
			}
			if inWindow == window {
				c.sendAddr(res.tid, tfACK(p.block))
				inWindow = 0
			}
		} else {
			// A gap or a duplicate: ACK the last block taken in order.
			c.sendAddr(res.tid, tfACK(uint16(next-1)))
			inWindow = 0
		}
		if len(res.data) > 64<<20 {
			return res, errors.New("more than 64 MiB: the server does not stop")
		}
		if p, ok = c.recv(3 * time.Second); !ok {
			return res, fmt.Errorf("no DATA %d within 3 s", uint16(next))
		}
	}
}

// mustFetch downloads name and compares it with want.
func (c *tfClient) mustFetch(server, name string, want []byte, opts ...string) tfFetch {
	c.t.Helper()
	res, err := c.fetch(server, name, "octet", nil, opts...)
	if err != nil {
		c.t.Fatalf("fetch %q %q: %v", name, opts, err)
	}
	if !bytes.Equal(res.data, want) {
		c.t.Fatalf("fetch %q: got %d bytes (sha256 %s), want %d (sha256 %s)", name,
			len(res.data), tfSHA(res.data), len(want), tfSHA(want))
	}
	return res
}

// lockstep finishes a transfer without options, given its first DATA, and
// returns the whole content.
func (c *tfClient) lockstep(p tfPkt) []byte {
	c.t.Helper()
	got := append([]byte{}, p.data...)
	tid := p.from
	for {
		c.sendAddr(tid, tfACK(p.block))
		if len(p.data) < 512 {
			return got
		}
		want := p.block + 1
		p = c.mustRecv(3*time.Second, fmt.Sprintf("DATA %d", want))
		if p.op != tfOpDATA || p.block != want || p.from.String() != tid.String() {
			c.t.Fatalf("want DATA %d from %s, got %s", want, tid, p)
		}
		got = append(got, p.data...)
	}
}

// expectSilence asserts that nothing at all arrives within d.
func (c *tfClient) expectSilence(d time.Duration, what string) {
	c.t.Helper()
	if p, ok := c.recv(d); ok {
		c.t.Fatalf("%s: want no answer at all, got %s", what, p)
	}
}

// tfRandom returns n random bytes.
func tfRandom(t testing.TB, n int) []byte {
	t.Helper()
	dir := t.TempDir()
	return tfRead(t, tfWriteRandom(t, dir, "r", n).path)
}

func tfRead(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tfLab is a root with a secret beside it and traps inside it.
type tfLab struct {
	root    string
	secret  []byte // the content of secret.txt, outside the root
	payload []byte // pub.bin, a normal 3000-byte file in the root
}

func newTFLab(t *testing.T) tfLab {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{root, outside, filepath.Join(root, "sub", "deeper")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lab := tfLab{root: root}
	lab.secret = []byte("BOOTFORGE-SECRET-" + tfSHA(tfRandom(t, 32)) + "\n")
	for _, p := range []string{filepath.Join(base, "secret.txt"), filepath.Join(outside, "secret.txt")} {
		if err := os.WriteFile(p, lab.secret, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lab.payload = tfRandom(t, 3000)
	tfWriteFile(t, root, "pub.bin", lab.payload)
	tfWriteFile(t, root, "sub/inner.txt", []byte("inner\n"))
	links := map[string]string{
		"escape-rel":           "../secret.txt",
		"escape-abs":           filepath.Join(base, "secret.txt"),
		"escape-dir":           outside,
		"escape-dir-rel":       "../outside",
		"escape-passwd":        "/etc/passwd",
		"escape-dangling":      "/nonexistent-bootforge/secret",
		"escape-devnull":       "/dev/null",
		"sub/escape-deep":      "../../secret.txt",
		"sub/deeper/escape-up": "../../../outside/secret.txt",
		"chain-1":              "chain-2", // inside the root, on to escape-abs
		"chain-2":              "escape-abs",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A character device (1,3 is /dev/null) inside the root: not a regular file.
	if err := syscall.Mknod(filepath.Join(root, "chardev"), syscall.S_IFCHR|0o644, 1<<8|3); err != nil {
		t.Fatal(err)
	}
	return lab
}

// tftpConfig is the config used by the hostile tests. The explicit timeout
// keeps the no-resend windows below well clear of a legitimate retransmit.
const tftpConfig = "tftp:\n  timeout: 2s\n"

// TestTFTPHostileNames sends names that try to leave the root, or name
// something that is not a regular file. Each must be answered with an ERROR
// (1 or 2, as stated per case), never with DATA, the secret outside the root
// must never arrive, and the server must log each refusal with the client's
// address.
func TestTFTPHostileNames(t *testing.T) {
	lab := newTFLab(t)
	s := StartServer(t, ServerOptions{Root: lab.root, Config: tftpConfig})
	passwd, _ := os.ReadFile("/etc/passwd")

	const (
		notFound = 1
		denied   = 2
	)
	long := strings.Repeat("A", 1000)
	cases := []struct {
		label string
		name  string
		mode  string // default octet
		code  uint16
	}{
		// Traversal.
		{"dotdot-passwd", "../etc/passwd", "", denied},
		{"dotdot-secret", "../secret.txt", "", denied},
		{"dotdot-deep", "../../../../../../../../etc/passwd", "", denied},
		{"inner-dotdot", "a/../../x", "", denied},
		{"sub-dotdot-secret", "sub/../../secret.txt", "", denied},
		{"dot-dotdot", "./../secret.txt", "", denied},
		{"sub-dot-dotdot", "sub/./../../secret.txt", "", denied},
		{"dotdot-alone", "..", "", denied},
		{"dotdot-slash", "../", "", denied},
		{"dotdot-outside-dir", "../outside/secret.txt", "", denied},
		{"dotdot-netascii", "../secret.txt", "netascii", denied},
		{"dotdot-mode-upper", "../secret.txt", "OcTeT", denied},
		{"four-dots", "....//", "", notFound},
		{"four-dots-passwd", "....//....//etc/passwd", "", notFound},
		{"three-dots", "...", "", notFound},
		{"url-encoded", "%2e%2e/%2e%2e/etc/passwd", "", notFound},
		{"url-encoded-slash", "%2e%2e%2fsecret.txt", "", notFound},
		{"overlong-utf8", "..\xc0\xafsecret.txt", "", notFound},
		// Absolute paths map into the root.
		{"abs-passwd", "/etc/passwd", "", notFound},
		{"abs-double-slash", "//etc//passwd", "", notFound},
		{"abs-dotdot", "/../secret.txt", "", denied},
		{"abs-proc", "/proc/self/environ", "", notFound},
		// Backslashes are separators.
		{"backslash-passwd", `..\..\etc\passwd`, "", denied},
		{"backslash-secret", `..\secret.txt`, "", denied},
		{"backslash-sub", `sub\..\..\secret.txt`, "", denied},
		{"backslash-abs", `\etc\passwd`, "", notFound},
		{"backslash-unc", `\\server\share\secret.txt`, "", notFound},
		{"backslash-drive", `C:\..\secret.txt`, "", denied},
		// Symlinks out of the root.
		{"symlink-relative", "escape-rel", "", denied},
		{"symlink-absolute", "escape-abs", "", denied},
		{"symlink-dir", "escape-dir/secret.txt", "", denied},
		{"symlink-dir-relative", "escape-dir-rel/secret.txt", "", denied},
		{"symlink-passwd", "escape-passwd", "", denied},
		{"symlink-dangling", "escape-dangling", "", denied},
		{"symlink-devnull", "escape-devnull", "", denied},
		{"symlink-in-subdir", "sub/escape-deep", "", denied},
		{"symlink-deeper", "sub/deeper/escape-up", "", denied},
		{"symlink-chain", "chain-1", "", denied},
		{"symlink-backslash", `escape-dir\secret.txt`, "", denied},
		// Not regular files.
		{"directory", "sub", "", denied},
		{"directory-slash", "sub/", "", denied},
		{"directory-deeper", "sub/deeper", "", denied},
		{"root-slash", "/", "", notFound},
		{"root-dot", ".", "", notFound},
		{"fifo", "fifo", "", denied},
		{"chardev", "chardev", "", denied},
		{"empty-name", "", "", denied},
		// Control characters.
		{"ctl-soh", "pub\x01.bin", "", denied},
		{"ctl-newline", "pub.bin\n", "", denied},
		{"ctl-cr", "pub\r.bin", "", denied},
		{"ctl-tab", "pub\t.bin", "", denied},
		{"ctl-escape", "\x1b[31mpub.bin", "", denied},
		{"ctl-del", "pub.bin\x7f", "", denied},
		{"ctl-log-injection", "x\nlevel=INFO msg=\"tftp transfer\" result=ok", "", denied},
		// Over-long names.
		{"long-1000", long, "", denied},
		{"long-256", strings.Repeat("b", 256), "", denied},
		{"long-traversal", strings.Repeat("../", 333) + "etc/passwd", "", denied},
		{"long-255-absent", strings.Repeat("c", 255), "", notFound},
		// A NUL inside the name ends the name on the wire: the server sees
		// "../secret.txt", mode "octet", and an option "x" = "octet".
		{"nul-in-name", "../secret.txt\x00octet\x00x", "", denied},
		{"nul-in-name-symlink", "escape-abs\x00octet\x00pub.bin", "", denied},
	}
	if n := len(cases); n < 30 {
		t.Fatalf("only %d hostile names", n)
	}

	// Send in batches of 6 (the default per-client cap is 16 concurrent
	// transfers, and a refusal is one), each from its own socket so that its
	// log line can be found by port; check the answers, then check once that
	// nothing at all followed any ERROR.
	clients := make([]*tfClient, len(cases))
	answers := make([]tfPkt, len(cases))
	for start := 0; start < len(cases); start += 6 {
		end := min(start+6, len(cases))
		for i := start; i < end; i++ {
			mode := cases[i].mode
			if mode == "" {
				mode = "octet"
			}
			clients[i] = newTFClient(t)
			clients[i].send(s.TFTPAddr, tfRRQ(cases[i].name, mode))
		}
		for i := start; i < end; i++ {
			if p, ok := clients[i].recv(3 * time.Second); ok {
				answers[i] = p
			}
		}
	}
	time.Sleep(200 * time.Millisecond)
	t.Run("names", func(t *testing.T) {
		for i, c := range cases {
			t.Run(c.label, func(t *testing.T) {
				cl, p := clients[i], answers[i]
				if p.op != tfOpERROR {
					t.Fatalf("RRQ %q: want ERROR %d, got %s", c.name, c.code, p)
				}
				if p.code != c.code {
					t.Errorf("RRQ %q: want ERROR %d, got %s", c.name, c.code, p)
				}
				// The transfer is over: nothing may follow the ERROR.
				if p, ok := cl.recv(time.Millisecond); ok {
					t.Fatalf("RRQ %q: packet after the ERROR: %s", c.name, p)
				}
				for _, b := range cl.got {
					if bytes.Contains(b, lab.secret[:40]) {
						t.Fatalf("RRQ %q: the secret outside the root arrived", c.name)
					}
					if len(passwd) > 20 && bytes.Contains(b, passwd[:20]) {
						t.Fatalf("RRQ %q: /etc/passwd arrived", c.name)
					}
				}
				// A path that breaks a rule is refused; one that is merely
				// missing (an absolute path maps into the root) is not found.
				// Both are logged with the client's address.
				want := `msg="tftp: refused"`
				if c.code == 1 {
					want = `msg="tftp: not found"`
				}
				tfWaitLine(t, s, 3*time.Second, want, fmt.Sprintf(" client=127.0.0.1:%d ", cl.port()))
			})
		}
	})

	// A NUL that leaves an odd number of fields makes a malformed request:
	// dropped without an answer. Either way, never DATA and never the secret.
	t.Run("nul-malformed", func(t *testing.T) {
		names := []string{"pub.bin\x00../secret.txt", "escape-abs\x00/../x", "\x00../secret.txt"}
		var cls []*tfClient
		for _, name := range names {
			cl := newTFClient(t)
			cl.send(s.TFTPAddr, tfRRQ(name, "octet"))
			cls = append(cls, cl)
		}
		time.Sleep(300 * time.Millisecond)
		for i, name := range names {
			cl := cls[i]
			if p, ok := cl.recv(time.Millisecond); ok && p.op != tfOpERROR {
				t.Fatalf("RRQ %q: want no answer or an ERROR, got %s", name, p)
			}
			for _, b := range cl.got {
				if bytes.Contains(b, lab.secret[:40]) {
					t.Fatalf("RRQ %q: the secret arrived", name)
				}
			}
		}
	})

	// A NUL that cuts a good name short serves the name before the NUL (the
	// server never sees the rest): pub.bin, not the secret.
	t.Run("nul-truncated-name-serves-prefix", func(t *testing.T) {
		cl := newTFClient(t)
		cl.mustFetch(s.TFTPAddr, "pub.bin\x00octet\x00../secret.txt", lab.payload)
	})

	// The positive side of the path rules: a leading '/' or '\' and '\'
	// separators name files inside the root.
	t.Run("root-relative-names-still-work", func(t *testing.T) {
		for _, name := range []string{"pub.bin", "/pub.bin", `\pub.bin`, "//pub.bin", "./pub.bin"} {
			newTFClient(t).mustFetch(s.TFTPAddr, name, lab.payload)
		}
		newTFClient(t).mustFetch(s.TFTPAddr, `sub\inner.txt`, []byte("inner\n"))
		newTFClient(t).mustFetch(s.TFTPAddr, `/sub/inner.txt`, []byte("inner\n"))
	})

	if _, exited := s.Exited(0); exited {
		t.Fatalf("server exited:\n%s", s.Log())
	}
	if strings.Contains(s.Log(), string(lab.secret[:40])) {
		t.Fatal("the secret appears in the server log")
	}
}

// TestTFTPHostilePackets covers everything that is not a name: writes,
// malformed packets, option floods and bounds, Sorcerer's Apprentice and
// wrong TIDs. A normal download must work after each.
func TestTFTPHostilePackets(t *testing.T) {
	lab := newTFLab(t)
	s := StartServer(t, ServerOptions{Root: lab.root, Config: tftpConfig})
	big := tfRandom(t, 200_000)
	tfWriteFile(t, lab.root, "big.bin", big)
	mid := tfRandom(t, 20_000)
	tfWriteFile(t, lab.root, "mid.bin", mid)
	stillServes := func(t *testing.T) {
		t.Helper()
		newTFClient(t).mustFetch(s.TFTPAddr, "pub.bin", lab.payload)
		if _, exited := s.Exited(0); exited {
			t.Fatalf("server exited:\n%s", s.Log())
		}
	}

	t.Run("wrq-refused", func(t *testing.T) {
		for _, name := range []string{"pub.bin", "new-file.bin", "../outside/new.bin"} {
			cl := newTFClient(t)
			cl.send(s.TFTPAddr, tfRequest(tfOpWRQ, name, "octet"))
			p := cl.mustRecv(3*time.Second, "ERROR 2")
			if p.op != tfOpERROR || p.code != 2 {
				t.Fatalf("WRQ %q: want ERROR 2, got %s", name, p)
			}
			// Send DATA 1 anyway, as a client that ignores the error would.
			data := append(binenc.BigEndian.AppendUint16(binenc.BigEndian.AppendUint16(nil, tfOpDATA), 1), "overwritten"...)
			cl.sendAddr(p.from, data)
			tfWaitLine(t, s, 3*time.Second, `msg="tftp: refused"`, fmt.Sprintf(" client=127.0.0.1:%d ", cl.port()))
		}
		time.Sleep(100 * time.Millisecond)
		if got := tfRead(t, filepath.Join(lab.root, "pub.bin")); !bytes.Equal(got, lab.payload) {
			t.Fatal("pub.bin changed after a WRQ")
		}
		for _, p := range []string{filepath.Join(lab.root, "new-file.bin"), filepath.Join(filepath.Dir(lab.root), "outside", "new.bin")} {
			if _, err := os.Stat(p); err == nil {
				t.Fatalf("a WRQ created %s", p)
			}
		}
		stillServes(t)
	})

	t.Run("no-answer-to-malformed", func(t *testing.T) {
		garbage := tfRandom(t, 700)
		garbage[0], garbage[1] = 0x7f, 0x42 // not a TFTP opcode
		data := func(block uint16, payload string) []byte {
			return append(binenc.BigEndian.AppendUint16(binenc.BigEndian.AppendUint16(nil, tfOpDATA), block), payload...)
		}
		probes := []struct {
			label string
			b     []byte
		}{
			{"empty", []byte{}},
			{"1-byte", []byte{0}},
			{"2-byte-rrq-opcode", []byte{0, 1}},
			{"3-byte", []byte{0, 1, 'a'}},
			{"rrq-no-nul", []byte("\x00\x01pub.bin")},
			{"rrq-mode-no-nul", []byte("\x00\x01pub.bin\x00octet")},
			{"rrq-option-no-nul", []byte("\x00\x01pub.bin\x00octet\x00blksize\x001468")},
			{"rrq-no-mode", []byte("\x00\x01pub.bin\x00")},
			{"garbage", garbage},
			{"data-to-port", data(1, "hello")},
			{"ack-to-port", tfACK(1)},
			{"ack0-to-port", tfACK(0)},
			{"error-to-port", tfError(0, "boom")},
			{"oack-to-port", []byte("\x00\x06blksize\x00512\x00")},
			{"opcode-0", []byte("\x00\x00pub.bin\x00octet\x00")},
			{"opcode-7", []byte("\x00\x07pub.bin\x00octet\x00")},
			{"opcode-ffff", []byte("\xff\xffpub.bin\x00octet\x00")},
		}
		var clients []*tfClient
		for _, p := range probes {
			cl := newTFClient(t)
			cl.send(s.TFTPAddr, p.b)
			clients = append(clients, cl)
		}
		time.Sleep(300 * time.Millisecond)
		for i, cl := range clients {
			cl.expectSilence(10*time.Millisecond, probes[i].label)
		}
		stillServes(t)
	})

	t.Run("option-flood", func(t *testing.T) {
		flood := func(n int, name func(i int) string) []string {
			var o []string
			for i := range n {
				o = append(o, name(i), "1")
			}
			return o
		}
		floods := map[string][]string{
			"33-options":          flood(33, func(i int) string { return fmt.Sprintf("x%d", i) }),
			"256-options":         flood(256, func(i int) string { return fmt.Sprintf("opt%d", i) }),
			"300-blksize-repeats": flood(300, func(int) string { return "blksize" }),
			"1000-options":        flood(1000, func(i int) string { return fmt.Sprintf("o%d", i) }),
		}
		sent := map[string]*tfClient{}
		for label, opts := range floods {
			cl := newTFClient(t)
			cl.send(s.TFTPAddr, tfRRQ("pub.bin", "octet", opts...))
			sent[label] = cl
		}
		time.Sleep(300 * time.Millisecond)
		for label, cl := range sent {
			if p, ok := cl.recv(time.Millisecond); ok && p.op != tfOpERROR {
				t.Fatalf("%s: want no answer (or an ERROR), got %s", label, p)
			}
		}
		stillServes(t)
	})

	t.Run("option-bounds", func(t *testing.T) {
		cases := []struct {
			label string
			opts  []string
			check func(t *testing.T, r tfFetch)
			big   bool // fetch big.bin (200,000 B) instead of mid.bin (20,000 B)
		}{
			{"blksize-0", []string{"blksize", "0"}, tfPlainDATA512, false},
			{"blksize-7", []string{"blksize", "7"}, tfPlainDATA512, false},
			{"blksize-negative", []string{"blksize", "-1"}, tfPlainDATA512, false},
			{"blksize-not-a-number", []string{"blksize", "abc"}, tfPlainDATA512, false},
			{"blksize-huge-number", []string{"blksize", "99999999999999999999"}, tfPlainDATA512, false},
			{"blksize-0-with-tsize", []string{"blksize", "0", "tsize", "0"}, func(t *testing.T, r tfFetch) {
				if _, ok := r.oack["blksize"]; ok || r.oack["tsize"] != "20000" {
					t.Fatalf("want OACK with tsize 20000 and no blksize, got %v", r.oack)
				}
				if r.maxData != 512 {
					t.Fatalf("DATA payloads up to %d bytes, want 512", r.maxData)
				}
			}, false},
			{"blksize-8", []string{"blksize", "8"}, tfOACKBlksize(8), false},
			{"blksize-70000", []string{"blksize", "70000"}, func(t *testing.T, r tfFetch) {
				v, ok := r.oack["blksize"]
				n, err := strconv.Atoi(v)
				if !ok || err != nil || n > 65464 || n < 512 {
					t.Fatalf("blksize 70000: want OACK blksize clamped to at most 65464, got %v", r.oack)
				}
				if r.maxData > n {
					t.Fatalf("DATA of %d bytes above the OACK's blksize %d", r.maxData, n)
				}
				if r.maxData != n {
					t.Fatalf("a 200,000-byte file at blksize %d: want full DATA of %d bytes, got at most %d", n, n, r.maxData)
				}
			}, true},
			{"timeout-0", []string{"timeout", "0", "blksize", "1024"}, tfNoOption("timeout"), false},
			{"timeout-256", []string{"timeout", "256", "blksize", "1024"}, tfNoOption("timeout"), false},
			{"timeout-1", []string{"timeout", "1"}, func(t *testing.T, r tfFetch) {
				if r.oack["timeout"] != "1" {
					t.Fatalf("timeout 1 is valid, want it in the OACK, got %v", r.oack)
				}
			}, false},
			{"windowsize-0", []string{"windowsize", "0", "blksize", "1024"}, tfNoOption("windowsize"), false},
			{"windowsize-70000", []string{"windowsize", "70000", "blksize", "1024"}, tfNoOption("windowsize"), false},
			{"unknown-option", []string{"evil", "1", "blksize", "1024"}, tfNoOption("evil"), false},
			// A last name without a value is ignored, as by tftpd-hpa and
			// dnsmasq; the request is served with the options before it.
			{"option-without-value", []string{"blksize", "1024", "windowsize"}, tfNoOption("windowsize"), false},
		}
		for _, c := range cases {
			t.Run(c.label, func(t *testing.T) {
				t.Parallel()
				name, want := "mid.bin", mid
				if c.big {
					name, want = "big.bin", big
				}
				r := newTFClient(t).mustFetch(s.TFTPAddr, name, want, c.opts...)
				c.check(t, r)
			})
		}
	})

	// Sorcerer's Apprentice: a duplicate ACK must not cause a resend. The
	// server's timeout is 2 s, so anything within 500 ms is the duplicate's
	// doing.
	t.Run("duplicate-ack-no-resend", func(t *testing.T) {
		cl := newTFClient(t)
		cl.send(s.TFTPAddr, tfRRQ("big.bin", "octet"))
		p := cl.mustRecv(3*time.Second, "DATA 1")
		if p.op != tfOpDATA || p.block != 1 || len(p.data) != 512 {
			t.Fatalf("want DATA 1 of 512 bytes, got %s", p)
		}
		tid := p.from
		got := append([]byte{}, p.data...)
		cl.sendAddr(tid, tfACK(1))
		cl.sendAddr(tid, tfACK(1))
		p = cl.mustRecv(time.Second, "DATA 2")
		if p.op != tfOpDATA || p.block != 2 {
			t.Fatalf("want DATA 2, got %s", p)
		}
		if p2, ok := cl.recv(500 * time.Millisecond); ok {
			t.Fatalf("after a duplicate ACK 1: want exactly one DATA 2, then got %s", p2)
		}
		// Again for a few blocks, with an old ACK thrown in.
		for b := uint16(2); b <= 5; b++ {
			got = append(got, p.data...)
			cl.sendAddr(tid, tfACK(b))
			cl.sendAddr(tid, tfACK(b))
			cl.sendAddr(tid, tfACK(b-1))
			p = cl.mustRecv(time.Second, fmt.Sprintf("DATA %d", b+1))
			if p.op != tfOpDATA || p.block != b+1 {
				t.Fatalf("want DATA %d, got %s", b+1, p)
			}
		}
		if p2, ok := cl.recv(500 * time.Millisecond); ok {
			t.Fatalf("after duplicate ACKs 5: want exactly one DATA 6, then got %s", p2)
		}
		got = append(got, cl.lockstep(p)...)
		if tfSHA(got) != tfSHA(big) {
			t.Fatalf("transfer with duplicate ACKs: got %d bytes, SHA-256 mismatch", len(got))
		}
		tfWaitLine(t, s, 3*time.Second, `msg="tftp transfer"`, fmt.Sprintf(" client=127.0.0.1:%d ", cl.port()), "result=ok")
	})

	// The same with windowsize 4: a repeated ACK of a whole window brings
	// exactly one next window.
	t.Run("duplicate-ack-no-resend-window", func(t *testing.T) {
		cl := newTFClient(t)
		cl.send(s.TFTPAddr, tfRRQ("big.bin", "octet", "windowsize", "4"))
		p := cl.mustRecv(3*time.Second, "OACK")
		if p.op != tfOpOACK || p.opts["windowsize"] != "4" {
			t.Fatalf("want OACK windowsize 4, got %s", p)
		}
		tid := p.from
		cl.sendAddr(tid, tfACK(0))
		cl.sendAddr(tid, tfACK(0))
		var got []byte
		for w := uint16(0); w < 3; w++ {
			for i := uint16(1); i <= 4; i++ {
				want := 4*w + i
				p := cl.mustRecv(time.Second, fmt.Sprintf("DATA %d", want))
				if p.op != tfOpDATA || p.block != want {
					t.Fatalf("want DATA %d, got %s", want, p)
				}
				got = append(got, p.data...)
			}
			if p, ok := cl.recv(500 * time.Millisecond); ok {
				t.Fatalf("window %d (after duplicate ACKs): want exactly 4 DATA, then got %s", w+1, p)
			}
			cl.sendAddr(tid, tfACK(4*w+4))
			cl.sendAddr(tid, tfACK(4*w+4))
		}
		// Take the rest with the normal receiver.
		for {
			p := cl.mustRecv(3*time.Second, "DATA")
			if p.op != tfOpDATA {
				t.Fatalf("want DATA, got %s", p)
			}
			if int(p.block) != len(got)/512+1 {
				t.Fatalf("want DATA %d, got %s", len(got)/512+1, p)
			}
			got = append(got, p.data...)
			if len(p.data) < 512 {
				cl.sendAddr(tid, tfACK(p.block))
				break
			}
			if p.block%4 == 0 {
				cl.sendAddr(tid, tfACK(p.block))
			}
		}
		if tfSHA(got) != tfSHA(big) {
			t.Fatalf("windowed transfer with duplicate ACKs: got %d bytes, SHA-256 mismatch", len(got))
		}
	})

	t.Run("wrong-tid", func(t *testing.T) {
		cl := newTFClient(t)
		intruder := newTFClient(t)
		var intruderGot []tfPkt
		res, err := cl.fetch(s.TFTPAddr, "big.bin", "octet", func(block uint16, tid *net.UDPAddr) {
			if block != 1 && block != 100 {
				return
			}
			intruder.sendAddr(tid, tfACK(block))
			p := intruder.mustRecv(2*time.Second, "ERROR 5")
			intruderGot = append(intruderGot, p)
			if p.op != tfOpERROR || p.code != 5 {
				t.Errorf("ACK %d from a stranger to the transfer's port: want ERROR 5, got %s", block, p)
			}
			if p.from.String() != tid.String() {
				t.Errorf("ERROR 5 came from %s, not the transfer's port %s", p.from, tid)
			}
		})
		if err != nil {
			t.Fatalf("the transfer did not survive a wrong TID: %v", err)
		}
		if len(intruderGot) != 2 {
			t.Fatalf("intruder got %d answers, want 2", len(intruderGot))
		}
		if tfSHA(res.data) != tfSHA(big) {
			t.Fatalf("transfer with a wrong TID: got %d bytes, SHA-256 mismatch", len(res.data))
		}
		intruder.expectSilence(200*time.Millisecond, "intruder after ERROR 5")
		tfWaitLine(t, s, 3*time.Second, `msg="tftp transfer"`, fmt.Sprintf(" client=127.0.0.1:%d ", cl.port()), "result=ok")
	})

	stillServes(t)
}

func tfPlainDATA512(t *testing.T, r tfFetch) {
	t.Helper()
	if r.oack != nil {
		t.Fatalf("want no OACK (the option must be ignored), got %v", r.oack)
	}
	if r.maxData != 512 {
		t.Fatalf("DATA payloads up to %d bytes, want 512", r.maxData)
	}
}

func tfOACKBlksize(n int) func(t *testing.T, r tfFetch) {
	return func(t *testing.T, r tfFetch) {
		t.Helper()
		if r.oack["blksize"] != strconv.Itoa(n) || r.maxData != n {
			t.Fatalf("want OACK blksize %d and DATA of %d bytes, got %v and %d", n, n, r.oack, r.maxData)
		}
	}
}

func tfNoOption(name string) func(t *testing.T, r tfFetch) {
	return func(t *testing.T, r tfFetch) {
		t.Helper()
		if _, ok := r.oack[name]; ok {
			t.Fatalf("out-of-range %s must be left out of the OACK, got %v", name, r.oack)
		}
		if r.oack["blksize"] != "1024" || r.maxData != 1024 {
			t.Fatalf("the valid blksize 1024 beside it must still apply, got %v, DATA up to %d", r.oack, r.maxData)
		}
	}
}

// TestTFTPRetransmitOnTimeout: a client that does not ACK gets the same
// block again after the timeout, and the transfer then completes. With a
// window, the whole window is resent, and in netascii mode the resent blocks
// must be byte for byte the ones sent first.
func TestTFTPRetransmitOnTimeout(t *testing.T) {
	root := t.TempDir()
	payload := tfRandom(t, 5000)
	tfWriteFile(t, root, "pub.bin", payload)
	var text bytes.Buffer
	for i := 0; text.Len() < 20_000; i++ {
		fmt.Fprintf(&text, "line %d %s", i, strings.Repeat("x", i%37))
		text.WriteString([]string{"\n", "\r", "\r\n"}[i%3])
	}
	tfWriteFile(t, root, "text.txt", text.Bytes())
	s := StartServer(t, ServerOptions{Root: root, Config: "tftp:\n  timeout: 200ms\n"})

	t.Run("lockstep", func(t *testing.T) {
		cl := newTFClient(t)
		cl.send(s.TFTPAddr, tfRRQ("pub.bin", "octet"))
		p := cl.mustRecv(3*time.Second, "DATA 1")
		if p.op != tfOpDATA || p.block != 1 {
			t.Fatalf("want DATA 1, got %s", p)
		}
		first, tid := append([]byte{}, p.data...), p.from
		start := time.Now()
		p = cl.mustRecv(2*time.Second, "DATA 1 again")
		waited := time.Since(start)
		if p.op != tfOpDATA || p.block != 1 || !bytes.Equal(p.data, first) || p.from.String() != tid.String() {
			t.Fatalf("want DATA 1 again from %s, got %s", tid, p)
		}
		if waited < 150*time.Millisecond {
			t.Fatalf("DATA 1 resent after %s, before the 200ms timeout", waited)
		}
		got := cl.lockstep(p)
		if !bytes.Equal(got, payload) {
			t.Fatalf("after a retransmit: got %d bytes, want the %d-byte file", len(got), len(payload))
		}
	})

	for _, mode := range []string{"octet", "netascii"} {
		t.Run("window-"+mode, func(t *testing.T) {
			name, want := "pub.bin", payload
			if mode == "netascii" {
				name, want = "text.txt", text.Bytes()
			}
			cl := newTFClient(t)
			cl.send(s.TFTPAddr, tfRRQ(name, mode, "windowsize", "4"))
			p := cl.mustRecv(3*time.Second, "OACK")
			if p.op != tfOpOACK || p.opts["windowsize"] != "4" {
				t.Fatalf("want OACK windowsize 4, got %s", p)
			}
			tid := p.from
			cl.sendAddr(tid, tfACK(0))
			var wire []byte // the DATA payloads in order
			next := uint16(1)
			first := map[uint16][]byte{}
			for window := 0; ; window++ {
				// Receive one window of 4; the first time, do not ACK it and
				// check the whole window comes again, unchanged.
				var blocks []tfPkt
				for len(blocks) < 4 {
					p := cl.mustRecv(2*time.Second, fmt.Sprintf("DATA %d", next+uint16(len(blocks))))
					if p.op != tfOpDATA || p.block != next+uint16(len(blocks)) {
						t.Fatalf("want DATA %d, got %s", next+uint16(len(blocks)), p)
					}
					blocks = append(blocks, p)
					if len(p.data) < 512 {
						break
					}
				}
				if window == 1 || window == 3 {
					for _, b := range blocks {
						first[b.block] = append([]byte{}, b.data...)
					}
					start := time.Now()
					for i := range blocks {
						p := cl.mustRecv(2*time.Second, "the window again")
						if p.op != tfOpDATA || p.block != blocks[i].block || !bytes.Equal(p.data, first[p.block]) {
							t.Fatalf("want DATA %d resent unchanged, got %s", blocks[i].block, p)
						}
					}
					if w := time.Since(start); w < 150*time.Millisecond {
						t.Fatalf("window resent after %s, before the 200ms timeout", w)
					}
				}
				for _, b := range blocks {
					wire = append(wire, b.data...)
				}
				last := blocks[len(blocks)-1]
				cl.sendAddr(tid, tfACK(last.block))
				if len(last.data) < 512 {
					break
				}
				next = last.block + 1
			}
			got := wire
			if mode == "netascii" {
				got = tfFromNetascii(t, wire)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s with retransmitted windows: got %d bytes, want %d", mode, len(got), len(want))
			}
		})
	}
}

// tfFromNetascii undoes RFC 764: CR LF is LF, CR NUL is CR. Anything else
// after a CR is a server bug.
func tfFromNetascii(t *testing.T, b []byte) []byte {
	t.Helper()
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] != '\r' {
			if b[i] == '\n' {
				t.Fatalf("netascii: bare LF at wire offset %d", i)
			}
			out = append(out, b[i])
			continue
		}
		if i+1 >= len(b) {
			t.Fatalf("netascii: CR as the last wire byte")
		}
		switch b[i+1] {
		case '\n':
			out = append(out, '\n')
		case 0:
			out = append(out, '\r')
		default:
			t.Fatalf("netascii: CR followed by %#x at wire offset %d", b[i+1], i)
		}
		i++
	}
	return out
}

// TestTFTPPerClientCap: with max_per_client 2, a third transfer from the
// same IP is refused with an ERROR while two run; the two still work, the
// server keeps running, and once a slot is free the third client gets in.
func TestTFTPPerClientCap(t *testing.T) {
	root := t.TempDir()
	payload := tfRandom(t, 3000)
	tfWriteFile(t, root, "pub.bin", payload)
	s := StartServer(t, ServerOptions{Root: root, Config: "tftp:\n  timeout: 2s\n  max_per_client: 2\n"})

	c1, c2, c3 := newTFClient(t), newTFClient(t), newTFClient(t)
	var firsts []tfPkt
	for i, c := range []*tfClient{c1, c2} {
		c.send(s.TFTPAddr, tfRRQ("pub.bin", "octet"))
		p := c.mustRecv(3*time.Second, "DATA 1")
		if p.op != tfOpDATA || p.block != 1 {
			t.Fatalf("transfer %d: want DATA 1, got %s", i+1, p)
		}
		firsts = append(firsts, p)
	}
	c3.send(s.TFTPAddr, tfRRQ("pub.bin", "octet"))
	p := c3.mustRecv(3*time.Second, "an ERROR (busy)")
	if p.op != tfOpERROR {
		t.Fatalf("third transfer from one IP with max_per_client 2: want ERROR, got %s", p)
	}
	t.Logf("third transfer: %s", p)
	c3.expectSilence(300*time.Millisecond, "after the busy ERROR")
	tfWaitLine(t, s, 3*time.Second, `msg="tftp: refused"`, fmt.Sprintf(" client=127.0.0.1:%d ", c3.port()))

	// Transfer 1 finishes normally; transfer 2 is cancelled by its client.
	if got := c1.lockstep(firsts[0]); !bytes.Equal(got, payload) {
		t.Fatalf("transfer 1 under the cap: got %d bytes, want %d", len(got), len(payload))
	}
	c2.sendAddr(firsts[1].from, tfError(0, "cancelled by the test"))
	tfWaitLine(t, s, 3*time.Second, `msg="tftp transfer"`, fmt.Sprintf(" client=127.0.0.1:%d ", c1.port()), "result=ok")
	tfWaitLine(t, s, 3*time.Second, `msg="tftp transfer"`, fmt.Sprintf(" client=127.0.0.1:%d ", c2.port()), "result=failed")

	// Both slots are free again: two transfers at once, the third client's
	// among them.
	c4 := newTFClient(t)
	var again []tfPkt
	for i, c := range []*tfClient{c3, c4} {
		c.send(s.TFTPAddr, tfRRQ("pub.bin", "octet"))
		p := c.mustRecv(3*time.Second, "DATA 1")
		if p.op != tfOpDATA || p.block != 1 {
			t.Fatalf("after the slots freed, transfer %d: want DATA 1, got %s", i+1, p)
		}
		again = append(again, p)
	}
	for i, c := range []*tfClient{c3, c4} {
		if got := c.lockstep(again[i]); !bytes.Equal(got, payload) {
			t.Fatalf("after the slots freed, transfer %d: got %d bytes, want %d", i+1, len(got), len(payload))
		}
	}
	if _, exited := s.Exited(0); exited {
		t.Fatalf("server exited:\n%s", s.Log())
	}
}

// receiveRest runs an RFC 7440 receiver from block next on: it takes blocks
// in order, ACKs every window-th one and the last, and on a gap or a
// duplicate ACKs the last block taken. It returns all the data.
func (c *tfClient) receiveRest(tid *net.UDPAddr, blksize, window int, next uint16, data []byte) ([]byte, error) {
	c.t.Helper()
	inWindow := 0
	for {
		p, ok := c.recv(3 * time.Second)
		if !ok {
			return data, fmt.Errorf("no DATA %d within 3 s", next)
		}
		if p.op != tfOpDATA || p.from.String() != tid.String() {
			return data, fmt.Errorf("want DATA %d from %s, got %s", next, tid, p)
		}
		if p.block != next {
			c.sendAddr(tid, tfACK(next-1))
			inWindow = 0
			continue
		}
		data = append(data, p.data...)
		next++
		inWindow++
		if len(p.data) < blksize {
			c.sendAddr(tid, tfACK(p.block))
			return data, nil
		}
		if inWindow == window {
			c.sendAddr(tid, tfACK(p.block))
			inWindow = 0
		}
	}
}

// TestTFTPLargeWindowRecovery: a window of large blocks (16384 x 8 = 128 KiB,
// the most data the server puts in one window) must recover from a lost window (timeout:
// resend from block 1) and from a receiver that ACKs in the middle of a
// window (RFC 7440: the next window starts after the ACKed block), in octet
// and in netascii mode.
func TestTFTPLargeWindowRecovery(t *testing.T) {
	root := t.TempDir()
	payload := tfRandom(t, 1_500_000)
	tfWriteFile(t, root, "big.bin", payload)
	var text bytes.Buffer
	for i := 0; text.Len() < 1_500_000; i++ {
		fmt.Fprintf(&text, "line %d %s", i, strings.Repeat("y", i%61))
		text.WriteString([]string{"\n", "\r", "\r\n"}[i%3])
	}
	tfWriteFile(t, root, "big.txt", text.Bytes())
	// Three servers, one for each way a transfer waits for ACKs (see
	// internal/tftp/sock_linux.go): on two processors the first transfer
	// waits in raw blocking calls; on one it waits in blocking calls
	// through the scheduler, and with a transfer running there, the next
	// ones wait through the netpoller.
	raw := StartServer(t, ServerOptions{Root: root, Config: "tftp:\n  timeout: 200ms\n", Env: []string{"GOMAXPROCS=2"}})
	blocking := StartServer(t, ServerOptions{Root: root, Config: "tftp:\n  timeout: 200ms\n", Env: []string{"GOMAXPROCS=1"}})
	netpoller := StartServer(t, ServerOptions{Root: root, Config: "tftp:\n  timeout: 200ms\n", Env: []string{"GOMAXPROCS=1"}})
	tfHold(t, netpoller.TFTPAddr, "big.bin")

	for _, wait := range []string{"raw", "blocking", "netpoller"} {
		s := map[string]*Server{"raw": raw, "blocking": blocking, "netpoller": netpoller}[wait]
		for _, mode := range []string{"octet", "netascii"} {
			for _, scenario := range []string{"lost-window", "ack-mid-window"} {
				t.Run(wait+"-"+mode+"-"+scenario, func(t *testing.T) {
					name, want := "big.bin", payload
					if mode == "netascii" {
						name, want = "big.txt", text.Bytes()
					}
					cl := newTFClient(t)
					cl.conn.SetReadBuffer(8 << 20)
					cl.send(s.TFTPAddr, tfRRQ(name, mode, "blksize", "16384", "windowsize", "8"))
					p := cl.mustRecv(3*time.Second, "OACK")
					if p.op != tfOpOACK || p.opts["blksize"] != "16384" || p.opts["windowsize"] != "8" {
						t.Fatalf("want OACK blksize 16384 windowsize 8, got %s", p)
					}
					tid := p.from
					cl.sendAddr(tid, tfACK(0))
					var data []byte
					var next uint16
					switch scenario {
					case "lost-window":
						// ACK nothing; the server must resend from DATA 1.
						seen := 0
						deadline := time.Now().Add(3 * time.Second)
						for seen < 2 {
							p, ok := cl.recv(time.Until(deadline))
							if !ok {
								t.Fatalf("%s: no ACK for the first window, and DATA 1 was not resent within 3 s; server log: %s",
									mode, tfTransferLine(s, cl.port()))
							}
							if p.op != tfOpDATA {
								t.Fatalf("want DATA, got %s", p)
							}
							if p.block == 1 {
								seen++
								if seen == 2 {
									data, next = append([]byte{}, p.data...), 2
								}
							}
						}
					case "ack-mid-window":
						// Take DATA 1 and 2, then ACK 2 as a receiver that saw
						// a gap would: the next window starts at DATA 3.
						for b := uint16(1); b <= 2; b++ {
							p := cl.mustRecv(3*time.Second, fmt.Sprintf("DATA %d", b))
							if p.op != tfOpDATA || p.block != b {
								t.Fatalf("want DATA %d, got %s", b, p)
							}
							data = append(data, p.data...)
						}
						cl.sendAddr(tid, tfACK(2))
						next = 3
					}
					data, err := cl.receiveRest(tid, 16384, 8, next, data)
					if err != nil {
						t.Fatalf("%s %s: %v; server log: %s", mode, scenario, err, tfTransferLine(s, cl.port()))
					}
					if mode == "netascii" {
						data = tfFromNetascii(t, data)
					}
					if !bytes.Equal(data, want) {
						t.Fatalf("%s %s: got %d bytes (sha256 %s), want %d (sha256 %s)", mode, scenario,
							len(data), tfSHA(data), len(want), tfSHA(want))
					}
					line := tfTransferLine(s, cl.port())
					for deadline := time.Now().Add(5 * time.Second); !strings.Contains(line, "result=") && time.Now().Before(deadline); {
						time.Sleep(20 * time.Millisecond)
						line = tfTransferLine(s, cl.port())
					}
					if !strings.Contains(line, " wait="+wait) {
						t.Fatalf("want a transfer that waits with %s; its log line: %s", wait, line)
					}
				})
			}
		}
	}
}

// tfHold keeps a lockstep transfer of name running until the test ends,
// acknowledging a block every 100 ms.
func tfHold(t *testing.T, server, name string) {
	t.Helper()
	cl := newTFClient(t)
	cl.send(server, tfRRQ(name, "octet"))
	first := cl.mustRecv(3*time.Second, "DATA 1 of the held transfer")
	done := make(chan struct{})
	stopped := make(chan struct{})
	t.Cleanup(func() { close(done); <-stopped })
	go func() {
		defer close(stopped)
		p := first
		for {
			select {
			case <-done:
				// End the transfer, so that the server stops at once.
				cl.sendAddr(p.from, append([]byte{0, tfOpERROR, 0, 0}, "test over\x00"...))
				return
			case <-time.After(100 * time.Millisecond):
			}
			cl.sendAddr(p.from, tfACK(p.block))
			next, ok := cl.recv(2 * time.Second)
			if !ok || next.op != tfOpDATA {
				return
			}
			p = next
		}
	}()
}

// tfTransferLine returns the server's transfer log line for a client port,
// or a note that there is none yet.
func tfTransferLine(s *Server, port int) string {
	for _, line := range strings.Split(s.Log(), "\n") {
		if strings.Contains(line, fmt.Sprintf(" client=127.0.0.1:%d ", port)) {
			return line
		}
	}
	return "(no line for this client yet)"
}
