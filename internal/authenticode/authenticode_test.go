package authenticode

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Peer comparisons: osslsigncode verify prints the digest it calculates of
// a file and the signer of its first signature; sbsign and osslsigncode
// sign files with a test key. The Debian-signed kernel is compared in
// test/e2e/authenticode_test.go, which has its fixture.

// checkAgainstPeer checks Inspect(file) against osslsigncode verify.
func checkAgainstPeer(t *testing.T, file string) Signature {
	t.Helper()
	s, err := Inspect(file)
	if err != nil {
		t.Fatalf("Inspect(%s): %v", file, err)
	}
	p := osslVerify(t, file)
	t.Logf("%s: Inspect signer %q digest %s %s; osslsigncode signer %q calculated %s %s",
		filepath.Base(file), s.Signer, s.Algorithm, s.Digest, p.Signer, p.Algorithm, p.Calculated)
	if !s.Signed || s.Count < 1 || !s.DigestMatches {
		t.Errorf("%s: %s, want signed with a matching digest", file, describe(s))
	}
	if p.Signer == "" || s.Signer != p.Signer {
		t.Errorf("%s: signer %q, osslsigncode says %q", file, s.Signer, p.Signer)
	}
	if s.Digest != p.Calculated || s.SignedDigest != p.Current {
		t.Errorf("%s: digest %s (signed %s), osslsigncode calculated %s (current %s)", file, s.Digest, s.SignedDigest, p.Calculated, p.Current)
	}
	return s
}

func TestSyntheticPE32AndPE32Plus(t *testing.T) {
	for _, plus := range []bool{false, true} {
		for _, tail := range []int{0, 3} { // 3: an unsigned size that signers pad
			name := map[bool]string{false: "pe32", true: "pe32plus"}[plus]
			t.Run(name+map[int]string{0: "", 3: "-unaligned"}[tail], func(t *testing.T) {
				f := writeFile(t, name+".efi", testPE(plus, tail, uint64(tail)))
				u, err := Inspect(f)
				if err != nil || u.Signed || u.Count != 0 || u.DigestMatches || u.Algorithm != "SHA-256" || len(u.Digest) != 64 {
					t.Fatalf("unsigned: %s, %v", describe(u), err)
				}
				// The unsigned file's digest is the one each signer signs.
				for _, signed := range []string{osslSign(t, f, "sha256"), sbSign(t, f)} {
					s := checkAgainstPeer(t, signed)
					if s.Digest != u.Digest || s.Signer != testSignerCN || s.Algorithm != "SHA-256" || s.Count != 1 {
						t.Errorf("%s: %s; unsigned digest %s", signed, describe(s), u.Digest)
					}
				}
				s := checkAgainstPeer(t, osslSign(t, f, "sha1"))
				if s.Algorithm != "SHA-1" || len(s.Digest) != 40 {
					t.Errorf("SHA-1 signature: %s", describe(s))
				}
			})
		}
	}
}

func TestDebianGRUB(t *testing.T) {
	s := checkAgainstPeer(t, need(t, grubFile))
	if s.Count != 1 || s.Signer != "Debian Secure Boot Signer 2022 - grub2" || s.Issuer != "CN=Debian Secure Boot CA" {
		t.Errorf("grub: %s", describe(s))
	}
}

// osslsigncode 2.9 cannot read shim's table of two signatures ("Corrupted
// attribute certificate table"), so each signature is compared in a copy
// of shim that holds that one alone: the digest does not cover the table.
func TestMicrosoftShim(t *testing.T) {
	b, err := os.ReadFile(need(t, shimFile))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Inspect(shimFile)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Signed || s.Count != 2 || !s.DigestMatches || s.Algorithm != "SHA-256" {
		t.Fatalf("shim: %s", describe(s))
	}
	l := peLayout(t, b)
	if l.certOff+l.certLen != int64(len(b)) {
		t.Fatalf("shim's certificate table is not at its end")
	}
	blobs := signatureBlobs(t, b)
	if len(blobs) != 2 {
		t.Fatalf("shim has %d signatures, want 2", len(blobs))
	}
	want := []string{"Microsoft Windows UEFI Driver Publisher", "Microsoft UEFI CA 2023 signer"}
	for i, blob := range blobs {
		one := bytes.Clone(b[:l.certOff])
		n := 8 + len(blob)
		var h [8]byte
		binary.LittleEndian.PutUint32(h[:], uint32(n))
		binary.LittleEndian.PutUint16(h[4:], 0x0200)
		binary.LittleEndian.PutUint16(h[6:], certTypePKCSSigned)
		one = append(append(one, h[:]...), blob...)
		binary.LittleEndian.PutUint32(one[l.certDirOff+4:], uint32(n))
		c := checkAgainstPeer(t, writeFile(t, "shim-signature-"+string(rune('1'+i))+".efi", one))
		if c.Digest != s.Digest || c.Signer != want[i] {
			t.Errorf("shim's signature %d alone: %s; shim %s, want signer %q", i+1, describe(c), describe(s), want[i])
		}
		if i == 0 && (s.Signer != c.Signer || s.Subject != c.Subject || s.SignedDigest != c.SignedDigest) {
			t.Errorf("shim reports %s, not its first signature %s", describe(s), describe(c))
		}
	}
}

// iPXE is not signed; its digest is the one a signature of it carries.
func TestUnsignedIPXE(t *testing.T) {
	u, err := Inspect(need(t, ipxeFile))
	if err != nil {
		t.Fatal(err)
	}
	if u.Signed || u.Count != 0 || u.DigestMatches || u.Signer != "" || len(u.Digest) != 64 {
		t.Fatalf("ipxe: %s", describe(u))
	}
	for _, signed := range []string{osslSign(t, ipxeFile, "sha256"), sbSign(t, ipxeFile)} {
		if s := checkAgainstPeer(t, signed); s.Digest != u.Digest {
			t.Errorf("%s: digest %s, unsigned %s", signed, s.Digest, u.Digest)
		}
	}
}

// Removing the signature leaves an unsigned file of the same digest.
func TestSignatureRemoved(t *testing.T) {
	needTool(t, "sbattach", "sbsigntool")
	needTool(t, "osslsigncode", "osslsigncode")
	orig, err := Inspect(need(t, grubFile))
	if err != nil {
		t.Fatal(err)
	}
	sbattach, _ := copyOf(t, grubFile)
	run(t, "sbattach", "--remove", sbattach)
	ossl := filepath.Join(t.TempDir(), "grub-ossl-removed.efi")
	run(t, "osslsigncode", "remove-signature", "-in", grubFile, "-out", ossl)
	for _, f := range []string{sbattach, ossl} {
		u, err := Inspect(f)
		if err != nil || u.Signed || u.Count != 0 || u.DigestMatches || u.Digest != orig.Digest {
			t.Errorf("%s: %s, %v; want unsigned, digest %s", f, describe(u), err, orig.Digest)
		}
	}
}

// One byte of code changed: still signed, the digest no longer matches,
// and it is the one osslsigncode calculates. A changed CheckSum is not in
// the digest.
func TestChangedFile(t *testing.T) {
	orig, err := Inspect(need(t, grubFile))
	if err != nil {
		t.Fatal(err)
	}
	f, b := copyOf(t, grubFile)
	text := peLayout(t, b).section(t, ".text")
	at := int64(text.Offset) + int64(text.Size)/2
	b[at] ^= 0x01
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Inspect(f)
	if err != nil {
		t.Fatal(err)
	}
	p := osslVerify(t, f)
	t.Logf("byte %#x of .text flipped: Inspect %s, osslsigncode calculated %s, signed %s", at, s.Digest, p.Calculated, s.SignedDigest)
	if !s.Signed || s.DigestMatches || s.Digest == orig.Digest || s.SignedDigest != orig.Digest || s.Signer != orig.Signer {
		t.Errorf("flipped code byte: %s; original %s", describe(s), describe(orig))
	}
	if s.Digest != p.Calculated {
		t.Errorf("flipped code byte: digest %s, osslsigncode calculated %s", s.Digest, p.Calculated)
	}

	f, b = copyOf(t, grubFile)
	checkSum := binary.LittleEndian.Uint32(b[0x3c:]) + 24 + 64
	b[checkSum] ^= 0xff
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := Inspect(f); err != nil || !s.DigestMatches || s.Digest != orig.Digest {
		t.Errorf("changed CheckSum: %s, %v; want the original digest %s", describe(s), err, orig.Digest)
	}
}

// A file changed together with the digest in its SpcIndirectDataContent
// matches that digest, but not the signed attributes: a bad signature.
func TestForgedDigest(t *testing.T) {
	orig, err := Inspect(need(t, grubFile))
	if err != nil {
		t.Fatal(err)
	}
	f, b := copyOf(t, grubFile)
	text := peLayout(t, b).section(t, ".text")
	b[int64(text.Offset)+100] ^= 0x01
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	changed, _ := Inspect(f)
	old, _ := hex.DecodeString(orig.Digest)
	now, _ := hex.DecodeString(changed.Digest)
	if bytes.Count(b, old) != 1 {
		t.Fatalf("the signed digest is %d times in the file", bytes.Count(b, old))
	}
	b = bytes.Replace(b, old, now, 1)
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Inspect(f)
	t.Logf("forged: %s, %v; changed %s", describe(s), err, changed.Digest)
	if !errors.Is(err, ErrBadSignature) || s.DigestMatches || !s.Signed {
		t.Errorf("forged digest: %s, %v; want ErrBadSignature", describe(s), err)
	}
}

func TestNotPE(t *testing.T) {
	grub, err := os.ReadFile(need(t, grubFile))
	if err != nil {
		t.Fatal(err)
	}
	pe32 := testPE(false, 0, 1)
	short := bytes.Clone(pe32)
	binary.LittleEndian.PutUint32(short[0x40+24+60:], 0x100) // SizeOfHeaders short of the section table
	past := bytes.Clone(pe32)
	binary.LittleEndian.PutUint32(past[0x40+24+96+16*8+20:], 0x10000) // .data's PointerToRawData
	for name, b := range map[string][]byte{
		"empty":               nil,
		"text":                []byte("hello, this is not a PE file at all, it is text of more than 64 bytes"),
		"MZ only":             append([]byte("MZ"), make([]byte, 100)...),
		"grub headers":        grub[:0x400],
		"grub truncated":      grub[:len(grub)/2],
		"short SizeOfHeaders": short,
		"section past end":    past,
	} {
		if s, err := Inspect(writeFile(t, "x", b)); !errors.Is(err, ErrNotPE) {
			t.Errorf("%s: %s, %v; want ErrNotPE", name, describe(s), err)
		}
	}
	if _, err := Inspect(t.TempDir()); !errors.Is(err, ErrNotPE) {
		t.Errorf("a directory: %v", err)
	}
	if _, err := Inspect(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
}

func TestMalformedTable(t *testing.T) {
	grub, err := os.ReadFile(need(t, grubFile))
	if err != nil {
		t.Fatal(err)
	}
	blob := signatureBlobs(t, grub)[0]
	plus := testPE(true, 0, 1)
	dir := 0x40 + 24 + 112 + 4*8

	// A signature moved onto another file is still read and checked: it
	// just does not match.
	moved, err := InspectReader(bytes.NewReader(withTable(plus, true, certTypePKCSSigned, blob)), int64(len(withTable(plus, true, certTypePKCSSigned, blob))))
	if err != nil || !moved.Signed || moved.DigestMatches || moved.Signer != "Debian Secure Boot Signer 2022 - grub2" {
		t.Errorf("GRUB's signature on another file: %s, %v", describe(moved), err)
	}
	// Entries of other types are not signatures.
	other := withTable(plus, true, 0x0001, blob)
	if s, err := InspectReader(bytes.NewReader(other), int64(len(other))); err != nil || s.Signed || s.Count != 0 {
		t.Errorf("an X.509 entry: %s, %v", describe(s), err)
	}

	pastEnd := withTable(plus, true, certTypePKCSSigned, blob)
	binary.LittleEndian.PutUint32(pastEnd[dir+4:], uint32(len(pastEnd)))
	badLength := withTable(plus, true, certTypePKCSSigned, blob)
	binary.LittleEndian.PutUint32(badLength[len(plus):], 0xffff)
	garbage := withTable(plus, true, certTypePKCSSigned, bytes.Repeat([]byte{0x30, 0x82}, 100))
	notSigned := bytes.Clone(blob)
	notSigned[len(notSigned)-10] ^= 0x01 // in the signer info's signature
	broken := withTable(plus, true, certTypePKCSSigned, notSigned)
	second := withTable(plus, true, certTypePKCSSigned, blob, []byte{0x30, 0x00})
	for name, b := range map[string][]byte{
		"table past the end": pastEnd,
		"entry length":       badLength,
		"garbage":            garbage,
		"changed signature":  broken,
		"bad second entry":   second,
	} {
		s, err := InspectReader(bytes.NewReader(b), int64(len(b)))
		if !errors.Is(err, ErrBadSignature) || s.DigestMatches {
			t.Errorf("%s: %s, %v; want ErrBadSignature", name, describe(s), err)
		}
	}
}

func FuzzInspect(f *testing.F) {
	grub, err := os.ReadFile(grubFile)
	if err != nil {
		f.Fatalf("%v: install package grub-efi-amd64-signed (scripts/deps.sh does)", err)
	}
	blob := signatureBlobs(f, grub)[0]
	for _, plus := range []bool{false, true} {
		pe := testPE(plus, 5, 2)
		f.Add(pe)
		f.Add(withTable(pe, plus, certTypePKCSSigned, blob))
		f.Add(withTable(pe, plus, certTypePKCSSigned, blob, blob[:len(blob)/2]))
	}
	f.Add(grub[:0x200])
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := InspectReader(bytes.NewReader(b), int64(len(b)))
		switch {
		case errors.Is(err, ErrNotPE):
			if s != (Signature{}) {
				t.Fatalf("not a PE file, yet %s", describe(s))
			}
		case err == nil || errors.Is(err, ErrBadSignature):
			if n := len(s.Digest); n != 40 && n != 64 && n != 96 && n != 128 {
				t.Fatalf("digest %q", s.Digest)
			}
			if s.Signed != (s.Count > 0) || (s.DigestMatches && (err != nil || s.Digest != s.SignedDigest)) {
				t.Fatalf("%s, %v", describe(s), err)
			}
		default:
			t.Fatalf("an error neither ErrNotPE nor ErrBadSignature: %v", err)
		}
	})
}

func BenchmarkInspect(b *testing.B) {
	st, err := os.Stat(need(b, grubFile))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	for b.Loop() {
		if s, err := Inspect(grubFile); err != nil || !s.DigestMatches {
			b.Fatal(s, err)
		}
	}
}

// The whole of it is hashing: GRUB's 4 MB take milliseconds.
func TestInspectTime(t *testing.T) {
	start := time.Now()
	if _, err := Inspect(need(t, grubFile)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Inspect of GRUB took %v", d)
	}
}
