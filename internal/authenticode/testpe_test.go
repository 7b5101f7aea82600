package authenticode

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"debug/pe"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Helpers of the tests: synthetic PE files, a test signing key, the peer
// tools (osslsigncode, sbsigntool) and the packaged binaries they check.

// Packaged binaries (scripts/deps.sh installs the packages): shim signed
// twice by Microsoft, GRUB signed by Debian, iPXE unsigned.
const (
	shimFile = "/usr/lib/shim/shimx64.efi.signed"
	grubFile = "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"
	ipxeFile = "/usr/lib/ipxe/ipxe.efi"
)

var packages = map[string]string{shimFile: "shim-signed", grubFile: "grub-efi-amd64-signed", ipxeFile: "ipxe"}

// need fails the test unless the packaged file exists.
func need(t testing.TB, file string) string {
	t.Helper()
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("%v: install package %s (scripts/deps.sh does)", err, packages[file])
	}
	return file
}

// needTool fails the test unless the peer program is installed.
func needTool(t testing.TB, program, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(program); err != nil {
		t.Fatalf("%s is not installed: install package %s (scripts/deps.sh does)", program, pkg)
	}
}

// run runs a peer and fails the test if it fails.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// peer is what osslsigncode verify prints of a file's first signature.
type peer struct {
	Signer     string // CN of the signer certificate's subject
	Calculated string // "Calculated message digest", lower-case hex
	Current    string // "Current message digest": the signature's
	Algorithm  string // "Message digest algorithm", as SHA256
}

var (
	osslCalculated = regexp.MustCompile(`(?m)^Calculated message digest\s*:\s*([0-9A-Fa-f]+)\b`) // "MISMATCH!!!" may follow
	osslCurrent    = regexp.MustCompile(`(?m)^Current message digest\s*:\s*([0-9A-Fa-f]+)\b`)
	osslAlgorithm  = regexp.MustCompile(`(?m)^Message digest algorithm\s*:\s*(\S+)\s*$`)
	osslSigner     = regexp.MustCompile(`(?s)Signer's certificate:.*?Subject:\s*([^\n]*)`)
	osslCN         = regexp.MustCompile(`/CN=([^/]*)`)
)

// osslVerify runs osslsigncode verify on file and parses its report. The
// command fails on a self-signed or not locally trusted chain, after it
// has printed the digests and the signer, so its status is not looked at;
// missing digests fail the test. On a digest mismatch it prints no signer.
func osslVerify(t testing.TB, file string) peer {
	t.Helper()
	needTool(t, "osslsigncode", "osslsigncode")
	out, _ := exec.Command("osslsigncode", "verify", "-in", file).CombinedOutput()
	var p peer
	for _, f := range []struct {
		re  *regexp.Regexp
		dst *string
	}{{osslCalculated, &p.Calculated}, {osslCurrent, &p.Current}, {osslAlgorithm, &p.Algorithm}} {
		m := f.re.FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("osslsigncode verify -in %s printed no %q:\n%s", file, f.re, out)
		}
		*f.dst = m[1]
	}
	if m := osslSigner.FindStringSubmatch(string(out)); m != nil {
		cn := osslCN.FindStringSubmatch(m[1])
		if cn == nil {
			t.Fatalf("osslsigncode's signer %q has no CN", m[1])
		}
		p.Signer = strings.TrimSpace(cn[1])
	}
	p.Calculated, p.Current = strings.ToLower(p.Calculated), strings.ToLower(p.Current)
	return p
}

// testSignerCN is the subject CN of the test signing certificate.
const testSignerCN = "bootforge test signer"

var (
	keyOnce          sync.Once
	keyFile, crtFile string
	keyErr           error
)

// testKey returns PEM files of an RSA key and its self-signed certificate,
// made once per test binary.
func testKey(t testing.TB) (key, cert string) {
	t.Helper()
	keyOnce.Do(func() {
		dir, err := os.MkdirTemp("", "authenticode-key-")
		if err != nil {
			keyErr = err
			return
		}
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			keyErr = err
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(0x5ec0de),
			Subject:      pkix.Name{CommonName: testSignerCN, Organization: []string{"bootforge"}},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			keyErr = err
			return
		}
		keyFile, crtFile = filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
		crtPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		if keyErr = os.WriteFile(keyFile, keyPEM, 0o600); keyErr == nil {
			keyErr = os.WriteFile(crtFile, crtPEM, 0o644)
		}
	})
	if keyErr != nil {
		t.Fatal(keyErr)
	}
	return keyFile, crtFile
}

// osslSign signs in with the test key and the hash ("sha256", "sha1")
// using osslsigncode, and returns the signed file.
func osslSign(t testing.TB, in, hash string) string {
	t.Helper()
	needTool(t, "osslsigncode", "osslsigncode")
	key, cert := testKey(t)
	out := filepath.Join(t.TempDir(), filepath.Base(in)+".ossl-"+hash)
	run(t, "osslsigncode", "sign", "-certs", cert, "-key", key, "-h", hash, "-in", in, "-out", out)
	return out
}

// sbSign signs in with the test key using sbsign.
func sbSign(t testing.TB, in string) string {
	t.Helper()
	needTool(t, "sbsign", "sbsigntool")
	key, cert := testKey(t)
	out := filepath.Join(t.TempDir(), filepath.Base(in)+".sbsign")
	run(t, "sbsign", "--key", key, "--cert", cert, "--output", out, in)
	return out
}

// writeFile writes b to a new file in the test's temporary directory.
func writeFile(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// copyOf copies src into the test's temporary directory.
func copyOf(t testing.TB, src string) (string, []byte) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, filepath.Base(src), b), b
}

// layout is the certificate table's data-directory entry and the sections
// of a PE file, read with debug/pe, independently of the package.
type layout struct {
	certDirOff       int64 // offset of the entry in the file
	certOff, certLen int64
	sections         []*pe.Section
}

func peLayout(t testing.TB, b []byte) layout {
	t.Helper()
	f, err := pe.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var l layout
	opt := int64(binary.LittleEndian.Uint32(b[0x3c:])) + 24
	var dirs []pe.DataDirectory
	switch oh := f.OptionalHeader.(type) {
	case *pe.OptionalHeader32:
		l.certDirOff, dirs = opt+96+4*8, oh.DataDirectory[:]
	case *pe.OptionalHeader64:
		l.certDirOff, dirs = opt+112+4*8, oh.DataDirectory[:]
	}
	if len(dirs) > 4 {
		l.certOff, l.certLen = int64(dirs[4].VirtualAddress), int64(dirs[4].Size)
	}
	// The offset computed here must hold what debug/pe read.
	if got := int64(binary.LittleEndian.Uint32(b[l.certDirOff:])); got != l.certOff {
		t.Fatalf("certificate table entry at %#x holds %#x, debug/pe read %#x", l.certDirOff, got, l.certOff)
	}
	l.sections = f.Sections
	return l
}

// section returns the named section of l.
func (l layout) section(t testing.TB, name string) *pe.Section {
	t.Helper()
	for _, s := range l.sections {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no section %s", name)
	return nil
}

// testPE returns a small EFI application, PE32 or PE32+: headers of 0x200
// bytes, then .text and .data of 0x200 random bytes each, listed in the
// section table in the reverse of their file order, then tail bytes of
// trailing data. No certificate table, CheckSum 0.
func testPE(plus bool, tail int, seed uint64) []byte {
	const (
		headers   = 0x200
		fileAlign = 0x200
		sectAlign = 0x1000
		peOff     = 0x40
		opt       = peOff + 24
	)
	le16 := binary.LittleEndian.PutUint16
	le32 := binary.LittleEndian.PutUint32
	optSize, numRVA, machine, chars, magic := 96+16*8, 92, uint16(0x14c), uint16(0x0102), uint16(magicPE32)
	if plus {
		optSize, numRVA, machine, chars, magic = 112+16*8, 108, 0x8664, 0x0022, magicPE32Plus
	}
	b := make([]byte, headers+2*fileAlign+tail)
	r := mrand.New(mrand.NewPCG(seed, 1))
	for i := headers; i < len(b); i++ {
		b[i] = byte(r.Uint32())
	}
	copy(b, "MZ")
	le32(b[0x3c:], peOff)
	copy(b[peOff:], "PE\x00\x00")
	le16(b[peOff+4:], machine)
	le16(b[peOff+6:], 2) // sections
	le16(b[peOff+20:], uint16(optSize))
	le16(b[peOff+22:], chars)
	o := b[opt:]
	le16(o[0:], magic)
	o[2] = 2                // linker version
	le32(o[4:], fileAlign)  // SizeOfCode
	le32(o[8:], fileAlign)  // SizeOfInitializedData
	le32(o[16:], sectAlign) // AddressOfEntryPoint
	le32(o[20:], sectAlign) // BaseOfCode
	if plus {
		binary.LittleEndian.PutUint64(o[24:], 0x10000000) // ImageBase
	} else {
		le32(o[24:], 2*sectAlign) // BaseOfData
		le32(o[28:], 0x10000000)  // ImageBase
	}
	le32(o[32:], sectAlign)
	le32(o[36:], fileAlign)
	le32(o[56:], 3*sectAlign) // SizeOfImage
	le32(o[60:], headers)     // SizeOfHeaders
	le16(o[68:], 10)          // Subsystem: EFI application
	le32(o[numRVA:], 16)
	sect := func(i int, name string, va, ptr, flags uint32) {
		s := b[opt+optSize+i*sectionSize:]
		copy(s, name)
		le32(s[8:], fileAlign) // VirtualSize
		le32(s[12:], va)
		le32(s[16:], fileAlign) // SizeOfRawData
		le32(s[20:], ptr)
		le32(s[36:], flags)
	}
	sect(0, ".data", 2*sectAlign, headers+fileAlign, 0xc0000040)
	sect(1, ".text", sectAlign, headers, 0x60000020)
	return b
}

// withTable returns b with a certificate table of the given entries
// appended (each a WIN_CERTIFICATE of the type, padded to 8 bytes), and
// the entry pointing at it; b's PE layout must be testPE's.
func withTable(b []byte, plus bool, typ uint16, blobs ...[]byte) []byte {
	out := append([]byte(nil), b...)
	for len(out)%8 != 0 {
		out = append(out, 0)
	}
	off := len(out)
	for _, blob := range blobs {
		n := winCertificateHeader + len(blob)
		var h [8]byte
		binary.LittleEndian.PutUint32(h[:], uint32(n))
		binary.LittleEndian.PutUint16(h[4:], 0x0200)
		binary.LittleEndian.PutUint16(h[6:], typ)
		out = append(append(out, h[:]...), blob...)
		for len(out)%8 != 0 {
			out = append(out, 0)
		}
	}
	dir := 0x40 + 24 + 96 + 4*8
	if plus {
		dir = 0x40 + 24 + 112 + 4*8
	}
	binary.LittleEndian.PutUint32(out[dir:], uint32(off))
	binary.LittleEndian.PutUint32(out[dir+4:], uint32(len(out)-off))
	return out
}

// signatureBlobs returns the PKCS #7 blobs of the certificate table of the
// signed file, read with debug/pe's layout.
func signatureBlobs(t testing.TB, b []byte) [][]byte {
	t.Helper()
	l := peLayout(t, b)
	table := b[l.certOff : l.certOff+l.certLen]
	var blobs [][]byte
	for len(table) >= 8 {
		n := int(binary.LittleEndian.Uint32(table))
		if n < 8 || n > len(table) {
			t.Fatalf("bad table entry length %d", n)
		}
		blobs = append(blobs, table[8:n])
		table = table[min((n+7)&^7, len(table)):]
	}
	return blobs
}

func describe(s Signature) string { return fmt.Sprintf("%+v", s) }
