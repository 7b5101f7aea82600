package grub

import (
	"bytes"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"bootforge/internal/boot"
	"bootforge/internal/bootfs"
	"bootforge/internal/keys"
	"bootforge/internal/menufs"
)

func TestSigFS(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"k/vmlinuz", "k/initrd.gz", "u/vmlinuz", "other"} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(root, f), []byte("data of "+f), 0o644)
	}
	dir, err := bootfs.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	linux := func(d string) boot.Menu {
		return boot.Menu{Default: "x", Entries: []boot.Entry{{Name: "x", Kind: boot.KindLinux, Kernel: d + "/vmlinuz", Initrds: []string{"/" + d + "/initrd.gz"}}}}
	}
	signedMAC := "52:54:00:00:00:01"
	inv, err := boot.NewInventory([]boot.Profile{
		{Name: "signed", Signed: true, Menu: linux("k"), Priority: 10, Match: []boot.Selector{{OUI: []byte{0x52, 0x54, 0, 0, 0}}}},
		{Name: "plain", Menu: linux("u")},
	}, nil, "plain")
	if err != nil {
		t.Fatal(err)
	}
	invf := func() *boot.Inventory { return inv }
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mfs := menufs.New(dir, invf, nil, nil, log)
	kd := filepath.Join(t.TempDir(), "keys")
	if err := keys.InitOpenPGP(kd); err != nil {
		t.Fatal(err)
	}
	e, err := keys.LoadOpenPGP(kd)
	if err != nil {
		t.Fatal(err)
	}
	signs := 0
	s := &SigFS{Menus: mfs, Inventory: invf, Sign: func(r io.Reader) ([]byte, error) { signs++; return keys.SignDetachedReader(e, r) }}
	ring := openpgp.EntityList{e}
	client := netip.MustParseAddrPort("192.0.2.9:1000")
	get := func(p string) ([]byte, error) {
		f, err := s.Open(bootfs.Request{Path: p, Client: client, Protocol: "tftp"})
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(f)
	}
	verify := func(file string) {
		t.Helper()
		data, err := get(file)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := get(file + ".sig")
		if err != nil {
			t.Fatalf("%s.sig: %v", file, err)
		}
		if _, err := openpgp.CheckDetachedSignature(ring, bytes.NewReader(data), bytes.NewReader(sig), nil); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	menuPath := "bootforge/grub/" + signedMAC + ".cfg"
	verify(menuPath)
	verify("k/vmlinuz")
	verify("/k/initrd.gz")
	m, _ := get(menuPath)
	if !bytes.Contains(m, []byte("check_signatures=enforce")) {
		t.Fatalf("signed menu:\n%s", m)
	}
	for _, p := range []string{"bootforge/grub/00:11:22:33:44:55.cfg.sig", "u/vmlinuz.sig", "other.sig", "k/missing.sig"} {
		if _, err := get(p); err == nil {
			t.Errorf("%s served", p)
		}
	}
	// cached by path, size and time; a changed file gets a new signature
	n := signs
	verify("k/vmlinuz")
	if signs != n+0 && signs != n {
		t.Fatal("not cached")
	}
	sig1, _ := get("k/vmlinuz.sig")
	if signs != n {
		t.Fatalf("signed again: %d → %d", n, signs)
	}
	later := time.Now().Add(time.Hour)
	os.WriteFile(filepath.Join(root, "k/vmlinuz"), []byte("data of k/vmlinuX"), 0o644)
	os.Chtimes(filepath.Join(root, "k/vmlinuz"), later, later)
	sig2, _ := get("k/vmlinuz.sig")
	if bytes.Equal(sig1, sig2) {
		t.Fatal("stale signature for a changed file")
	}
	verify("k/vmlinuz")
}
