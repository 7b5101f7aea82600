package authenticode

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Real binaries from Debian's packages (scripts/deps.sh installs them):
// shim signed twice by Microsoft, GRUB signed by Debian, iPXE unsigned.
const (
	shim = "/usr/lib/shim/shimx64.efi.signed"
	grub = "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed"
	ipxe = "/usr/lib/ipxe/ipxe.efi"
)

func TestInspect(t *testing.T) {
	for _, f := range []string{shim, grub, ipxe} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%s missing (packages shim-signed, grub-efi-amd64-signed, ipxe): %v", f, err)
		}
	}
	s, err := Inspect(shim)
	if err != nil || !s.Signed || s.Count != 2 || !strings.Contains(s.Subject, "Microsoft") {
		t.Fatalf("shim: %+v %v", s, err)
	}
	g, err := Inspect(grub)
	if err != nil || !g.Signed || !strings.Contains(g.Subject, "Debian Secure Boot Signer") || len(g.Digest) != 64 {
		t.Fatalf("grub: %+v %v", g, err)
	}
	if i, err := Inspect(ipxe); err != nil || i.Signed {
		t.Fatalf("ipxe: %+v %v", i, err)
	}
	// The same GRUB with its signature removed is unsigned.
	stripped := filepath.Join(t.TempDir(), "grub-unsigned.efi")
	if out, err := exec.Command("osslsigncode", "remove-signature", "-in", grub, "-out", stripped).CombinedOutput(); err != nil {
		t.Fatalf("osslsigncode remove-signature: %v\n%s", err, out)
	}
	if u, err := Inspect(stripped); err != nil || u.Signed {
		t.Fatalf("stripped grub: %+v %v", u, err)
	}
	// Not a PE file at all.
	text := filepath.Join(t.TempDir(), "x.txt")
	os.WriteFile(text, []byte("hello"), 0o644)
	if _, err := Inspect(text); err == nil {
		t.Fatal("a text file passed as PE")
	}
}
