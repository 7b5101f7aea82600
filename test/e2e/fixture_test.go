package e2e

// A test kernel and initrd that prove a network boot reached Linux.
//
// The kernel is Debian's current linux-image-*-amd64 (the package that
// linux-image-amd64 depends on), fetched with apt-get download. The initrd
// holds busybox-static and an init that prints
//
//	NETBOOT-OK cmdline: <kernel command line>
//
// to /dev/ttyS0 and powers off, so a test can both see that the boot
// reached user space and tell which menu entry (cmdline marker) booted.
// Before it prints, it quiets the kernel's console messages: a late one
// (the TSC's recalibration, say) once landed in the middle of the marker's
// line and made "bfmarker=x[    2.37] tsc: …" of it.
//
// Both files are cached under <repo root>/.cache/e2e/ (ignored by git) and
// built at most once per test run; writes go to a temporary file that is
// renamed into place, so parallel tests and parallel test processes never
// see a half-written file.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// BootMarker is the prefix the test initrd prints on the serial console.
const BootMarker = "NETBOOT-OK cmdline:"

// testInit is /init of the test initrd.
const testInit = `#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo 1 > /proc/sys/kernel/printk
[ -c /dev/ttyS0 ] || /bin/busybox mknod /dev/ttyS0 c 4 64
echo "` + BootMarker + ` $(/bin/busybox cat /proc/cmdline)" > /dev/ttyS0
/bin/busybox sync
/bin/busybox poweroff -f
`

// busyboxPath is the static busybox put into the initrd (busybox-static).
const busyboxPath = "/bin/busybox"

var (
	fixtureOnce   sync.Once
	fixtureKernel string
	fixtureInitrd string
	fixtureErr    error
)

// NetbootKernel returns the paths of the cached test kernel and initrd
// (gzipped newc cpio), building them on first use. A failure to build them
// fails the test.
func NetbootKernel(t testing.TB) (kernel, initrd string) {
	t.Helper()
	fixtureOnce.Do(func() {
		dir, err := CacheDir()
		if err != nil {
			fixtureErr = err
			return
		}
		if fixtureKernel, err = cachedKernel(dir); err != nil {
			fixtureErr = fmt.Errorf("test kernel: %w", err)
			return
		}
		if fixtureInitrd, err = cachedInitrd(dir); err != nil {
			fixtureErr = fmt.Errorf("test initrd: %w", err)
		}
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixtureKernel, fixtureInitrd
}

// RepoRoot returns the module root: the nearest parent of the working
// directory (test/e2e when run by go test) that holds bootforge's go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && regexp.MustCompile(`(?m)^module\s+bootforge\s*$`).Match(b) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no bootforge go.mod above the working directory")
		}
		dir = parent
	}
}

// CacheDir returns <repo root>/.cache/e2e, creating it.
func CacheDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, ".cache", "e2e")
	return dir, os.MkdirAll(dir, 0o755)
}

// kernelPackage names the package linux-image-amd64 depends on.
func kernelPackage() (string, error) {
	out, err := exec.Command("apt-cache", "depends", "linux-image-amd64").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends linux-image-amd64: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^\s*Depends:\s*(linux-image-\S+-amd64)\s*$`).FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("apt-cache depends linux-image-amd64 names no linux-image-*-amd64:\n%s", out)
	}
	return string(m[1]), nil
}

// cachedKernel returns dir/vmlinuz-<package>, downloading the package and
// extracting /boot/vmlinuz-* if the file is not there yet.
func cachedKernel(dir string) (string, error) {
	pkg, err := kernelPackage()
	if err != nil {
		return "", err
	}
	dst := filepath.Join(dir, "vmlinuz-"+strings.TrimPrefix(pkg, "linux-image-"))
	if st, err := os.Stat(dst); err == nil && st.Size() > 1<<20 {
		return dst, nil
	}
	work, err := os.MkdirTemp(dir, ".kernel-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	// apt's own cache first (an installed or downloaded package), then
	// the mirror.
	debs, _ := filepath.Glob(filepath.Join("/var/cache/apt/archives", pkg+"_*_amd64.deb"))
	if len(debs) == 0 {
		if err := downloadDeb(pkg, work); err != nil {
			// Offline or a broken mirror: an earlier kernel still proves a boot.
			if old, _ := filepath.Glob(filepath.Join(dir, "vmlinuz-*")); len(old) > 0 {
				return old[len(old)-1], nil
			}
			return "", err
		}
		debs, _ = filepath.Glob(filepath.Join(work, pkg+"_*.deb"))
	}
	if len(debs) == 0 {
		return "", fmt.Errorf("apt-get download %s left no .deb file", pkg)
	}
	tmp := filepath.Join(work, "vmlinuz")
	if err := extractVmlinuz(debs[len(debs)-1], tmp); err != nil {
		return "", err
	}
	return dst, os.Rename(tmp, dst)
}

// downloadDeb runs apt-get download pkg in dir, and apt-get update and
// again if that fails.
func downloadDeb(pkg, dir string) error {
	download := func() ([]byte, error) {
		cmd := exec.Command("apt-get", "download", pkg)
		cmd.Dir = dir
		return cmd.CombinedOutput()
	}
	out, err := download()
	if err == nil {
		return nil
	}
	if uout, uerr := exec.Command("apt-get", "update").CombinedOutput(); uerr != nil {
		return fmt.Errorf("apt-get download %s: %v\n%s\napt-get update: %v\n%s", pkg, err, out, uerr, uout)
	}
	if out, err := download(); err != nil {
		return fmt.Errorf("apt-get download %s (after apt-get update): %v\n%s", pkg, err, out)
	}
	return nil
}

// extractVmlinuz copies ./boot/vmlinuz-* out of a kernel .deb to dst.
func extractVmlinuz(deb, dst string) error {
	cmd := exec.Command("dpkg-deb", "--fsys-tarfile", deb)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dpkg-deb: %w", err)
	}
	defer cmd.Wait()
	tr := tar.NewReader(pipe)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("%s holds no ./boot/vmlinuz-*", deb)
		}
		if err != nil {
			return fmt.Errorf("reading %s: %v (%s)", deb, err, stderr.String())
		}
		if h.Typeflag != tar.TypeReg || !strings.HasPrefix(strings.TrimPrefix(h.Name, "."), "/boot/vmlinuz-") {
			continue
		}
		f, err := os.Create(dst)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		io.Copy(io.Discard, pipe) // let dpkg-deb finish writing
		return nil
	}
}

// cachedInitrd returns dir/initrd-<hash>.gz, named after the content hash
// of init and busybox so that a change to either builds a new one.
func cachedInitrd(dir string) (string, error) {
	bb, err := os.ReadFile(busyboxPath)
	if err != nil {
		return "", fmt.Errorf("%v (package busybox-static)", err)
	}
	if out, err := exec.Command("file", "-L", busyboxPath).Output(); err == nil && !bytes.Contains(out, []byte("statically linked")) {
		return "", fmt.Errorf("%s is not statically linked (install busybox-static): %s", busyboxPath, out)
	}
	h := sha256.New()
	h.Write([]byte(testInit))
	h.Write(bb)
	dst := filepath.Join(dir, "initrd-"+hex.EncodeToString(h.Sum(nil))[:12]+".gz")
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	w := newcWriter{w: zw}
	w.dir(".")
	for _, d := range []string{"bin", "dev", "proc", "sys"} {
		w.dir(d)
	}
	w.file("bin/busybox", 0o755, bb)
	w.file("init", 0o755, []byte(testInit))
	w.trailer()
	if w.err != nil {
		return "", w.err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return dst, writeAtomic(dst, buf.Bytes())
}

// writeAtomic writes data to a temporary file beside dst, then renames it.
func writeAtomic(dst string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(dst), ".tmp-"+filepath.Base(dst)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), dst)
}

// newcWriter writes a cpio archive in the "newc" format the kernel unpacks.
type newcWriter struct {
	w   io.Writer
	ino int
	n   int64
	err error
}

func (c *newcWriter) entry(name string, mode uint32, data []byte) {
	if c.err != nil {
		return
	}
	c.ino++
	nlink := 1
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write(append([]byte(name), 0))
	c.pad()
	c.write(data)
	c.pad()
}

func (c *newcWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	c.err = err
}

func (c *newcWriter) pad() {
	if r := c.n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

func (c *newcWriter) dir(name string)                         { c.entry(name, 0o040755, nil) }
func (c *newcWriter) file(name string, perm uint32, b []byte) { c.entry(name, 0o100000|perm, b) }
func (c *newcWriter) trailer()                                { c.entry("TRAILER!!!", 0, nil) }
