package check

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bootforge/internal/catalog"
	"bootforge/internal/image"
	"bootforge/internal/keys"
	"bootforge/internal/store"
)

// With signing on (the catalog has a Verifier), an unsigned or tampered
// manifest of an active version fails the images item.
func TestImagesItemSignatures(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	db, err := store.OpenSQLite(filepath.Join(dir, "data", "bootforge.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	kd := filepath.Join(dir, "data", "keys")
	if err := keys.Init(kd, keys.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	signer, _ := keys.LoadSigner(kd)
	verifier, _ := keys.LoadVerifier(kd)
	c := catalog.New(root, filepath.Join(dir, "data"), db)
	c.Verifier = verifier

	id, _ := image.ParseID("deb@1.0.0")
	vdir := filepath.Join(root, filepath.FromSlash(id.Dir()))
	os.MkdirAll(vdir, 0o755)
	os.WriteFile(filepath.Join(vdir, "vmlinuz"), []byte("kernel"), 0o644)
	h := sha256.Sum256([]byte("kernel"))
	m, _ := json.Marshal(image.Manifest{Name: id.Name, Version: id.Version.String(),
		Files: []image.File{{Path: "vmlinuz", Size: 6, SHA256: hex.EncodeToString(h[:])}}})
	mp := filepath.Join(vdir, image.ManifestName)
	os.WriteFile(mp, m, 0o644)
	if _, err := c.Promote(id); err != nil {
		t.Fatal(err)
	}
	expect := func(status, detail string) {
		t.Helper()
		it := Images(c)
		if it.Status != status || !strings.Contains(it.Detail, detail) {
			t.Errorf("got %+v, want %s containing %q", it, status, detail)
		}
	}
	expect("fail", "deb@1.0.0: manifest.json.sig: manifest signature missing")
	sig, _ := signer.Sign(m)
	os.WriteFile(mp+".sig", sig, 0o644)
	expect("pass", "no drift")
	os.WriteFile(mp, append(m, ' '), 0o644)
	expect("fail", "manifest signature does not verify")
}
