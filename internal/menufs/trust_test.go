package menufs

import (
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"net/url"
	"strings"
	"testing"

	"bootforge/internal/bootfs"
)

func readHTTPS(t *testing.T, m *FS, path string, q url.Values) string {
	t.Helper()
	f, err := m.Open(bootfs.Request{Path: path, Client: client, Protocol: "https", Query: q, Host: "192.0.2.1:4433"})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	return string(b)
}

// With IPXETrust, a menu fetched over HTTPS points at the same listener;
// the chain script turns on image trust and verifies the client's script
// before running it; the kernel and initrd a menu names get a signature of
// their bytes at <path>.sig, and a file no menu names does not.
func TestIPXETrustFiles(t *testing.T) {
	m, _ := setup(t)
	m.Signer = hashSigner{}
	q := url.Values{"mac": {"52-54-00-00-00-0a"}, "buildarch": {"x86_64"}, "platform": {"efi"}}

	// Trust off: a menu over HTTPS stays on HTTPS, but verifies nothing,
	// and files on disk get no generated signature.
	if s := readHTTPS(t, m, "bootforge/ipxe", q); !strings.Contains(s, "kernel https://192.0.2.1:4433/vmlinuz") || strings.Contains(s, "imgverify") {
		t.Errorf("trust off, over HTTPS:\n%s", s)
	}
	if s := read(t, m, "boot.ipxe", nil); !strings.Contains(s, "chain http://192.0.2.1:8080/bootforge/ipxe?") || strings.Contains(s, "imgtrust") {
		t.Errorf("trust off, chain script:\n%s", s)
	}
	if _, err := m.Open(bootfs.Request{Path: "vmlinuz.sig", Client: client, Protocol: "https"}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("trust off: vmlinuz.sig: %v", err)
	}

	m.IPXETrust = true
	chain := readHTTPS(t, m, "boot.ipxe", nil)
	for _, want := range []string{
		"#!ipxe\nimgtrust --permanent\n",
		"imgfetch --name menu https://192.0.2.1:4433/bootforge/ipxe?mac=${mac:hexhyp}&",
		"imgverify menu https://192.0.2.1:4433/bootforge/ipxe.sig?mac=${mac:hexhyp}&",
		"chain menu ||\n:failed\n",
	} {
		if !strings.Contains(chain, want) {
			t.Errorf("chain script lacks %q:\n%s", want, chain)
		}
	}
	s := readHTTPS(t, m, "bootforge/ipxe", q)
	for _, want := range []string{"imgtrust --permanent\n", "imgverify vmlinuz https://192.0.2.1:4433/vmlinuz.sig\n", "imgverify initrd.gz https://192.0.2.1:4433/initrd.gz.sig\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("menu lacks %q:\n%s", want, s)
		}
	}
	// The client's script's signature signs what it gets.
	if h := sha256.Sum256([]byte(readHTTPS(t, m, "bootforge/ipxe", q))); string(h[:]) != readHTTPS(t, m, "bootforge/ipxe.sig", q) {
		t.Error("bootforge/ipxe.sig does not sign the script")
	}
	for _, p := range []string{"vmlinuz", "initrd.gz"} {
		sig := readHTTPS(t, m, p+".sig", nil)
		if h := sha256.Sum256([]byte(p)); string(h[:]) != sig { // setup writes each file's name as its content
			t.Errorf("%s.sig does not sign %s's bytes", p, p)
		}
		if again := readHTTPS(t, m, p+".sig", nil); again != sig {
			t.Errorf("%s.sig changed on a second fetch", p)
		}
	}
	if _, err := m.Open(bootfs.Request{Path: "static.txt.sig", Client: client, Protocol: "https"}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a file no menu names: static.txt.sig: %v", err)
	}
	// GRUB and pxelinux menus do not get image trust.
	if g := read(t, m, "bootforge/grub/52:54:00:00:00:0a.cfg", nil); strings.Contains(g, "imgverify") {
		t.Errorf("GRUB menu with imgverify:\n%s", g)
	}
}
