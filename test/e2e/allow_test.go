package e2e

// Allow-lists (issue 16, item 4): every protocol answers only the
// provisioning networks. Two client namespaces on one lab bridge, in two
// subnets: 192.0.2.10 (allowed) and 198.51.100.10 (not). The server
// listens on both subnets' addresses of the bridge.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestAllowLists(t *testing.T) {
	need(t, "tftp", "atftp", "curl")
	lab := NewLab(t)
	lab.MustExec("ip", "addr", "add", "198.51.100.1/24", "dev", lab.Bridge)
	good := lab.AddHost(t, "192.0.2.10/24")
	bad := lab.AddHost(t, "198.51.100.10/24")

	root := t.TempDir()
	loader := make([]byte, 70_000) // more than one block, less than one window
	for i := range loader {
		loader[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(root, "undionly.kpxe"), loader, 0o644); err != nil {
		t.Fatal(err)
	}
	const inventory = `inventory:
  default_profile: lab
  profiles:
    - name: lab
      menu:
        default: disk
        entries:
          - {name: disk, kind: local}
`
	s := StartServer(t, ServerOptions{Root: root, Netns: lab.Netns, Addr: "0.0.0.0",
		Config: "allow: [192.0.2.0/24]\napi:\n  allow: [192.0.2.0/24]\n" + inventory})
	port := func(addr string) string { return Port(addr) }
	tftpPort, httpPort, httpsPort, apiPort := port(s.TFTPAddr), port(s.HTTPAddr), port(s.HTTPSAddr), port(s.APIAddr)

	// fetchTFTP gets the loader with tftp-hpa, tracing every packet, and
	// gives up after 3 s.
	fetchTFTP := func(h *LabHost, server string) (string, error) {
		out := filepath.Join(t.TempDir(), "loader")
		script := fmt.Sprintf("binary\nverbose\ntrace\nrexmt 1\ntimeout 3\nget undionly.kpxe %s\nquit\n", out)
		cmd := h.Command("tftp", server, tftpPort)
		cmd.Stdin = strings.NewReader(script)
		o, err := runCmd(cmd, 20*time.Second)
		if err == nil {
			got, rerr := os.ReadFile(out)
			if rerr != nil || string(got) != string(loader) {
				err = fmt.Errorf("loader not fetched whole (%d of %d bytes): %v", len(got), len(loader), rerr)
			}
		}
		return o, err
	}
	curl := func(h *LabHost, url string) (code string, body string) {
		t.Helper()
		o, err := h.Exec(20*time.Second, "curl", "-sk", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}", url)
		if err != nil {
			t.Fatalf("curl %s from %s: %v\n%s", url, h.IP(), err, o)
		}
		i := strings.LastIndex(o, "\n")
		return o[i+1:], o[:i]
	}

	t.Run("allowed", func(t *testing.T) {
		if o, err := fetchTFTP(good, "192.0.2.1"); err != nil || !strings.Contains(o, "Received") {
			t.Fatalf("tftp-hpa from the allowed subnet: %v\n%s", err, o)
		}
		out := filepath.Join(t.TempDir(), "loader")
		if o, err := good.Exec(30*time.Second, "atftp", "--option", "blksize 1468", "--option", "windowsize 16",
			"-g", "-r", "undionly.kpxe", "-l", out, "192.0.2.1", tftpPort); err != nil {
			t.Fatalf("atftp from the allowed subnet: %v\n%s", err, o)
		}
		if got, _ := os.ReadFile(out); string(got) != string(loader) {
			t.Fatalf("atftp fetched %d bytes, want %d", len(got), len(loader))
		}
		if code, body := curl(good, "http://192.0.2.1:"+httpPort+"/boot.ipxe"); code != "200" || !strings.HasPrefix(body, "#!ipxe") {
			t.Fatalf("iPXE script over HTTP from the allowed subnet: %s\n%s", code, body)
		}
		if code, _ := curl(good, "https://192.0.2.1:"+httpsPort+"/undionly.kpxe"); code != "200" {
			t.Fatalf("loader over HTTPS from the allowed subnet: %s", code)
		}
		if code, _ := curl(good, "http://192.0.2.1:"+apiPort+"/healthz"); code != "200" {
			t.Fatalf("API from the allowed subnet: %s", code)
		}
	})

	t.Run("denied", func(t *testing.T) {
		for range 3 { // a retrying client: three requests, one log line
			o, err := fetchTFTP(bad, "198.51.100.1")
			if err == nil {
				t.Fatalf("tftp-hpa from the denied subnet fetched the loader:\n%s", o)
			}
			// The trace shows every packet received: none at all, no
			// ERROR packet either, which would confirm a server is here.
			if strings.Contains(o, "received") || strings.Contains(o, "Error code") || !strings.Contains(o, "timed out") {
				t.Fatalf("tftp-hpa from the denied subnet: want a timeout with nothing received, got:\n%s", o)
			}
		}
		refusals := ServerRecords(s, "tftp: refused, not answered")
		if len(refusals) != 1 || !strings.HasPrefix(refusals[0]["client"], "198.51.100.10:") ||
			refusals[0]["reason"] != "198.51.100.10 is not in allow" || refusals[0]["file"] != "undionly.kpxe" {
			t.Fatalf("want one logged TFTP refusal of 198.51.100.10 (a flood is logged once), got %v", refusals)
		}
		if n := s.CountLog(`msg="tftp transfer"`) + s.CountLog(`msg="tftp: refused"`); n != 2 {
			// the two allowed fetches, and no transfer or ERROR for the denied one
			t.Errorf("%d TFTP transfer or ERROR lines, want the allowed client's 2", n)
		}

		for _, url := range []string{
			"http://198.51.100.1:" + httpPort + "/boot.ipxe",
			"http://198.51.100.1:" + httpPort + "/undionly.kpxe",
			"https://198.51.100.1:" + httpsPort + "/undionly.kpxe",
		} {
			if code, body := curl(bad, url); code != "403" || strings.Contains(body, "ipxe") {
				t.Errorf("%s from the denied subnet: %s, want 403\n%s", url, code, body)
			}
		}
		var http403 int
		for _, r := range ServerRecords(s, "http: refused") {
			if strings.HasPrefix(r["client"], "198.51.100.10:") && r["reason"] == "198.51.100.10 is not in allow" {
				http403++
			}
		}
		if http403 != 3 {
			t.Errorf("%d HTTP(S) refusals logged with the client and the reason, want 3", http403)
		}

		code, body := curl(bad, "http://198.51.100.1:"+apiPort+"/healthz")
		var e struct{ Code, Message string }
		if json.Unmarshal([]byte(body), &e); code != "403" || e.Code != "client_not_allowed" || !strings.Contains(e.Message, "api.allow") {
			t.Errorf("API from the denied subnet: %s %s, want 403 client_not_allowed", code, body)
		}
	})

	t.Run("boot log", func(t *testing.T) {
		tok := exec.Command(binary, "token", "create", "--role", "read")
		tok.Env = append(tok.Environ(), "BOOTFORGE_DATA_DIR="+s.DataDir, "BOOTFORGE_ROOT="+root)
		b, err := tok.Output()
		if err != nil {
			t.Fatalf("token create: %v", err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			o := good.MustExec("curl", "-sS", "--fail", "-H", "Authorization: Bearer "+strings.TrimSpace(string(b)),
				"http://192.0.2.1:"+apiPort+"/api/v1/events")
			var events []map[string]any
			if err := json.Unmarshal([]byte(o), &events); err != nil {
				var wrapped struct{ Events []map[string]any }
				if err := json.Unmarshal([]byte(o), &wrapped); err != nil {
					t.Fatalf("events: %v\n%s", err, o)
				}
				events = wrapped.Events
			}
			seen := map[string]int{}
			for _, e := range events {
				if e["ip"] == "198.51.100.10" && e["result"] == "refused" && e["reason"] == "198.51.100.10 is not in allow" {
					seen[fmt.Sprint(e["protocol"])]++
				}
			}
			if seen["tftp"] == 1 && seen["http"] == 2 && seen["https"] == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("boot log refusals of 198.51.100.10 by protocol %v, want tftp 1, http 2, https 1", seen)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	// SIGHUP with the second subnet allowed: served at once.
	t.Run("reload", func(t *testing.T) {
		conf := ""
		for i, a := range s.cmd.Args {
			if a == "--config" {
				conf = s.cmd.Args[i+1]
			}
		}
		if err := os.WriteFile(conf, []byte("allow: [192.0.2.0/24, 198.51.100.0/24]\napi:\n  allow: [192.0.2.0/24]\n"+inventory), 0o644); err != nil {
			t.Fatal(err)
		}
		s.Signal(syscall.SIGHUP)
		s.WaitLog("config reloaded", 10*time.Second)
		if o, err := fetchTFTP(bad, "198.51.100.1"); err != nil {
			t.Fatalf("tftp-hpa from the newly allowed subnet: %v\n%s", err, o)
		}
		if code, _ := curl(bad, "http://198.51.100.1:"+httpPort+"/boot.ipxe"); code != "200" {
			t.Errorf("HTTP from the newly allowed subnet: %s", code)
		}
		if code, _ := curl(bad, "http://198.51.100.1:"+apiPort+"/healthz"); code != "403" {
			t.Errorf("API after a reload that kept api.allow: %s, want 403", code)
		}
	})
}

// runCmd runs cmd with a timeout and returns its combined output.
func runCmd(cmd *exec.Cmd, timeout time.Duration) (string, error) {
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		return out.String(), fmt.Errorf("timed out after %s", timeout)
	}
}
