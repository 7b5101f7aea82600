package vmtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// netnsPrefix starts the name of every namespace this package creates:
// bfvmtest-<pid>-<random>, so that a namespace left by a killed run can
// be told from one in use.
const netnsPrefix = "bfvmtest-"

// workPrefix starts the name of a run's work directory (private root, data
// dir, config): bootforge-vmtest-<pid>-<random>.
const workPrefix = "bootforge-vmtest-"

// Where ip netns keeps namespaces, and where ip netns exec finds the files
// it mounts over /etc for processes inside.
const (
	netnsRun = "/run/netns"
	netnsEtc = "/etc/netns"
)

// newNetnsName is a fresh namespace name for this process.
func newNetnsName() string {
	b := make([]byte, 3)
	rand.Read(b)
	return fmt.Sprintf("%s%d-%s", netnsPrefix, os.Getpid(), hex.EncodeToString(b))
}

// ipCmd runs ip with args and returns its error with its output.
func ipCmd(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// createNetns creates n's namespace with its own resolv.conf, a bridge
// with the server's address and a tap device on it for QEMU. The
// resolv.conf comes first: ip netns exec mounts it over /etc/resolv.conf,
// so a DHCP client inside can only ever rewrite that copy, never the
// machine's. undo removes whatever was made, also when err is not nil.
func createNetns(ctx context.Context, n network) (undo func() error, err error) {
	etc := filepath.Join(netnsEtc, n.Netns)
	var undos []func() error
	undo = func() error {
		var errs []string
		for i := len(undos) - 1; i >= 0; i-- {
			if err := undos[i](); err != nil {
				errs = append(errs, err.Error())
			}
		}
		undos = nil
		if len(errs) > 0 {
			return fmt.Errorf("removing namespace %s: %s", n.Netns, strings.Join(errs, "; "))
		}
		return nil
	}
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return undo, err
	}
	undos = append(undos, func() error { return os.RemoveAll(etc) })
	resolv := "# private resolv.conf of bootforge image test namespace " + n.Netns + "\n"
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte(resolv), 0o644); err != nil {
		return undo, err
	}
	if err := ipCmd(ctx, "netns", "add", n.Netns); err != nil {
		return undo, err
	}
	undos = append(undos, func() error { return ipCmd(context.Background(), "netns", "del", n.Netns) })
	// ip -n enters the namespace for one command without exec'ing anything.
	steps := [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", n.Bridge, "type", "bridge", "forward_delay", "0", "stp_state", "0"},
		{"addr", "add", n.Server.String(), "dev", n.Bridge},
		{"link", "set", n.Bridge, "up"},
		{"tuntap", "add", "dev", n.Tap, "mode", "tap"},
		{"link", "set", n.Tap, "master", n.Bridge},
		{"link", "set", n.Tap, "up"},
	}
	for _, s := range steps {
		if err := ipCmd(ctx, append([]string{"-n", n.Netns}, s...)...); err != nil {
			return undo, err
		}
	}
	return undo, nil
}

// sweepStale deletes what an earlier run left when it was killed (and so
// could not clean up): namespaces, their /etc/netns directories and work
// directories in tmp whose process is gone. It kills nothing; a
// namespace's devices go with it.
func sweepStale(tmp string) {
	names, _ := filepath.Glob(filepath.Join(netnsRun, netnsPrefix+"*"))
	for _, p := range names {
		if name := filepath.Base(p); ownerGone(strings.TrimPrefix(name, netnsPrefix)) {
			ipCmd(context.Background(), "netns", "del", name)
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(netnsEtc, netnsPrefix+"*"))
	for _, d := range dirs {
		name := filepath.Base(d)
		if _, err := os.Stat(filepath.Join(netnsRun, name)); os.IsNotExist(err) && ownerGone(strings.TrimPrefix(name, netnsPrefix)) {
			os.RemoveAll(d)
		}
	}
	work, _ := filepath.Glob(filepath.Join(tmp, workPrefix+"*"))
	for _, d := range work {
		if ownerGone(strings.TrimPrefix(filepath.Base(d), workPrefix)) {
			os.RemoveAll(d)
		}
	}
}

// ownerGone reads "<pid>-..." and reports whether that process is gone.
func ownerGone(s string) bool {
	pidStr, _, ok := strings.Cut(s, "-")
	pid, err := strconv.Atoi(pidStr)
	if !ok || err != nil || pid <= 1 || pid == os.Getpid() {
		return false
	}
	return syscall.Kill(pid, 0) == syscall.ESRCH
}
