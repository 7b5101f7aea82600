package sums

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

func newKey(t *testing.T, name string, cfg *packet.Config) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@example.org", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// export is `gpg --export`: the public key, binary or armored.
func export(t *testing.T, armored bool, keys ...*openpgp.Entity) []byte {
	t.Helper()
	var b bytes.Buffer
	w := &b
	var aw interface {
		Write([]byte) (int, error)
		Close() error
	}
	if armored {
		var err error
		aw, err = armor.Encode(&b, openpgp.PublicKeyType, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range keys {
		var err error
		if aw != nil {
			err = k.Serialize(aw)
		} else {
			err = k.Serialize(w)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if aw != nil {
		aw.Close()
	}
	return b.Bytes()
}

func sign(t *testing.T, k *openpgp.Entity, data []byte, armored bool, cfg *packet.Config) []byte {
	t.Helper()
	var b bytes.Buffer
	var err error
	if armored {
		err = openpgp.ArmoredDetachSign(&b, k, bytes.NewReader(data), cfg)
	} else {
		err = openpgp.DetachSign(&b, k, bytes.NewReader(data), cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestVerifyGood(t *testing.T) {
	k := newKey(t, "Vendor CD signing key", nil)
	other := newKey(t, "Someone else", nil)
	data := []byte(dA + "  debian.iso\n")
	for _, armSig := range []bool{false, true} {
		for _, armKey := range []bool{false, true} {
			name := fmt.Sprintf("sig armored %v, keyring armored %v", armSig, armKey)
			s, err := Verify(data, sign(t, k, data, armSig, nil), export(t, armKey, other, k))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if s.Fingerprint != fmt.Sprintf("%X", k.PrimaryKey.Fingerprint) || !strings.Contains(s.Identity, "Vendor CD signing key") {
				t.Errorf("%s: signer %v", name, s)
			}
		}
	}
}

func TestVerifyEditedFile(t *testing.T) {
	k := newKey(t, "Vendor", nil)
	data := []byte(dA + "  debian.iso\n")
	sig := sign(t, k, data, true, nil)
	edited := []byte(dB + "  debian.iso\n")
	_, err := Verify(edited, sig, export(t, false, k))
	if !errors.Is(err, ErrBadSignature) {
		t.Fatalf("err = %v, want ErrBadSignature", err)
	}
	// One byte appended is an edit too.
	if _, err := Verify(append(data, '\n'), sig, export(t, false, k)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("appended: err = %v", err)
	}
}

func TestVerifyUnknownKey(t *testing.T) {
	k := newKey(t, "Vendor", nil)
	other := newKey(t, "Other", nil)
	data := []byte(dA + "  debian.iso\n")
	_, err := Verify(data, sign(t, k, data, false, nil), export(t, true, other))
	var uk *UnknownKeyError
	if !errors.As(err, &uk) {
		t.Fatalf("err = %v, want UnknownKeyError", err)
	}
	id := fmt.Sprintf("%X", k.PrimaryKey.Fingerprint)
	if !strings.Contains(err.Error(), id) && !strings.Contains(err.Error(), k.PrimaryKey.KeyIdString()) {
		t.Errorf("error %q does not name key %s", err, id)
	}
}

func TestVerifyExpiredSignature(t *testing.T) {
	past := time.Now().Add(-72 * time.Hour)
	cfg := &packet.Config{Time: func() time.Time { return past }, SigLifetimeSecs: 3600}
	k := newKey(t, "Vendor", &packet.Config{Time: func() time.Time { return past }})
	data := []byte(dA + "  debian.iso\n")
	_, err := Verify(data, sign(t, k, data, false, cfg), export(t, false, k))
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("err = %v, want an expired signature refused", err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	k := newKey(t, "Vendor", nil)
	data := []byte(dA + "  debian.iso\n")
	sig := sign(t, k, data, false, nil)
	ring := export(t, false, k)
	keybox := append([]byte{0, 0, 0, 32, 1, 1, 0, 0}, []byte("KBXf")...)
	for _, tc := range []struct {
		name      string
		sig, ring []byte
		want      string
	}{
		{"empty signature", nil, ring, "no OpenPGP signature"},
		{"garbage signature", []byte("not a signature at all"), ring, "signature"},
		{"a key as signature", ring, ring, "not only signatures"},
		{"armored key as signature", export(t, true, k), ring, "signature"},
		{"empty keyring", sig, nil, "keyring"},
		{"garbage keyring", sig, []byte("hello"), "keyring"},
		{"keybox", sig, keybox, "keybox"},
		{"signature as keyring", sig, sig, "keyring"},
	} {
		if _, err := Verify(data, tc.sig, tc.ring); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one with %q", tc.name, err, tc.want)
		}
	}
}
