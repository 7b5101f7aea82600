package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBootLogShowsTheWholeChain boots a UEFI VM (EDK2's own PXE) from
// bootforge alone — authoritative DHCP, snponly.efi over TFTP, the iPXE
// script, kernel and initrd over HTTP — and then asks `bootforge log --mac`
// for its story: every stage must be there, each with the client's IP.
func TestBootLogShowsTheWholeChain(t *testing.T) {
	t.Parallel()
	// Firmware fetches its loader from TFTP's well-known port.
	b := newDHCPBootLab(t, bdAuthConfig, "--tftp-addr", "192.0.2.1:69")
	b.copyLoader(t, "snponly.efi")
	b.writeScript(t, "bootlog", true)
	mac := bdMAC(9)
	vm, m := BootVM(t, VMOptions{Lab: b.Lab, Firmware: "uefi", MAC: mac, Timeout: bdBootTimeout, Expect: b.expectBoot()})
	t.Logf("marker after %s: %s", vm.Elapsed().Round(time.Millisecond), m[0])

	// The recorder writes in batches; give it a moment.
	var events []logEvent
	deadline := time.Now().Add(15 * time.Second)
	for {
		cmd := exec.Command(binary, "log", "--mac", mac, "--json")
		cmd.Env = append(cmd.Environ(), "BOOTFORGE_DATA_DIR="+b.Server.DataDir, "BOOTFORGE_ROOT="+b.Root)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bootforge log: %v\n%s", err, out)
		}
		events = events[:0]
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line == "" {
				continue
			}
			var e logEvent
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			events = append(events, e)
		}
		if hasStage(events, "http", "initrd") || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	var leased string
	for _, e := range events {
		if e.Protocol == "dhcp" && e.Stage == "ack" && e.IP != "" {
			leased = e.IP
		}
	}
	if leased == "" {
		t.Fatalf("no DHCP ack with an IP in the boot log for %s:\n%s", mac, dump(events))
	}
	for _, want := range []struct{ proto, stage, file string }{
		{"dhcp", "offer", ""},
		{"dhcp", "ack", ""},
		{"tftp", "loader", "snponly.efi"},
		{"http", "menu", "boot.ipxe"},
		{"http", "kernel", "vmlinuz"},
		{"http", "initrd", "initrd.gz"},
	} {
		found := false
		for _, e := range events {
			if e.Protocol == want.proto && e.Stage == want.stage && (want.file == "" || e.File == want.file) && e.Result == "ok" {
				found = true
				if e.IP != leased {
					t.Errorf("%s %s %s: IP %q, want the leased %s", want.proto, want.stage, want.file, e.IP, leased)
				}
			}
		}
		if !found {
			t.Errorf("boot log lacks %s %s %s (ok) for %s", want.proto, want.stage, want.file, mac)
		}
	}
	if t.Failed() {
		t.Logf("boot log:\n%s", dump(events))
	}
}

type logEvent struct {
	MAC, IP, Stage, Protocol, File, Result string
}

func hasStage(events []logEvent, proto, stage string) bool {
	for _, e := range events {
		if e.Protocol == proto && e.Stage == stage {
			return true
		}
	}
	return false
}

func dump(events []logEvent) string {
	var b strings.Builder
	for _, e := range events {
		b.WriteString(e.Protocol + " " + e.Stage + " " + e.File + " " + e.IP + " " + e.Result + "\n")
	}
	return b.String()
}

// TestBootLogHostileNames: a client names the file it asks for with any
// bytes it likes, UTF-8 or not, NUL included where the protocol lets it.
// PostgreSQL refuses such text, and with it used to refuse the whole batch
// of events it was written in, other clients' too. Every request's event
// is kept on both stores, its odd bytes written as \xNN.
func TestBootLogHostileNames(t *testing.T) { eachStore(t, testBootLogHostileNames) }

func testBootLogHostileNames(t *testing.T, st e2eStore) {
	need(t, "atftp", "curl")
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "good.efi"), []byte("loader"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := StartServer(t, ServerOptions{Root: root, Config: st.yaml()})
	cli := dcCLIConfig(t, s, st.yaml())

	// Not found, so atftp fails; its event is what counts.
	run(t, 20*time.Second, "atftp", "-g", "-r", "tftp\xffname.efi", "-l", os.DevNull, Host(s.TFTPAddr), Port(s.TFTPAddr))
	for _, p := range []string{"/http%FFname.efi", "/nul%00name.efi"} {
		hiCurl(t, "http://"+s.HTTPAddr+p)
	}
	if out, err := run(t, 20*time.Second, "atftp", "-g", "-r", "good.efi", "-l", os.DevNull, Host(s.TFTPAddr), Port(s.TFTPAddr)); err != nil {
		t.Fatalf("atftp good.efi: %v\n%s", err, out)
	}

	want := []string{`tftp\xffname.efi`, `http\xffname.efi`, `nul\x00name.efi`, "good.efi"}
	has := func(events []map[string]any, file string) bool {
		for _, e := range events {
			if dcStr(e, "file") == file {
				return true
			}
		}
		return false
	}
	events := dcEvents(t, cli, func(events []map[string]any) bool {
		for _, f := range want {
			if !has(events, f) {
				return false
			}
		}
		return true
	})
	for _, f := range want {
		if !has(events, f) {
			t.Errorf("no event for %q in the boot log", f)
		}
	}
	if strings.Contains(s.Log(), "events not stored") || t.Failed() {
		t.Errorf("boot log:\n%s\nserver log:\n%s", dcDump(events), s.Log())
	}
}
