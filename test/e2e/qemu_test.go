package e2e

// Boot a QEMU VM from the lab network and watch its serial console.
//
// BIOS: e1000 with QEMU's own iPXE option ROM. UEFI: OVMF (a private copy of
// OVMF_VARS.fd per VM) with virtio-net-pci and romfile= (empty), so that
// EDK2's own PXE client does the DHCP/TFTP as on real UEFI machines.
// Always TCG, never KVM. The VM is killed when the test ends.

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// OVMF firmware images (package ovmf).
const (
	ovmfCode = "/usr/share/OVMF/OVMF_CODE.fd"
	ovmfVars = "/usr/share/OVMF/OVMF_VARS.fd"
)

var vmSeq atomic.Int64

// VMOptions configure StartVM and BootVM.
type VMOptions struct {
	Lab      *Lab
	Tap      string        // tap in Lab; default: a new one (Lab.AddTap)
	Firmware string        // "bios" (default) or "uefi"
	MAC      string        // default: a unique 52:54:00:xx:xx:xx
	Memory   int           // MiB; default 256 for BIOS, 512 for UEFI
	Timeout  time.Duration // BootVM: how long to wait for Expect; default 120 s
	// Expect (BootVM) is a regexp to wait for on the serial console. It is
	// matched as the output streams in, so end it with \n to match whole
	// lines only.
	Expect string
	NIC    string // override the NIC model (e.g. "virtio-net-pci")
	// HTTPBootOnly (uefi): turn off EDK2's PXE and IPv6 with OVMF's fw_cfg
	// knobs (opt/org.tianocore/IPv4PXESupport, IPv6Support), so the boot
	// manager's first network entry is "UEFI HTTPv4". Without it OVMF tries
	// PXEv4, PXEv6, HTTPv4, HTTPv6 in that order, and an unanswered PXEv6
	// alone costs about 70 s under TCG.
	HTTPBootOnly bool
	Args         []string // extra QEMU arguments
}

// VM is a running QEMU.
type VM struct {
	t       testing.TB
	cmd     *exec.Cmd
	MAC     string
	Tap     string
	Started time.Time
	console *consoleLog
	done    chan struct{}
	waitErr error
	shown   atomic.Bool // the console tail is already in the test log
}

// consoleLog is the serial console, with the time each chunk arrived.
type consoleLog struct {
	mu     sync.Mutex
	buf    strings.Builder
	lines  []TimedLine
	cur    strings.Builder
	start  time.Time
	update chan struct{} // closed and replaced on every write
}

// TimedLine is a console line and when (since VM start) it was completed.
type TimedLine struct {
	At   time.Duration
	Text string
}

func (c *consoleLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	at := time.Since(c.start)
	for _, b := range p {
		if b == '\n' {
			c.lines = append(c.lines, TimedLine{At: at, Text: CleanConsole(c.cur.String())})
			c.cur.Reset()
			continue
		}
		c.cur.WriteByte(b)
	}
	close(c.update)
	c.update = make(chan struct{})
	return len(p), nil
}

func (c *consoleLog) snapshot() (string, chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String(), c.update
}

// ansiRE matches terminal escape sequences that firmware writes.
var ansiRE = regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|[()][0-9A-Za-z]|[=>c78])`)

// CleanConsole strips escape sequences and carriage returns.
func CleanConsole(s string) string {
	s = ansiRE.ReplaceAllString(s, "")
	return strings.ReplaceAll(s, "\r", "")
}

// StartVM starts QEMU in the lab namespace and returns at once.
func StartVM(t testing.TB, o VMOptions) *VM {
	t.Helper()
	need(t, "qemu-system-x86_64")
	if o.Lab == nil {
		t.Fatal("VMOptions.Lab is required")
	}
	if o.Tap == "" {
		o.Tap = o.Lab.AddTap(t)
	}
	if o.MAC == "" {
		n := vmSeq.Add(1)
		o.MAC = fmt.Sprintf("52:54:00:%02x:%02x:%02x", os.Getpid()&0xff, (n>>8)&0xff, n&0xff)
	}
	args := []string{"-accel", "tcg", "-nodefaults", "-display", "none",
		"-serial", "stdio", "-monitor", "none", "-parallel", "none", "-no-reboot",
		"-netdev", "tap,id=n0,ifname=" + o.Tap + ",script=no,downscript=no"}
	switch o.Firmware {
	case "", "bios":
		if o.Memory == 0 {
			o.Memory = 256
		}
		nic := o.NIC
		if nic == "" {
			nic = "e1000"
		}
		// graphics=off makes SeaBIOS copy BIOS text output (its own and
		// iPXE's) to the serial port, so a failing boot shows how far it got.
		args = append(args, "-machine", "graphics=off", "-boot", "n", "-device", nic+",netdev=n0,mac="+o.MAC)
	case "uefi", "uefi-secboot":
		// uefi-secboot is LAB.md's Secure Boot machine: q35 with SMM, the
		// secboot OVMF and the variable store with Microsoft's keys, so
		// Secure Boot is enforced.
		code, varsSrc := ovmfCode, ovmfVars
		if o.Firmware == "uefi-secboot" {
			code, varsSrc = ovmfCodeSecboot, ovmfVarsMS
			args = append(args, "-machine", "q35,smm=on", "-global", "ICH9-LPC.disable_s3=1")
		}
		for _, f := range []string{code, varsSrc} {
			if _, err := os.Stat(f); err != nil {
				t.Fatalf("UEFI firmware missing (package ovmf): %v", err)
			}
		}
		if o.Memory == 0 {
			o.Memory = 512
		}
		vars := filepath.Join(t.TempDir(), filepath.Base(varsSrc))
		b, err := os.ReadFile(varsSrc)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vars, b, 0o644); err != nil {
			t.Fatal(err)
		}
		nic := o.NIC
		if nic == "" {
			nic = "virtio-net-pci"
		}
		args = append(args,
			"-drive", "if=pflash,format=raw,readonly=on,file="+code,
			"-drive", "if=pflash,format=raw,file="+vars,
			"-device", nic+",netdev=n0,mac="+o.MAC+",romfile=")
		if o.HTTPBootOnly {
			args = append(args,
				"-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=no",
				"-fw_cfg", "name=opt/org.tianocore/IPv6Support,string=no")
		}
	default:
		t.Fatalf("VMOptions.Firmware %q: want bios, uefi or uefi-secboot", o.Firmware)
	}
	if o.HTTPBootOnly && o.Firmware != "uefi" {
		t.Fatal("VMOptions.HTTPBootOnly needs Firmware uefi")
	}
	args = append(args, "-m", fmt.Sprint(o.Memory))
	args = append(args, o.Args...)

	vm := &VM{t: t, MAC: o.MAC, Tap: o.Tap, done: make(chan struct{}),
		console: &consoleLog{update: make(chan struct{})}}
	vm.cmd = o.Lab.Command("qemu-system-x86_64", args...)
	vm.cmd.Stdin = nil // /dev/null
	out, err := vm.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	vm.cmd.Stderr = vm.cmd.Stdout
	vm.Started = time.Now()
	vm.console.start = vm.Started
	if err := vm.cmd.Start(); err != nil {
		t.Fatalf("starting qemu: %v", err)
	}
	go func() {
		io.Copy(vm.console, bufio.NewReader(out))
		vm.waitErr = vm.cmd.Wait()
		close(vm.done)
	}()
	t.Cleanup(func() {
		vm.Kill()
		if t.Failed() && !vm.shown.Load() {
			t.Logf("VM %s console tail:\n%s", vm.MAC, vm.Tail(40))
		}
	})
	return vm
}

// BootVM starts a VM and waits until o.Expect matches its serial console;
// it returns the VM and the match. On timeout, or if QEMU exits first, the
// test fails with the tail of the console.
func BootVM(t testing.TB, o VMOptions) (*VM, []string) {
	t.Helper()
	if o.Expect == "" {
		t.Fatal("VMOptions.Expect is required")
	}
	re, err := regexp.Compile(o.Expect)
	if err != nil {
		t.Fatalf("VMOptions.Expect: %v", err)
	}
	if o.Timeout == 0 {
		o.Timeout = 120 * time.Second
	}
	vm := StartVM(t, o)
	return vm, vm.Expect(re, o.Timeout)
}

// Expect waits until re matches the console (escape sequences and carriage
// returns stripped) and returns the submatches.
func (vm *VM) Expect(re *regexp.Regexp, timeout time.Duration) []string {
	vm.t.Helper()
	m, err := vm.WaitFor(re, timeout)
	if err != nil {
		vm.shown.Store(true)
		vm.t.Fatalf("%v\nconsole tail:\n%s", err, vm.Tail(40))
	}
	return m
}

// WaitFor is Expect that returns an error instead of failing the test.
func (vm *VM) WaitFor(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		raw, update := vm.console.snapshot()
		if m := re.FindStringSubmatch(CleanConsole(raw)); m != nil {
			return m, nil
		}
		select {
		case <-update:
		case <-vm.done:
			raw, _ := vm.console.snapshot()
			if m := re.FindStringSubmatch(CleanConsole(raw)); m != nil {
				return m, nil
			}
			return nil, fmt.Errorf("qemu exited (%v) after %s before %q appeared on the console",
				vm.waitErr, time.Since(vm.Started).Round(time.Millisecond), re)
		case <-deadline.C:
			return nil, fmt.Errorf("%q did not appear on the console within %s", re, timeout)
		}
	}
}

// Console returns the serial output so far, escape sequences stripped.
func (vm *VM) Console() string {
	raw, _ := vm.console.snapshot()
	return CleanConsole(raw)
}

// Lines returns the complete console lines so far with their arrival times.
func (vm *VM) Lines() []TimedLine {
	vm.console.mu.Lock()
	defer vm.console.mu.Unlock()
	return append([]TimedLine(nil), vm.console.lines...)
}

// Tail returns the last n non-empty console lines.
func (vm *VM) Tail(n int) string {
	var lines []string
	for _, l := range strings.Split(vm.Console(), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Elapsed is the time since QEMU started.
func (vm *VM) Elapsed() time.Duration { return time.Since(vm.Started) }

// Exited reports whether QEMU has exited, waiting up to timeout.
func (vm *VM) Exited(timeout time.Duration) bool {
	select {
	case <-vm.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Kill stops QEMU (SIGKILL) and waits for it. Called at test end.
func (vm *VM) Kill() {
	select {
	case <-vm.done:
		return
	default:
	}
	vm.cmd.Process.Kill()
	select {
	case <-vm.done:
	case <-time.After(10 * time.Second):
		vm.t.Errorf("qemu (pid %d) did not exit after SIGKILL", vm.cmd.Process.Pid)
	}
}
