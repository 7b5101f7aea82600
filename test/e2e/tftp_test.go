package e2e

// TFTP downloads with real clients (atftp, tftp-hpa, curl, busybox) against
// the real binary, and the blksize clamp to the interface MTU in a network
// namespace pair. Hostile input is in tftp_hostile_test.go.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tftpFile is a file served in a download test.
type tftpFile struct {
	key  string // short name used in subtest and alias names
	path string // on disk, inside the root
	sum  string // SHA-256, hex
	size int64
}

// tfWriteRandom writes size random bytes to root/name.
func tfWriteRandom(t testing.TB, root, name string, size int) tftpFile {
	t.Helper()
	b := make([]byte, size)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return tfWriteFile(t, root, name, b)
}

func tfWriteFile(t testing.TB, root, name string, b []byte) tftpFile {
	t.Helper()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return tftpFile{key: name, path: p, sum: tfSHA(b), size: int64(len(b))}
}

func tfSHA(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func tfSHAFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("reading the download: %v", err)
	}
	return tfSHA(b)
}

// alias hard-links f under a name unique to one subtest, so that the
// server's transfer log line for that subtest can be told apart from the
// lines of the subtests running beside it.
func tfAlias(t testing.TB, f tftpFile, name string) string {
	t.Helper()
	if err := os.Link(f.path, filepath.Join(filepath.Dir(f.path), name)); err != nil {
		t.Fatal(err)
	}
	return name
}

// tfWaitLine waits until one line of the server log contains every one of
// parts, and returns it.
func tfWaitLine(t testing.TB, s *Server, timeout time.Duration, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		sc := bufio.NewScanner(strings.NewReader(s.Log()))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			ok := true
			for _, p := range parts {
				if !strings.Contains(line, p) {
					ok = false
					break
				}
			}
			if ok {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no server log line contains all of %q", parts)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tfCheckTransferLog asserts that the server logged a successful transfer of
// name with the given negotiated blksize and windowsize.
func tfCheckTransferLog(t testing.TB, s *Server, name, mode string, blksize, window int) {
	t.Helper()
	tfWaitLine(t, s, 5*time.Second, `msg="tftp transfer"`, " file="+name+" ", " mode="+mode+" ",
		fmt.Sprintf(" blksize=%d ", blksize), fmt.Sprintf(" windowsize=%d ", window), "result=ok")
}

// tfCheckDownload compares the downloaded file with the original.
func tfCheckDownload(t testing.TB, f tftpFile, out, peerOutput string) {
	t.Helper()
	st, err := os.Stat(out)
	if err != nil {
		t.Fatalf("no download at %s: %v; client said:\n%s", out, err, peerOutput)
	}
	if st.Size() != f.size {
		t.Fatalf("downloaded %d bytes, want %d; client said:\n%s", st.Size(), f.size, peerOutput)
	}
	if got := tfSHAFile(t, out); got != f.sum {
		t.Fatalf("SHA-256 of the download is %s, want %s", got, f.sum)
	}
}

// TestTFTPDownloads downloads files of every awkward size with four TFTP
// clients that other people wrote, checks the SHA-256 every time, and checks
// in the server log that the options the client asked for took effect.
//
// The matrix, and why:
//   - The small files (0, 511, 512, 513 B, 1 MiB) sit on and around block
//     boundaries and cost milliseconds, so every client runs all of them at
//     every block size it can ask for.
//   - The 40 MiB file exists for block-number rollover: at blksize 512 it is
//     81,920 blocks, past 65535. Lockstep at blksize 512 takes about 5 s per
//     client, so each client runs it once at blksize 512 (every client must
//     prove it survives rollover with us), and atftp adds a few fast
//     combinations: windowsize 64 at blksize 512 (rollover in the middle of
//     windows), windowsize 16 at 1468, and the largest block, 65464.
//   - windowsize 1, 16 and 64 run at blksize 1468, the size a real client
//     gets on Ethernet (MTU 1500 - 32). Large windows of large blocks are
//     left out of this matrix on purpose: on loopback nothing paces a burst,
//     so a window of more than about 200 KB (4096 x 64, 8192 x 16,
//     65464 x 8) overflows atftp's default 208 KiB socket buffer on every
//     window, the server recovers about one window per timeout, and 40 MiB
//     takes minutes. That is a throughput limit of unpaced windows, not a
//     correctness question; TestTFTPLargeWindowRecovery covers recovery
//     after loss with large windows.
func TestTFTPDownloads(t *testing.T) {
	need(t, "atftp", "tftp", "curl", "busybox")
	root := t.TempDir()
	small := []tftpFile{
		tfWriteRandom(t, root, "f0", 0),
		tfWriteRandom(t, root, "f511", 511),
		tfWriteRandom(t, root, "f512", 512),
		tfWriteRandom(t, root, "f513", 513),
		tfWriteRandom(t, root, "f1m", 1<<20),
	}
	big := tfWriteRandom(t, root, "f40m", 40<<20)
	all := append(append([]tftpFile{}, small...), big)
	texts := tfNetasciiFiles(t, root)

	s := StartServer(t, ServerOptions{Root: root})
	host, port := Host(s.TFTPAddr), Port(s.TFTPAddr)

	// atftp: blksize alone, then windowsize at 1468.
	type atftpCase struct {
		f       tftpFile
		blksize int // 0: no blksize option
		window  int // 0: no windowsize option
	}
	var atftpCases []atftpCase
	for _, f := range small {
		for _, bs := range []int{512, 1468, 8192, 65464} {
			atftpCases = append(atftpCases, atftpCase{f, bs, 0})
		}
		for _, ws := range []int{1, 16, 64} {
			atftpCases = append(atftpCases, atftpCase{f, 1468, ws})
		}
	}
	atftpCases = append(atftpCases,
		atftpCase{big, 0, 0},     // lockstep at 512 through rollover
		atftpCase{big, 512, 64},  // rollover inside windows
		atftpCase{big, 1468, 16}, // the fast path of a real LAN client
		atftpCase{big, 65464, 0}, // the largest block
	)

	t.Run("atftp", func(t *testing.T) {
		for _, c := range atftpCases {
			name := fmt.Sprintf("atftp-bs%d-ws%d-%s", c.blksize, c.window, c.f.key)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				remote := tfAlias(t, c.f, name)
				out := filepath.Join(t.TempDir(), "out")
				args := []string{}
				if c.blksize > 0 {
					args = append(args, "--option", fmt.Sprintf("blksize %d", c.blksize))
				}
				if c.window > 0 {
					args = append(args, "--option", fmt.Sprintf("windowsize %d", c.window))
				}
				args = append(args, "-g", "-r", remote, "-l", out, host, port)
				o, err := run(t, 120*time.Second, "atftp", args...)
				if err != nil {
					t.Fatalf("atftp %q: %v\n%s", args, err, o)
				}
				tfCheckDownload(t, c.f, out, o)
				bs, ws := max(c.blksize, 512), max(c.window, 1)
				tfCheckTransferLog(t, s, remote, "octet", bs, ws)
			})
		}
	})

	t.Run("tftp-hpa", func(t *testing.T) {
		for _, f := range all {
			name := "hpa-" + f.key
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				remote := tfAlias(t, f, name)
				out := filepath.Join(t.TempDir(), "out")
				o, err := run(t, 120*time.Second, "tftp", host, port, "-m", "binary", "-c", "get", remote, out)
				if err != nil {
					t.Fatalf("tftp: %v\n%s", err, o)
				}
				tfCheckDownload(t, f, out, o)
				tfCheckTransferLog(t, s, remote, "octet", 512, 1)
			})
		}
		// netascii: the server turns LF into CR LF and CR into CR NUL, the
		// client turns them back, so the download must equal the original.
		for _, f := range texts {
			name := "hpa-ascii-" + f.key
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				remote := tfAlias(t, f, name)
				out := filepath.Join(t.TempDir(), "out")
				o, err := run(t, 60*time.Second, "tftp", host, port, "-m", "ascii", "-c", "get", remote, out)
				if err != nil {
					t.Fatalf("tftp -m ascii: %v\n%s", err, o)
				}
				tfCheckDownload(t, f, out, o)
				tfCheckTransferLog(t, s, remote, "netascii", 512, 1)
			})
		}
	})

	t.Run("curl", func(t *testing.T) {
		type curlCase struct {
			f       tftpFile
			blksize int
		}
		var cases []curlCase
		for _, f := range small {
			for _, bs := range []int{512, 1468, 8192, 65464} {
				cases = append(cases, curlCase{f, bs})
			}
		}
		cases = append(cases, curlCase{big, 512})
		for _, c := range cases {
			name := fmt.Sprintf("curl-bs%d-%s", c.blksize, c.f.key)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				remote := tfAlias(t, c.f, name)
				out := filepath.Join(t.TempDir(), "out")
				url := fmt.Sprintf("tftp://%s/%s", s.TFTPAddr, remote)
				o, err := run(t, 120*time.Second, "curl", "-sS", "--tftp-blksize", fmt.Sprint(c.blksize), "-o", out, url)
				if err != nil {
					t.Fatalf("curl %s: %v\n%s", url, err, o)
				}
				tfCheckDownload(t, c.f, out, o)
				tfCheckTransferLog(t, s, remote, "octet", c.blksize, 1)
			})
		}
	})

	t.Run("busybox", func(t *testing.T) {
		type bbCase struct {
			f       tftpFile
			blksize int // 0: busybox's default, no option
		}
		var cases []bbCase
		for _, f := range all {
			cases = append(cases, bbCase{f, 0})
		}
		for _, f := range small {
			cases = append(cases, bbCase{f, 1468})
		}
		for _, c := range cases {
			name := fmt.Sprintf("busybox-bs%d-%s", c.blksize, c.f.key)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				remote := tfAlias(t, c.f, name)
				out := filepath.Join(t.TempDir(), "out")
				args := []string{"tftp", "-g", "-r", remote, "-l", out}
				if c.blksize > 0 {
					args = append(args, "-b", fmt.Sprint(c.blksize))
				}
				args = append(args, host, port)
				o, err := run(t, 120*time.Second, "busybox", args...)
				if err != nil {
					t.Fatalf("busybox %q: %v\n%s", args, err, o)
				}
				tfCheckDownload(t, c.f, out, o)
				tfCheckTransferLog(t, s, remote, "octet", max(c.blksize, 512), 1)
			})
		}
	})
}

// tfNetasciiFiles writes text files for netascii mode: LF line ends, bare CR
// bytes, mixtures, and line ends placed so that the two bytes a CR or LF
// becomes on the wire straddle a 512-byte block boundary.
func tfNetasciiFiles(t testing.TB, root string) []tftpFile {
	t.Helper()
	rng := mrand.New(mrand.NewPCG(1, 2))
	line := func(b *bytes.Buffer) {
		n := rng.IntN(120)
		for range n {
			b.WriteByte(byte(' ' + rng.IntN(95)))
		}
	}
	var lf, cr, mixed bytes.Buffer
	for lf.Len() < 100_000 {
		line(&lf)
		lf.WriteByte('\n')
	}
	for cr.Len() < 50_000 {
		line(&cr)
		cr.WriteByte('\r')
	}
	ends := []string{"\n", "\r\n", "\r", "\r\r", "\n\r", "\n\n", "\r\x00"}
	for mixed.Len() < 80_000 {
		line(&mixed)
		mixed.WriteString(ends[rng.IntN(len(ends))])
	}
	mixed.WriteByte('\r') // a CR as the very last byte

	// 511 bytes of text then a line end: the CR is the last byte of block
	// 1 and its LF (or NUL) opens block 2, and so on for later blocks.
	var edgeLF, edgeCR bytes.Buffer
	for i := range 6 {
		edgeLF.Write(bytes.Repeat([]byte{'a' + byte(i)}, 511-i%2))
		edgeLF.WriteByte('\n')
		edgeCR.Write(bytes.Repeat([]byte{'A' + byte(i)}, 511-i%2))
		edgeCR.WriteByte('\r')
	}
	return []tftpFile{
		tfWriteFile(t, root, "lf.txt", lf.Bytes()),
		tfWriteFile(t, root, "cr.txt", cr.Bytes()),
		tfWriteFile(t, root, "mixed.txt", mixed.Bytes()),
		tfWriteFile(t, root, "edge-lf.txt", edgeLF.Bytes()),
		tfWriteFile(t, root, "edge-cr.txt", edgeCR.Bytes()),
		tfWriteFile(t, root, "newlines.txt", bytes.Repeat([]byte{'\n'}, 3000)),
		tfWriteFile(t, root, "empty.txt", nil),
	}
}

// TestTFTPBlksizeClampMTU runs the server in one network namespace and atftp
// in another, joined by a veth pair with MTU 1500. atftp asks for the largest
// block; the server must answer with MTU - 32 = 1468, so that no DATA packet
// is fragmented, and the file must arrive intact.
func TestTFTPBlksizeClampMTU(t *testing.T) {
	need(t, "ip", "atftp")
	id := fmt.Sprintf("%d%03d", os.Getpid()%100000, mrand.IntN(1000))
	srvNS, cliNS := "bf-tftp-s-"+id, "bf-tftp-c-"+id
	vethS, vethC := "bfs"+id, "bfc"+id // at most 15 bytes
	ip := func(args ...string) {
		t.Helper()
		if o, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, o)
		}
	}
	for _, ns := range []string{srvNS, cliNS} {
		ip("netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	ip("link", "add", vethS, "mtu", "1500", "type", "veth", "peer", "name", vethC, "mtu", "1500")
	t.Cleanup(func() { exec.Command("ip", "link", "del", vethS).Run() }) // if it never left this namespace
	ip("link", "set", vethS, "netns", srvNS)
	ip("link", "set", vethC, "netns", cliNS)
	for _, c := range []struct{ ns, dev, addr string }{{srvNS, vethS, "192.0.2.1/24"}, {cliNS, vethC, "192.0.2.2/24"}} {
		ip("-n", c.ns, "link", "set", "lo", "up")
		ip("-n", c.ns, "addr", "add", c.addr, "dev", c.dev)
		ip("-n", c.ns, "link", "set", c.dev, "up")
	}

	root := t.TempDir()
	f := tfWriteRandom(t, root, "boot.img", 3<<20+123)
	s := StartServer(t, ServerOptions{Root: root, Netns: srvNS, Addr: "192.0.2.1"})

	for _, window := range []int{0, 16} {
		t.Run(fmt.Sprintf("windowsize%d", window), func(t *testing.T) {
			remote := tfAlias(t, f, fmt.Sprintf("mtu-ws%d.img", window))
			out := filepath.Join(t.TempDir(), "out")
			args := []string{"netns", "exec", cliNS, "atftp", "--option", "blksize 65464"}
			if window > 0 {
				args = append(args, "--option", fmt.Sprintf("windowsize %d", window))
			}
			args = append(args, "-g", "-r", remote, "-l", out, "192.0.2.1", Port(s.TFTPAddr))
			o, err := run(t, 60*time.Second, "ip", args...)
			if err != nil {
				t.Fatalf("atftp in %s: %v\n%s", cliNS, err, o)
			}
			tfCheckDownload(t, f, out, o)
			line := tfWaitLine(t, s, 5*time.Second, `msg="tftp transfer"`, " file="+remote+" ", "result=ok")
			if !strings.Contains(line, " blksize=1468 ") {
				t.Fatalf("asked for blksize 65464 over an MTU 1500 link; want the server to clamp it to 1468, log says:\n%s", line)
			}
			if !strings.Contains(line, "client=192.0.2.2:") {
				t.Fatalf("transfer log does not name the client 192.0.2.2:\n%s", line)
			}
			if window > 0 && !strings.Contains(line, fmt.Sprintf(" windowsize=%d ", window)) {
				t.Fatalf("windowsize %d not in the transfer log:\n%s", window, line)
			}
		})
	}
}
