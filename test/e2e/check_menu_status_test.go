package e2e

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCheckMenuStatus: `bootforge check` explains a menu refused by the
// allow-list as that, naming the list, and keeps "no profile matches"
// for the 404 of a MAC that no profile takes, and only for bootforge's:
// busybox httpd's 404 on http.listen is said to be another server's.
func TestCheckMenuStatus(t *testing.T) {
	// The server and the check read the same config file.
	start := func(config string) (*Server, string) {
		t.Helper()
		p := writeConfig(t, config)
		return StartServer(t, ServerOptions{Args: []string{"--config", p}}), p
	}
	local := func(timeout time.Duration, name string, args ...string) (string, error) {
		return run(t, timeout, name, args...)
	}
	menuItem := func(s *Server, config string) string {
		t.Helper()
		item, passed := checkItem(t, local, s, config, "menu")
		if passed {
			t.Fatalf("check passed with the menu refused: %s", item)
		}
		return item
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
	t.Run("another server on http.listen", func(t *testing.T) {
		s, config := start(profiles + "  default_profile: uefi\n")
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
		httpd := exec.Command("busybox", "httpd", "-f", "-p", addr, "-h", t.TempDir())
		if err := httpd.Start(); err != nil {
			t.Fatalf("busybox httpd: %v", err)
		}
		t.Cleanup(func() { httpd.Process.Kill(); httpd.Wait() })
		waitUntil(t, 10*time.Second, "busybox httpd listening", func() bool {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
		other := *s
		other.HTTPAddr = addr // the check asks busybox for the menu
		got := menuItem(&other, config)
		for _, want := range []string{"fail: ", "status 404", "not a bootforge answer", "another server listen on http.listen"} {
			if !strings.Contains(got, want) {
				t.Errorf("menu item %q lacks %q", got, want)
			}
		}
		if strings.Contains(got, "no profile") {
			t.Errorf("menu item blames the profiles for another server's 404: %q", got)
		}
	})
}
