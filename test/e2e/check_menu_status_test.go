package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckMenuStatus: `bootforge check` explains a menu refused by the
// allow-list as that, naming the list, and keeps "no profile matches"
// for the 404 of a MAC that no profile takes.
func TestCheckMenuStatus(t *testing.T) {
	// The server and the check read the same config file.
	start := func(config string) (*Server, string) {
		t.Helper()
		p := filepath.Join(t.TempDir(), "bootforge.yaml")
		if err := os.WriteFile(p, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		return StartServer(t, ServerOptions{Args: []string{"--config", p}}), p
	}
	menuItem := func(s *Server, config string) string {
		t.Helper()
		out, err := run(t, 30*time.Second, binary, "check", "--json", "--config", config, "--root", s.Root, "--data-dir", s.DataDir,
			"--tftp-addr", s.TFTPAddr, "--http-addr", s.HTTPAddr, "--api-addr", s.APIAddr)
		if err == nil {
			t.Fatalf("check passed with the menu refused:\n%s", out)
		}
		var list []struct{ Name, Status, Detail string }
		if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "]")+1]), &list); err != nil {
			t.Fatalf("check --json: %v\n%s", err, out)
		}
		for _, it := range list {
			if it.Name == "menu" {
				return it.Status + ": " + it.Detail
			}
		}
		t.Fatalf("no menu item:\n%s", out)
		return ""
	}
	const profiles = "inventory:\n  profiles:\n    - {name: uefi, match: [{arch: efi-x64}], menu: {entries: [{name: disk, kind: local}]}}\n"

	t.Run("allow-list", func(t *testing.T) {
		s, config := start("allow: [10.0.0.0/8]\napi:\n  allow: [127.0.0.0/8]\n" + profiles + "  default_profile: uefi\n")
		got := menuItem(s, config)
		for _, want := range []string{"fail: ", "status 403", "127.0.0.1 is not in the allow-list allow [10.0.0.0/8]"} {
			if !strings.Contains(got, want) {
				t.Errorf("menu item %q lacks %q", got, want)
			}
		}
		if strings.Contains(got, "no profile") {
			t.Errorf("menu item blames the profiles for the allow-list: %q", got)
		}
	})
	t.Run("no profile matches", func(t *testing.T) {
		s, config := start(profiles) // bios asks; only efi-x64 matches; no default
		got := menuItem(s, config)
		for _, want := range []string{"fail: ", "status 404", "no profile matches and no default profile"} {
			if !strings.Contains(got, want) {
				t.Errorf("menu item %q lacks %q", got, want)
			}
		}
	})
}
