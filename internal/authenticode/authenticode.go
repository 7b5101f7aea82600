// Package authenticode tells whether an EFI binary or kernel carries an
// Authenticode signature, and who signed it, for Secure Boot chains.
//
// The certificate table is found with the standard library's debug/pe
// (data directory 4, IMAGE_DIRECTORY_ENTRY_SECURITY); the signer is read
// from the PKCS#7 blob by openssl, the tool distributions sign and inspect
// these files with. osslsigncode would do both, but 2.9 calls shim's table
// of two signatures "corrupted". This reports what is signed, not whether
// a firmware will trust it: that depends on the keys enrolled in the
// machine, which only a boot can tell.
package authenticode

import (
	"context"
	"crypto/sha256"
	"debug/pe"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Signature describes a file's Authenticode signature.
type Signature struct {
	Signed  bool   `json:"signed"`
	Subject string `json:"subject,omitempty"` // of the signing certificate
	Issuer  string `json:"issuer,omitempty"`
	Digest  string `json:"digest,omitempty"` // SHA-256 of the first signature blob
	Count   int    `json:"count,omitempty"`  // signatures in the table (shim has two)
}

const (
	dirSecurity          = 4      // IMAGE_DIRECTORY_ENTRY_SECURITY
	certTypePKCSSigned   = 0x0002 // WIN_CERT_TYPE_PKCS_SIGNED_DATA
	maxCertificateTable  = 1 << 20
	winCertificateHeader = 8 // dwLength, wRevision, wCertificateType
)

// Inspect reads the signature of the PE file at path.
func Inspect(path string) (Signature, error) {
	f, err := os.Open(path)
	if err != nil {
		return Signature{}, err
	}
	defer f.Close()
	p, err := pe.NewFile(f)
	if err != nil {
		return Signature{}, fmt.Errorf("%s is not a PE/EFI binary: %w", path, err)
	}
	var dir pe.DataDirectory
	switch oh := p.OptionalHeader.(type) {
	case *pe.OptionalHeader64:
		if len(oh.DataDirectory) > dirSecurity {
			dir = oh.DataDirectory[dirSecurity]
		}
	case *pe.OptionalHeader32:
		if len(oh.DataDirectory) > dirSecurity {
			dir = oh.DataDirectory[dirSecurity]
		}
	}
	if dir.Size == 0 {
		return Signature{Signed: false}, nil
	}
	if dir.Size > maxCertificateTable {
		return Signature{}, fmt.Errorf("%s: certificate table of %d bytes", path, dir.Size)
	}
	table := make([]byte, dir.Size)
	// For the security directory the "virtual address" is a file offset.
	if _, err := f.ReadAt(table, int64(dir.VirtualAddress)); err != nil && !errors.Is(err, io.EOF) {
		return Signature{}, fmt.Errorf("%s: reading the certificate table: %w", path, err)
	}
	var sig Signature
	var first []byte
	for rest := table; len(rest) >= winCertificateHeader; {
		n := int(binary.LittleEndian.Uint32(rest))
		typ := binary.LittleEndian.Uint16(rest[6:])
		if n < winCertificateHeader || n > len(rest) {
			break
		}
		if typ == certTypePKCSSigned {
			sig.Count++
			if first == nil {
				first = rest[winCertificateHeader:n]
			}
		}
		rest = rest[(n+7)&^7:] // entries are 8-byte aligned
		if (n+7)&^7 > len(table) {
			break
		}
	}
	if first == nil {
		return Signature{Signed: false}, nil
	}
	sum := sha256.Sum256(first)
	sig.Signed, sig.Digest = true, hex.EncodeToString(sum[:])
	sig.Subject, sig.Issuer = signer(first)
	return sig, nil
}

// signer asks openssl for the first certificate's subject and issuer; empty
// if openssl is missing or cannot read the blob.
func signer(der []byte) (subject, issuer string) {
	tmp, err := os.MkdirTemp("", "bootforge-sig-")
	if err != nil {
		return "", ""
	}
	defer os.RemoveAll(tmp)
	name := filepath.Join(tmp, "sig.der")
	if err := os.WriteFile(name, der, 0o600); err != nil {
		return "", ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "openssl", "pkcs7", "-inform", "DER", "-in", name, "-print_certs", "-noout").Output()
	if err != nil {
		return "", ""
	}
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "subject=") && subject == "":
			subject = strings.TrimSpace(strings.TrimPrefix(line, "subject="))
		case strings.HasPrefix(line, "issuer=") && issuer == "":
			issuer = strings.TrimSpace(strings.TrimPrefix(line, "issuer="))
		}
	}
	return subject, issuer
}
