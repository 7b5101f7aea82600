// Package vmtest boots a built image in a virtual machine before it goes
// into the menus of real machines: the specification's "validate images in
// virtual machines before production rollout", and `bootforge image test`.
//
// A manifest can say a version is complete and its hashes right; only a
// boot says that the firmware, bootforge's loaders and menus, and the
// image's kernel, initrd or wimboot files work together. So the test
// boots the image the way a machine on the network would, through bootforge
// itself, and watches the serial console:
//
//   - a private bootforge (this same binary, `serve`) runs inside a fresh
//     network namespace, on a bridge of its own in 192.0.2.0/24, as the
//     only DHCP, TFTP and HTTP server there. Its root holds the loaders
//     (copied from Debian's packages, as `bootforge init` does) and the
//     image's files (hard links into the real root, or copies), and its
//     only profile has one entry, the image, as the default;
//   - QEMU (TCG) boots from the network over a tap on that bridge, with
//     SeaBIOS and QEMU's iPXE ROM, with OVMF's own PXE client, or with OVMF
//     enforcing Secure Boot (shim, signed GRUB, a signed kernel);
//   - the test passes when a console line matches the expected pattern,
//     and fails when a failure pattern (a kernel panic, a refused
//     signature, a loader that could not boot the image) matches first, or
//     when time runs out. A failure carries the console's tail and the
//     private server's log lines about the VM.
//
// Nothing is left behind on any path, Ctrl-C included: QEMU and the server
// are stopped by their PIDs, then the namespace, its /etc/netns directory
// (the private resolv.conf that keeps a DHCP client inside from touching
// the machine's) and the temporary directories are removed. It needs root
// (namespaces, bridges, taps), qemu-system-x86_64 and the firmware; what is
// missing is named before anything is set up.
//
// Only the network namespace sees traffic: the VM, the server and their
// addresses never leave it.
package vmtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"bootforge/internal/boot"
	"bootforge/internal/image"
)

// Defaults.
const (
	DefaultTimeout = 5 * time.Minute
	DefaultMemory  = 1024 // MiB
	// TailLines is how many console lines a failure shows.
	TailLines = 40
)

// How long the private server may take to start, and to stop on SIGTERM.
const (
	serverStartTimeout = 30 * time.Second
	serverStopGrace    = 10 * time.Second
	// settleDelay is how long a console line that matched while still
	// being written may take to end before it is judged as it is.
	settleDelay = time.Second
)

// Options configure one test.
type Options struct {
	// Root is the served root that holds images/NAME/VERSION/ (the config's
	// root).
	Root string
	// ID is the version to boot.
	ID image.ID
	// Firmware defaults to BIOS.
	Firmware Firmware
	// Expect is the pattern (Go regexp) a console line must match;
	// "" means DefaultLinuxExpect or DefaultWimbootExpect by the image's kind.
	Expect string
	// Timeout bounds the boot, from QEMU's start; 0 means DefaultTimeout.
	Timeout time.Duration
	// Memory is the VM's memory in MiB; 0 means DefaultMemory.
	Memory int
	// Binary is the bootforge executable that serves; "" means this one.
	Binary string
	// TempDir is where the private root, data dir and config go; "" means
	// os.TempDir(). Image files are hard-linked when it is on the same file
	// system as Root, copied otherwise.
	TempDir string
	// Progress gets one line per step; nil discards them.
	Progress io.Writer
	// Console, if not nil, gets the serial console as it comes.
	Console io.Writer
}

// Result is the outcome of a test that ran. A test that could not run
// (bad options, a missing manifest, a machine without QEMU, a failed
// setup, Ctrl-C) is an error from Run instead.
type Result struct {
	ID       image.ID
	Firmware Firmware
	Passed   bool
	// Line is the console line that decided: the expected one, or the
	// failure message. Empty after a timeout.
	Line string
	// Reason says why the test failed.
	Reason string
	// Elapsed is the time from QEMU's start to the verdict.
	Elapsed time.Duration
	// MAC and IP are the VM's.
	MAC, IP string
	// ConsoleTail is the console's last TailLines non-blank lines.
	ConsoleTail []string
	// ServerLog is what the private server logged about the VM (its MAC or
	// IP), with its warnings and errors.
	ServerLog []string
}

// Run boots o.ID in a VM and watches its console. ctx cancels it (Ctrl-C);
// everything it set up is removed before it returns, whatever happened.
func Run(ctx context.Context, o Options) (*Result, error) {
	return run(ctx, o, realSystem)
}

func run(ctx context.Context, o Options, sys system) (res *Result, err error) {
	if o.Firmware == "" {
		o.Firmware = BIOS
	}
	if _, err := ParseFirmware(string(o.Firmware)); err != nil {
		return nil, err
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Memory <= 0 {
		o.Memory = DefaultMemory
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	say := func(format string, args ...any) { fmt.Fprintf(progress, format+"\n", args...) }

	// Everything that can be known before touching the machine.
	m, err := ReadManifest(o.Root, o.ID)
	if err != nil {
		return nil, err
	}
	pl, err := planFor(m, o.ID, o.Firmware)
	if err != nil {
		return nil, err
	}
	expect := o.Expect
	if expect == "" {
		expect = DefaultLinuxExpect
		if m.Boot.Kind == boot.KindWimboot {
			expect = DefaultWimbootExpect
		}
	}
	expectRE, err := regexp.Compile(expect)
	if err != nil {
		return nil, fmt.Errorf("--expect %q: %v", expect, err)
	}
	versionDir := filepath.Join(o.Root, filepath.FromSlash(o.ID.Dir()))
	for _, f := range pl.Files {
		if st, err := os.Stat(filepath.Join(versionDir, filepath.FromSlash(f))); err != nil || !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%s: the manifest names %s, which is not a file in %s", o.ID, f, versionDir)
		}
	}
	if err := sys.preflight(o.Firmware); err != nil {
		return nil, err
	}
	bin := o.Binary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("finding the bootforge binary to serve with: %w", err)
		}
	}
	if m.Boot.Kind == boot.KindLinux && o.Expect == "" && slices.Contains(strings.Fields(m.Boot.Cmdline), "quiet") {
		say("note: the command line has \"quiet\", which hides the kernel line the default --expect waits for; pass --expect")
	}

	// From here on, every step registers its undo first.
	var undos []func() error
	defer func() {
		var errs []string
		for i := len(undos) - 1; i >= 0; i-- {
			if e := undos[i](); e != nil {
				errs = append(errs, e.Error())
			}
		}
		if len(errs) > 0 {
			cerr := fmt.Errorf("cleaning up: %s", strings.Join(errs, "; "))
			if err == nil {
				err = cerr
			} else {
				err = errors.Join(err, cerr)
			}
		}
	}()
	interrupted := func() error {
		if ctx.Err() != nil {
			return fmt.Errorf("image test %s: interrupted; cleaned up", o.ID)
		}
		return nil
	}

	tmp := o.TempDir
	if tmp == "" {
		tmp = os.TempDir()
	}
	sweepStale(tmp)
	work, err := os.MkdirTemp(tmp, fmt.Sprintf("%s%d-", workPrefix, os.Getpid()))
	if err != nil {
		return nil, err
	}
	undos = append(undos, func() error { return os.RemoveAll(work) })
	dirs := workDirs{
		Root:      filepath.Join(work, "root"),
		Data:      filepath.Join(work, "data"),
		Inventory: filepath.Join(work, "inventory"),
	}
	if err := copyLoaders(dirs.Root); err != nil {
		return nil, err
	}
	privDir := filepath.Join(dirs.Root, filepath.FromSlash(o.ID.Dir()))
	for _, f := range append(pl.Files, image.ManifestName) {
		if err := linkFile(filepath.Join(versionDir, filepath.FromSlash(f)), filepath.Join(privDir, filepath.FromSlash(f))); err != nil {
			return nil, fmt.Errorf("laying out %s: %w", f, err)
		}
	}

	mac := make(net.HardwareAddr, 6)
	rand.Read(mac[3:])
	copy(mac, []byte{0x52, 0x54, 0x00}) // QEMU's OUI
	n := newNetwork(newNetnsName(), mac)
	if err := n.check(); err != nil {
		return nil, err
	}
	cfgText, err := configYAML(serverConfig(n, o.Firmware, dirs, pl.Entry))
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(work, "bootforge.yaml")
	if err := os.WriteFile(cfgPath, cfgText, 0o600); err != nil {
		return nil, err
	}

	vf := vmFirmwares[o.Firmware]
	spec := vmSpec{Firmware: o.Firmware, Tap: n.Tap, MAC: mac.String(), Memory: o.Memory, ROM: vf.ROM.Src, Code: vf.Code.Src}
	if vf.Vars.Src != "" {
		spec.Vars = filepath.Join(work, filepath.Base(vf.Vars.Src))
		if err := copyFile(vf.Vars.Src, spec.Vars); err != nil {
			return nil, fmt.Errorf("OVMF variable store: %w", err)
		}
	}
	if err := interrupted(); err != nil {
		return nil, err
	}

	undoNetns, err := createNetns(ctx, n)
	undos = append(undos, undoNetns)
	if err != nil {
		if ierr := interrupted(); ierr != nil {
			return nil, ierr
		}
		return nil, fmt.Errorf("network namespace: %w", err)
	}
	say("image test %s (%s): namespace %s, bridge %s %s, VM %s at %s",
		o.ID, o.Firmware, n.Netns, n.Bridge, n.Server, mac, n.VMIP)

	// The private server.
	srvLog := newLineLog(100000)
	srv, err := startInNetns("bootforge serve", n.Netns, childEnv(), srvLog, srvLog, bin, "serve", "--config", cfgPath)
	if err != nil {
		return nil, err
	}
	undos = append(undos, func() error { return srv.stop(syscall.SIGTERM, serverStopGrace) })
	if err := waitReady(ctx, srv, srvLog); err != nil {
		if ierr := interrupted(); ierr != nil {
			return nil, ierr
		}
		return nil, err
	}
	say("server up (pid %d): DHCP, TFTP on %s:%d, HTTP on %s:%d", srv.PID(), n.Server.Addr(), tftpPort, n.Server.Addr(), httpPort)

	// The VM.
	con := NewConsole(expectRE, FailPattern(m.Boot.Kind))
	var conOut io.Writer = con
	if o.Console != nil {
		conOut = io.MultiWriter(con, o.Console)
	}
	qerr := newLineLog(1000)
	vm, err := startInNetns("qemu", n.Netns, childEnv(), conOut, qerr, qemuBinary, qemuArgs(spec)...)
	if err != nil {
		return nil, err
	}
	undos = append(undos, func() error { return vm.stop(syscall.SIGKILL, 0) })
	started := time.Now()
	say("VM started (pid %d): %s firmware, %d MiB, waiting up to %s for /%s/", vm.PID(), o.Firmware, o.Memory, o.Timeout, expectRE)

	res = &Result{ID: o.ID, Firmware: o.Firmware, MAC: mac.String(), IP: n.VMIP.String()}
	deadline := time.NewTimer(o.Timeout)
	defer deadline.Stop()
	// settle judges a line that matched while still being written, once it
	// has had a moment to end.
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	settling := false
watch:
	for {
		v, line, changed := con.Verdict()
		switch v {
		case Passed:
			res.Passed, res.Line = true, line
			break watch
		case Failed:
			res.Line, res.Reason = line, "the console printed a failure: "+line
			break watch
		}
		if !settling && con.Unfinished() {
			settle.Reset(settleDelay)
			settling = true
		}
		select {
		case <-changed:
		case <-settle.C:
			con.Settle()
			settling = false
		case <-vm.done:
			if con.Settle() != Pending {
				continue // it printed the verdict on its way out
			}
			res.Reason = fmt.Sprintf("QEMU exited (%v) before the console matched", vm.err)
			if qe := strings.Join(tail(qerr.Lines(), 5), "; "); qe != "" {
				res.Reason += ": " + qe
			}
			break watch
		case <-srv.done:
			res.Reason = fmt.Sprintf("the private server exited (%v)", srv.err)
			break watch
		case <-deadline.C:
			res.Reason = fmt.Sprintf("no console line matched /%s/ within %s", expectRE, o.Timeout)
			break watch
		case <-ctx.Done():
			return nil, interrupted()
		}
	}
	res.Elapsed = time.Since(started)

	// Stop both now, so that the server's log is complete.
	if err := vm.stop(syscall.SIGKILL, 0); err != nil {
		return nil, err
	}
	if err := srv.stop(syscall.SIGTERM, serverStopGrace); err != nil {
		return nil, err
	}
	res.ConsoleTail = con.Tail(TailLines)
	res.ServerLog = logLinesFor(srvLog.Lines(), res.MAC, res.IP)
	return res, nil
}

// waitReady waits until the server logs that it is ready and serves DHCP.
func waitReady(ctx context.Context, srv *proc, log *lineLog) error {
	deadline := time.NewTimer(serverStartTimeout)
	defer deadline.Stop()
	for {
		changed := log.wait()
		for _, l := range log.Lines() {
			if strings.Contains(l, `msg="bootforge ready"`) {
				if !strings.Contains(l, "dhcp_on=") {
					return fmt.Errorf("the private server is up but serves no DHCP:\n  %s", l)
				}
				return nil
			}
		}
		select {
		case <-changed:
		case <-srv.done:
			return fmt.Errorf("the private server exited (%v) before it was ready; its log:\n  %s",
				srv.err, strings.Join(tail(log.Lines(), 20), "\n  "))
		case <-deadline.C:
			return fmt.Errorf("the private server was not ready within %s; its log:\n  %s",
				serverStartTimeout, strings.Join(tail(log.Lines(), 20), "\n  "))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
