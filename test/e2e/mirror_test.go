package e2e

// Mirrors (issue #16, item 3): a second bootforge pulls the primary's
// active image versions with `bootforge mirror sync`, and the primary
// sends the clients of the mirror's subnet there for the files of image
// entries, once it has verified the mirror.
//
//   - TestMirrorSyncTampered (loopback): a file of the primary's served
//     copy with one byte flipped (same size) is refused by name, nothing
//     of the version is installed, and the sync exits non-zero; with the
//     byte restored the version is installed and active on the mirror.
//   - TestMirrorSyncResume: a sync killed mid-file (the primary's side of
//     the link slowed with tc) resumes with a Range request, which the
//     primary answers 206.
//   - TestMirrorBootRemote: the primary (192.0.2.1, in the lab namespace)
//     serves DHCP on a "remote" bridge, 198.51.100.0/24, where the mirror
//     (198.51.100.2, its own namespace) and a BIOS VM are. The VM boots an
//     image entry with kernel and initrd from the mirror: the mirror's
//     access log shows them, the primary's does not. Also: the 302 for a
//     client of the mirror's subnet (curl), the metric, the check item,
//     and the fallback to the primary once the mirror is gone.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mirrorBuild builds deb@1.0.0 from the test kernel and initrd into e with
// the command line cmdline and makes it active.
func mirrorBuild(t *testing.T, e imgEnv, cmdline string) {
	t.Helper()
	k, i := NetbootKernel(t)
	src := t.TempDir()
	kernel, initrd := filepath.Join(src, "vmlinuz"), filepath.Join(src, "initrd.gz")
	copyFileTo(t, k, kernel)
	copyFileTo(t, i, initrd)
	e.mustBuild(t, "deb@1.0.0", "--template", "linux", "--kernel", kernel, "--initrd", initrd, "--cmdline", cmdline)
	if out, code := clRun(t, time.Minute, nil, "image", "promote", "deb@1.0.0", "--root", e.root, "--data-dir", e.data); code != 0 {
		t.Fatalf("image promote: exit %d\n%s", code, out)
	}
}

// mirrorSyncCmd is `bootforge mirror sync base` into e, in netns if given.
func mirrorSyncCmd(netns, base string, e imgEnv, extra ...string) *exec.Cmd {
	args := append([]string{"mirror", "sync", base, "--root", e.root, "--data-dir", e.data}, extra...)
	var cmd *exec.Cmd
	if netns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", netns, binary}, args...)...)
	} else {
		cmd = exec.Command(binary, args...)
	}
	cmd.Env = clEnv()
	return cmd
}

// mirrorSync runs a sync to its end and returns its output and exit code.
func mirrorSync(t *testing.T, netns, base string, e imgEnv, extra ...string) (string, int) {
	t.Helper()
	cmd := mirrorSyncCmd(netns, base, e, extra...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := runWithin(cmd, 3*time.Minute)
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	case err != nil:
		t.Fatalf("mirror sync: %v\n%s", err, out.String())
	}
	return out.String(), 0
}

func runWithin(cmd *exec.Cmd, timeout time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("still running after %s", timeout)
	}
}

// mirrorHolds fails unless the mirror has deb@1.0.0 with the primary's
// manifest, byte for byte, and active.
func mirrorHolds(t *testing.T, primary, mirror imgEnv) {
	t.Helper()
	want, err := os.ReadFile(filepath.Join(primary.versionDir("deb", "1.0.0"), "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(mirror.versionDir("deb", "1.0.0"), "manifest.json"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the mirror's manifest (%v) is not the primary's:\n%s", err, got)
	}
	dir := mirror.versionDir("deb", "1.0.0")
	m := loadManifest(t, dir)
	var files []string
	for _, f := range m.Files {
		files = append(files, filepath.Join(dir, f.Path))
	}
	sums := sha256sums(t, files...)
	for _, f := range m.Files {
		if got := sums[filepath.Join(dir, f.Path)]; got != f.SHA256 {
			t.Errorf("the mirror's %s: sha256 %s, the manifest says %s", f.Path, got, f.SHA256)
		}
	}
	if len(m.Files) != 2 {
		t.Errorf("the manifest lists %d files, want vmlinuz and initrd.gz", len(m.Files))
	}
	out, code := clRun(t, time.Minute, nil, "image", "list", "--json", "--root", mirror.root, "--data-dir", mirror.data)
	if code != 0 || !regexp.MustCompile(`"version":\s*"1.0.0",\s*"state":\s*"active"`).MatchString(out) {
		t.Fatalf("image list on the mirror: exit %d, want deb@1.0.0 active:\n%s", code, out)
	}
}

// The primary's served copy of the initrd has one byte flipped (same
// size, so the primary's own guard still serves it): the sync refuses it
// by name with both digests and installs nothing.
func TestMirrorSyncTampered(t *testing.T) {
	t.Parallel()
	primary, mirror := newImgEnv(t), newImgEnv(t)
	mirrorBuild(t, primary, "console=ttyS0 panic=-1")
	s := StartServer(t, ServerOptions{Root: primary.root, Args: []string{"--data-dir", primary.data}})
	base := "http://" + s.HTTPAddr

	initrd := filepath.Join(primary.versionDir("deb", "1.0.0"), "initrd.gz")
	orig, err := os.ReadFile(initrd)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(orig)
	tampered[len(tampered)/2] ^= 0x01
	os.Chmod(initrd, 0o644)
	if err := os.WriteFile(initrd, tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	want := ""
	for _, f := range loadManifest(t, primary.versionDir("deb", "1.0.0")).Files {
		if f.Path == "initrd.gz" {
			want = f.SHA256
		}
	}
	got := sha256sums(t, initrd)[initrd]

	out, code := mirrorSync(t, "", base, mirror)
	if code == 0 || !strings.Contains(out, "deb@1.0.0: initrd.gz: expected sha256 "+want+", got sha256 "+got) {
		t.Fatalf("sync of a tampered file: exit %d, want a refusal naming initrd.gz, %s and %s:\n%s", code, want, got, out)
	}
	t.Logf("refused: %s", strings.TrimSpace(out))
	if _, err := os.Stat(filepath.Join(mirror.root, "images", "deb")); !os.IsNotExist(err) {
		t.Errorf("after a refused sync the mirror has images/deb (%v)", err)
	}
	partial, _ := os.ReadDir(filepath.Join(mirror.root, "images", ".mirror-partial"))
	for _, p := range partial {
		if strings.HasPrefix(p.Name(), got) || strings.HasPrefix(p.Name(), want) {
			t.Errorf("the refused file is kept as %s", p.Name())
		}
	}
	var hidden []string
	entries, _ := os.ReadDir(filepath.Join(mirror.root, "images"))
	for _, e := range entries {
		if e.Name() != ".mirror-partial" {
			hidden = append(hidden, e.Name())
		}
	}
	if len(hidden) > 0 {
		t.Errorf("a refused sync left %v in images/", hidden)
	}
	out, _ = clRun(t, time.Minute, nil, "image", "list", "--root", mirror.root, "--data-dir", mirror.data)
	if strings.Contains(out, "deb") {
		t.Errorf("image list on the mirror after a refused sync:\n%s", out)
	}

	// The primary's file restored: the same sync installs the version.
	if err := os.WriteFile(initrd, orig, 0o444); err != nil {
		t.Fatal(err)
	}
	out, code = mirrorSync(t, "", base, mirror)
	if code != 0 || !strings.Contains(out, "deb@1.0.0 installed") || !strings.Contains(out, "deb@1.0.0 active") {
		t.Fatalf("sync: exit %d\n%s", code, out)
	}
	mirrorHolds(t, primary, mirror)
	// A second sync finds it there and fetches nothing.
	if out, code = mirrorSync(t, "", base, mirror); code != 0 || !strings.Contains(out, "deb@1.0.0 already here") {
		t.Fatalf("second sync: exit %d\n%s", code, out)
	}
}

// With --ca, a manifest must carry a CMS signature that chains to that CA:
// one from another CA is refused and nothing is installed; with the
// primary's CA the version and its signature are installed.
func TestMirrorSyncSigned(t *testing.T) {
	t.Parallel()
	primary, mirror, other := newImgEnv(t), newImgEnv(t), newImgEnv(t)
	for _, e := range []imgEnv{primary, other} {
		if out, code := clRun(t, time.Minute, nil, "keys", "init", "--root", e.root, "--data-dir", e.data); code != 0 {
			t.Fatalf("keys init: exit %d\n%s", code, out)
		}
	}
	k, i := NetbootKernel(t)
	src := t.TempDir()
	copyFileTo(t, k, filepath.Join(src, "vmlinuz"))
	copyFileTo(t, i, filepath.Join(src, "initrd.gz"))
	signOn := []string{"BOOTFORGE_SIGNING_ENABLED=true"}
	if out, code := clRun(t, 2*time.Minute, signOn, "image", "build", "deb@1.0.0", "--template", "linux", "--root", primary.root, "--data-dir", primary.data,
		"--kernel", filepath.Join(src, "vmlinuz"), "--initrd", filepath.Join(src, "initrd.gz")); code != 0 {
		t.Fatalf("signed image build: exit %d\n%s", code, out)
	}
	if out, code := clRun(t, time.Minute, nil, "image", "promote", "deb@1.0.0", "--root", primary.root, "--data-dir", primary.data); code != 0 {
		t.Fatalf("image promote: exit %d\n%s", code, out)
	}
	s := StartServer(t, ServerOptions{Root: primary.root, Args: []string{"--data-dir", primary.data}})
	base := "http://" + s.HTTPAddr

	out, code := mirrorSync(t, "", base, mirror, "--ca", filepath.Join(other.data, "keys", "ca.pem"))
	if code == 0 || !strings.Contains(out, "deb@1.0.0: manifest: signature: ") {
		t.Fatalf("sync with another CA: exit %d, want the manifest's signature refused:\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(mirror.root, "images", "deb")); !os.IsNotExist(err) {
		t.Errorf("a manifest with a bad signature installed images/deb (%v)", err)
	}
	out, code = mirrorSync(t, "", base, mirror, "--ca", filepath.Join(primary.data, "keys", "ca.pem"))
	if code != 0 || !strings.Contains(out, "deb@1.0.0 installed") {
		t.Fatalf("sync with the primary's CA: exit %d\n%s", code, out)
	}
	want, _ := os.ReadFile(filepath.Join(primary.versionDir("deb", "1.0.0"), "manifest.json.sig"))
	got, err := os.ReadFile(filepath.Join(mirror.versionDir("deb", "1.0.0"), "manifest.json.sig"))
	if err != nil || len(want) == 0 || !bytes.Equal(got, want) {
		t.Errorf("the mirror's manifest signature (%v) is not the primary's", err)
	}
	mirrorHolds(t, primary, mirror)
}

// A sync killed mid-file leaves its partial file; the next sync asks for
// the rest with Range and the primary answers 206. The primary's side of
// the link is slowed with tc (tbf) so that the kill lands mid-file.
func TestMirrorSyncResume(t *testing.T) {
	t.Parallel()
	need(t, "tc")
	primary, mirror := newImgEnv(t), newImgEnv(t)
	mirrorBuild(t, primary, "console=ttyS0 panic=-1")
	lab := NewLab(t)
	host := lab.AddHost(t, "192.0.2.10")
	s := StartServer(t, ServerOptions{Netns: lab.Netns, Addr: lab.IP(), Root: primary.root, Args: []string{"--data-dir", primary.data}})
	base := "http://" + s.HTTPAddr
	// vh0 is the bridge's port to host: what the primary sends it.
	lab.MustExec("tc", "qdisc", "add", "dev", "vh0", "root", "tbf", "rate", "4mbit", "burst", "16kb", "latency", "500ms")

	cmd := mirrorSyncCmd(host.Netns, base, mirror)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	partialDir := filepath.Join(mirror.root, "images", ".mirror-partial")
	var partial string
	var size int64
	deadline := time.Now().Add(2 * time.Minute)
	for partial == "" && time.Now().Before(deadline) {
		entries, _ := os.ReadDir(partialDir)
		for _, e := range entries {
			if info, err := e.Info(); err == nil && info.Size() >= 128<<10 {
				partial, size = e.Name(), info.Size()
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	// ip netns exec execs bootforge: the pid is the sync's.
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	if partial == "" {
		t.Fatalf("no partial file of 128 KiB appeared in %s; sync output:\n%s", partialDir, out.String())
	}
	info, err := os.Stat(filepath.Join(partialDir, partial))
	if err != nil {
		t.Fatalf("the killed sync's partial file is gone: %v", err)
	}
	t.Logf("killed the sync with %s at %d bytes (seen at %d)", partial, info.Size(), size)
	if _, err := os.Stat(filepath.Join(mirror.root, "images", "deb")); !os.IsNotExist(err) {
		t.Fatalf("a killed sync installed images/deb (%v)", err)
	}
	lab.MustExec("tc", "qdisc", "del", "dev", "vh0", "root")

	got, code := mirrorSync(t, host.Netns, base, mirror)
	if code != 0 || !strings.Contains(got, "resuming at byte") {
		t.Fatalf("resumed sync: exit %d, want it to resume:\n%s", code, got)
	}
	mirrorHolds(t, primary, mirror)
	// The primary's access log: a 206 for a range from where the kill left off.
	re := regexp.MustCompile(`msg="http request" client=192\.0\.2\.10 method=GET path=/images/deb/1\.0\.0/\S+ status=206 bytes=\d+ duration=\S+ range="bytes=(\d+)-"`)
	m := re.FindStringSubmatch(s.Log())
	if m == nil {
		t.Fatalf("the primary's log shows no 206 for a range request from the mirror:\n%s", s.Log())
	}
	if m[1] == "0" {
		t.Errorf("the resume asked for bytes=0-: %s", m[0])
	}
	t.Logf("primary: %s", m[0])
}

// TestMirrorBootRemote: one VM boot (BIOS, QEMU's iPXE) on the mirror's
// subnet, with its kernel and initrd from the mirror.
func TestMirrorBootRemote(t *testing.T) {
	t.Parallel()
	need(t, "curl", "qemu-system-x86_64")
	nonce := make([]byte, 6)
	rand.Read(nonce)
	marker := "bfmark=" + hex.EncodeToString(nonce)
	primary, mirror := newImgEnv(t), newImgEnv(t)
	mirrorBuild(t, primary, "console=ttyS0 quiet panic=-1 "+marker)

	// The lab namespace routes between the primary's network (br0,
	// 192.0.2.1) and the remote one (br1, 198.51.100.1), where the mirror
	// and the VM are.
	lab := NewLab(t)
	lab.MustExec("ip", "link", "add", "br1", "type", "bridge", "forward_delay", "0", "stp_state", "0")
	lab.MustExec("ip", "addr", "add", "198.51.100.1/24", "dev", "br1")
	lab.MustExec("ip", "link", "set", "br1", "up")
	lab.Bridge = "br1"
	mh := lab.AddHost(t, "198.51.100.2/24")
	tap := lab.AddTap(t)
	lab.Bridge = "br0"
	mh.MustExec("ip", "route", "add", "default", "via", "198.51.100.1")

	ms := StartServer(t, ServerOptions{Netns: mh.Netns, Addr: mh.IP(), Root: mirror.root, Args: []string{"--data-dir", mirror.data}})
	mirrorURL := "http://" + ms.HTTPAddr
	cfgFile := filepath.Join(t.TempDir(), "bootforge.yaml")
	cfg := fmt.Sprintf(`dhcp:
  mode: authoritative
  interfaces: [br1]
  server_address: 192.0.2.1
  subnets:
    - subnet: 198.51.100.0/24
      pools: ["198.51.100.100-198.51.100.150"]
      router: 198.51.100.1
      lease_time: 10m
mirrors:
  - {subnets: [198.51.100.0/24], url: "%s", redirect: true}
inventory:
  default_profile: remote
  profiles:
    - name: remote
      menu:
        entries:
          - {name: deb, image: deb}
`, mirrorURL)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ps := StartServer(t, ServerOptions{Netns: lab.Netns, Addr: lab.IP(), Root: primary.root, Args: []string{"--data-dir", primary.data, "--config", cfgFile}})
	base := "http://" + ps.HTTPAddr
	// The mirror has nothing yet: not used.
	ps.WaitLog(`msg="mirror not used: its clients get image files from this server" mirror=`+mirrorURL+` reason="missing deb@1.0.0"`, 30*time.Second)

	if out, code := mirrorSync(t, mh.Netns, base, mirror); code != 0 {
		t.Fatalf("mirror sync: exit %d\n%s", code, out)
	}
	mirrorHolds(t, primary, mirror)
	// SIGHUP checks the mirrors again.
	ps.Signal(syscall.SIGHUP)
	ps.WaitLog(`msg="mirror verified: clients of its subnets get image files from it" mirror=`+mirrorURL+` versions=deb@1.0.0`, 30*time.Second)

	// The menu for a client of the remote subnet names the mirror for
	// kernel and initrd; for one of the primary's network, the primary.
	dir := "/images/deb/1.0.0/"
	menuURL := base + "/bootforge/ipxe?mac=52-54-00-00-16-03&buildarch=i386&platform=pcbios"
	remoteMenu := mh.MustExec("curl", "-sf", menuURL)
	for _, w := range []string{"kernel " + mirrorURL + dir + "vmlinuz ", "initrd " + mirrorURL + dir + "initrd.gz\n"} {
		if !strings.Contains(remoteMenu, w) {
			t.Errorf("the remote client's menu lacks %q:\n%s", w, remoteMenu)
		}
	}
	if localMenu := lab.MustExec("curl", "-sf", menuURL); !strings.Contains(localMenu, "kernel "+base+dir+"vmlinuz ") {
		t.Errorf("a client of the primary's network is not sent to the primary:\n%s", localMenu)
	}

	// 302: a remote client asking the primary for an image file is sent
	// to the same path on the mirror; a manifest stays here.
	got := mh.MustExec("curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", base+dir+"vmlinuz")
	if got != "302 "+mirrorURL+dir+"vmlinuz" {
		t.Errorf("remote GET of the kernel from the primary: %q, want 302 to the mirror", got)
	}
	ps.WaitLog(`path=`+dir+`vmlinuz status=302`, 5*time.Second)
	if !strings.Contains(ps.Log(), `location=`+mirrorURL+dir+`vmlinuz`) {
		t.Errorf("the primary's access log does not show where it redirected")
	}
	if got := mh.MustExec("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", base+dir+"manifest.json"); got != "200" {
		t.Errorf("remote GET of the manifest: %s, want 200 from the primary", got)
	}
	if got := lab.MustExec("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", base+dir+"vmlinuz"); got != "200" {
		t.Errorf("GET of the kernel from the primary's network: %s, want 200", got)
	}

	// The metric and the check item.
	metrics := lab.MustExec("curl", "-sf", "http://"+ps.APIAddr+"/metrics")
	if !strings.Contains(metrics, `bootforge_mirror_verified{url="`+mirrorURL+`"} 1`) {
		t.Errorf("/metrics has no verified mirror:\n%s", grepLines(metrics, "mirror"))
	}
	checkArgs := []string{"check", "--json", "--config", cfgFile, "--root", primary.root, "--data-dir", primary.data,
		"--http-addr", ps.HTTPAddr, "--tftp-addr", ps.TFTPAddr, "--api-addr", ps.APIAddr, "--https-addr", ps.HTTPSAddr}
	if item := mirrorCheckItem(t, lab, checkArgs); item.Status != "pass" || !strings.Contains(item.Detail, mirrorURL+" verified") {
		t.Errorf("check's mirrors item: %+v", item)
	}

	// The VM on the remote subnet.
	vm, m := BootVM(t, VMOptions{Lab: lab, Tap: tap, Firmware: "bios", Timeout: bdBootTimeout,
		Expect: regexp.QuoteMeta(BootMarker) + ` ([^\n]*` + regexp.QuoteMeta(marker) + `[^\n]*)\n`})
	t.Logf("marker after %s: %s", vm.Elapsed().Round(time.Millisecond), m[0])
	fetched := regexp.MustCompile(`msg="http request" client=(198\.51\.100\.1\d\d) method=GET path=` + dir + `(vmlinuz|initrd\.gz) status=200`)
	vmIP := ""
	seen := map[string]bool{}
	for _, f := range fetched.FindAllStringSubmatch(ms.Log(), -1) {
		vmIP = f[1]
		seen[f[2]] = true
	}
	if !seen["vmlinuz"] || !seen["initrd.gz"] {
		t.Fatalf("the mirror's access log lacks the VM's kernel or initrd (%v):\n%s", seen, grepLines(ms.Log(), "http request"))
	}
	t.Logf("the VM (%s) fetched kernel and initrd from the mirror", vmIP)
	for _, line := range strings.Split(ps.Log(), "\n") {
		if strings.Contains(line, "client="+vmIP+" ") && strings.Contains(line, "path="+dir) {
			t.Errorf("the primary served an image file to the VM: %s", line)
		}
	}
	if !strings.Contains(ps.Log(), `msg="http request" client=`+vmIP+` method=GET path=/bootforge/ipxe`) {
		t.Errorf("the VM's menu did not come from the primary")
	}

	// The mirror gone: the next check says so, and menus and files fall
	// back to the primary.
	ms.Stop()
	ps.Signal(syscall.SIGHUP)
	ps.WaitLog(`msg="mirror not used: its clients get image files from this server" mirror=`+mirrorURL+` reason="unreachable: `, 60*time.Second)
	if remoteMenu := mh.MustExec("curl", "-sf", menuURL); !strings.Contains(remoteMenu, "kernel "+base+dir+"vmlinuz ") {
		t.Errorf("with the mirror unreachable, the remote menu still names it:\n%s", remoteMenu)
	}
	if got := mh.MustExec("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", base+dir+"vmlinuz"); got != "200" {
		t.Errorf("with the mirror unreachable, the remote GET of the kernel: %s, want 200 from the primary", got)
	}
	if item := mirrorCheckItem(t, lab, checkArgs); item.Status != "fail" || !strings.Contains(item.Detail, "unreachable") {
		t.Errorf("check's mirrors item with the mirror gone: %+v", item)
	}
}

type mirrorItem struct {
	Name, Status, Detail string
}

// mirrorCheckItem runs bootforge check in the lab and returns its mirrors item.
func mirrorCheckItem(t *testing.T, lab *Lab, args []string) mirrorItem {
	t.Helper()
	out, _ := lab.Exec(3*time.Minute, binary, args...)
	start := strings.Index(out, "[")
	var items []mirrorItem
	if start < 0 || json.NewDecoder(strings.NewReader(out[start:])).Decode(&items) != nil {
		t.Fatalf("check --json printed:\n%s", out)
	}
	for _, it := range items {
		if it.Name == "mirrors" {
			return it
		}
	}
	t.Fatalf("check has no mirrors item:\n%s", out)
	return mirrorItem{}
}
