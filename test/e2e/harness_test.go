// Package e2e tests bootforge as a user runs it: the real binary, driven by
// clients that other people wrote (atftp, tftp-hpa, curl, busybox, ...).
//
// The peers are installed by .ci/run (scripts/deps.sh). A missing peer is a
// test failure, never a skip: a green run must mean the peer really ran.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the bootforge binary built once for the whole package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bootforge-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "bootforge")
	// Built as the README says: static, with the commit in `version`.
	build := exec.Command("go", "build", "-buildvcs=auto", "-o", binary, "bootforge/cmd/bootforge")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building bootforge:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// need fails the test if a peer program is missing.
func need(t testing.TB, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("peer %q is not installed (scripts/deps.sh installs it): %v", p, err)
		}
	}
}

// freePort returns a free port on 127.0.0.1 for network ("tcp" or "udp").
func freePort(t testing.TB, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Server is a running bootforge.
type Server struct {
	t         testing.TB
	cmd       *exec.Cmd
	Root      string // served directory
	DataDir   string
	TFTPAddr  string // 127.0.0.1:port
	HTTPAddr  string
	HTTPSAddr string
	APIAddr   string // management API
	log       *syncBuffer
	done      chan error
}

// ServerOptions tweak StartServer.
type ServerOptions struct {
	Root   string   // existing root to serve; default: a new temp dir
	Config string   // YAML text written to a file and passed with --config
	Args   []string // extra arguments to serve
	Env    []string // extra environment
	Netns  string   // run inside this network namespace (ip netns exec)
	Addr   string   // listen host; default 127.0.0.1
}

// StartServer starts bootforge serve on free loopback ports and waits until
// it logs that it is ready. It is stopped when the test ends. freePort
// finds a port free and lets it go, so a test running in parallel can take
// it first: a server that exits because a listen address is in use is
// started again on new ports.
func StartServer(t testing.TB, o ServerOptions) *Server {
	t.Helper()
	for attempt := 1; ; attempt++ {
		s := launchServer(t, o)
		if attempt < 5 && s.portTaken(10*time.Second) {
			t.Logf("a listen port was taken in the meantime; starting again on new ports:\n%s", s.Log())
			continue
		}
		t.Cleanup(s.Stop)
		s.WaitLog("bootforge ready", 10*time.Second)
		return s
	}
}

// portTaken waits until the server is ready or has exited, and reports
// whether it exited because a listen address was in use.
func (s *Server) portTaken(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(s.Log(), "bootforge ready") {
			return false
		}
		if _, exited := s.Exited(0); exited {
			return strings.Contains(s.Log(), "address already in use")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// launchServer starts bootforge serve on ports free at this moment.
func launchServer(t testing.TB, o ServerOptions) *Server {
	t.Helper()
	host := o.Addr
	if host == "" {
		host = "127.0.0.1"
	}
	s := &Server{t: t, Root: o.Root, DataDir: t.TempDir(), log: &syncBuffer{}, done: make(chan error, 1)}
	if s.Root == "" {
		s.Root = t.TempDir()
	}
	s.TFTPAddr = fmt.Sprintf("%s:%d", host, freePort(t, "udp"))
	s.HTTPAddr = fmt.Sprintf("%s:%d", host, freePort(t, "tcp"))
	s.HTTPSAddr = fmt.Sprintf("%s:%d", host, freePort(t, "tcp"))
	s.APIAddr = fmt.Sprintf("%s:%d", host, freePort(t, "tcp"))
	args := []string{"serve", "--root", s.Root, "--data-dir", s.DataDir,
		"--tftp-addr", s.TFTPAddr, "--http-addr", s.HTTPAddr, "--https-addr", s.HTTPSAddr, "--api-addr", s.APIAddr}
	if o.Config != "" {
		p := filepath.Join(t.TempDir(), "bootforge.yaml")
		if err := os.WriteFile(p, []byte(o.Config), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", p)
	}
	args = append(args, o.Args...)
	if o.Netns != "" {
		s.cmd = exec.Command("ip", append([]string{"netns", "exec", o.Netns, binary}, args...)...)
	} else {
		s.cmd = exec.Command(binary, args...)
	}
	s.cmd.Env = append(os.Environ(), o.Env...)
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	return s
}

// Stop sends SIGTERM and waits for the process to exit.
func (s *Server) Stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(35 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	if s.t.Failed() {
		s.t.Logf("server log:\n%s", s.Log())
	}
}

// Signal sends sig to the server.
func (s *Server) Signal(sig os.Signal) { s.cmd.Process.Signal(sig) }

// Exited returns the exit error once the process ended, or false.
func (s *Server) Exited(timeout time.Duration) (error, bool) {
	select {
	case err := <-s.done:
		s.done <- err
		return err, true
	case <-time.After(timeout):
		return nil, false
	}
}

// Log returns everything the server printed so far.
func (s *Server) Log() string { return s.log.String() }

// waitUntil polls ok every 100 ms until it holds, and fails the test,
// naming what it waited for, if timeout passes first. It is the suite's
// one polling helper.
func waitUntil(t testing.TB, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitLog waits until the log contains substr, or fails the test.
func (s *Server) WaitLog(substr string, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(s.Log(), substr) {
			return
		}
		if _, exited := s.Exited(0); exited {
			s.t.Fatalf("server exited while waiting for %q; log:\n%s", substr, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("timed out waiting for %q in the server log:\n%s", substr, s.Log())
}

// CountLog counts log lines containing substr.
func (s *Server) CountLog(substr string) int {
	n := 0
	sc := bufio.NewScanner(strings.NewReader(s.Log()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), substr) {
			n++
		}
	}
	return n
}

// Host and Port split an address such as TFTPAddr.
func Host(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }
func Port(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

// run runs a peer program with a timeout and returns its combined output.
func run(t testing.TB, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s timed out after %s: %w", name, timeout, ctx.Err())
	}
	return out.String(), err
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var _ io.Writer = (*syncBuffer)(nil)

// download is a curl download running in the background: shutdown tests
// send SIGTERM while it is in flight.
type download struct {
	cmd  *exec.Cmd
	out  string // the file curl writes
	log  syncBuffer
	done chan error
}

// startDownload starts cmd, a curl writing to out, and returns once the
// first bytes are in out.
func startDownload(t testing.TB, cmd *exec.Cmd, out string) *download {
	t.Helper()
	d := &download{cmd: cmd, out: out, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = &d.log, &d.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- cmd.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if st, err := os.Stat(out); err == nil && st.Size() > 0 {
			return d
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the download did not start")
		}
	}
}

// stillRunning fails the test if the download has ended already: it must
// outlast what the test checks (before says what) to prove anything.
func (d *download) stillRunning(t testing.TB, before string) {
	t.Helper()
	select {
	case err := <-d.done:
		t.Fatalf("the download ended (%v) before %s; this test proves nothing (raise n)\n%s", err, before, d.log.String())
	default:
	}
}

// drained waits for the download, in flight at SIGTERM, to finish (30 s
// at most), whole (its SHA-256 is want), and then for s to exit cleanly
// (10 s at most).
func (d *download) drained(t testing.TB, s *Server, want string) {
	t.Helper()
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("the download in flight failed on SIGTERM: %v\n%s", err, d.log.String())
		}
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		t.Fatal("the download did not finish within 30 s")
	}
	if htSumFile(t, d.out) != want {
		t.Errorf("the download that was in flight at SIGTERM is corrupt")
	}
	if err, exited := s.Exited(10 * time.Second); !exited || err != nil {
		t.Errorf("after draining: exited %v, err %v", exited, err)
	}
}

// writeConfig writes cfg to a bootforge.yaml of its own and returns its
// path: the server and the commands beside it read the same file.
func writeConfig(t testing.TB, cfg string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bootforge.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkItem runs `bootforge check --json` beside srv with the config file
// config, through runner (run, or a Lab's Exec to check from inside the
// lab), and returns the item called name as "status: detail", and
// whether check passed as a whole.
func checkItem(t testing.TB, runner func(timeout time.Duration, name string, args ...string) (string, error),
	srv *Server, config, name string) (item string, passed bool) {
	t.Helper()
	out, err := runner(30*time.Second, binary, "check", "--json", "--config", config, "--root", srv.Root, "--data-dir", srv.DataDir,
		"--tftp-addr", srv.TFTPAddr, "--http-addr", srv.HTTPAddr, "--api-addr", srv.APIAddr)
	var items []struct{ Name, Status, Detail string }
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "]")+1]), &items); err != nil {
		t.Fatalf("check --json: %v\n%s", err, out)
	}
	for _, it := range items {
		if it.Name == name {
			return it.Status + ": " + it.Detail, err == nil
		}
	}
	t.Fatalf("check has no %s item:\n%s", name, out)
	return "", false
}
