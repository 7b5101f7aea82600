package e2e

// An isolated boot network per test: a network namespace holding a bridge
// (br0, 192.0.2.1/24 by default), tap devices for VMs, and veth-joined
// neighbour namespaces for DHCP clients and servers. Everything is created
// inside namespaces this package names (bfe2e-<pid>-<n>), so interface names
// never clash between tests, and everything is removed in t.Cleanup: the
// processes still running in the namespaces are killed, then the
// namespaces deleted.
//
// Only addresses from 192.0.2.0/24, 198.51.100.0/24 and 198.18.0.0/15 are
// accepted.

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// labPrefix starts every namespace name this package creates.
const labPrefix = "bfe2e-"

var (
	labSeq       atomic.Int64
	labSweepOnce sync.Once
)

// allowedNets are the only networks a lab may use.
var allowedNets = []netip.Prefix{
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
}

// LabOptions tweak NewLabWith.
type LabOptions struct {
	// Addr is the bridge address with prefix length; default 192.0.2.1/24.
	Addr string
}

// Lab is a namespace with a bridge.
type Lab struct {
	t      testing.TB
	Netns  string       // namespace name, for ip netns exec
	Bridge string       // "br0"
	Prefix netip.Prefix // bridge address and prefix length, e.g. 192.0.2.1/24
	mu     sync.Mutex
	taps   int
	hosts  []*LabHost
}

// LabHost is a neighbour namespace joined to the lab bridge by a veth pair.
type LabHost struct {
	Lab   *Lab
	Netns string       // namespace name
	Iface string       // interface name inside Netns ("eth0")
	Addr  netip.Prefix // address on Iface; invalid if none was set
}

// NewLab creates a lab with br0 at 192.0.2.1/24.
func NewLab(t testing.TB) *Lab {
	t.Helper()
	return NewLabWith(t, LabOptions{})
}

// NewLabWith creates a lab as o says.
func NewLabWith(t testing.TB, o LabOptions) *Lab {
	t.Helper()
	need(t, "ip")
	if os.Geteuid() != 0 {
		t.Fatal("the network lab needs root (network namespaces, bridges, taps)")
	}
	if o.Addr == "" {
		o.Addr = "192.0.2.1/24"
	}
	p, err := netip.ParsePrefix(o.Addr)
	if err != nil {
		t.Fatalf("lab address %q: %v", o.Addr, err)
	}
	checkAllowed(t, p)
	labSweepOnce.Do(sweepStaleLabs)
	l := &Lab{t: t, Netns: newNetnsName(), Bridge: "br0", Prefix: p}
	addNetns(t, l.Netns)
	l.MustExec("ip", "link", "set", "lo", "up")
	l.MustExec("ip", "link", "add", l.Bridge, "type", "bridge", "forward_delay", "0", "stp_state", "0")
	l.MustExec("ip", "addr", "add", p.String(), "dev", l.Bridge)
	l.MustExec("ip", "link", "set", l.Bridge, "up")
	return l
}

// IP returns the bridge address, e.g. 192.0.2.1.
func (l *Lab) IP() string { return l.Prefix.Addr().String() }

// Command returns a command that runs inside the lab namespace.
func (l *Lab) Command(name string, args ...string) *exec.Cmd {
	return netnsCommand(l.Netns, name, args...)
}

// Exec runs a command in the lab namespace and returns its combined output.
func (l *Lab) Exec(timeout time.Duration, name string, args ...string) (string, error) {
	return netnsRun(l.Netns, timeout, name, args...)
}

// MustExec runs a command in the lab namespace and fails the test on error.
func (l *Lab) MustExec(name string, args ...string) string {
	l.t.Helper()
	out, err := l.Exec(30*time.Second, name, args...)
	if err != nil {
		l.t.Fatalf("in %s: %s %s: %v\n%s", l.Netns, name, strings.Join(args, " "), err, out)
	}
	return out
}

// AddTap creates a tap device on the bridge and returns its name (valid in
// the lab namespace only, where QEMU must run).
func (l *Lab) AddTap(t testing.TB) string {
	t.Helper()
	l.mu.Lock()
	name := fmt.Sprintf("tap%d", l.taps)
	l.taps++
	l.mu.Unlock()
	l.MustExec("ip", "tuntap", "add", "dev", name, "mode", "tap")
	l.MustExec("ip", "link", "set", name, "master", l.Bridge)
	l.MustExec("ip", "link", "set", name, "up")
	return name
}

// AddHost creates a namespace joined to the bridge through a veth pair and
// gives its end (eth0) the address ip: "192.0.2.10/24", or "192.0.2.10" to
// take the lab's prefix length, or "" for no address (a DHCP client). The
// namespace is deleted, and its processes killed, when the test ends.
func (l *Lab) AddHost(t testing.TB, ip string) *LabHost {
	t.Helper()
	h := &LabHost{Lab: l, Netns: newNetnsName(), Iface: "eth0"}
	if ip != "" {
		if !strings.Contains(ip, "/") {
			ip += "/" + strconv.Itoa(l.Prefix.Bits())
		}
		p, err := netip.ParsePrefix(ip)
		if err != nil {
			t.Fatalf("host address %q: %v", ip, err)
		}
		checkAllowed(t, p)
		h.Addr = p
	}
	l.mu.Lock()
	peer := fmt.Sprintf("vh%d", len(l.hosts))
	l.hosts = append(l.hosts, h)
	l.mu.Unlock()
	addNetns(t, h.Netns)
	// Both ends are created inside the lab namespace; one moves at once.
	l.MustExec("ip", "link", "add", peer, "type", "veth", "peer", "name", h.Iface, "netns", h.Netns)
	l.MustExec("ip", "link", "set", peer, "master", l.Bridge)
	l.MustExec("ip", "link", "set", peer, "up")
	h.MustExec("ip", "link", "set", "lo", "up")
	if h.Addr.IsValid() {
		h.MustExec("ip", "addr", "add", h.Addr.String(), "dev", h.Iface)
	}
	h.MustExec("ip", "link", "set", h.Iface, "up")
	return h
}

// IP returns the host address without prefix length, or "".
func (h *LabHost) IP() string {
	if !h.Addr.IsValid() {
		return ""
	}
	return h.Addr.Addr().String()
}

// Command returns a command that runs inside the host namespace.
func (h *LabHost) Command(name string, args ...string) *exec.Cmd {
	return netnsCommand(h.Netns, name, args...)
}

// Exec runs a command in the host namespace and returns its combined output.
func (h *LabHost) Exec(timeout time.Duration, name string, args ...string) (string, error) {
	return netnsRun(h.Netns, timeout, name, args...)
}

// MustExec runs a command in the host namespace and fails the test on error.
func (h *LabHost) MustExec(name string, args ...string) string {
	h.Lab.t.Helper()
	out, err := h.Exec(30*time.Second, name, args...)
	if err != nil {
		h.Lab.t.Fatalf("in %s: %s %s: %v\n%s", h.Netns, name, strings.Join(args, " "), err, out)
	}
	return out
}

func checkAllowed(t testing.TB, p netip.Prefix) {
	t.Helper()
	for _, n := range allowedNets {
		if n.Contains(p.Addr()) && p.Bits() >= n.Bits() {
			return
		}
	}
	t.Fatalf("address %s is outside the test networks 192.0.2.0/24, 198.51.100.0/24, 198.18.0.0/15", p)
}

func newNetnsName() string {
	return fmt.Sprintf("%s%d-%d", labPrefix, os.Getpid(), labSeq.Add(1))
}

// netnsCommand runs name inside netns. ip netns exec execs the program
// itself, so the command's pid is the program's.
func netnsCommand(netns, name string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", netns, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

func netnsRun(netns string, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", netns, name}, args...)...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %s: %w", timeout, ctx.Err())
	}
	return string(out), err
}

func mustRun(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// killNetnsProcs SIGKILLs every process left in netns and waits for them
// to go, so that the namespace can be deleted cleanly.
func killNetnsProcs(netns string) {
	for i := 0; i < 50; i++ {
		out, _ := exec.Command("ip", "netns", "pids", netns).Output()
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			return
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil && pid > 1 && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// netnsEtc is where ip netns exec finds files to bind-mount over /etc.
const netnsEtc = "/etc/netns"

// addNetns creates netns, with a private /etc/resolv.conf: ip netns exec
// bind-mounts /etc/netns/<name>/resolv.conf over /etc/resolv.conf, so a DHCP
// client script run in the namespace (dhclient-script, udhcpc's
// default.script) writes there, not into the machine's resolver config.
// The namespace, its processes and that directory go when the test ends.
func addNetns(t testing.TB, netns string) {
	t.Helper()
	etc := filepath.Join(netnsEtc, netns)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"),
		[]byte("# private resolv.conf of test namespace "+netns+"\n"), 0o644); err != nil {
		os.RemoveAll(etc)
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "netns", "add", netns).CombinedOutput(); err != nil {
		os.RemoveAll(etc)
		t.Fatalf("ip netns add %s: %v\n%s", netns, err, out)
	}
	t.Cleanup(func() { deleteNetns(t, netns) })
}

func deleteNetns(t testing.TB, netns string) {
	killNetnsProcs(netns)
	if out, err := exec.Command("ip", "netns", "del", netns).CombinedOutput(); err != nil {
		t.Errorf("ip netns del %s: %v\n%s", netns, err, out)
	}
	os.RemoveAll(filepath.Join(netnsEtc, netns))
}

// sweepStaleLabs deletes namespaces left by earlier runs of this package
// whose process is gone (a crashed or killed go test).
func sweepStaleLabs() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], labPrefix) {
			continue
		}
		name := f[0]
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(name, labPrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || err == syscall.EPERM {
			continue // still running: another test process owns it
		}
		killNetnsProcs(name)
		exec.Command("ip", "netns", "del", name).Run()
	}
	// Private /etc directories whose namespace is gone.
	dirs, _ := filepath.Glob(filepath.Join(netnsEtc, labPrefix+"*"))
	for _, d := range dirs {
		name := filepath.Base(d)
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(name, labPrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || err == syscall.EPERM {
			continue
		}
		if _, err := os.Stat(filepath.Join("/run/netns", name)); os.IsNotExist(err) {
			os.RemoveAll(d)
		}
	}
}
