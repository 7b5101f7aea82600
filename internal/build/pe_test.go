package build

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"

	"bootforge/internal/authenticode"
)

func TestIsPE(t *testing.T) {
	for _, p := range []string{signedEFI, unsignedEFI} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatalf("%s (scripts/deps.sh installs it): %v", p, err)
		}
		if !IsPE(f) {
			t.Fatalf("%s is not PE", p)
		}
		f.Close()
	}
	mz := make([]byte, 256)
	copy(mz, "MZ")
	binary.LittleEndian.PutUint32(mz[0x3c:], 128)
	copy(mz[128:], "PE\x00\x00")
	for name, c := range map[string]struct {
		data []byte
		want bool
	}{
		"minimal PE":      {mz, true},
		"empty":           {nil, false},
		"text":            {[]byte("#!/bin/sh\necho MZ\n"), false},
		"MZ only":         {[]byte("MZ"), false},
		"bad signature":   {bytes.Replace(mz, []byte("PE\x00\x00"), []byte("NE\x00\x00"), 1), false},
		"offset past end": {append(append([]byte{}, mz[:0x3c]...), 0xff, 0xff, 0, 0), false},
		"offset into DOS": {func() []byte { b := append([]byte{}, mz...); binary.LittleEndian.PutUint32(b[0x3c:], 0); return b }(), false},
		"huge offset":     {func() []byte { b := append([]byte{}, mz...); binary.LittleEndian.PutUint32(b[0x3c:], 1<<31); return b }(), false},
		"MZ, zero offset": {append([]byte("MZ"), make([]byte, 100)...), false},
	} {
		if got := IsPE(bytes.NewReader(c.data)); got != c.want {
			t.Errorf("%s: IsPE = %v", name, got)
		}
	}
}

func FuzzIsPE(f *testing.F) {
	b, _ := os.ReadFile(unsignedEFI)
	if len(b) > 4096 {
		b = b[:4096]
	}
	f.Add(b)
	f.Add([]byte("MZ"))
	f.Fuzz(func(t *testing.T, data []byte) {
		IsPE(bytes.NewReader(data))
	})
}

func TestSignatureMapping(t *testing.T) {
	got := signature(authenticode.Signature{Signed: true, Signer: "Microsoft Windows UEFI Driver Publisher", Digest: "ab12", DigestMatches: true})
	if !got.Signed || got.Signer != "Microsoft Windows UEFI Driver Publisher" || got.Digest != "ab12" || !got.DigestMatches {
		t.Fatalf("%+v", got)
	}
	if s := signature(authenticode.Signature{}); s.Signed || s.Signer != "" {
		t.Fatalf("unsigned: %+v", s)
	}
}
