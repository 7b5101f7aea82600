package catalog

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"bootforge/internal/bootfs"
	"bootforge/internal/image"
)

func guardFixture(t testing.TB, caseInsensitive bool) (*fixture, *Guard, *bytes.Buffer) {
	t.Helper()
	f := newFixture(t)
	f.build(t, "deb@1.0.0", map[string]string{"vmlinuz": "kernel-bytes", "initrd.gz": "initrd-bytes", "boot/bcd": "bcd"})
	os.WriteFile(filepath.Join(f.root, "undionly.kpxe"), []byte("loader"), 0o644)
	os.MkdirAll(filepath.Join(f.root, "images", "hand", "netboot"), 0o755)
	os.WriteFile(filepath.Join(f.root, "images", "hand", "netboot", "vmlinuz"), []byte("hand-made"), 0o644)
	os.MkdirAll(filepath.Join(f.root, "images", "deb", "2.0.0"), 0o755) // no manifest: not built
	os.WriteFile(filepath.Join(f.root, "images", "deb", "2.0.0", "vmlinuz"), []byte("x"), 0o644)
	dir, err := bootfs.OpenDir(f.root, caseInsensitive)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	var log bytes.Buffer
	return f, NewGuard(dir, slog.New(slog.NewTextHandler(&log, nil))), &log
}

func open(g *Guard, p string) ([]byte, error) {
	f, err := g.Open(bootfs.Request{Path: p, Client: netip.MustParseAddrPort("192.0.2.7:1234"), Protocol: "tftp"})
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func TestGuard(t *testing.T) {
	f, g, log := guardFixture(t, false)
	g.Revalidate = 0 // look at the manifest on every request
	ok := map[string]string{
		"images/deb/1.0.0/vmlinuz":       "kernel-bytes",
		"/images/deb/1.0.0/boot/bcd":     "bcd",
		`images\deb\1.0.0\initrd.gz`:     "initrd-bytes",
		"undionly.kpxe":                  "loader",    // not an image
		"images/hand/netboot/vmlinuz":    "hand-made", // not a version directory
		"images/deb/2.0.0/vmlinuz":       "x",         // no manifest: not built
		"images/deb/1.0.0/manifest.json": "",          // the manifest itself
	}
	for p, want := range ok {
		got, err := open(g, p)
		if err != nil || (want != "" && string(got) != want) {
			t.Errorf("%s: %q %v, want %q", p, got, err, want)
		}
	}
	if log.Len() != 0 {
		t.Errorf("logged for good files: %s", log)
	}
	if _, err := open(g, "images/deb/1.0.0/nothere"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
	// A build in progress is never served.
	os.MkdirAll(filepath.Join(f.root, "images", ".build-deb-3.0.0-1", "version"), 0o755)
	os.WriteFile(filepath.Join(f.root, "images", ".build-deb-3.0.0-1", "version", "vmlinuz"), []byte("half"), 0o644)
	if _, err := open(g, "images/.build-deb-3.0.0-1/version/vmlinuz"); !errors.Is(err, bootfs.ErrRefused) {
		t.Errorf("a build in progress: %v", err)
	}

	// Truncated: refused and logged as an error with path and sizes.
	dir := filepath.Join(f.root, "images", "deb", "1.0.0")
	os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("kernel"), 0o644)
	if _, err := open(g, "images/deb/1.0.0/vmlinuz"); !errors.Is(err, bootfs.ErrRefused) {
		t.Errorf("a truncated file: %v", err)
	}
	line := log.String()
	for _, want := range []string{"level=ERROR", "path=images/deb/1.0.0/vmlinuz", "expected=12", "actual=6", "client=192.0.2.7"} {
		if !strings.Contains(line, want) {
			t.Errorf("log lacks %q: %s", want, line)
		}
	}
	// Same size, other content: served (digests are Verify's).
	os.WriteFile(filepath.Join(dir, "initrd.gz"), []byte("INITRD-BYTES"), 0o644)
	if got, err := open(g, "images/deb/1.0.0/initrd.gz"); err != nil || string(got) != "INITRD-BYTES" {
		t.Errorf("same size: %q %v", got, err)
	}
	// Not in the manifest: refused.
	log.Reset()
	os.WriteFile(filepath.Join(dir, "extra.efi"), []byte("planted"), 0o644)
	if _, err := open(g, "images/deb/1.0.0/extra.efi"); !errors.Is(err, bootfs.ErrRefused) {
		t.Errorf("a file not in the manifest: %v", err)
	}
	if !strings.Contains(log.String(), "level=ERROR") || !strings.Contains(log.String(), "path=images/deb/1.0.0/extra.efi") {
		t.Errorf("log: %s", log)
	}

	// A new manifest (another size) is read again: vmlinuz of 6 bytes is
	// now right, extra.efi listed.
	id := mustID(t, "deb@1.0.0")
	m, err := f.cat.Manifest(id)
	if err != nil {
		t.Fatal(err)
	}
	c := *m
	c.Files = []image.File{{Path: "vmlinuz", Size: 6, SHA256: sum([]byte("kernel"))}, {Path: "extra.efi", Size: 7, SHA256: sum([]byte("planted"))}}
	f.writeManifest(t, id, c)
	for p, want := range map[string]string{"images/deb/1.0.0/vmlinuz": "kernel", "images/deb/1.0.0/extra.efi": "planted"} {
		if got, err := open(g, p); err != nil || string(got) != want {
			t.Errorf("after the manifest changed, %s: %q %v", p, got, err)
		}
	}
	if _, err := open(g, "images/deb/1.0.0/boot/bcd"); !errors.Is(err, bootfs.ErrRefused) {
		t.Errorf("a file the new manifest dropped: %v", err)
	}

	// A broken manifest refuses the version's files.
	os.WriteFile(filepath.Join(dir, "manifest.json"), []byte("{broken"), 0o644)
	log.Reset()
	if _, err := open(g, "images/deb/1.0.0/vmlinuz"); !errors.Is(err, bootfs.ErrRefused) {
		t.Errorf("with a broken manifest: %v", err)
	}
	if !strings.Contains(log.String(), "manifest unreadable") {
		t.Errorf("log: %s", log)
	}
}

// On a case-insensitive root (tftp.case_insensitive, for Windows loaders)
// another spelling of a path opens the same file, and must meet the
// same check.
func TestGuardCaseInsensitive(t *testing.T) {
	f, g, _ := guardFixture(t, true)
	if got, err := open(g, `IMAGES\deb\1.0.0\BOOT\BCD`); err != nil || string(got) != "bcd" {
		t.Errorf("another spelling: %q %v", got, err)
	}
	os.WriteFile(filepath.Join(f.root, "images", "deb", "1.0.0", "boot", "bcd"), []byte("bc"), 0o644)
	for _, p := range []string{"images/deb/1.0.0/boot/bcd", `IMAGES\DEB\1.0.0\Boot\BCD`} {
		if _, err := open(g, p); !errors.Is(err, bootfs.ErrRefused) {
			t.Errorf("%s truncated: %v", p, err)
		}
	}
}

// The guard parses a manifest once, and within Revalidate does not look
// at it at all.
func TestGuardCachesManifests(t *testing.T) {
	f, g, _ := guardFixture(t, false)
	key := "images/deb/1.0.0/manifest.json"
	for range 3 {
		if _, err := open(g, "images/deb/1.0.0/vmlinuz"); err != nil {
			t.Fatal(err)
		}
	}
	first := g.cache[key]
	if first == nil {
		t.Fatal("not cached")
	}
	open(g, "images/deb/1.0.0/initrd.gz")
	if g.cache[key] != first {
		t.Error("the manifest was looked at again within Revalidate")
	}
	// Looked at again, unchanged: not parsed again.
	g.Revalidate = 0
	open(g, "images/deb/1.0.0/initrd.gz")
	if again := g.cache[key]; again == first || reflect.ValueOf(again.files).Pointer() != reflect.ValueOf(first.files).Pointer() {
		t.Error("an unchanged manifest was parsed again")
	}
	// A version without a manifest is remembered as such, and a manifest
	// that appears is seen once Revalidate has passed.
	g.Revalidate = time.Hour
	if _, err := open(g, "images/deb/2.0.0/vmlinuz"); err != nil {
		t.Fatal(err)
	}
	if m := g.cache["images/deb/2.0.0/manifest.json"]; m == nil || !m.none {
		t.Errorf("no manifest: %+v", m)
	}
	f.writeManifest(t, mustID(t, "deb@2.0.0"), image.Manifest{Name: "deb", Version: "2.0.0", Files: []image.File{{Path: "vmlinuz", Size: 5, SHA256: sum([]byte("other"))}}})
	if _, err := open(g, "images/deb/2.0.0/vmlinuz"); err != nil {
		t.Errorf("within Revalidate: %v", err)
	}
	g.Revalidate = 0
	if _, err := open(g, "images/deb/2.0.0/vmlinuz"); !errors.Is(err, bootfs.ErrRefused) {
		t.Errorf("after Revalidate, the new manifest: %v", err)
	}
}

func TestGuardConcurrent(t *testing.T) {
	_, g, _ := guardFixture(t, false)
	g.Revalidate = 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if got, err := open(g, "images/deb/1.0.0/vmlinuz"); err != nil || string(got) != "kernel-bytes" {
					t.Errorf("%q %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkGuardOpen(b *testing.B) {
	_, g, _ := guardFixture(b, false)
	req := bootfs.Request{Path: "images/deb/1.0.0/vmlinuz", Client: netip.MustParseAddrPort("192.0.2.7:1234")}
	for b.Loop() {
		f, err := g.Open(req)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

func BenchmarkDirOpen(b *testing.B) {
	f, _, _ := guardFixture(b, false)
	dir, _ := bootfs.OpenDir(f.root, false)
	req := bootfs.Request{Path: "images/deb/1.0.0/vmlinuz", Client: netip.MustParseAddrPort("192.0.2.7:1234")}
	for b.Loop() {
		f, err := dir.Open(req)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
