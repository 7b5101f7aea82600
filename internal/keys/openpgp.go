package keys

import (
	"bytes"
	"crypto"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Files of the OpenPGP key in the keys directory.
const (
	OpenPGPPrivateFile = "openpgp.key" // armored private key, 0600
	OpenPGPPublicFile  = "openpgp.pub" // binary public key: what grub-mkimage -k takes
)

// openPGPConfig makes what GRUB 2.06's pgp module verifies: v4 keys and
// signatures, RSA, SHA-256.
func openPGPConfig() *packet.Config {
	return &packet.Config{
		DefaultHash:   crypto.SHA256,
		Algorithm:     packet.PubKeyAlgoRSA,
		RSABits:       3072,
		V6Keys:        false,
		DefaultCipher: packet.CipherAES256,
	}
}

// InitOpenPGP makes an RSA 3072 OpenPGP signing key in dir unless one is
// there. dir is made 0700. Its two files are written all or nothing
// (writeSet).
func InitOpenPGP(dir string) error {
	files, err := openPGPSet(dir)
	if err != nil || len(files) == 0 {
		return err
	}
	return writeSet(dir, files)
}

// openPGPSet makes dir (0700) and, unless dir has an OpenPGP private key,
// a new key's two files for writeSet; an existing key is kept (GRUB
// images are built with it), so it returns none.
func openPGPSet(dir string) ([]setFile, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	priv := filepath.Join(dir, OpenPGPPrivateFile)
	if _, err := os.Stat(priv); err == nil {
		return nil, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	e, err := openpgp.NewEntity("bootforge", "boot file signing", "", openPGPConfig())
	if err != nil {
		return nil, fmt.Errorf("openpgp key: %w", err)
	}
	// The public file carries the primary key and its identity only: GRUB
	// verifies with the primary key and needs no encryption subkey.
	var pub bytes.Buffer
	pubOnly := *e
	pubOnly.Subkeys = nil
	if err := pubOnly.Serialize(&pub); err != nil {
		return nil, err
	}
	pubOld, err := oldFormat(pub.Bytes())
	if err != nil {
		return nil, err
	}
	var sec bytes.Buffer
	w, err := armor.Encode(&sec, openpgp.PrivateKeyType, nil)
	if err != nil {
		return nil, err
	}
	if err := e.SerializePrivate(w, nil); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return []setFile{
		{OpenPGPPublicFile, pubOld, 0o644},
		{OpenPGPPrivateFile, sec.Bytes(), 0o600},
	}, nil
}

// LoadOpenPGP reads the private key from dir.
func LoadOpenPGP(dir string) (*openpgp.Entity, error) {
	f, err := os.Open(filepath.Join(dir, OpenPGPPrivateFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	list, err := openpgp.ReadArmoredKeyRing(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", OpenPGPPrivateFile, err)
	}
	if len(list) != 1 || list[0].PrivateKey == nil {
		return nil, fmt.Errorf("%s: want one private key", OpenPGPPrivateFile)
	}
	return list[0], nil
}

// SignDetached makes a binary detached v4 signature of data, SHA-256,
// as GRUB's pgp module verifies.
func SignDetached(e *openpgp.Entity, data []byte) ([]byte, error) {
	return SignDetachedReader(e, bytes.NewReader(data))
}

// withUnhashedIssuer adds an issuer key ID subpacket to the unhashed area
// of a v4 signature packet. go-crypto writes the issuer only in the hashed
// area, and GRUB 2.06's pgp module looks for it only in the unhashed one
// ("public key 00000000 not found"). The unhashed area is not covered by
// the signature, so the signature stays valid. The packet is written back
// with an old-format header, as gpg writes signatures.
func withUnhashedIssuer(pkt []byte, keyID uint64) ([]byte, error) {
	body, err := packetBody(pkt)
	if err != nil {
		return nil, err
	}
	if len(body) < 6 || body[0] != 4 {
		return nil, errors.New("openpgp: not a v4 signature")
	}
	hashed := int(binary.BigEndian.Uint16(body[4:6]))
	at := 6 + hashed
	if len(body) < at+2 {
		return nil, errors.New("openpgp: short signature")
	}
	unhashed := int(binary.BigEndian.Uint16(body[at : at+2]))
	if len(body) < at+2+unhashed {
		return nil, errors.New("openpgp: short signature")
	}
	sub := make([]byte, 10)
	sub[0], sub[1] = 9, 16 // length (type + 8), issuer
	binary.BigEndian.PutUint64(sub[2:], keyID)
	var nb bytes.Buffer
	nb.Write(body[:at])
	binary.Write(&nb, binary.BigEndian, uint16(unhashed+len(sub)))
	nb.Write(body[at+2 : at+2+unhashed])
	nb.Write(sub)
	nb.Write(body[at+2+unhashed:])
	if nb.Len() > 0xffff {
		return nil, errors.New("openpgp: signature too long")
	}
	out := []byte{0x80 | 2<<2 | 1, 0, 0} // old format, tag 2, two-byte length
	binary.BigEndian.PutUint16(out[1:], uint16(nb.Len()))
	return append(out, nb.Bytes()...), nil
}

// packetBody returns the body of the single signature packet in pkt.
func packetBody(pkt []byte) ([]byte, error) {
	tag, body, rest, err := nextPacket(pkt)
	if err != nil {
		return nil, err
	}
	if tag != 2 {
		return nil, fmt.Errorf("openpgp: packet tag %d, want a signature", tag)
	}
	if len(rest) != 0 {
		return nil, errors.New("openpgp: want exactly one signature packet")
	}
	return body, nil
}

// oldFormat rewrites packets with old-format headers. GRUB 2.06 reads a
// new-format two-byte length wrongly (it leaves out the 192), so a key
// that go-crypto writes fails with "error loading initial key: bad
// signature"; gpg writes old-format headers, which GRUB reads right.
func oldFormat(pkts []byte) ([]byte, error) {
	var out bytes.Buffer
	for len(pkts) > 0 {
		tag, body, rest, err := nextPacket(pkts)
		if err != nil {
			return nil, err
		}
		if tag > 15 {
			return nil, fmt.Errorf("openpgp: packet tag %d has no old format", tag)
		}
		switch n := len(body); {
		case n < 256:
			out.Write([]byte{0x80 | tag<<2, byte(n)})
		case n < 65536:
			out.Write([]byte{0x80 | tag<<2 | 1, byte(n >> 8), byte(n)})
		default:
			out.Write([]byte{0x80 | tag<<2 | 2, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
		}
		out.Write(body)
		pkts = rest
	}
	return out.Bytes(), nil
}

// nextPacket splits the first packet off pkts.
func nextPacket(pkt []byte) (tag byte, body, rest []byte, err error) {
	if len(pkt) < 2 || pkt[0]&0x80 == 0 {
		return 0, nil, nil, errors.New("openpgp: not a packet")
	}
	var n, hdr int
	if pkt[0]&0x40 != 0 { // new format
		tag = pkt[0] & 0x3f
		switch l := int(pkt[1]); {
		case l < 192:
			n, hdr = l, 2
		case l < 224 && len(pkt) >= 3:
			n, hdr = (l-192)<<8+int(pkt[2])+192, 3
		case l == 255 && len(pkt) >= 6:
			n, hdr = int(binary.BigEndian.Uint32(pkt[2:6])), 6
		default:
			return 0, nil, nil, errors.New("openpgp: partial packet length")
		}
	} else {
		tag = (pkt[0] >> 2) & 0xf
		switch pkt[0] & 3 {
		case 0:
			n, hdr = int(pkt[1]), 2
		case 1:
			if len(pkt) < 3 {
				return 0, nil, nil, errors.New("openpgp: short packet")
			}
			n, hdr = int(binary.BigEndian.Uint16(pkt[1:3])), 3
		case 2:
			if len(pkt) < 5 {
				return 0, nil, nil, errors.New("openpgp: short packet")
			}
			n, hdr = int(binary.BigEndian.Uint32(pkt[1:5])), 5
		default:
			return 0, nil, nil, errors.New("openpgp: indeterminate packet length")
		}
	}
	if n < 0 || hdr+n > len(pkt) {
		return 0, nil, nil, errors.New("openpgp: short packet")
	}
	return tag, pkt[hdr : hdr+n], pkt[hdr+n:], nil
}

// SignDetachedReader is SignDetached over a reader, for large files.
func SignDetachedReader(e *openpgp.Entity, r io.Reader) ([]byte, error) {
	var sig bytes.Buffer
	if err := openpgp.DetachSign(&sig, e, r, openPGPConfig()); err != nil {
		return nil, err
	}
	return withUnhashedIssuer(sig.Bytes(), e.PrimaryKey.KeyId)
}
