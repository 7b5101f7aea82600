// Package authenticode reads the Authenticode signature of an EFI binary or
// kernel (a PE32 or PE32+ file) and computes the file's Authenticode
// digest, in Go: the distroless container has no openssl.
//
// The digest follows Microsoft's "Windows Authenticode Portable Executable
// Signature Format": the headers up to SizeOfHeaders less the optional
// header's CheckSum and the Certificate Table data-directory entry, then
// the sections' raw data in file order (by PointerToRawData), then every
// byte after the last section's data except the certificate table itself.
// An unsigned file is padded with zeros to a multiple of 8 bytes, as
// signers (sbsign, osslsigncode) pad it before they append the table, so
// that its digest is the one a signature of it will carry. The
// hash is the one the first signature's SpcIndirectDataContent names
// (SHA-1, SHA-256, SHA-384 or SHA-512), SHA-256 for an unsigned file.
// Where this differs from osslsigncode, which hashes the file straight
// through from the end of the Certificate Table entry to the start of the
// table: gaps between sections (hashed by osslsigncode, not by the
// specification nor here) and data after the table (hashed here only).
// Neither occurs in Debian's signed kernel, GRUB and shim.
//
// Each WIN_CERT_TYPE_PKCS_SIGNED_DATA entry of the certificate table is
// read, and must be well formed (shim carries two; Signature describes the
// first and counts them). What is checked of each:
//   - it is DER PKCS #7 SignedData whose content is an
//     SpcIndirectDataContent for a PE image (SPC_PE_IMAGE_DATA), with a
//     digest of a known algorithm and of that algorithm's length;
//   - it has one signer info whose certificate is in the SignedData;
//   - the signed attributes say the content type is SpcIndirectDataContent
//     and hold the message digest of it, and the signer certificate's key
//     signed those attributes (smallstep/pkcs7's Verify without a trust
//     store). Without this, a file changed together with the digest in its
//     SpcIndirectDataContent would pass as matching;
//   - DigestMatches: the digest in the first signature's
//     SpcIndirectDataContent equals the digest computed of the file.
//
// What is not checked: whether the signer chains to a trusted root, or is
// revoked, expired, or forbidden; that depends on the keys enrolled in the
// machine's db and dbx, which only a boot can tell. Nor are countersignatures
// and timestamps, nested signatures (the unauthenticated attribute some
// Windows tools add; shim uses two table entries instead), or page hashes
// read. The library checks a signing-time attribute against the signer
// certificate's validity before the signature, so a signature claiming a
// time outside it is reported bad though firmware ignores the time.
//
// smallstep/pkcs7 parses the SignedData, its certificates and signer info
// and checks the signature, but keeps the content types to itself and
// hands out the content without its tag and length, and ignores errors in
// parts of SignedData it does not understand; encoding/asn1 therefore reads
// the ContentInfo and SignedData up to the content, and the
// SpcIndirectDataContent, here, and the two readings must agree.
package authenticode

import (
	"bytes"
	"cmp"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
)

// Signature describes a PE file's Authenticode signature and digest.
type Signature struct {
	// Signed is true when the certificate table holds at least one
	// PKCS #7 SignedData entry; the other fields but Digest and
	// Algorithm describe the first.
	Signed bool `json:"signed"`
	// Signer is the subject common name of the signing certificate, as
	// "Debian Secure Boot Signer 2022 - linux"; Subject and Issuer are its
	// whole names (RFC 2253 form, as "CN=Debian Secure Boot CA").
	Signer  string `json:"signer,omitempty"`
	Subject string `json:"subject,omitempty"`
	Issuer  string `json:"issuer,omitempty"`
	// Digest is the Authenticode digest computed of the file (lower-case
	// hex), with Algorithm ("SHA-256", "SHA-1"): the one the signature
	// names, SHA-256 for an unsigned file.
	Digest    string `json:"digest,omitempty"`
	Algorithm string `json:"algorithm,omitempty"`
	// SignedDigest is the digest the signature holds; DigestMatches is
	// true when it equals Digest.
	SignedDigest  string `json:"signed_digest,omitempty"`
	DigestMatches bool   `json:"digest_matches"`
	// Count is the number of signatures in the table (shim has two).
	Count int `json:"count,omitempty"`
}

var (
	// ErrNotPE is the error (wrapped) for a file that is not a PE image,
	// or whose headers or sections run past its end.
	ErrNotPE = errors.New("not a PE/EFI binary")
	// ErrBadSignature is the error (wrapped) for a malformed certificate
	// table or signature, or one whose signer info is not consistent.
	ErrBadSignature = errors.New("bad Authenticode signature")
)

// Inspect reads the signature of the PE file at path and computes its
// digest. On an error wrapping ErrBadSignature, the Signature holds what
// could be read (Signed, Count, Digest); it must not be taken as valid.
func Inspect(path string) (Signature, error) {
	f, err := os.Open(path)
	if err != nil {
		return Signature{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Signature{}, err
	}
	if !st.Mode().IsRegular() {
		return Signature{}, fmt.Errorf("%s: %w: not a regular file", path, ErrNotPE)
	}
	sig, err := InspectReader(f, st.Size())
	if err != nil {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return sig, err
}

// InspectReader is Inspect of the size bytes of r.
func InspectReader(r io.ReaderAt, size int64) (Signature, error) {
	im, err := parseImage(r, size)
	if err != nil {
		return Signature{}, err
	}
	blobs, tableErr := readTable(r, im)
	sig := Signature{Signed: len(blobs) > 0, Count: len(blobs)}
	var first *signature
	var sigErr error
	for i, b := range blobs {
		s, err := parseSignature(b)
		if err != nil {
			if sigErr == nil {
				sigErr = fmt.Errorf("signature %d of %d: %w", i+1, len(blobs), err)
			}
			continue
		}
		if i == 0 {
			first = s
		}
	}
	hash := crypto.SHA256
	if first != nil {
		hash = first.hash
	}
	h := hash.New()
	if err := im.digest(r, h); err != nil {
		return Signature{}, err
	}
	sum := h.Sum(nil)
	sig.Digest, sig.Algorithm = hex.EncodeToString(sum), hash.String()
	if first != nil {
		sig.Signer = first.signer.Subject.CommonName
		sig.Subject, sig.Issuer = first.signer.Subject.String(), first.signer.Issuer.String()
		sig.SignedDigest = hex.EncodeToString(first.digest)
		sig.DigestMatches = bytes.Equal(first.digest, sum)
	}
	return sig, cmp.Or(tableErr, sigErr)
}
