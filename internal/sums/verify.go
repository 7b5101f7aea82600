package sums

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Signer is the key that made a good signature.
type Signer struct {
	Fingerprint string // the primary key's, upper-case hex
	Identity    string // its primary user ID, e.g. "Debian CD signing key <debian-cd@lists.debian.org>"
}

func (s Signer) String() string {
	if s.Identity == "" {
		return s.Fingerprint
	}
	return s.Fingerprint + " (" + s.Identity + ")"
}

// ErrBadSignature is a signature that does not verify: the signed file is
// not the one that was signed, or it changed after signing.
var ErrBadSignature = errors.New("bad signature: the file is not the one that was signed, or it was changed after signing")

// UnknownKeyError is a signature made by no key of the keyring.
type UnknownKeyError struct {
	Issuers []string // key IDs or fingerprints the signature names
}

func (e *UnknownKeyError) Error() string {
	if len(e.Issuers) == 0 {
		return "the signature was made by a key that is not in the keyring"
	}
	return fmt.Sprintf("the signature was made by key %s, which is not in the keyring", strings.Join(e.Issuers, ", "))
}

// Verify checks that sig is a good detached OpenPGP signature of signed,
// made by a key in keyring. sig and keyring may each be ASCII-armored or
// binary; keyring is what `gpg --export` writes. An expired or revoked key
// or signature is refused like a bad one.
func Verify(signed, sig, keyring []byte) (Signer, error) {
	keys, err := readKeyring(keyring)
	if err != nil {
		return Signer{}, err
	}
	raw, err := readSignature(sig)
	if err != nil {
		return Signer{}, err
	}
	issuers, err := sigIssuers(raw)
	if err != nil {
		return Signer{}, err
	}
	_, entity, err := openpgp.VerifyDetachedSignature(keys, bytes.NewReader(signed), bytes.NewReader(raw), nil)
	var sigErr pgperrors.SignatureError
	switch {
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return Signer{}, &UnknownKeyError{Issuers: issuers}
	case errors.As(err, &sigErr):
		return Signer{}, fmt.Errorf("%w (%s)", ErrBadSignature, sigErr)
	case err != nil:
		return Signer{}, fmt.Errorf("signature refused: %w", err)
	case entity == nil:
		return Signer{}, errors.New("signature refused: no signer") // not reached
	}
	s := Signer{Fingerprint: fmt.Sprintf("%X", entity.PrimaryKey.Fingerprint)}
	if id := entity.PrimaryIdentity(); id != nil {
		s.Identity = id.Name
	}
	return s, nil
}

func armored(b []byte, typ string) bool {
	return bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("-----BEGIN "+typ+"-----"))
}

func readKeyring(b []byte) (openpgp.EntityList, error) {
	if len(b) >= 12 && string(b[8:12]) == "KBXf" {
		return nil, errors.New("keyring: this is a GnuPG keybox (pubring.kbx); export the keys with `gpg --export KEYID > FILE`")
	}
	var (
		keys openpgp.EntityList
		err  error
	)
	if armored(b, openpgp.PublicKeyType) || armored(b, openpgp.PrivateKeyType) {
		keys, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
	} else {
		keys, err = openpgp.ReadKeyRing(bytes.NewReader(b))
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: not an OpenPGP keyring (make one with `gpg --export KEYID > FILE`): %w", err)
	}
	if len(keys) == 0 {
		return nil, errors.New("keyring: no keys in it")
	}
	return keys, nil
}

// readSignature returns the signature's packets, unarmored.
func readSignature(b []byte) ([]byte, error) {
	if !armored(b, openpgp.SignatureType) {
		return b, nil
	}
	block, err := armor.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	if block.Type != openpgp.SignatureType {
		return nil, fmt.Errorf("signature: armored %q, want %q", block.Type, openpgp.SignatureType)
	}
	raw, err := io.ReadAll(block.Body)
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	return raw, nil
}

// sigIssuers lists the keys that the signature packets name, and fails
// unless there is at least one signature packet and nothing else.
func sigIssuers(raw []byte) ([]string, error) {
	var ids []string
	n := 0
	r := packet.NewReader(bytes.NewReader(raw))
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("signature: not an OpenPGP signature: %w", err)
		}
		s, ok := p.(*packet.Signature)
		if !ok {
			return nil, fmt.Errorf("signature: holds a %T, not only signatures", p)
		}
		n++
		switch {
		case len(s.IssuerFingerprint) > 0:
			ids = append(ids, fmt.Sprintf("%X", s.IssuerFingerprint))
		case s.IssuerKeyId != nil:
			ids = append(ids, fmt.Sprintf("%016X", *s.IssuerKeyId))
		}
	}
	switch {
	case n == 0:
		return nil, errors.New("signature: no OpenPGP signature in it")
	case ids == nil:
		return nil, errors.New("signature: names no key that made it")
	}
	return ids, nil
}
