package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestCrashKilledMirrorSyncStageRemoved kills `mirror sync` with SIGKILL
// after it has put one verified file of deb@1.0.0 into its stage directory
// (the primary stalls on the next file). The primary then replaces that
// version with deb@2.0.0, and a later sync installs it: the killed sync's
// stage, which holds a link to each file it had verified, must be gone.
// Syncs did not remove it (only image gc did), so on a mirror kept by a
// timer the files of versions the primary had dropped stayed on disk.
func TestCrashKilledMirrorSyncStageRemoved(t *testing.T) {
	primary := t.TempDir()
	for _, v := range []string{"deb@1.0.0", "deb@2.0.0"} {
		icWriteVersion(t, primary, v, map[string][]byte{"initrd.gz": icRandom(t, 1<<20), "vmlinuz": icRandom(t, 2<<20)})
	}
	var active atomic.Value
	active.Store("1.0.0")
	stall := make(chan struct{})
	t.Cleanup(func() { close(stall) })
	files := http.FileServer(http.Dir(primary))
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := active.Load().(string)
		switch r.URL.Path {
		case "/bootforge/images.json":
			manifest := "images/deb/" + v + "/manifest.json"
			data, err := os.ReadFile(filepath.Join(primary, filepath.FromSlash(manifest)))
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			sum := sha256.Sum256(data)
			json.NewEncoder(w).Encode(map[string]any{"versions": []map[string]string{
				{"name": "deb", "version": v, "manifest": manifest, "sha256": hex.EncodeToString(sum[:])}}})
		case "/images/deb/1.0.0/vmlinuz":
			// Half of it, then nothing: the sync waits here.
			data, _ := os.ReadFile(filepath.Join(primary, "images", "deb", "1.0.0", "vmlinuz"))
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.Write(data[:len(data)/2])
			w.(http.Flusher).Flush()
			select {
			case <-stall:
			case <-r.Context().Done():
			}
		default:
			files.ServeHTTP(w, r)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	base := "http://" + ln.Addr().String()

	e := newImgEnv(t)
	cmd := mirrorSyncCmd("", base, e)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// initrd.gz comes first (the manifest lists files by path), verified
	// and linked into the stage before vmlinuz is asked for.
	staged := filepath.Join(e.root, "images", ".mirror-stage-*", "images", "deb", "1.0.0", "initrd.gz")
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() }) // if the wait below fails
	// The primary stalls on vmlinuz, so the sync stays there.
	waitUntil(t, 20*time.Second, "the sync to stage initrd.gz", func() bool {
		m, _ := filepath.Glob(staged)
		return len(m) > 0
	})
	cmd.Process.Kill() // SIGKILL: no deferred cleanup runs
	cmd.Wait()
	stages, _ := filepath.Glob(filepath.Join(e.root, "images", ".mirror-stage-*"))
	if len(stages) != 1 {
		t.Fatalf("stage directories after the kill: %v, want one", stages)
	}
	// Later: the primary has moved on to deb@2.0.0.
	old := time.Now().Add(-5 * time.Minute)
	os.Chtimes(stages[0], old, old)
	active.Store("2.0.0")

	out, code := mirrorSync(t, "", base, e)
	if code != 0 || !strings.Contains(out, "deb@2.0.0 installed") {
		t.Fatalf("the next sync: exit %d\n%s", code, out)
	}
	if left, _ := filepath.Glob(filepath.Join(e.root, "images", ".mirror-stage-*")); len(left) > 0 {
		t.Fatalf("after the next sync, the killed sync's stage is still there: %v\n%s", left, out)
	}
}
