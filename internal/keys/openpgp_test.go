package keys

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
)

func TestOpenPGPSignVerify(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if err := InitOpenPGP(dir); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, OpenPGPPrivateFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key: %v %v", st.Mode(), err)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v", st.Mode())
	}
	pub1, _ := os.ReadFile(filepath.Join(dir, OpenPGPPublicFile))
	if err := InitOpenPGP(dir); err != nil { // keeps the key
		t.Fatal(err)
	}
	pub2, _ := os.ReadFile(filepath.Join(dir, OpenPGPPublicFile))
	if !bytes.Equal(pub1, pub2) {
		t.Fatal("second init replaced the key")
	}
	e, err := LoadOpenPGP(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("linux /vmlinuz\n")
	sig, err := SignDetached(e, data)
	if err != nil {
		t.Fatal(err)
	}
	// old-format signature packet, v4, RSA (1), SHA-256 (8), and the
	// issuer in the unhashed area, where GRUB looks for it.
	if sig[0] != 0x89 || sig[3] != 4 || sig[5] != 1 || sig[6] != 8 {
		t.Fatalf("signature packet: % x", sig[:8])
	}
	hashed := int(sig[7])<<8 | int(sig[8])
	un := sig[9+hashed:]
	ulen := int(un[0])<<8 | int(un[1])
	var kid [8]byte
	for i := range 8 {
		kid[i] = byte(e.PrimaryKey.KeyId >> (56 - 8*i))
	}
	if !bytes.Contains(un[2:2+ulen], append([]byte{9, 16}, kid[:]...)) {
		t.Fatalf("no unhashed issuer: % x", un[:2+ulen])
	}
	// old-format packet headers only: GRUB misreads new-format lengths
	for rest := pub1; len(rest) > 0; {
		if rest[0]&0xc0 != 0x80 {
			t.Fatalf("a new-format packet header in the public key: % x", rest[:2])
		}
		_, _, r, err := nextPacket(rest)
		if err != nil {
			t.Fatal(err)
		}
		rest = r
	}
	ring, err := openpgp.ReadKeyRing(bytes.NewReader(pub1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openpgp.CheckDetachedSignature(ring, bytes.NewReader(data), bytes.NewReader(sig), nil); err != nil {
		t.Fatalf("verify: %v", err)
	}
	bad := append([]byte{}, data...)
	bad[0] ^= 1
	if _, err := openpgp.CheckDetachedSignature(ring, bytes.NewReader(bad), bytes.NewReader(sig), nil); err == nil {
		t.Fatal("tampered data verified")
	}
	// gpg, if present, agrees.
	if gpg, err := exec.LookPath("gpg"); err == nil {
		home := t.TempDir()
		os.WriteFile(filepath.Join(home, "d"), data, 0o644)
		os.WriteFile(filepath.Join(home, "d.sig"), sig, 0o644)
		if out, err := exec.Command(gpg, "--homedir", home, "--batch", "--import", filepath.Join(dir, OpenPGPPublicFile)).CombinedOutput(); err != nil {
			t.Fatalf("gpg import: %v %s", err, out)
		}
		out, err := exec.Command(gpg, "--homedir", home, "--batch", "--verify", filepath.Join(home, "d.sig"), filepath.Join(home, "d")).CombinedOutput()
		if err != nil {
			t.Fatalf("gpg verify: %v %s", err, out)
		}
		if !bytes.Contains(out, []byte("SHA256")) && !bytes.Contains(out, []byte("Good signature")) {
			t.Fatalf("gpg: %s", out)
		}
	}
}
