package e2e

// UEFI HTTPS boot from bootforge (issue 13, item 4): with http.tls.boot on,
// bootforge's DHCP hands OVMF's HTTP boot client (arch 16, vendor class
// HTTPClient) an https:// URL of its loader on the boot TLS listener, whose
// RSA certificate bootforge's CA issued. OVMF trusts that CA only when it
// is handed over as an EFI signature list through QEMU's
// -fw_cfg name=etc/edk2/https/cacerts, which "bootforge keys export-edk2"
// writes.
//
// Only the firmware's own fetch (the loader, ipxe.efi) is over HTTPS. The
// later stages are Debian's iPXE, which has no HTTPS: it gets its script,
// kernel and initrd over plain http://, as bootforge's DHCP and menus give
// it by default.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// hbBootListen is the boot TLS listener in the lab namespace.
const hbBootListen = "192.0.2.1:4433"

// hbLab is a dhcpBootLab whose bootforge has the boot TLS listener on, and
// the CA as an EFI signature list for OVMF.
type hbLab struct {
	*dhcpBootLab
	KeysDir string // the signing CA: ca.pem, ca.key
	CertDB  string // keys export-edk2's output
}

func newHTTPSBootLab(t *testing.T) *hbLab {
	t.Helper()
	data := t.TempDir()
	if out, err := run(t, 2*time.Minute, binary, "keys", "init", "--data-dir", data); err != nil {
		t.Fatalf("keys init: %v\n%s", err, out)
	}
	keysDir := filepath.Join(data, "keys")
	certdb := filepath.Join(t.TempDir(), "cacerts.esl")
	if out, err := run(t, time.Minute, binary, "keys", "export-edk2", "--data-dir", data, certdb); err != nil {
		t.Fatalf("keys export-edk2: %v\n%s", err, out)
	}
	config := bdAuthConfig + fmt.Sprintf(`http:
  tls: {boot: true, boot_listen: %q}
signing: {dir: %q}
`, hbBootListen, keysDir)
	b := &hbLab{dhcpBootLab: newDHCPBootLab(t, config), KeysDir: keysDir, CertDB: certdb}
	if !strings.Contains(b.Server.Log(), "https_boot="+hbBootListen) {
		t.Fatalf("bootforge is ready without the boot TLS listener on %s:\n%s", hbBootListen, b.Server.Log())
	}
	b.copyLoader(t, "ipxe.efi")
	b.writeScript(t, "uefi-https", true)
	return b
}

// tlsGets returns bootforge's access-log records of GET /name over TLS.
func (b *hbLab) tlsGets(name string) []LogRecord {
	var out []LogRecord
	for _, r := range ServerRecords(b.Server, "http request") {
		if r["path"] == "/"+name && r["method"] == "GET" && r["tls"] == "true" {
			out = append(out, r)
		}
	}
	return out
}

// rsaKeyExchange matches the suites with RSA key exchange, the only kind
// both OVMF and Go have.
var rsaKeyExchange = regexp.MustCompile(`^TLS_RSA_WITH_`)

// TestHTTPSBootOVMF: OVMF with bootforge's CA fetches its loader over
// https:// from the boot TLS listener (RSA key exchange, logged with
// tls=true) and boots on to the marker through Debian's iPXE over http://.
// Then a VM without the CA: the firmware does not even connect, and says
// it could not get the file; and a VM that trusts another CA: it connects,
// rejects the certificate, and bootforge logs the failed handshake. Neither
// gets an answer nor reaches the marker.
//
// The two VMs run one after the other, not in parallel (TCG on two cores).
func TestHTTPSBootOVMF(t *testing.T) {
	b := newHTTPSBootLab(t)
	loader := "https://" + hbBootListen + "/ipxe.efi"

	// With the CA: boots to the marker.
	mac := bdMAC(0x51)
	vm, m := BootVM(t, VMOptions{Lab: b.Lab, Firmware: "uefi", HTTPBootOnly: true, MAC: mac,
		Args:    []string{"-fw_cfg", "name=etc/edk2/https/cacerts,file=" + b.CertDB},
		Timeout: bdBootTimeout, Expect: b.expectBoot()})
	t.Logf("with the CA: marker after %s: %s", vm.Elapsed().Round(time.Millisecond), m[0])
	bdCheckCmdline(t, m[1], b.Marker, "profile=uefi-https", "initrd=initrd.gz")
	if !strings.Contains(vm.Console(), "URI: "+loader) {
		t.Errorf("the firmware did not print the https:// URI %s; console tail:\n%s", loader, vm.Tail(30))
	}
	fwIPs := b.requireLeases(t, mac, loader)
	var got []string
	ok := false
	for _, r := range b.tlsGets("ipxe.efi") {
		got = append(got, fmt.Sprint(r))
		if r["status"] == "200" && r["bytes"] == b.size(t, "ipxe.efi") && fwIPs[r["client"]] && rsaKeyExchange.MatchString(r["tls_suite"]) {
			ok = true
		}
	}
	if !ok {
		t.Errorf("bootforge logged no complete GET /ipxe.efi over TLS (RSA key exchange) from the firmware's address %v: %v", bdKeys(fwIPs), got)
	}
	t.Logf("the firmware's TLS fetches: %v", got)
	// The later stages: Debian's iPXE, plain http://.
	ipxeIPs := b.requireLeases(t, mac, b.HTTP+"/boot.ipxe")
	b.requireGetFrom(t, "boot.ipxe", ipxeIPs)
	b.requireGetFrom(t, "vmlinuz", ipxeIPs)
	b.requireGetFrom(t, "initrd.gz", ipxeIPs)
	vm.Kill()

	// Without the CA, the firmware refuses to fetch over HTTPS at all: it
	// opens no connection, and its console says it could not get the file.
	b.refused(t, bdMAC(0x52), "", loader)

	// With another CA, it connects and rejects bootforge's certificate
	// during the handshake, which bootforge logs.
	other := t.TempDir()
	if out, err := run(t, 2*time.Minute, binary, "keys", "init", "--data-dir", other); err != nil {
		t.Fatalf("keys init (another CA): %v\n%s", err, out)
	}
	otherDB := filepath.Join(t.TempDir(), "other.esl")
	if out, err := run(t, time.Minute, binary, "keys", "export-edk2", "--data-dir", other, otherDB); err != nil {
		t.Fatalf("keys export-edk2 (another CA): %v\n%s", err, out)
	}
	ips := b.refused(t, bdMAC(0x53), otherDB, loader)
	handshake := regexp.MustCompile(`level=WARN msg="http: TLS handshake error from (192\.0\.2\.\d+):\d+: ([^"]*)" listener=boot-tls`)
	var failed []string
	for _, m := range handshake.FindAllStringSubmatch(b.Server.Log(), -1) {
		if ips[m[1]] {
			failed = append(failed, m[0])
		}
	}
	if len(failed) == 0 {
		t.Errorf("bootforge logged no failed TLS handshake from the VM that trusts another CA (%v)", bdKeys(ips))
	}
	t.Logf("with another CA, bootforge logged: %v", failed)
}

// refused boots a VM that trusts certdb ("": no CA at all) and asserts that
// its firmware gives up on the https:// loader: the console says so, no
// marker, and no request from it was answered. It returns the addresses
// bootforge leased to the VM.
func (b *hbLab) refused(t *testing.T, mac, certdb, loader string) map[string]bool {
	t.Helper()
	o := VMOptions{Lab: b.Lab, Firmware: "uefi", HTTPBootOnly: true, MAC: mac}
	if certdb != "" {
		o.Args = []string{"-fw_cfg", "name=etc/edk2/https/cacerts,file=" + certdb}
	}
	vm := StartVM(t, o)
	m := vm.Expect(regexp.MustCompile(`URI: (\S+)\s+Error: ([^\n]*)\n`), bdBootTimeout)
	t.Logf("%s (CA %q): the firmware printed %q", mac, certdb, strings.Join(m[1:], " / "))
	if m[1] != loader {
		t.Errorf("the firmware tried %s, want %s", m[1], loader)
	}
	vm.Kill()
	if strings.Contains(vm.Console(), BootMarker) {
		t.Errorf("the VM that did not trust the server booted to the marker")
	}
	ips := b.requireLeases(t, mac, loader)
	for _, r := range ServerRecords(b.Server, "http request") {
		if ips[r["client"]] {
			t.Errorf("the VM that did not trust the server got an HTTP answer: %v", r)
		}
	}
	return ips
}

// TestHTTPSBootListener: the boot TLS listener on loopback, against real
// clients. openssl negotiates RSA key exchange (AES256-GCM-SHA384, as OVMF
// offers it) there and verifies the certificate against bootforge's CA for
// the address; the normal HTTPS listener refuses that suite. curl fetches
// a file through the same path rules and access log. The certificate is
// kept across restarts, its key is 0600, keys export-edk2 holds exactly
// the CA's DER, and without a CA serve refuses to start.
func TestHTTPSBootListener(t *testing.T) {
	t.Parallel()
	need(t, "openssl", "curl")
	data := t.TempDir()
	if out, err := run(t, 2*time.Minute, binary, "keys", "init", "--data-dir", data); err != nil {
		t.Fatalf("keys init: %v\n%s", err, out)
	}
	keysDir := filepath.Join(data, "keys")
	ca := filepath.Join(keysDir, "ca.pem")
	boot := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	config := fmt.Sprintf("http:\n  tls: {boot: true, boot_listen: %q}\nsigning: {dir: %q}\n", boot, keysDir)
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "loader.efi"), []byte("a loader\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(ca, filepath.Join(root, "ca-link.pem")); err != nil {
		t.Fatal(err)
	}
	s := StartServer(t, ServerOptions{Root: root, Config: config})
	fp := regexp.MustCompile(`https_boot_sha256=(\S+)`).FindStringSubmatch(s.Log())
	if fp == nil || !strings.Contains(s.Log(), "https_boot="+boot) {
		t.Fatalf("no boot TLS listener on %s in the ready line:\n%s", boot, s.Log())
	}

	sClient := func(addr string, args ...string) (string, error) {
		cmd := append([]string{"s_client", "-connect", addr, "-tls1_2", "-cipher", "AES256-GCM-SHA384"}, args...)
		c := exec.Command("openssl", cmd...)
		c.Stdin = strings.NewReader("")
		out, err := c.CombinedOutput()
		return string(out), err
	}
	out, err := sClient(boot, "-CAfile", ca, "-verify_return_error", "-verify_ip", "127.0.0.1")
	if err != nil || !strings.Contains(out, "Cipher is AES256-GCM-SHA384") || !strings.Contains(out, "Verify return code: 0 (ok)") {
		t.Errorf("openssl with RSA key exchange and the CA, on the boot listener: %v\n%s", err, out)
	}
	if out, err := sClient(boot, "-CAfile", ca, "-verify_return_error", "-verify_ip", "198.51.100.1"); err == nil {
		t.Errorf("the boot certificate verified for an address that is not the server's:\n%s", out)
	}
	if out, err := sClient(s.HTTPSAddr); err == nil || strings.Contains(out, "Cipher is AES256-GCM-SHA384") {
		t.Errorf("the normal HTTPS listener accepted RSA key exchange: %v\n%s", err, out)
	}

	body, err := run(t, 20*time.Second, "curl", "-sSf", "--cacert", ca, "https://"+boot+"/loader.efi")
	if err != nil || body != "a loader\n" {
		t.Errorf("curl over the boot listener: %v %q", err, body)
	}
	if out, err := run(t, 20*time.Second, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca, "https://"+boot+"/ca-link.pem"); err != nil || out != "403" {
		t.Errorf("a symlink out of root over the boot listener: %v %q, want 403", err, out)
	}
	var logged bool
	for _, r := range ServerRecords(s, "http request") {
		if r["path"] == "/loader.efi" && r["status"] == "200" && r["tls"] == "true" && r["tls_suite"] != "" {
			logged = true
		}
	}
	if !logged {
		t.Errorf("no access-log line with tls=true for /loader.efi:\n%s", s.Log())
	}

	// The key is 0600 and in data_dir; a restart keeps the certificate.
	st, err := os.Stat(filepath.Join(s.DataDir, "tls", "boot-rsa.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("boot TLS key: %v %v", st, err)
	}
	dataDir := s.DataDir
	s.Stop()
	s2 := StartServer(t, ServerOptions{Root: root, Config: config, Args: []string{"--data-dir", dataDir}})
	if fp2 := regexp.MustCompile(`https_boot_sha256=(\S+)`).FindStringSubmatch(s2.Log()); fp2 == nil || fp2[1] != fp[1] {
		t.Errorf("the boot certificate changed across a restart: %v, then %v", fp, fp2)
	}
	if strings.Contains(s2.Log(), "boot TLS certificate issued") {
		t.Errorf("a restart issued a new boot certificate:\n%s", s2.Log())
	}
	s2.Stop()

	// keys export-edk2: the signature list ends with the CA's DER.
	esl := filepath.Join(t.TempDir(), "cacerts.esl")
	if out, err := run(t, time.Minute, binary, "keys", "export-edk2", "--data-dir", data, esl); err != nil {
		t.Fatalf("keys export-edk2: %v\n%s", err, out)
	}
	der := filepath.Join(t.TempDir(), "ca.der")
	if out, err := run(t, 20*time.Second, "openssl", "x509", "-in", ca, "-outform", "DER", "-out", der); err != nil {
		t.Fatalf("openssl x509: %v\n%s", err, out)
	}
	eb, _ := os.ReadFile(esl)
	db, _ := os.ReadFile(der)
	if len(eb) != 44+len(db) || !bytes.Equal(eb[44:], db) {
		t.Errorf("the signature list (%d bytes) does not end with the CA's DER (%d bytes)", len(eb), len(db))
	}

	// No CA: serve refuses, and says how to make one.
	empty := t.TempDir()
	noCA := filepath.Join(t.TempDir(), "bootforge.yaml")
	os.WriteFile(noCA, []byte(fmt.Sprintf("http:\n  tls: {boot: true, boot_listen: %q}\n", boot)), 0o644)
	out, err = run(t, 20*time.Second, binary, "serve", "--config", noCA, "--data-dir", empty, "--root", root,
		"--tftp-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t, "udp")), "--http-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")),
		"--https-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")), "--api-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")))
	if err == nil || !strings.Contains(out, "http.tls.boot") || !strings.Contains(out, "bootforge keys init") {
		t.Errorf("serve without a CA: %v\n%s", err, out)
	}
}

// TestIPXETrustSignatures: with http.tls.ipxe_trust, what an iPXE built
// with image trust would fetch is there and checks out with openssl, the
// stand-in for iPXE's imgverify (Debian's iPXE has none; the iPXE side is
// untested here): over the boot TLS listener, boot.ipxe turns image trust
// on; the client's script verifies every file; and the CMS .sig of the
// script, the kernel and the initrd verify against the CA, while a changed
// kernel does not.
func TestIPXETrustSignatures(t *testing.T) {
	t.Parallel()
	need(t, "openssl", "curl")
	data := t.TempDir()
	if out, err := run(t, 2*time.Minute, binary, "keys", "init", "--data-dir", data); err != nil {
		t.Fatalf("keys init: %v\n%s", err, out)
	}
	keysDir := filepath.Join(data, "keys")
	ca := filepath.Join(keysDir, "ca.pem")
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "vmlinuz"), []byte("a kernel\n"), 0o644)
	os.WriteFile(filepath.Join(root, "initrd.gz"), []byte("an initrd\n"), 0o644)
	os.WriteFile(filepath.Join(root, "other.bin"), []byte("no menu names me\n"), 0o644)
	const mac = "52:54:00:7a:00:01"
	boot := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	StartServer(t, ServerOptions{Root: root, Config: fmt.Sprintf(`http:
  tls: {boot: true, boot_listen: %q, ipxe_trust: true}
signing: {enabled: true, dir: %q}
inventory:
  profiles:
    - name: trusted
      match: [{mac: %q}]
      menu:
        entries:
`, boot, keysDir, mac) + linuxEntries("", "t1")})
	base := "https://" + boot + "/"
	dir := t.TempDir()
	get := func(path, file string) string {
		t.Helper()
		if out, err := run(t, 20*time.Second, "curl", "-sSf", "--cacert", ca, "-o", file, base+path); err != nil {
			t.Fatalf("curl %s: %v %s", path, err, out)
		}
		b, _ := os.ReadFile(file)
		return string(b)
	}
	chain := get("boot.ipxe", filepath.Join(dir, "boot.ipxe"))
	for _, want := range []string{"imgtrust --permanent\n", "imgfetch --name menu " + base + "bootforge/ipxe?", "imgverify menu " + base + "bootforge/ipxe.sig?"} {
		if !strings.Contains(chain, want) {
			t.Errorf("boot.ipxe over the boot listener lacks %q:\n%s", want, chain)
		}
	}
	q := "?mac=" + pxeMAC(mac) + "&buildarch=x86_64&platform=efi"
	script := get("bootforge/ipxe"+q, filepath.Join(dir, "script"))
	get("bootforge/ipxe.sig"+q, filepath.Join(dir, "script.sig"))
	for _, want := range []string{"imgverify vmlinuz " + base + "vmlinuz.sig\n", "imgverify initrd.gz " + base + "initrd.gz.sig\n"} {
		if !strings.Contains(script, want) {
			t.Errorf("the client's script lacks %q:\n%s", want, script)
		}
	}
	if err := sgOpenSSLVerify(t, ca, filepath.Join(dir, "script"), filepath.Join(dir, "script.sig")); err != nil {
		t.Errorf("the client's script: %v", err)
	}
	for _, f := range []string{"vmlinuz", "initrd.gz"} {
		get(f, filepath.Join(dir, f))
		get(f+".sig", filepath.Join(dir, f+".sig"))
		if err := sgOpenSSLVerify(t, ca, filepath.Join(dir, f), filepath.Join(dir, f+".sig")); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("a kernel!\n"), 0o644)
	if err := sgOpenSSLVerify(t, ca, filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "vmlinuz.sig")); err == nil {
		t.Error("a changed kernel verified")
	}
	if out, _ := run(t, 20*time.Second, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca, base+"other.bin.sig"); out != "404" {
		t.Errorf("a file no menu names has a .sig: %s", out)
	}
}
