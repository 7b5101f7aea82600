package catalog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bootforge/internal/image"
	"bootforge/internal/keys"
)

func TestVerifySignature(t *testing.T) {
	f := newFixture(t)
	kd := filepath.Join(t.TempDir(), "keys")
	if err := keys.Init(kd, keys.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	s, _ := keys.LoadSigner(kd)
	v, _ := keys.LoadVerifier(kd)
	id := f.build(t, "deb@1.0.0", map[string]string{"vmlinuz": "k"})
	dir := filepath.Join(f.root, filepath.FromSlash(id.Dir()))
	mp, sp := filepath.Join(dir, image.ManifestName), filepath.Join(dir, image.ManifestSigName)

	// Signing off: no signature needed.
	if d, err := f.cat.Verify(nil, id); err != nil || len(d) != 0 {
		t.Fatalf("signing off: %v %v", d, err)
	}
	f.cat.Verifier = v
	d, err := f.cat.Verify(nil, id)
	if err != nil || len(d) != 1 || d[0].Kind != Unsigned || d[0].Path != image.ManifestSigName {
		t.Fatalf("unsigned: %v %v", d, err)
	}
	data, _ := os.ReadFile(mp)
	sig, _ := s.Sign(data)
	os.WriteFile(sp, sig, 0o644)
	if d, err := f.cat.Verify(nil, id); err != nil || len(d) != 0 {
		t.Fatalf("signed: %v %v", d, err)
	}
	// The signature is not an extra file; the manifest tampered is a drift.
	os.WriteFile(mp, []byte(strings.Replace(string(data), "2030", "2031", 1)), 0o644)
	d, err = f.cat.Verify(nil, id)
	if err != nil || len(d) != 1 || d[0].Kind != BadSignature {
		t.Fatalf("tampered: %v %v", d, err)
	}
}

func TestGuardServesManifestSignature(t *testing.T) {
	f, g, _ := guardFixture(t, false)
	p := filepath.Join(f.root, "images", "deb", "1.0.0", image.ManifestSigName)
	if err := os.WriteFile(p, []byte("sig"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := open(g, "images/deb/1.0.0/manifest.json.sig"); err != nil || string(b) != "sig" {
		t.Errorf("manifest.json.sig: %q %v", b, err)
	}
}
