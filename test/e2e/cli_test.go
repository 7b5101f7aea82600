package e2e

// The command line as an operator meets it: version, config errors, the
// environment and flags, SIGHUP and SIGTERM, JSON logs, init, and a bare
// `bootforge serve` on the default ports.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// clEnv is the test's environment without any BOOTFORGE_ variable, plus extra.
func clEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BOOTFORGE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// clRun runs the bootforge binary to completion and returns its output and
// exit code. A run that outlives timeout is a failure: a command that
// should have exited is still serving.
func clRun(t testing.TB, timeout time.Duration, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = clEnv(env...)
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out.String(), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return out.String(), 0
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("bootforge %s still running after %s; output:\n%s", strings.Join(args, " "), timeout, out.String())
		return "", -1
	}
}

// clStart starts bootforge with exactly args (no --root or addresses added,
// unlike StartServer) and waits for it to be ready. addrs, if given, are
// the TFTP, HTTP and HTTPS addresses it was told to use.
func clStart(t testing.TB, env []string, args ...string) *Server {
	t.Helper()
	s := &Server{t: t, log: &syncBuffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command(binary, args...)
	s.cmd.Env = clEnv(env...)
	s.cmd.Dir = t.TempDir()
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(s.Stop)
	s.WaitLog("bootforge ready", 10*time.Second)
	return s
}

// clAddrs returns three free loopback addresses: TFTP (UDP), HTTP, HTTPS.
func clAddrs(t testing.TB) (tftpAddr, httpAddr, httpsAddr string) {
	return fmt.Sprintf("127.0.0.1:%d", freePort(t, "udp")),
		fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")),
		fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
}

// clGet fetches url with curl (http, https or tftp) and returns the body;
// a failure or an HTTP status other than 200 is "".
func clGet(t testing.TB, url string, extra ...string) string {
	t.Helper()
	out, err := run(t, 20*time.Second, "curl", append([]string{"-sf", "--max-time", "15"}, append(extra, url)...)...)
	if err != nil {
		return ""
	}
	return out
}

// clWaitCount waits until substr appears in at least n log lines.
func clWaitCount(t testing.TB, s *Server, substr string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.CountLog(substr) < n {
		if time.Now().After(deadline) {
			t.Fatalf("waited for %d lines with %q; log:\n%s", n, substr, s.Log())
		}
		if _, exited := s.Exited(0); exited {
			t.Fatalf("server exited while waiting for %q; log:\n%s", substr, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var clWindowRE = regexp.MustCompile(`msg="tftp transfer".* windowsize=(\d+) `)

// clTFTPWindow fetches file with atftp asking for windowsize 64 and returns
// the window the server's log says it used.
func clTFTPWindow(t testing.TB, s *Server, tftpAddr, file string, want []byte) string {
	t.Helper()
	// This file's lines only: the line of a transfer just before may
	// still be on its way to the log.
	match := `msg="tftp transfer" client=` // the line's start, then:
	mine := func(l string) bool { return strings.Contains(l, match) && strings.Contains(l, " file="+file+" ") }
	count := func() int {
		n := 0
		for _, l := range strings.Split(s.Log(), "\n") {
			if mine(l) {
				n++
			}
		}
		return n
	}
	before := count()
	out := filepath.Join(t.TempDir(), "got")
	res, err := run(t, 30*time.Second, "atftp", "--option", "windowsize 64", "--option", "blksize 1024",
		"-g", "-r", file, "-l", out, Host(tftpAddr), Port(tftpAddr))
	if err != nil {
		t.Fatalf("atftp: %v\n%s", err, res)
	}
	if got := mustRead(t, out); !bytes.Equal(got, want) {
		t.Fatalf("atftp got %d bytes, not the %d-byte file", len(got), len(want))
	}
	deadline := time.Now().Add(10 * time.Second)
	for count() < before+1 {
		if time.Now().After(deadline) {
			t.Fatalf("no tftp transfer line for %s; log:\n%s", file, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var lines []string
	for _, l := range strings.Split(s.Log(), "\n") {
		if mine(l) {
			lines = append(lines, l)
		}
	}
	m := clWindowRE.FindStringSubmatch(lines[len(lines)-1])
	if m == nil {
		t.Fatalf("no windowsize in %q", lines[len(lines)-1])
	}
	return m[1]
}

func TestCLIVersion(t *testing.T) {
	out, code := clRun(t, 10*time.Second, nil, "version")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	if !regexp.MustCompile(`^bootforge \S+`).MatchString(out) || len(strings.TrimSpace(out)) <= len("bootforge ") {
		t.Errorf("version printed %q", out)
	}
	if !regexp.MustCompile(`(?m)^commit +[0-9a-f]{40}(-dirty)?\n^go +go1\.`).MatchString(out) {
		t.Errorf("version does not print the commit and the Go version:\n%s", out)
	}
	// The README promises a static binary, built as it says.
	if out, _ := run(t, 10*time.Second, "ldd", binary); !strings.Contains(out, "not a dynamic executable") {
		t.Errorf("ldd %s: %s", binary, out)
	}
	for _, args := range [][]string{{"no-such-command"}, {"host", "no-such-command"}, {"image", "lsit"}} {
		if out, code := clRun(t, 10*time.Second, nil, args...); code == 0 {
			t.Errorf("unknown command %q exited 0: %s", args, out)
		}
	}
	if out, code := clRun(t, 10*time.Second, nil, "image", "lsit"); !strings.Contains(out, "did you mean list?") {
		t.Errorf("a misspelled subcommand gets no suggestion (exit %d): %s", code, out)
	}
	man := t.TempDir()
	if out, code := clRun(t, 30*time.Second, nil, "man", man); code != 0 {
		t.Fatalf("man exited %d: %s", code, out)
	}
	for _, page := range []string{"bootforge.8", "bootforge-serve.8", "bootforge-host-next-boot.8", "bootforge-image-build.8"} {
		b, err := os.ReadFile(filepath.Join(man, page))
		if err != nil || !bytes.Contains(b, []byte(".SH NAME")) {
			t.Errorf("man page %s: %v, %d bytes", page, err, len(b))
		}
	}
	out, code = clRun(t, 10*time.Second, nil, "--help")
	if code != 0 {
		t.Errorf("--help exited %d", code)
	}
	for _, c := range []string{"serve", "init", "version"} {
		if !strings.Contains(out, c) {
			t.Errorf("--help does not mention %q:\n%s", c, out)
		}
	}
}

func TestCLIBadConfig(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       string // after "<file>"
	}{
		{"unknown key", "tftp:\n  max_windw_size: 8\n",
			`:2: tftp.max_windw_size: unknown key (did you mean "max_window_size"?)`},
		{"unknown top-level key", "log:\n  level: info\nrot: /srv\n", ":3: rot: unknown key (did you mean \"root\"?)"},
		{"bad value type", "tftp:\n  max_window_size: abc\n", `:2: tftp.max_window_size: "abc" is not a valid whole number`},
		{"out of range", "tftp:\n  enabled: true\n  max_window_size: 0\n", ":3: tftp.max_window_size: 0 is outside 1..65535"},
		{"bad duration", "tftp:\n  timeout: 5\n", `:2: tftp.timeout: "5" is not a duration like 1s or 250ms`},
		{"bad boolean", "http:\n  tls:\n    enabled: yes please\n", `:3: http.tls.enabled: "yes please" is not a valid boolean`},
		{"key given twice", "tftp:\n  retries: 3\n  retries: 4\n", ":3: tftp.retries: key given twice"},
		{"fraction for a whole number", "tftp:\n  max_window_size: 8.5\n", `:2: tftp.max_window_size: "8.5" is not a valid whole number`},
		{"bad yaml syntax", "tftp:\n\tmax_window_size: 8\n", ":2: found character that cannot start any token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "bootforge.yaml")
			if err := os.WriteFile(cfg, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			ta, ha, hsa := clAddrs(t)
			out, code := clRun(t, 5*time.Second, nil, "serve", "--config", cfg, "--root", filepath.Join(dir, "root"),
				"--data-dir", filepath.Join(dir, "data"), "--tftp-addr", ta, "--http-addr", ha, "--https-addr", hsa)
			if code == 0 {
				t.Fatalf("serve exited 0 with a bad config: %s", out)
			}
			if !strings.Contains(out, cfg+tt.want) {
				t.Errorf("the error should contain\n  %s%s\ngot:\n  %s", cfg, tt.want, out)
			}
			if strings.Contains(out, "bootforge ready") {
				t.Errorf("the server got ready with a bad config")
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "nope.yaml")
		out, code := clRun(t, 10*time.Second, nil, "serve", "--config", cfg)
		if code == 0 || !strings.Contains(out, cfg) {
			t.Errorf("exit %d, output %q: want non-zero naming %s", code, out, cfg)
		}
	})
	t.Run("bad environment value", func(t *testing.T) {
		dir := t.TempDir()
		ta, ha, hsa := clAddrs(t)
		out, code := clRun(t, 10*time.Second, []string{"BOOTFORGE_TFTP_MAX_WINDOW_SIZE=abc"}, "serve", "--root", filepath.Join(dir, "r"),
			"--data-dir", filepath.Join(dir, "d"), "--tftp-addr", ta, "--http-addr", ha, "--https-addr", hsa)
		if code == 0 || !strings.Contains(out, `tftp.max_window_size: from BOOTFORGE_TFTP_MAX_WINDOW_SIZE: "abc" is not a valid whole number`) {
			t.Errorf("exit %d, output %q", code, out)
		}
	})
	t.Run("bad flag value", func(t *testing.T) {
		dir := t.TempDir()
		_, ha, hsa := clAddrs(t)
		out, code := clRun(t, 10*time.Second, nil, "serve", "--root", filepath.Join(dir, "r"),
			"--data-dir", filepath.Join(dir, "d"), "--tftp-addr", "nonsense", "--http-addr", ha, "--https-addr", hsa)
		if code == 0 || !strings.Contains(out, `tftp.listen: "nonsense" is not host:port`) {
			t.Errorf("exit %d, output %q", code, out)
		}
	})
	t.Run("data_dir inside root", func(t *testing.T) {
		dir := t.TempDir()
		ta, ha, hsa := clAddrs(t)
		out, code := clRun(t, 10*time.Second, nil, "serve", "--root", filepath.Join(dir, "r"),
			"--data-dir", filepath.Join(dir, "r", "state"), "--tftp-addr", ta, "--http-addr", ha, "--https-addr", hsa)
		if code == 0 || !strings.Contains(out, "data_dir:") || !strings.Contains(out, "must not be inside root") {
			t.Errorf("exit %d, output %q", code, out)
		}
	})
}

// A second serve on a data_dir in use refuses to start, naming it, and the
// first goes on serving: two servers on one store would each keep their own
// offers in memory, and the DHCP port (SO_REUSEPORT) would not stop the
// second. Once the first has stopped, the data_dir is free again.
func TestCLISecondServeRefused(t *testing.T) {
	need(t, "curl")
	dir := t.TempDir()
	root, data := filepath.Join(dir, "root"), filepath.Join(dir, "data")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "f"), []byte("served\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	serveArgs := func() (args []string, httpAddr string) {
		ta, ha, hsa := clAddrs(t)
		api := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
		return []string{"serve", "--root", root, "--data-dir", data, "--tftp-addr", ta, "--http-addr", ha, "--https-addr", hsa,
			"--api-addr", api}, ha
	}
	args, firstHTTP := serveArgs()
	first := clStart(t, nil, args...)

	args, secondHTTP := serveArgs()
	out, code := clRun(t, 10*time.Second, nil, args...)
	if want := "data_dir: " + data + " is in use by another bootforge serve"; code == 0 || !strings.Contains(out, want) {
		t.Errorf("second serve: exit %d, output %q; want non-zero with %q", code, out, want)
	}
	if strings.Contains(out, "bootforge ready") {
		t.Errorf("the second server got ready on a data_dir in use:\n%s", out)
	}
	if got := clGet(t, "http://"+firstHTTP+"/f"); got != "served\n" {
		t.Errorf("the first server no longer serves: %q", got)
	}

	first.Stop()
	clStart(t, nil, args...)
	if got := clGet(t, "http://"+secondHTTP+"/f"); got != "served\n" {
		t.Errorf("after the first stopped, a new server on its data_dir serves %q", got)
	}
}

// The TLS private key lives in data_dir; a data_dir anywhere below the root
// would serve it to anyone. serve must refuse to start.
func TestCLIDataDirBelowRootRefused(t *testing.T) {
	need(t, "curl")
	for _, sub := range []string{"state", "..state", "boot/..d"} {
		t.Run(sub, func(t *testing.T) {
			root := t.TempDir()
			data := filepath.Join(root, sub)
			ta, ha, hsa := clAddrs(t)
			cmd := exec.Command(binary, "serve", "--root", root, "--data-dir", data,
				"--tftp-addr", ta, "--http-addr", ha, "--https-addr", hsa)
			cmd.Env = clEnv()
			log := &syncBuffer{}
			cmd.Stdout, cmd.Stderr = log, log
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer func() {
				if cmd.ProcessState == nil {
					cmd.Process.Signal(syscall.SIGTERM)
					<-done
				}
			}()
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(log.String(), "bootforge ready") {
				select {
				case err := <-done:
					if err == nil || !strings.Contains(log.String(), "data_dir") {
						t.Errorf("exit %v, output %q: want a data_dir error", err, log.String())
					}
					done <- err
					return
				case <-time.After(20 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("neither ready nor exited:\n%s", log.String())
				}
			}
			body := clGet(t, "http://"+ha+"/"+sub+"/tls/key.pem")
			if strings.Contains(body, "PRIVATE KEY") {
				t.Fatalf("serve started with data_dir %s inside root %s, and GET /%s/tls/key.pem returned the TLS PRIVATE KEY", data, root, sub)
			}
			t.Fatalf("serve started with data_dir %s inside root %s:\n%s", data, root, log.String())
		})
	}
}

func TestCLIEnvAndFlags(t *testing.T) {
	need(t, "atftp", "curl")
	data := make([]byte, 200000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	t.Run("windowsize precedence", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			config string
			env    []string
			want   string
		}{
			{"default", "", nil, "64"},
			{"file", "tftp:\n  max_window_size: 16\n", nil, "16"},
			{"env", "", []string{"BOOTFORGE_TFTP_MAX_WINDOW_SIZE=8"}, "8"},
			{"env beats file", "tftp:\n  max_window_size: 16\n", []string{"BOOTFORGE_TFTP_MAX_WINDOW_SIZE=8"}, "8"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				s := StartServer(t, ServerOptions{Config: tt.config, Env: tt.env})
				if err := os.WriteFile(filepath.Join(s.Root, "pxelinux.0"), data, 0o644); err != nil {
					t.Fatal(err)
				}
				if got := clTFTPWindow(t, s, s.TFTPAddr, "pxelinux.0", data); got != tt.want {
					t.Errorf("atftp asked for windowsize 64; the server used %s, want %s", got, tt.want)
				}
			})
		}
	})

	t.Run("flag beats env", func(t *testing.T) {
		envRoot := t.TempDir()
		if err := os.WriteFile(filepath.Join(envRoot, "env-only.txt"), []byte("from env root"), 0o644); err != nil {
			t.Fatal(err)
		}
		otherHTTP := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
		s := StartServer(t, ServerOptions{Env: []string{
			"BOOTFORGE_ROOT=" + envRoot,
			"BOOTFORGE_HTTP_ADDR=" + otherHTTP,
			"BOOTFORGE_LOG_FORMAT=json",
		}, Args: []string{"--log-format", "text"}})
		if err := os.WriteFile(filepath.Join(s.Root, "flag-only.txt"), []byte("from flag root"), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := clGet(t, "http://"+s.HTTPAddr+"/flag-only.txt"); got != "from flag root" {
			t.Errorf("--root lost to BOOTFORGE_ROOT: flag-only.txt gave %q", got)
		}
		if got := clGet(t, "http://"+s.HTTPAddr+"/env-only.txt"); got != "" {
			t.Errorf("BOOTFORGE_ROOT beat --root: env-only.txt gave %q", got)
		}
		if c, err := net.DialTimeout("tcp", otherHTTP, time.Second); err == nil {
			c.Close()
			t.Errorf("BOOTFORGE_HTTP_ADDR %s is listening although --http-addr was given", otherHTTP)
		}
		if first := strings.SplitN(s.Log(), "\n", 2)[0]; !strings.HasPrefix(first, "time=") {
			t.Errorf("--log-format text lost to BOOTFORGE_LOG_FORMAT=json: %q", first)
		}
	})

	t.Run("environment alone", func(t *testing.T) {
		root, dataDir := t.TempDir(), t.TempDir()
		if err := os.WriteFile(filepath.Join(root, "ipxe.efi"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		ta, ha, hsa := clAddrs(t)
		s := clStart(t, []string{
			"BOOTFORGE_ROOT=" + root, "BOOTFORGE_DATA_DIR=" + dataDir,
			"BOOTFORGE_TFTP_ADDR=" + ta, "BOOTFORGE_HTTP_ADDR=" + ha, "BOOTFORGE_HTTPS_ADDR=" + hsa,
			"BOOTFORGE_TFTP_MAX_WINDOW_SIZE=4",
		}, "serve")
		if got := clGet(t, "http://"+ha+"/ipxe.efi"); got != string(data) {
			t.Errorf("HTTP on BOOTFORGE_HTTP_ADDR: got %d bytes", len(got))
		}
		if got := clGet(t, "https://"+hsa+"/ipxe.efi", "--cacert", filepath.Join(dataDir, "tls", "cert.pem")); got != string(data) {
			t.Errorf("HTTPS on BOOTFORGE_HTTPS_ADDR with the cert in BOOTFORGE_DATA_DIR: got %d bytes", len(got))
		}
		if got := clTFTPWindow(t, s, ta, "ipxe.efi", data); got != "4" {
			t.Errorf("windowsize %s, want 4 from BOOTFORGE_TFTP_MAX_WINDOW_SIZE", got)
		}
	})

	t.Run("BOOTFORGE_CONFIG", func(t *testing.T) {
		dir := t.TempDir()
		root := filepath.Join(dir, "root")
		cfg := filepath.Join(dir, "b.yaml")
		text := fmt.Sprintf("root: %s\ndata_dir: %s\ntftp:\n  max_window_size: 2\n", root, filepath.Join(dir, "state"))
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "f"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		ta, ha, hsa := clAddrs(t)
		s := clStart(t, []string{"BOOTFORGE_CONFIG=" + cfg}, "serve", "--tftp-addr", ta, "--http-addr", ha, "--https-addr", hsa)
		if got := clTFTPWindow(t, s, ta, "f", data); got != "2" {
			t.Errorf("windowsize %s, want 2 from the file named by BOOTFORGE_CONFIG", got)
		}
	})
}

func TestCLIReload(t *testing.T) {
	need(t, "curl", "atftp")
	dir := t.TempDir()
	rootA, rootB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, d := range []struct{ root, text string }{{rootA, "served from A\n"}, {rootB, "served from B\n"}} {
		if err := os.MkdirAll(d.root, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d.root, "boot.txt"), []byte(d.text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	big := make([]byte, 100000)
	for i := range big {
		big[i] = byte(i % 251)
	}
	if err := os.WriteFile(filepath.Join(rootB, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "bootforge.yaml")
	state := filepath.Join(dir, "state")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("data_dir: %s\nroot: %s\n", state, rootA))
	ta, ha, hsa := clAddrs(t)
	s := clStart(t, nil, "serve", "--config", cfg, "--tftp-addr", ta, "--http-addr", ha, "--https-addr", hsa)

	if got := clGet(t, "http://"+ha+"/boot.txt"); got != "served from A\n" {
		t.Fatalf("before any reload: %q", got)
	}

	// A good config: the new root serves new requests, and TFTP settings apply.
	write(fmt.Sprintf("data_dir: %s\nroot: %s\ntftp:\n  max_window_size: 4\n", state, rootB))
	s.Signal(syscall.SIGHUP)
	clWaitCount(t, s, "config reloaded", 1)
	if got := clGet(t, "http://"+ha+"/boot.txt"); got != "served from B\n" {
		t.Errorf("HTTP after reloading with root B: %q", got)
	}
	if got := clGet(t, "tftp://"+ta+"/boot.txt"); got != "served from B\n" {
		t.Errorf("TFTP after reloading with root B: %q", got)
	}
	if got := clTFTPWindow(t, s, ta, "big.bin", big); got != "4" {
		t.Errorf("windowsize %s after reloading max_window_size 4", got)
	}

	// Broken configs are refused and the running one kept: root stays B,
	// although each broken file names root A.
	for i, broken := range []string{
		fmt.Sprintf("data_dir: %s\nroot: %s\ntftp:\n  max_window_size: abc\n", state, rootA),
		fmt.Sprintf("data_dir: %s\nroot: %s\ntftp:\n\tretries: 3\n", state, rootA),
		fmt.Sprintf("data_dir: %s\nroot: %s\nrooot: %s\n", state, rootA, rootA),
	} {
		write(broken)
		s.Signal(syscall.SIGHUP)
		clWaitCount(t, s, "reload refused, keeping the running config", i+1)
		if _, exited := s.Exited(100 * time.Millisecond); exited {
			t.Fatalf("the server exited on a bad reload:\n%s", s.Log())
		}
		if got := clGet(t, "http://"+ha+"/boot.txt"); got != "served from B\n" {
			t.Errorf("HTTP after a refused reload: %q, want the old root's file", got)
		}
		if got := clGet(t, "tftp://"+ta+"/boot.txt"); got != "served from B\n" {
			t.Errorf("TFTP after a refused reload: %q, want the old root's file", got)
		}
	}
	for _, want := range []string{cfg + `:4: tftp.max_window_size: \"abc\" is not a valid whole number`, cfg + `:3: rooot: unknown key`} {
		if !strings.Contains(s.Log(), want) {
			t.Errorf("the refusal does not say %s:\n%s", want, s.Log())
		}
	}
	if got := clTFTPWindow(t, s, ta, "big.bin", big); got != "4" {
		t.Errorf("windowsize %s after refused reloads, want the running 4", got)
	}

	// And a good config after the bad ones is taken again.
	write(fmt.Sprintf("data_dir: %s\nroot: %s\n", state, rootA))
	s.Signal(syscall.SIGHUP)
	clWaitCount(t, s, "config reloaded", 2)
	if got := clGet(t, "http://"+ha+"/boot.txt"); got != "served from A\n" {
		t.Errorf("HTTP after reloading back to root A: %q", got)
	}
}

func TestCLISigterm(t *testing.T) {
	need(t, "curl")
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			s := StartServer(t, ServerOptions{})
			s.Signal(sig)
			err, exited := s.Exited(10 * time.Second)
			if !exited {
				t.Fatalf("still running 10 s after %v", sig)
			}
			if err != nil {
				t.Errorf("exit after %v: %v, want status 0", sig, err)
			}
			if !strings.Contains(s.Log(), "msg=stopped") {
				t.Errorf("no \"stopped\" line:\n%s", s.Log())
			}
			if c, err := net.DialTimeout("tcp", s.HTTPAddr, time.Second); err == nil {
				c.Close()
				t.Errorf("HTTP still accepts connections after exit")
			}
		})
	}

	t.Run("download in flight finishes", func(t *testing.T) {
		s := StartServer(t, ServerOptions{})
		// Past curl's unthrottled first burst, so that the transfer is still
		// running when the signal comes.
		const n = 40 << 20
		data := htRandomFile(t, filepath.Join(s.Root, "big.iso"), n, 12)
		out := filepath.Join(t.TempDir(), "big.iso")
		dl := startDownload(t, exec.Command("curl", "-sS", "--limit-rate", "20M", "-o", out, "http://"+s.HTTPAddr+"/big.iso"), out)
		s.Signal(syscall.SIGTERM)
		s.WaitLog("shutting down", 5*time.Second)
		dl.stillRunning(t, "SIGTERM took effect")
		dl.drained(t, s, htSum(data))
		if !strings.Contains(s.Log(), "msg=stopped") {
			t.Errorf("no \"stopped\" line:\n%s", s.Log())
		}
	})
}

// clAllJSON checks that every line of out is a JSON object with time, level
// and msg.
func clAllJSON(t testing.TB, out string) int {
	t.Helper()
	n := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("not JSON: %q (%v)", line, err)
			continue
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := m[k]; !ok {
				t.Errorf("JSON line without %q: %s", k, line)
			}
		}
		n++
	}
	return n
}

func TestCLILogFormatJSON(t *testing.T) {
	need(t, "curl", "atftp")
	t.Run("running server", func(t *testing.T) {
		dir := t.TempDir()
		root := filepath.Join(dir, "root")
		cfg := filepath.Join(dir, "b.yaml")
		good := fmt.Sprintf("data_dir: %s\nroot: %s\n", filepath.Join(dir, "state"), root)
		if err := os.WriteFile(cfg, []byte(good), 0o644); err != nil {
			t.Fatal(err)
		}
		data := htRandomFile(t, filepath.Join(root, "f.bin"), 50000, 13)
		ta, ha, hsa := clAddrs(t)
		s := clStart(t, nil, "serve", "--log-format", "json", "--config", cfg, "--tftp-addr", ta, "--http-addr", ha, "--https-addr", hsa)

		if got := clGet(t, "http://"+ha+"/f.bin"); got != string(data) {
			t.Errorf("GET f.bin: %d bytes", len(got))
		}
		clGet(t, "http://"+ha+"/f.bin", "-r", "1-2")
		clGet(t, "http://"+ha+"/missing")
		clGet(t, "http://"+ha+"/../etc/passwd", "--path-as-is")
		clGet(t, "https://"+hsa+"/f.bin", "--cacert", filepath.Join(dir, "state", "tls", "cert.pem"))
		clGet(t, "tftp://"+ta+"/f.bin")
		clGet(t, "tftp://"+ta+"/missing")
		run(t, 10*time.Second, "atftp", "--option", "windowsize 8", "-g", "-r", "f.bin", "-l", filepath.Join(dir, "x"), Host(ta), Port(ta))
		// A refused reload logs a multi-line error; a good one, a plain line.
		os.WriteFile(cfg, []byte(good+"tftp:\n  max_window_size: 0\n  retries: x\nbogus: 1\n"), 0o644)
		s.Signal(syscall.SIGHUP)
		htWaitRecord(t, s, "reload refused", func(r map[string]any) bool {
			return r["msg"] == "reload refused, keeping the running config"
		})
		os.WriteFile(cfg, []byte(good), 0o644)
		s.Signal(syscall.SIGHUP)
		htWaitRecord(t, s, "config reloaded", func(r map[string]any) bool { return r["msg"] == "config reloaded" })
		s.Signal(syscall.SIGTERM)
		if err, exited := s.Exited(10 * time.Second); !exited || err != nil {
			t.Fatalf("exit: %v %v", exited, err)
		}
		n := clAllJSON(t, s.Log())
		for _, msg := range []string{"bootforge ready", "http request", "http: refused", "tftp transfer", "config reloaded", "stopped"} {
			if !strings.Contains(s.Log(), `"msg":"`+msg+`"`) {
				t.Errorf("no JSON record with msg %q", msg)
			}
		}
		if n < 10 {
			t.Errorf("only %d JSON lines:\n%s", n, s.Log())
		}
	})

	t.Run("startup failure", func(t *testing.T) {
		// An address already taken: the logger is set up, then serve fails.
		busy, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		dir := t.TempDir()
		ta, _, hsa := clAddrs(t)
		out, code := clRun(t, 10*time.Second, nil, "serve", "--log-format", "json", "--root", filepath.Join(dir, "r"),
			"--data-dir", filepath.Join(dir, "d"), "--tftp-addr", ta, "--http-addr", busy.Addr().String(), "--https-addr", hsa)
		if code == 0 {
			t.Fatalf("serve exited 0 with its HTTP port taken:\n%s", out)
		}
		if !strings.Contains(out, "address already in use") {
			t.Errorf("the failure does not say why: %q", out)
		}
		clAllJSON(t, out)
	})
}

func TestCLIInit(t *testing.T) {
	need(t, "curl", "atftp")
	const loader = "/usr/lib/ipxe/undionly.kpxe"
	want, err := os.ReadFile(loader)
	if err != nil {
		t.Fatalf("%s is needed (Debian package ipxe; scripts/deps.sh installs it): %v", loader, err)
	}
	dir := filepath.Join(t.TempDir(), "bootforge")
	out, code := clRun(t, 30*time.Second, nil, "init", dir)
	if code != 0 {
		t.Fatalf("init exited %d:\n%s", code, out)
	}
	cfg := filepath.Join(dir, "bootforge.yaml")
	if !strings.Contains(out, "wrote     "+cfg) {
		t.Errorf("init does not say it wrote %s:\n%s", cfg, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "root", "undionly.kpxe"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("root/undionly.kpxe is not a copy of %s (%v)", loader, err)
	}
	// Every other loader that is installed here is copied as it is.
	for src, dst := range map[string]string{
		"/usr/lib/ipxe/ipxe.efi":                     "ipxe.efi",
		"/usr/lib/ipxe/snponly.efi":                  "snponly.efi",
		"/usr/lib/PXELINUX/pxelinux.0":               "pxelinux.0",
		"/usr/lib/syslinux/modules/bios/ldlinux.c32": "ldlinux.c32",
	} {
		if b, err := os.ReadFile(src); err == nil {
			if c, err := os.ReadFile(filepath.Join(dir, "root", dst)); err != nil || !bytes.Equal(b, c) {
				t.Errorf("root/%s is not a copy of %s (%v)", dst, src, err)
			}
		}
	}

	// The config loads as written; only the addresses are moved to free
	// ports, since the defaults (69, 8080, 8443) may be taken.
	ta, ha, hsa := clAddrs(t)
	s := clStart(t, nil, "serve", "--config", cfg, "--tftp-addr", ta, "--http-addr", ha, "--https-addr", hsa)
	if !strings.Contains(s.Log(), "root="+filepath.Join(dir, "root")+" data_dir="+dir+" ") {
		t.Errorf("the ready line does not show init's root and data_dir:\n%s", s.Log())
	}
	if got := clGet(t, "http://"+ha+"/undionly.kpxe"); got != string(want) {
		t.Errorf("HTTP undionly.kpxe: %d bytes, not the loader", len(got))
	}
	tftpOut := filepath.Join(t.TempDir(), "undionly.kpxe")
	if res, err := run(t, 30*time.Second, "atftp", "-g", "-r", "undionly.kpxe", "-l", tftpOut, Host(ta), Port(ta)); err != nil {
		t.Errorf("atftp undionly.kpxe: %v\n%s", err, res)
	} else if !bytes.Equal(mustRead(t, tftpOut), want) {
		t.Errorf("TFTP undionly.kpxe differs from %s", loader)
	}
	if _, err := os.Stat(filepath.Join(dir, "tls", "key.pem")); err != nil {
		t.Errorf("the TLS key is not in init's data_dir: %v", err)
	}
	s.Stop()

	// A second init keeps an edited config and never overwrites loaders.
	edited := append(mustRead(t, cfg), []byte("# edited by the operator\n")...)
	if err := os.WriteFile(cfg, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	custom := []byte("my own undionly build")
	if err := os.WriteFile(filepath.Join(dir, "root", "undionly.kpxe"), custom, 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = clRun(t, 30*time.Second, nil, "init", dir)
	if code != 0 {
		t.Fatalf("second init exited %d:\n%s", code, out)
	}
	if !bytes.Equal(mustRead(t, cfg), edited) {
		t.Errorf("a second init changed the config")
	}
	if !strings.Contains(out, "kept      "+cfg) {
		t.Errorf("the second init does not say it kept the config:\n%s", out)
	}
	if !bytes.Equal(mustRead(t, filepath.Join(dir, "root", "undionly.kpxe")), custom) {
		t.Errorf("a second init overwrote a loader")
	}

	// --force rewrites the config, still not the loaders.
	if out, code = clRun(t, 30*time.Second, nil, "init", "--force", dir); code != 0 {
		t.Fatalf("init --force exited %d:\n%s", code, out)
	}
	if bytes.Contains(mustRead(t, cfg), []byte("edited by the operator")) {
		t.Errorf("init --force kept the old config")
	}
	if !bytes.Equal(mustRead(t, filepath.Join(dir, "root", "undionly.kpxe")), custom) {
		t.Errorf("init --force overwrote a loader")
	}
}

// TestCLIDefaultsNoArguments runs `bootforge serve` as a new user would:
// no flags, no file, no environment. It needs the default ports, so they
// must be free; it creates /var/lib/bootforge if needed and removes what it
// added.
func TestCLIDefaultsNoArguments(t *testing.T) {
	need(t, "curl", "atftp")
	for _, p := range []struct{ network, addr string }{{"udp", ":69"}, {"tcp", ":8080"}, {"tcp", ":8443"}} {
		var err error
		if p.network == "udp" {
			var c net.PacketConn
			if c, err = net.ListenPacket("udp", p.addr); err == nil {
				c.Close()
			}
		} else {
			var l net.Listener
			if l, err = net.Listen("tcp", p.addr); err == nil {
				l.Close()
			}
		}
		if err != nil {
			t.Fatalf("this test runs bootforge on its default ports, but %s %s is not free (%v): stop whatever holds it and rerun", p.network, p.addr, err)
		}
	}

	const base = "/var/lib/bootforge"
	root, tlsDir := filepath.Join(base, "root"), filepath.Join(base, "tls")
	existed := func(p string) bool { _, err := os.Lstat(p); return err == nil }
	hadBase, hadRoot, hadTLS := existed(base), existed(root), existed(tlsDir)
	name := fmt.Sprintf("e2e-defaults-%d.txt", time.Now().UnixNano())
	file := filepath.Join(root, name)
	// Registered before the server starts, so it runs after the server stops.
	t.Cleanup(func() {
		os.Remove(file)
		switch {
		case !hadBase:
			os.RemoveAll(base)
		default:
			if !hadRoot {
				os.RemoveAll(root)
			}
			if !hadTLS {
				os.RemoveAll(tlsDir)
			}
		}
	})
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	content := fmt.Sprintf("hello from the defaults %d\n", time.Now().UnixNano())
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}

	s := clStart(t, nil, "serve")
	for _, want := range []string{"root=" + root, "data_dir=" + base, ":69", ":8080", ":8443"} {
		if !strings.Contains(s.Log(), want) {
			t.Errorf("ready line lacks %q:\n%s", want, s.Log())
		}
	}
	if got := clGet(t, "http://127.0.0.1:8080/"+name); got != content {
		t.Errorf("HTTP on 8080: %q", got)
	}
	out := filepath.Join(t.TempDir(), "got")
	if res, err := run(t, 30*time.Second, "atftp", "-g", "-r", name, "-l", out, "127.0.0.1", "69"); err != nil {
		t.Errorf("atftp on 69: %v\n%s", err, res)
	} else if string(mustRead(t, out)) != content {
		t.Errorf("TFTP on 69: %q", mustRead(t, out))
	}
	if got := clGet(t, "https://127.0.0.1:8443/"+name, "--cacert", filepath.Join(tlsDir, "cert.pem")); got != content {
		t.Errorf("HTTPS on 8443: %q", got)
	}
}
