package authenticode

import (
	"bytes"
	"crypto"
	_ "crypto/sha1" // digest algorithms a signature may name
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/smallstep/pkcs7"
)

// The attribute certificate table ("The Attribute Certificate Table" in
// Microsoft's PE Format document).
const (
	winCertificateHeader = 8      // dwLength, wRevision, wCertificateType
	certTypePKCSSigned   = 0x0002 // WIN_CERT_TYPE_PKCS_SIGNED_DATA
	maxCertificateTable  = 1 << 20
)

// Object identifiers of Authenticode ("Windows Authenticode Portable
// Executable Signature Format") and PKCS #7.
var (
	oidSignedData      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidSpcIndirectData = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 4}
	oidSpcPEImageData  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 15}

	digestAlgorithms = []struct {
		oid  asn1.ObjectIdentifier
		hash crypto.Hash
	}{
		{asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}, crypto.SHA1},
		{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}, crypto.SHA256},
		{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}, crypto.SHA384},
		{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}, crypto.SHA512},
	}
)

// contentInfo is PKCS #7's ContentInfo. encoding/asn1 leaves the
// [0] EXPLICIT wrapper on a RawValue: Content.Bytes is the content's
// encoding.
type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

// signedDataHead is the start of PKCS #7's SignedData, up to the content;
// encoding/asn1 ignores the fields after it (certificates, signerInfos).
type signedDataHead struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	ContentInfo      contentInfo
}

// spcIndirectDataContent is Authenticode's content: what is signed (a PE
// image) and the digest of it.
type spcIndirectDataContent struct {
	Data          spcAttributeTypeAndOptionalValue
	MessageDigest digestInfo
}

type spcAttributeTypeAndOptionalValue struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"optional"`
}

type digestInfo struct {
	DigestAlgorithm pkix.AlgorithmIdentifier
	Digest          []byte
}

// signature is one signature of the certificate table, read and checked.
type signature struct {
	hash   crypto.Hash
	digest []byte // the file's digest, as the signature says it is
	signer *x509.Certificate
}

// readTable returns the PKCS #7 blobs of the file's certificate table, in
// table order. Errors wrap ErrBadSignature, except those of reading.
func readTable(r io.ReaderAt, im *image) ([][]byte, error) {
	if im.cert.size == 0 {
		return nil, nil
	}
	if !within(im.cert.off, im.cert.size, im.size) {
		return nil, badSignature("the certificate table (%d bytes at %#x) is past the end of the file (%d bytes)", im.cert.size, im.cert.off, im.size)
	}
	if im.cert.size > maxCertificateTable {
		return nil, badSignature("the certificate table is %d bytes, more than %d", im.cert.size, maxCertificateTable)
	}
	table := make([]byte, im.cert.size)
	if err := readAt(r, table, im.cert.off); err != nil {
		return nil, err
	}
	var blobs [][]byte
	for at := 0; at+winCertificateHeader <= len(table); {
		n := int(binary.LittleEndian.Uint32(table[at:]))
		typ := binary.LittleEndian.Uint16(table[at+6:])
		if n < winCertificateHeader || n > len(table)-at {
			return blobs, badSignature("certificate table entry %d at %#x: length %d in a table of %d bytes", len(blobs), at, n, len(table))
		}
		if typ == certTypePKCSSigned {
			blobs = append(blobs, table[at+winCertificateHeader:at+n])
		}
		at += (n + 7) &^ 7 // entries start 8-byte aligned
	}
	return blobs, nil
}

// parseSignature reads an Authenticode signature: PKCS #7 SignedData
// whose content is an SpcIndirectDataContent for a PE image. Errors wrap
// ErrBadSignature.
func parseSignature(blob []byte) (*signature, error) {
	// The entry's length may include padding after the DER encoding.
	var outer asn1.RawValue
	if _, err := asn1.Unmarshal(blob, &outer); err != nil {
		return nil, badSignature("not DER: %v", err)
	}
	der := outer.FullBytes

	// The library keeps the content types to itself, and the content's
	// tag and length: encoding/asn1 reads them.
	var ci contentInfo
	if rest, err := asn1.Unmarshal(der, &ci); err != nil || len(rest) > 0 || !ci.ContentType.Equal(oidSignedData) {
		return nil, badSignature("not PKCS #7 SignedData (%v, content type %v)", err, ci.ContentType)
	}
	var sd signedDataHead
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return nil, badSignature("SignedData: %v", err)
	}
	if !sd.ContentInfo.ContentType.Equal(oidSpcIndirectData) {
		return nil, badSignature("the signed content is %v, not Authenticode's SpcIndirectDataContent", sd.ContentInfo.ContentType)
	}
	// Content is the [0] EXPLICIT wrapper; its value, the content.
	var content asn1.RawValue
	if rest, err := asn1.Unmarshal(sd.ContentInfo.Content.Bytes, &content); err != nil || len(rest) > 0 {
		return nil, badSignature("SignedData content: %v", err)
	}
	var spc spcIndirectDataContent
	if rest, err := asn1.Unmarshal(content.FullBytes, &spc); err != nil || len(rest) > 0 {
		return nil, badSignature("SpcIndirectDataContent: %v", err)
	}
	if !spc.Data.Type.Equal(oidSpcPEImageData) {
		return nil, badSignature("the signature is for %v, not a PE image", spc.Data.Type)
	}
	s := &signature{digest: spc.MessageDigest.Digest}
	for _, a := range digestAlgorithms {
		if a.oid.Equal(spc.MessageDigest.DigestAlgorithm.Algorithm) {
			s.hash = a.hash
			break
		}
	}
	if s.hash == 0 {
		return nil, badSignature("unsupported digest algorithm %v", spc.MessageDigest.DigestAlgorithm.Algorithm)
	}
	if len(s.digest) != s.hash.Size() {
		return nil, badSignature("a %v digest of %d bytes", s.hash, len(s.digest))
	}

	// The certificates and the signer info.
	signer, err := checkSignedData(der, content.Bytes)
	if err != nil {
		return nil, badSignature("%v", err)
	}
	s.signer = signer
	return s, nil
}

// checkSignedData finds the signer's certificate in the SignedData der and
// checks the signer info: the signed attributes name SpcIndirectDataContent
// and hold the message digest of content (the SpcIndirectDataContent's
// value, without tag and length), and the signer's key signed them. No
// trust store: which certificates to trust is the firmware's (db and dbx).
// A panic in the library is an error: the input is whatever a file holds.
func checkSignedData(der, content []byte) (signer *x509.Certificate, err error) {
	defer func() {
		if r := recover(); r != nil {
			signer, err = nil, fmt.Errorf("pkcs7: %v", r)
		}
	}()
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, err
	}
	// What the library checks must be what was read here.
	if !bytes.Equal(p7.Content, content) {
		return nil, errors.New("pkcs7: the library read different content")
	}
	if signer = p7.GetOnlySigner(); signer == nil {
		return nil, fmt.Errorf("%d signer infos, or the signer's certificate is missing; Authenticode has one", len(p7.Signers))
	}
	var ct asn1.ObjectIdentifier
	if err := p7.UnmarshalSignedAttribute(pkcs7.OIDAttributeContentType, &ct); err != nil || !ct.Equal(oidSpcIndirectData) {
		return nil, fmt.Errorf("the signed content-type attribute is %v, not SpcIndirectDataContent (%v)", ct, err)
	}
	if err := p7.Verify(); err != nil {
		return nil, err
	}
	return signer, nil
}

func badSignature(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadSignature}, a...)...)
}
