package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRootSwapFollowed: a deployment replaces the served tree, by
// flipping a symlink or renaming a new directory into place, and
// bootforge serves the new files over HTTP and TFTP without a restart or
// a reload, and says so in its log. Before, it served the old directory
// until a restart; a SIGHUP did not help, the path being the same.
func TestRootSwapFollowed(t *testing.T) {
	need(t, "curl", "atftp")
	base := t.TempDir()
	for _, rel := range []string{"r1", "r2", "r3"} {
		if err := os.Mkdir(filepath.Join(base, rel), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, rel, "f"), []byte(rel), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(base, "root")
	if err := os.Symlink("r1", root); err != nil {
		t.Fatal(err)
	}
	s := StartServer(t, ServerOptions{Root: root})
	serves := func(want string) {
		t.Helper()
		var viaHTTP, viaTFTP string
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			_, viaHTTP = hiCurl(t, "http://"+s.HTTPAddr+"/f")
			out, _ := run(t, 10*time.Second, "atftp", "-g", "-r", "f", "-l", "/dev/stdout", Host(s.TFTPAddr), Port(s.TFTPAddr))
			viaTFTP = strings.TrimSpace(out)
			if viaHTTP == want && viaTFTP == want {
				return
			}
		}
		t.Fatalf("HTTP serves %q and TFTP %q, want %q's file\n%s", viaHTTP, viaTFTP, want, s.Log())
	}
	serves("r1")

	// A symlink flipped as deployments do: a new link renamed over the old.
	if err := os.Symlink("r2", root+".new"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(root+".new", root); err != nil {
		t.Fatal(err)
	}
	serves("r2")

	// A directory renamed into place.
	if err := os.Rename(root, root+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(base, "r3"), root); err != nil {
		t.Fatal(err)
	}
	serves("r3")
	if n := s.CountLog("root replaced; serving the new directory"); n != 2 {
		t.Errorf("%d \"root replaced\" lines, want 2:\n%s", n, s.Log())
	}
}
