package e2e

// Authenticode of Debian's signed kernel (NetbootKernel), against a peer:
// osslsigncode verify prints the signer of the first signature and the
// digest it calculates of the file. bootforge's authenticode package must
// agree on the kernel, on a copy whose signature sbattach (sbsigntool)
// removed, and on a copy with one byte of code flipped; and bootforge
// refuses that last copy for a Secure Boot profile.

import (
	"debug/pe"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"bootforge/internal/authenticode"
)

// debianKernelSigner is the signer of Debian's kernels (bookworm).
const debianKernelSigner = "Debian Secure Boot Signer 2022 - linux"

var (
	acCalculated = regexp.MustCompile(`(?m)^Calculated message digest\s*:\s*([0-9A-Fa-f]+)\b`)
	acSigner     = regexp.MustCompile(`(?s)Signer's certificate:.*?Subject:[^\n]*/CN=([^/\n]*)`)
)

// acPeer runs osslsigncode verify on file and returns the digest it
// calculates (lower-case hex) and the signer's CN, "" if it prints none
// (it does not on a digest mismatch). Its status is not looked at: it
// fails on the chain, which ends in a CA that is not in the system's store.
func acPeer(t *testing.T, file string) (digest, signer string) {
	t.Helper()
	need(t, "osslsigncode")
	out, _ := exec.Command("osslsigncode", "verify", "-in", file).CombinedOutput()
	m := acCalculated.FindSubmatch(out)
	if m == nil {
		t.Fatalf("osslsigncode verify -in %s printed no calculated digest:\n%s", file, out)
	}
	if s := acSigner.FindSubmatch(out); s != nil {
		signer = strings.TrimSpace(string(s[1]))
	}
	return strings.ToLower(string(m[1])), signer
}

func TestAuthenticodeDebianKernel(t *testing.T) {
	t.Parallel()
	need(t, "osslsigncode", "sbattach")
	kernel, _ := NetbootKernel(t)
	st, err := os.Stat(kernel)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sig, err := authenticode.Inspect(kernel)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	digest, signer := acPeer(t, kernel)
	t.Logf("%s (%d bytes, Inspect %v): signer %q, digest %s %s, signed %s; osslsigncode: signer %q, calculated %s",
		filepath.Base(kernel), st.Size(), took.Round(time.Microsecond), sig.Signer, sig.Algorithm, sig.Digest, sig.SignedDigest, signer, digest)
	if !sig.Signed || sig.Count != 1 || !sig.DigestMatches || sig.Signer != debianKernelSigner || sig.Algorithm != "SHA-256" {
		t.Errorf("kernel: %+v, want signed by %q with a matching SHA-256 digest", sig, debianKernelSigner)
	}
	if signer != debianKernelSigner || sig.Digest != digest {
		t.Errorf("kernel: Inspect says %q %s, osslsigncode %q %s", sig.Signer, sig.Digest, signer, digest)
	}
	if took > time.Second {
		t.Errorf("Inspect of the %d-byte kernel took %v", st.Size(), took)
	}

	// sbattach --remove: unsigned, and its digest is the one the
	// signature carried.
	b, err := os.ReadFile(kernel)
	if err != nil {
		t.Fatal(err)
	}
	removed := filepath.Join(t.TempDir(), "vmlinuz-removed")
	if err := os.WriteFile(removed, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, time.Minute, "sbattach", "--remove", removed); err != nil {
		t.Fatalf("sbattach --remove: %v\n%s", err, out)
	}
	u, err := authenticode.Inspect(removed)
	t.Logf("after sbattach --remove: %+v, %v", u, err)
	if err != nil || u.Signed || u.Count != 0 || u.DigestMatches || u.Signer != "" || u.Digest != sig.Digest {
		t.Errorf("after sbattach --remove: %+v, %v; want unsigned with digest %s", u, err, sig.Digest)
	}

	// One byte of code flipped, in the middle of .text: still signed, and
	// the digest is osslsigncode's, not the signed one.
	flipped, at := flipCode(t, b)
	f, err := authenticode.Inspect(flipped)
	if err != nil {
		t.Fatal(err)
	}
	fd, _ := acPeer(t, flipped)
	t.Logf("byte %#x of .text flipped: Inspect %s (matches %v), osslsigncode calculated %s", at, f.Digest, f.DigestMatches, fd)
	if !f.Signed || f.DigestMatches || f.Signer != debianKernelSigner || f.SignedDigest != sig.Digest || f.Digest == sig.Digest || f.Digest != fd {
		t.Errorf("flipped kernel: %+v; osslsigncode calculated %s", f, fd)
	}
}

// flipCode writes a copy of the PE file b with one bit flipped in the
// middle of its .text section, and returns it and the offset.
func flipCode(t *testing.T, b []byte) (string, int64) {
	t.Helper()
	f, err := pe.NewFile(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	text := f.Section(".text")
	if text == nil || text.Size == 0 {
		t.Fatal("the kernel has no .text section")
	}
	at := int64(text.Offset) + int64(text.Size)/2
	c := append([]byte(nil), b...)
	c[at] ^= 0x01
	out := filepath.Join(t.TempDir(), "vmlinuz-flipped")
	if err := os.WriteFile(out, c, 0o644); err != nil {
		t.Fatal(err)
	}
	return out, at
}

// A Secure Boot profile whose kernel's signature does not match it is
// refused at load, by name.
func TestAuthenticodeMismatchRefused(t *testing.T) {
	t.Parallel()
	const mac = "52:54:00:5b:0a:01"
	kernel, initrd := NetbootKernel(t)
	b, err := os.ReadFile(kernel)
	if err != nil {
		t.Fatal(err)
	}
	flipped, _ := flipCode(t, b)
	root, data := t.TempDir(), t.TempDir()
	copyFile(t, flipped, filepath.Join(root, "vmlinuz-flipped"))
	copyFile(t, initrd, filepath.Join(root, "initrd.gz"))
	for name, src := range sbLoaders {
		copyFile(t, src, filepath.Join(root, name))
	}
	cfg := fmt.Sprintf(`root: %s
data_dir: %s
inventory:
  profiles:
    - name: sbprof
      secure_boot: true
      match: [{mac: "%s"}]
      menu:
        entries:
%s`, root, data, mac, sbEntries("vmlinuz-flipped", "changed"))
	cfgPath := filepath.Join(t.TempDir(), "bootforge.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, time.Minute, binary, "--config", cfgPath, "menu", "render", "--mac", mac, "--arch", "7")
	t.Logf("bootforge menu render with a changed signed kernel (%v):\n%s", err, out)
	if err == nil {
		t.Fatal("bootforge menu render accepted a kernel whose signature does not match it")
	}
	for _, w := range []string{`profile "sbprof"`, `entry "changed"`, `"vmlinuz-flipped"`, "signature does not match the file"} {
		if !strings.Contains(out, w) {
			t.Errorf("the refusal does not name %s", w)
		}
	}
}

// BenchmarkInspectKernel is Inspect of Debian's ~8 MB signed kernel.
func BenchmarkInspectKernel(b *testing.B) {
	kernel, _ := NetbootKernel(b)
	st, err := os.Stat(kernel)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	for b.Loop() {
		if s, err := authenticode.Inspect(kernel); err != nil || !s.DigestMatches {
			b.Fatal(s, err)
		}
	}
}
