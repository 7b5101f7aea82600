package bootfs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
)

func TestPrivateContent(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	must(t, err)
	ed8, err := x509.MarshalPKCS8PrivateKey(edKey)
	must(t, err)
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	must(t, err)
	pkcs1 := x509.MarshalPKCS1PrivateKey(rsaKey)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ecKey.PublicKey, ecKey)
	must(t, err)

	e, err := openpgp.NewEntity("t", "", "t@example.org", nil)
	must(t, err)
	var pgpBin, pgpArmored, pgpPublic bytes.Buffer
	must(t, e.SerializePrivate(&pgpBin, nil))
	w, err := armor.Encode(&pgpArmored, openpgp.PrivateKeyType, nil)
	must(t, err)
	must(t, e.SerializePrivate(w, nil))
	must(t, w.Close())
	must(t, e.Serialize(&pgpPublic))

	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	for _, tt := range []struct {
		name string
		data []byte
		want string // part of the reason; "" for served
	}{
		{"PKCS#8 PEM", pemOf("PRIVATE KEY", pkcs8), "PEM PRIVATE KEY"},
		{"PKCS#1 PEM after text", append([]byte("Bag Attributes\n    localKeyID: 01\n"), pemOf("RSA PRIVATE KEY", pkcs1)...), "PEM RSA PRIVATE KEY"},
		{"cert then key", append(pemOf("CERTIFICATE", cert), pemOf("EC PRIVATE KEY", sec1)...), "PEM EC PRIVATE KEY"},
		{"PKCS#8 DER", pkcs8, "DER"},
		{"ed25519 PKCS#8 DER", ed8, "DER"},
		{"PKCS#1 DER", pkcs1, "DER"},
		{"SEC 1 DER", sec1, "DER"},
		{"OpenPGP binary", pgpBin.Bytes(), "OpenPGP secret key"},
		{"OpenPGP armored", pgpArmored.Bytes(), "PGP PRIVATE KEY BLOCK"},
		{"SQLite", append([]byte("SQLite format 3\x00"), make([]byte, 84)...), "SQLite database"},
		{"SQLite WAL", []byte{0x37, 0x7f, 0x06, 0x82, 0, 0x2d, 0xe2, 0x18}, "WAL"},
		{"PuTTY", []byte("PuTTY-User-Key-File-3: ssh-ed25519\n"), "PuTTY"},

		{"certificate PEM", pemOf("CERTIFICATE", cert), ""},
		{"certificate DER", cert, ""},
		{"public key PEM", pemOf("PUBLIC KEY", []byte{1, 2, 3}), ""},
		{"OpenPGP public key", pgpPublic.Bytes(), ""},
		{"PKCS#8 DER with a tail", append(append([]byte{}, pkcs8...), '\n'), ""},
		{"text", []byte("#!ipxe\nchain http://x/boot.ipxe\n"), ""},
		{"PE", append([]byte("MZ\x90\x00"), make([]byte, 200)...), ""},
		{"empty", nil, ""},
	} {
		got := privateContent(tt.data, int64(len(tt.data)))
		if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestPrivateName(t *testing.T) {
	for name, private := range map[string]bool{
		"keys/signing.key": true, "tls/key.pem": true, "Server-Key.PEM": true, "a/b_key.pem": true,
		"x.key.pem": true, "cert.p12": true, "c.PFX": true, "bootforge.db-wal": true, "bootforge.db-shm": true,
		"bootforge.db-journal": true, "id.ppk": true,
		"pxelinux.0": false, "keyboard.c32": false, "ca.pem": false, "monkey.pem": false, "keys/openpgp.pub": false,
		"grub/grub.cfg.sig": false, "bootmgr.efi": false,
	} {
		if got := privateName(name) != ""; got != private {
			t.Errorf("%s: private %v, want %v", name, got, private)
		}
	}
}

// TestGuardPrivatePaths: a file inside a private path is refused through
// any symlink, but root inside data_dir (the default layout) is served.
func TestGuardPrivatePaths(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	must(t, err)
	data := filepath.Join(base, "state")
	root := filepath.Join(data, "root")
	must(t, os.MkdirAll(filepath.Join(root, "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(data, "secret.txt"), []byte("state"), 0o600))
	must(t, os.WriteFile(filepath.Join(root, "sub", "file"), []byte("boot"), 0o644))
	// A second root that holds data_dir through a symlink to its parent,
	// as a config that slipped past validation would.
	other := filepath.Join(base, "other")
	must(t, os.MkdirAll(other, 0o755))
	must(t, os.Symlink(data, filepath.Join(other, "st")))

	d, err := OpenDir(root, false, data)
	must(t, err)
	defer d.Close()
	f, err := d.Open(Request{Path: "sub/file"})
	if err != nil {
		t.Fatalf("root inside data_dir: %v", err)
	}
	f.Close()

	// bind mounts and changes after start look like this: data_dir under root.
	d2, err := OpenDir(base, false, data)
	must(t, err)
	defer d2.Close()
	for _, p := range []string{"state/secret.txt", "state/root/sub/file"} {
		if _, err := d2.Open(Request{Path: p}); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "private") {
			t.Errorf("%s with data_dir inside root: %v, want refused", p, err)
		}
	}
	// The keys directory as root: everything in it is private.
	keys := filepath.Join(data, "keys")
	must(t, os.MkdirAll(keys, 0o700))
	must(t, os.WriteFile(filepath.Join(keys, "notes.txt"), []byte("x"), 0o600))
	d4, err := OpenDir(keys, false, data, keys)
	must(t, err)
	defer d4.Close()
	if _, err := d4.Open(Request{Path: "notes.txt"}); !errors.Is(err, ErrRefused) {
		t.Errorf("root = the keys directory: %v, want refused", err)
	}
	d3, err := OpenDir(filepath.Join(base, "other"), false, data)
	must(t, err)
	defer d3.Close()
	if _, err := d3.Open(Request{Path: "st/secret.txt"}); !errors.Is(err, ErrRefused) {
		t.Errorf("through an absolute symlink: %v, want refused", err)
	}
}

// BenchmarkDirOpen is the cost of one open of a served file, the guard
// included (a readlink; the 4 KiB read only the first time, as for a file
// that has settled), and of the two Stats a request makes of it after
// (the catalog's guard, the HTTP headers): a file at the top of the root
// and one three directories down, opened with openat2 and through os.Root.
func BenchmarkDirOpen(b *testing.B) {
	root := b.TempDir()
	data := b.TempDir()
	for _, name := range []string{"vmlinuz", "images/debian/1.2.0/vmlinuz"} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, 1<<20), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for _, throughRoot := range []bool{false, true} {
		for where, name := range map[string]string{"top": "vmlinuz", "nested": "images/debian/1.2.0/vmlinuz"} {
			way := "openat2"
			if throughRoot {
				way = "os.Root"
			}
			b.Run(way+"/"+where, func(b *testing.B) {
				d, err := OpenDir(root, false, data)
				if err != nil {
					b.Fatal(err)
				}
				defer d.Close()
				if throughRoot {
					d.beneath.close()
					d.beneath = nil
				}
				d.clean.settle = 0 // a file written now has not settled; served files have
				for b.Loop() {
					f, err := d.Open(Request{Path: name})
					if err != nil {
						b.Fatal(err)
					}
					f.Stat()
					f.Stat()
					f.Close()
				}
			})
		}
	}
}

// TestGuardRemembersCleanFiles: a settled file the guard has read once is
// not read again, but any change to it, even one that keeps its size and
// its mtime, is read afresh; and a file changed just now is never
// remembered.
func TestGuardRemembersCleanFiles(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "boot.bin")
	clean := bytes.Repeat([]byte("x"), 200)
	must(t, os.WriteFile(p, clean, 0o644))
	d, err := OpenDir(root, false)
	must(t, err)
	defer d.Close()
	open := func() error {
		f, err := d.Open(Request{Path: "boot.bin"})
		if err == nil {
			f.Close()
		}
		return err
	}
	remembered := func() bool {
		st, err := os.Stat(p)
		must(t, err)
		k, ok := identify(st)
		return ok && d.clean.has(k)
	}

	must(t, open())
	if remembered() {
		t.Fatal("a file written just now was remembered as clean")
	}
	d.clean.settle = 0 // as if it had settled
	must(t, open())
	if !remembered() {
		t.Fatal("a settled clean file was not remembered")
	}
	// The same size and the same mtime, a private key inside: its ctime
	// moved, so it is a new key and read again.
	st, err := os.Stat(p)
	must(t, err)
	time.Sleep(20 * time.Millisecond) // past a tick of the kernel's timestamp clock
	key := []byte("-----BEGIN PRIVATE KEY-----\n")
	must(t, os.WriteFile(p, append(key, clean[len(key):]...), 0o644))
	must(t, os.Chtimes(p, st.ModTime(), st.ModTime()))
	if err := open(); !errors.Is(err, ErrRefused) {
		t.Fatalf("a remembered file rewritten as a private key: %v, want refused", err)
	}
	if remembered() {
		t.Fatal("a private file was remembered as clean")
	}
}
