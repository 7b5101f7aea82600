package build

import (
	"os"
	"path/filepath"
	"testing"

	"bootforge/internal/image"
	"bootforge/internal/keys"
)

func TestBuildSignsManifest(t *testing.T) {
	kd := filepath.Join(t.TempDir(), "keys")
	if err := keys.Init(kd, keys.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	s, _ := keys.LoadSigner(kd)
	v, _ := keys.LoadVerifier(kd)
	e := newEnv(t)
	e.b.Signer = s
	d := t.TempDir()
	kernel := filepath.Join(d, "vmlinuz-6.1")
	copyInto(t, d, "vmlinuz-6.1", unsignedEFI)
	res := e.mustBuild(t, Spec{ID: id(t, "files@1.0.0"), Template: "linux", Kernel: kernel})
	data, err := os.ReadFile(filepath.Join(res.Dir, image.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := os.ReadFile(filepath.Join(res.Dir, image.ManifestSigName))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(data, sig); err != nil {
		t.Errorf("manifest signature: %v", err)
	}
	e.noLeftovers(t, "files")
}
