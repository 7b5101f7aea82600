package build

import (
	"encoding/binary"
	"io"

	"bootforge/internal/authenticode"
	"bootforge/internal/image"
)

// IsPE tells a PE file (an EFI binary, a kernel with an EFI stub, a
// Windows boot manager) by its contents, not its name: the "MZ" DOS header
// whose e_lfanew points at a "PE\0\0" signature inside the file.
func IsPE(f io.ReaderAt) bool {
	var dos [64]byte
	if _, err := f.ReadAt(dos[:], 0); err != nil {
		return false
	}
	if dos[0] != 'M' || dos[1] != 'Z' {
		return false
	}
	off := binary.LittleEndian.Uint32(dos[0x3c:])
	// The PE header follows the DOS header; real files keep it in the
	// first few KiB.
	if off < 4 || off > 1<<20 {
		return false
	}
	var sig [4]byte
	if _, err := f.ReadAt(sig[:], int64(off)); err != nil {
		return false
	}
	return sig == [4]byte{'P', 'E', 0, 0}
}

// inspect reads a PE file's Authenticode status.
func inspect(p string) (*image.Signature, error) {
	s, err := authenticode.Inspect(p)
	if err != nil {
		return nil, err
	}
	return signature(s), nil
}

// signature maps authenticode's answer onto the manifest's. It is the one
// place to change when internal/authenticode computes the digest itself;
// then it reads:
//
//	return &image.Signature{Signed: s.Signed, Signer: s.Signer, Digest: s.Digest, DigestMatches: s.DigestMatches}
//
// Until then the manifest carries no digest: today's Signature.Digest is
// the hash of the signature blob, not the file's Authenticode digest, and
// nothing checks that they match.
func signature(s authenticode.Signature) *image.Signature {
	return &image.Signature{Signed: s.Signed, Signer: s.Signer, Digest: s.Digest, DigestMatches: s.DigestMatches}
}
