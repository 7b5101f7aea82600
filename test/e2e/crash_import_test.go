package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCrashKilledImportLeftoverRemoved kills `image import` with SIGKILL
// while it is writing its temporary copy (the source is an HTTP server
// that sends half the body and then stalls), then runs the next import a
// few minutes later, as an operator would: the killed import's leftover
// in data_dir/blobs/tmp must be gone. It used to stay for 24 hours, so a
// few killed imports of an ISO filled the disk.
func TestCrashKilledImportLeftoverRemoved(t *testing.T) {
	l := newImportLab(t)
	tmpDir := filepath.Join(l.dataDir, "blobs", "tmp")
	// writing says whether the import has written part of the body.
	writing := func() bool {
		n := int64(0)
		filepath.WalkDir(tmpDir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if info, err := d.Info(); err == nil {
					n += info.Size()
				}
			}
			return nil
		})
		return n > 0
	}
	body := randomBytes(8 << 20)
	sum := sha256.Sum256(body)
	base := imageServer(t, body, serveHang, false, writing)

	cmd := exec.Command(binary, "--config", l.config, "image", "import", base+"/images/netinst.iso",
		"--sha256", hex.EncodeToString(sum[:]))
	cmd.Env = clEnv()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() }) // if the wait below fails
	// The source stalls half way, so the import stays writing.
	waitUntil(t, 20*time.Second, "the import to write into blobs/tmp", writing)
	cmd.Process.Kill() // SIGKILL: no deferred cleanup runs
	cmd.Wait()
	left := tmpEntries(t, tmpDir)
	if len(left) == 0 {
		t.Fatal("the killed import left nothing in blobs/tmp: the test did not kill it mid-write")
	}

	// The operator comes back five minutes later.
	old := time.Now().Add(-5 * time.Minute)
	filepath.WalkDir(tmpDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != tmpDir {
			os.Chtimes(p, old, old)
		}
		return nil
	})
	small := randomBytes(1000)
	smallSum := sha256.Sum256(small)
	src := filepath.Join(l.dir, "small.bin")
	if err := os.WriteFile(src, small, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := l.importCmd(t, src, "--sha256", hex.EncodeToString(smallSum[:])); code != 0 {
		t.Fatalf("the next import: exit %d\n%s", code, out)
	}
	if left := tmpEntries(t, tmpDir); len(left) > 0 {
		t.Fatalf("after the next import, blobs/tmp still holds the killed import's leftover: %s", strings.Join(left, ", "))
	}
}

// tmpEntries lists the names in dir.
func tmpEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
