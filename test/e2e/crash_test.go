package e2e

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"bootforge/internal/store"
)

// TestCrashUnderLoadKeepsAckedLeases kills bootforge with SIGKILL while the
// DHCP load generator (bench/dhcpload, acting as a relay agent) is leasing,
// then checks that every lease the generator saw ACKed is in the store,
// and that after a restart the same clients get the same addresses back.
func TestCrashUnderLoadKeepsAckedLeases(t *testing.T) { eachStore(t, testCrashUnderLoad) }

func testCrashUnderLoad(t *testing.T, st e2eStore) {
	load := filepath.Join(t.TempDir(), "dhcpload")
	if out, err := exec.Command("go", "build", "-o", load, "bootforge/bench/dhcpload").CombinedOutput(); err != nil {
		t.Fatalf("building dhcpload: %v\n%s", err, out)
	}
	lab := NewLab(t)
	relay := dhAddHost(t, lab, "192.0.2.2")
	relay.MustExec("ip", "addr", "add", "198.18.0.1/16", "dev", "lo")
	lab.MustExec("ip", "route", "add", "198.18.0.0/16", "via", "192.0.2.2")
	cfg := `dhcp:
  mode: authoritative
  interfaces: [br0]
  rate_limit: 1000
  subnets:
    - subnet: 198.18.0.0/16
      pools: ["198.18.1.0-198.18.255.250"]
` + st.yaml()
	data := t.TempDir()
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "undionly.kpxe"), []byte("loader"), 0o644)
	srv := StartServer(t, ServerOptions{Netns: lab.Netns, Addr: "192.0.2.1", Root: root, Config: cfg, Args: []string{"--data-dir", data}})

	acked := filepath.Join(t.TempDir(), "acked1")
	gen := relay.Command(load, "-server", "192.0.2.1", "-relay", "198.18.0.1", "-clients", "20000", "-inflight", "32",
		"-timeout", "1s", "-max-time", "4s", "-mac-base", "02:c0:00:00:00:00", "-acked", acked)
	if err := gen.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // leasing at full speed
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-srv.done
	srv.done <- nil
	gen.Wait() // the rest time out
	before := readAcked(t, acked)
	if len(before) < 100 {
		t.Fatalf("only %d leases ACKed before the kill: the load did not run", len(before))
	}

	loc, err := store.Locate(st.url, data)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.OpenAt(loc, store.SyncFull)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]string{}
	leases, err := db.LoadLeases()
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		stored[l.IP.String()] = strings.ReplaceAll(l.MAC.String(), ":", "")
	}
	lost := 0
	for ip, mac := range before {
		if stored[ip] != mac {
			lost++
			if lost <= 5 {
				t.Errorf("ACKed %s to %s, the store has %q", ip, mac, stored[ip])
			}
		}
	}
	t.Logf("%d leases ACKed before SIGKILL, %d stored, %d lost", len(before), len(stored), lost)

	// Restart on the same store: the same clients ask again and must get
	// the addresses they were ACKed before the crash.
	StartServer(t, ServerOptions{Netns: lab.Netns, Addr: "192.0.2.1", Root: root, Config: cfg, Args: []string{"--data-dir", data}})
	again := filepath.Join(t.TempDir(), "acked2")
	out, err := relay.Exec(90*time.Second, load, "-server", "192.0.2.1", "-relay", "198.18.0.1", "-clients", "2000", "-inflight", "16",
		"-timeout", "2s", "-mac-base", "02:c0:00:00:00:00", "-acked", again)
	if err != nil {
		t.Fatalf("dhcpload after the restart: %v\n%s", err, out)
	}
	after := readAcked(t, again)
	byMAC := map[string]string{}
	for ip, mac := range before {
		byMAC[mac] = ip
	}
	same, moved := 0, 0
	for ip, mac := range after {
		if old, ok := byMAC[mac]; ok {
			if old == ip {
				same++
			} else {
				moved++
				if moved <= 5 {
					t.Errorf("%s had %s before the crash, got %s after", mac, old, ip)
				}
			}
		}
	}
	if same == 0 {
		t.Fatalf("no client from before the crash came back (%d ACKs after): the check proved nothing", len(after))
	}
	t.Logf("after restart: %d returning clients kept their address, %d moved", same, moved)
}

// readAcked reads dhcpload's -acked file: IP → MAC (12 hex digits).
func readAcked(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if _, err := netip.ParseAddr(f[0]); err != nil {
			t.Fatalf("acked line %q", line)
		}
		if _, err := net.ParseMAC(strings.Join(split2(f[1]), ":")); err != nil {
			t.Fatalf("acked MAC %q", f[1])
		}
		out[f[0]] = f[1]
	}
	return out
}

func split2(s string) []string {
	var out []string
	for i := 0; i+2 <= len(s); i += 2 {
		out = append(out, s[i:i+2])
	}
	return out
}
