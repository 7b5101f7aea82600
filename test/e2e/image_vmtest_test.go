package e2e

// `bootforge image test` (issue #12, "VM test") with the real binary, QEMU
// and firmware. Each version is built with `image build` from an ISO that
// xorriso makes of the suite's test kernel (Debian's signed vmlinuz) and
// initrd, with a boot command line that carries a bfmarker= word; the
// test initrd echoes the command line to the serial port (BootMarker), so
// a pass names the version that booted.
//
// Each test runs one VM at a time and none calls t.Parallel: `image test`
// starts its own namespace, server and QEMU, and TCG needs a core per VM.

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// ivtTimeout is the --timeout of a boot that must pass; ivtRunTimeout
// bounds the whole command (setup and cleanup included).
const (
	ivtTimeout    = "5m"
	ivtRunTimeout = 7 * time.Minute
)

// ivtSite is a config and a root holding built versions of image deb.
type ivtSite struct {
	Dir    string // the config's directory
	Config string
	Root   string
	Tmp    string // TMPDIR of the command: its work directories go there
}

func newIVTSite(t *testing.T) *ivtSite {
	t.Helper()
	need(t, "qemu-system-x86_64", "ip")
	if os.Geteuid() != 0 {
		t.Fatal("image test needs root (network namespaces)")
	}
	s := &ivtSite{Dir: t.TempDir(), Tmp: t.TempDir()}
	s.Root = filepath.Join(s.Dir, "root")
	s.Config = filepath.Join(s.Dir, "bootforge.yaml")
	if err := os.MkdirAll(s.Root, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := "root: " + s.Root + "\ndata_dir: " + filepath.Join(s.Dir, "data") + "\n"
	if err := os.WriteFile(s.Config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// addVersion builds deb@VERSION with the real `image build` from an ISO
// that xorriso makes of kernel (a file to copy) and the test initrd, with
// the boot command line cmdline.
func (s *ivtSite) addVersion(t *testing.T, version, kernel, cmdline string) {
	t.Helper()
	_, initrd := NetbootKernel(t)
	src := t.TempDir()
	copyFileTo(t, kernel, filepath.Join(src, "install", "vmlinuz"))
	copyFileTo(t, initrd, filepath.Join(src, "install", "initrd.gz"))
	iso := isoOf(t, src, "xorriso")
	out, code := clRun(t, 2*time.Minute, nil, "--config", s.Config, "image", "build", "deb@"+version, "--template", "linux",
		"--from", iso, "--kernel", "/install/vmlinuz", "--initrd", "/install/initrd.gz", "--cmdline", cmdline)
	if code != 0 {
		t.Fatalf("bootforge image build deb@%s: exit %d\n%s", version, code, out)
	}
}

// ivtCmdline is the manifest's command line of version v: without
// "quiet", so that the kernel's own lines reach the console.
func ivtCmdline(v string) string { return "panic=-1 bfmarker=deb-" + v }

// ivtMarker is --expect for version v: the initrd's line naming it.
func ivtMarker(v string) string {
	return regexp.QuoteMeta(BootMarker) + ` .*bfmarker=deb-` + regexp.QuoteMeta(v) + `( |$)`
}

// imageTest runs bootforge image test with the site's config and returns
// stdout and stderr together, the exit error and how long it took. env
// replaces PATH if set.
func (s *ivtSite) imageTest(t *testing.T, path string, args ...string) (string, error, time.Duration) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--config", s.Config, "image", "test"}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+s.Tmp)
	if path != "" {
		cmd.Env = append(cmd.Env, "PATH="+path)
	}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(ivtRunTimeout):
		cmd.Process.Signal(os.Interrupt) // it cleans up on SIGINT
		select {
		case err = <-done:
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			err = <-done
		}
		t.Errorf("bootforge image test %s ran longer than %s", strings.Join(args, " "), ivtRunTimeout)
	}
	return out.String(), err, time.Since(start)
}

var ivtNetnsRE = regexp.MustCompile(`namespace (bfvmtest-\S+),`)

// requireCleanedUp checks that the namespace the output names, its
// /etc/netns directory and the work directory are gone.
func (s *ivtSite) requireCleanedUp(t *testing.T, out string) {
	t.Helper()
	m := ivtNetnsRE.FindStringSubmatch(out)
	if m == nil {
		t.Errorf("the output names no namespace:\n%s", out)
	} else {
		for _, p := range []string{filepath.Join("/run/netns", m[1]), filepath.Join("/etc/netns", m[1])} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s is left behind", p)
			}
		}
		if list, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(list), m[1]) {
			t.Errorf("ip netns list still shows %s", m[1])
		}
	}
	if left, _ := os.ReadDir(s.Tmp); len(left) > 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
}

// requirePass checks a passing run's exit status and progress lines.
func requirePass(t *testing.T, out string, err error, took time.Duration, id, fw string) {
	t.Helper()
	t.Logf("image test %s --firmware %s: %s\n%s", id, fw, took.Round(time.Second), ivtTrim(out))
	if err != nil {
		t.Fatalf("bootforge image test %s --firmware %s: %v\n%s", id, fw, err, out)
	}
	for _, want := range []string{"server up (pid ", "VM started (pid ", "PASS " + id + " (" + fw + "): matched after "} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
}

// ivtTrim drops the console copy (--console) from a log of the output.
func ivtTrim(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		for _, p := range []string{"image test ", "server up", "VM started", "PASS ", "FAIL ", "bootforge:", "---", "note:"} {
			if strings.HasPrefix(l, p) {
				keep = append(keep, l)
				break
			}
		}
	}
	return strings.Join(keep, "\n")
}

// TestImageVMTestBIOS: SeaBIOS with QEMU's iPXE ROM boots the version
// through the private server to the initrd's marker.
func TestImageVMTestBIOS(t *testing.T) {
	s := newIVTSite(t)
	kernel, _ := NetbootKernel(t)
	s.addVersion(t, "1.0.0", kernel, ivtCmdline("1.0.0"))
	out, err, took := s.imageTest(t, "", "deb@1.0.0", "--firmware", "bios", "--expect", ivtMarker("1.0.0"), "--timeout", ivtTimeout)
	requirePass(t, out, err, took, "deb@1.0.0", "bios")
	if !strings.Contains(out, "bfmarker=deb-1.0.0 console=ttyS0") {
		t.Errorf("the matched line is not the marker with console=ttyS0 added:\n%s", out)
	}
	s.requireCleanedUp(t, out)
}

// TestImageVMTestUEFI: OVMF's own PXE client, snponly.efi (iPXE), then the
// kernel. This one relies on the default --expect, the kernel's line as it
// starts /init.
func TestImageVMTestUEFI(t *testing.T) {
	s := newIVTSite(t)
	kernel, _ := NetbootKernel(t)
	s.addVersion(t, "1.0.0", kernel, ivtCmdline("1.0.0"))
	out, err, took := s.imageTest(t, "", "deb@1.0.0", "--firmware", "uefi", "--timeout", ivtTimeout)
	requirePass(t, out, err, took, "deb@1.0.0", "uefi")
	if !regexp.MustCompile(`matched after [0-9.]+ s: .*Run /init as init process`).MatchString(out) {
		t.Errorf("the default --expect did not match the kernel's line:\n%s", out)
	}
	s.requireCleanedUp(t, out)
}

// TestImageVMTestSecureBoot: OVMF enforcing Secure Boot with Microsoft's
// keys: shim, Debian's signed GRUB, bootforge's grub.cfg, and Debian's
// signed kernel, which says that Secure Boot is on (seen through
// --console, the live console copy).
func TestImageVMTestSecureBoot(t *testing.T) {
	s := newIVTSite(t)
	kernel, _ := NetbootKernel(t)
	s.addVersion(t, "1.0.0", kernel, ivtCmdline("1.0.0"))
	out, err, took := s.imageTest(t, "", "deb@1.0.0", "--firmware", "secboot", "--console",
		"--expect", ivtMarker("1.0.0"), "--timeout", ivtTimeout)
	requirePass(t, out, err, took, "deb@1.0.0", "secboot")
	if !strings.Contains(out, sbEnabled) {
		t.Errorf("the console never said %q: not a Secure Boot boot\n%s", sbEnabled, out)
	}
	if !strings.Contains(out, "BOOT_IMAGE=/images/deb/1.0.0/vmlinuz") {
		t.Errorf("the kernel was not booted by GRUB from images/deb/1.0.0/:\n%s", ivtTrim(out))
	}
	s.requireCleanedUp(t, out)
}

// TestImageVMTestGarbageKernelFails: a version whose kernel is random
// bytes fails, with the console's tail (iPXE downloading it and refusing
// it) and the server's log of that VM.
func TestImageVMTestGarbageKernelFails(t *testing.T) {
	s := newIVTSite(t)
	junk := make([]byte, 4<<20)
	rand.Read(junk)
	garbage := filepath.Join(t.TempDir(), "garbage")
	if err := os.WriteFile(garbage, junk, 0o644); err != nil {
		t.Fatal(err)
	}
	s.addVersion(t, "1.0.1", garbage, ivtCmdline("1.0.1"))
	out, err, took := s.imageTest(t, "", "deb@1.0.1", "--firmware", "bios", "--expect", ivtMarker("1.0.1"), "--timeout", "3m")
	t.Logf("image test deb@1.0.1 (garbage kernel): %s\n%s", took.Round(time.Second), out)
	if err == nil {
		t.Fatalf("image test passed with a garbage kernel:\n%s", out)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Errorf("exit: %v", err)
	}
	for _, want := range []string{
		"FAIL deb@1.0.1 (bios)",
		"--- console tail (last 40 lines) ---",
		"images/deb/1.0.1/vmlinuz", // iPXE fetched it: the tail is the console's
		"--- server log for 52:54:00:",
		`msg="dhcp: lease"`,
		"path=/images/deb/1.0.1/vmlinuz status=200",
		"bootforge: image test deb@1.0.1 (bios) failed:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q", want)
		}
	}
	// It failed on iPXE's refusal, not by running out of time.
	if !strings.Contains(out, "the console printed a failure: ") {
		t.Errorf("it did not fail on the console's failure message")
	}
	s.requireCleanedUp(t, out)
}

// TestImageVMTestMissingVersion: a version that was never built is named
// as such, at once, before anything is set up.
func TestImageVMTestMissingVersion(t *testing.T) {
	s := newIVTSite(t)
	out, err, took := s.imageTest(t, "", "deb@9.9.9", "--firmware", "bios")
	if err == nil {
		t.Fatalf("image test of a missing version passed:\n%s", out)
	}
	want := "no built version deb@9.9.9: " + filepath.Join(s.Root, "images", "deb", "9.9.9", "manifest.json") + " does not exist"
	if !strings.Contains(out, want) {
		t.Errorf("want %q in:\n%s", want, out)
	}
	if strings.Contains(out, "namespace") || took > 10*time.Second {
		t.Errorf("it set things up (%s):\n%s", took, out)
	}
	for _, bad := range []string{"deb", "deb@1", "Deb@1.0.0", "deb@v1.0.0"} {
		if out, err, _ := s.imageTest(t, "", bad); err == nil || !strings.Contains(out, "bootforge:") {
			t.Errorf("image test %s: %v\n%s", bad, err, out)
		}
	}
	if out, err, _ := s.imageTest(t, "", "deb@9.9.9", "--firmware", "efi"); err == nil || !strings.Contains(out, "use bios, uefi or secboot") {
		t.Errorf("--firmware efi: %v\n%s", err, out)
	}
}

// TestImageVMTestMissingQEMU: without qemu-system-x86_64 it says what is
// missing and which package brings it, and leaves nothing behind.
func TestImageVMTestMissingQEMU(t *testing.T) {
	s := newIVTSite(t)
	kernel, _ := NetbootKernel(t)
	s.addVersion(t, "1.0.0", kernel, ivtCmdline("1.0.0"))
	bin := t.TempDir() // a PATH with ip and nothing else
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(ip, filepath.Join(bin, "ip")); err != nil {
		t.Fatal(err)
	}
	before, _ := exec.Command("ip", "netns", "list").Output()
	out, err, _ := s.imageTest(t, bin, "deb@1.0.0", "--firmware", "uefi")
	if err == nil {
		t.Fatalf("image test passed without QEMU:\n%s", out)
	}
	for _, want := range []string{"image test cannot run here", "qemu-system-x86_64: not found in PATH (Debian package qemu-system-x86)"} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "namespace") {
		t.Errorf("it set up a namespace:\n%s", out)
	}
	if after, _ := exec.Command("ip", "netns", "list").Output(); strings.Count(string(after), "bfvmtest-") > strings.Count(string(before), "bfvmtest-") {
		t.Errorf("a namespace was left: %s", after)
	}
	if left, _ := os.ReadDir(s.Tmp); len(left) > 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
}
