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
	"bootforge/internal/store"
)

func TestImagesItem(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	db, err := store.OpenSQLite(filepath.Join(dir, "data", "bootforge.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := catalog.New(root, filepath.Join(dir, "data"), db)
	build := func(ref, content string) image.ID {
		id, _ := image.ParseID(ref)
		vdir := filepath.Join(root, filepath.FromSlash(id.Dir()))
		os.MkdirAll(vdir, 0o755)
		os.WriteFile(filepath.Join(vdir, "vmlinuz"), []byte(content), 0o644)
		h := sha256.Sum256([]byte(content))
		m, _ := json.Marshal(image.Manifest{Name: id.Name, Version: id.Version.String(),
			Files: []image.File{{Path: "vmlinuz", Size: int64(len(content)), SHA256: hex.EncodeToString(h[:])}}})
		os.WriteFile(filepath.Join(vdir, image.ManifestName), m, 0o644)
		return id
	}
	expect := func(status, detail string) {
		t.Helper()
		it := Images(c)
		if it.Name != "images" || it.Status != status || !strings.Contains(it.Detail, detail) {
			t.Errorf("got %+v, want %s containing %q", it, status, detail)
		}
	}
	expect("pass", "no images built")
	a := build("deb@1.0.0", "kernel")
	build("deb@2.0.0", "kernel2")
	expect("pass", "2 versions built, none active")
	if _, err := c.Promote(a); err != nil {
		t.Fatal(err)
	}
	expect("pass", "1 active version verified against the manifests, no drift (deb@1.0.0; 6 bytes hashed)")
	// A drift in a staged version is not the item's business...
	os.WriteFile(filepath.Join(root, "images", "deb", "2.0.0", "vmlinuz"), []byte("KERNEL2"), 0o644)
	expect("pass", "1 active version ")
	// ...one in the active version fails it, naming the file.
	os.WriteFile(filepath.Join(root, "images", "deb", "1.0.0", "vmlinuz"), []byte("kernex"), 0o644)
	expect("fail", "deb@1.0.0: vmlinuz: digest differs")
	// A broken manifest fails it, never skips.
	os.WriteFile(filepath.Join(root, "images", "deb", "2.0.0", image.ManifestName), []byte("{"), 0o644)
	expect("fail", "manifest.json")
}
