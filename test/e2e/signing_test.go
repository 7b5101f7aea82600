package e2e

// Signing (#13 parts 1, 2 and 5): bootforge keys init makes a signing CA
// and a code-signing certificate; with signing on, image build signs the
// manifest and the server answers <generated menu>.sig with a detached CMS
// signature. openssl is the verifier:
//
//	openssl cms -verify -binary -inform DER -content FILE -in FILE.sig \
//	    -CAfile ca.pem -purpose any -signer SIGNER.pem
//
// OpenSSL 3.0 (Debian 12) has no codesign purpose ("-purpose codesign"
// and "-verify_name code_sign" arrived in 3.2), and its smimesign purpose
// refuses a codeSigning-only certificate as well as a serverAuth one. So
// the EKU rule is checked in two openssl steps: cms -verify with -purpose
// any (the signature and the chain to ca.pem), writing the signer's
// certificate with -signer; then openssl x509 -ext extendedKeyUsage on it
// must say "Code Signing". A signature by a serverAuth-only certificate
// issued by the same CA passes the first step and fails the second; and
// bootforge's own verifier (image verify) refuses it outright.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sgOpenSSLVerify runs the two-step check above on file and sig; it returns
// nil when openssl accepts the signature and the signer has codeSigning.
func sgOpenSSLVerify(t *testing.T, ca, file, sig string) error {
	t.Helper()
	signer := filepath.Join(t.TempDir(), "signer.pem")
	out, err := run(t, 20*time.Second, "openssl", "cms", "-verify", "-binary", "-inform", "DER",
		"-content", file, "-in", sig, "-CAfile", ca, "-purpose", "any", "-signer", signer, "-out", os.DevNull)
	if err != nil {
		return fmt.Errorf("openssl cms -verify: %v: %s", err, out)
	}
	out, err = run(t, 10*time.Second, "openssl", "x509", "-in", signer, "-noout", "-ext", "extendedKeyUsage")
	if err != nil {
		return fmt.Errorf("openssl x509: %v: %s", err, out)
	}
	if !strings.Contains(out, "Code Signing") {
		return fmt.Errorf("the signer has no codeSigning EKU: %s", out)
	}
	return nil
}

func TestSigning(t *testing.T) {
	need(t, "openssl", "curl")
	e := newImgEnv(t)
	keysDir := filepath.Join(e.data, "keys")
	ca := filepath.Join(keysDir, "ca.pem")
	dirs := []string{"--root", e.root, "--data-dir", e.data}

	// Keys: made once, private keys 0600 in a 0700 directory; never
	// overwritten without --force.
	if out, code := clRun(t, time.Minute, nil, append([]string{"keys", "init"}, dirs...)...); code != 0 {
		t.Fatalf("keys init: %d\n%s", code, out)
	}
	if st, err := os.Stat(keysDir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("keys dir: %v %v", st, err)
	}
	for _, n := range []string{"ca.key", "signing.key"} {
		if st, err := os.Stat(filepath.Join(keysDir, n)); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", n, st, err)
		}
	}
	caBefore, _ := os.ReadFile(ca)
	if out, code := clRun(t, time.Minute, nil, append([]string{"keys", "init"}, dirs...)...); code == 0 || !strings.Contains(out, "--force") {
		t.Fatalf("second keys init: exit %d\n%s", code, out)
	}
	if after, _ := os.ReadFile(ca); string(after) != string(caBefore) {
		t.Fatal("a refused keys init changed ca.pem")
	}
	out, code := clRun(t, time.Minute, nil, append([]string{"keys", "show"}, dirs...)...)
	if code != 0 || !strings.Contains(out, "CN=bootforge code signing") || !strings.Contains(out, "sha256") {
		t.Fatalf("keys show: %d\n%s", code, out)
	}

	// A manifest signed at build.
	signOn := []string{"BOOTFORGE_SIGNING_ENABLED=true"}
	kernel, initrd := NetbootKernel(t)
	src := t.TempDir()
	copyFileTo(t, kernel, filepath.Join(src, "vmlinuz"))
	copyFileTo(t, initrd, filepath.Join(src, "initrd.gz"))
	out, code = clRun(t, 2*time.Minute, signOn, append([]string{"image", "build", "sig@1.0.0", "--template", "linux",
		"--kernel", filepath.Join(src, "vmlinuz"), "--initrd", filepath.Join(src, "initrd.gz")}, dirs...)...)
	if code != 0 {
		t.Fatalf("image build: %d\n%s", code, out)
	}
	vdir := e.versionDir("sig", "1.0.0")
	manifest := filepath.Join(vdir, "manifest.json")
	if err := sgOpenSSLVerify(t, ca, manifest, manifest+".sig"); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if out, code := clRun(t, time.Minute, signOn, append([]string{"image", "verify"}, dirs...)...); code != 0 {
		t.Fatalf("image verify of a signed manifest: %d\n%s", code, out)
	}

	// Menus for two MACs, and the manifest, fetched over HTTP with their
	// signatures.
	os.WriteFile(filepath.Join(e.root, "vmlinuz"), []byte("kernel"), 0o644)
	os.WriteFile(filepath.Join(e.root, "initrd.gz"), []byte("initrd"), 0o644)
	const macA, macB = "52:54:00:5e:00:01", "52:54:00:5e:00:02"
	s := StartServer(t, ServerOptions{Root: e.root, Config: `signing:
  enabled: true
  dir: ` + keysDir + `
inventory:
  profiles:
    - name: first
      match: [{mac: "` + macA + `"}]
      menu:
        entries:
` + linuxEntries("", "a1", "a2") + `    - name: second
      match: [{mac: "` + macB + `"}]
      menu:
        entries:
` + linuxEntries("", "b1") + `
`})
	fetched := t.TempDir()
	base := "http://" + s.HTTPAddr + "/"
	var paths []string
	for _, mac := range []string{macA, macB} {
		paths = append(paths, "bootforge/ipxe?mac="+pxeMAC(mac)+"&buildarch=x86_64&platform=efi",
			"pxelinux.cfg/01-"+pxeMAC(mac), "bootforge/grub/"+mac+".cfg")
	}
	paths = append(paths, "boot.ipxe", "grub.cfg", "images/sig/1.0.0/manifest.json")
	bodies := map[string]string{}
	for i, p := range paths {
		file := filepath.Join(fetched, fmt.Sprint(i))
		u := p
		sigURL := p + ".sig"
		if q := strings.IndexByte(p, '?'); q >= 0 {
			sigURL = p[:q] + ".sig" + p[q:]
		}
		if r, err := run(t, 20*time.Second, "curl", "-sSf", "-o", file, base+u); err != nil {
			t.Fatalf("curl %s: %v %s", u, err, r)
		}
		if r, err := run(t, 20*time.Second, "curl", "-sSf", "-o", file+".sig", base+sigURL); err != nil {
			t.Fatalf("curl %s: %v %s", sigURL, err, r)
		}
		if err := sgOpenSSLVerify(t, ca, file, file+".sig"); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		b, _ := os.ReadFile(file)
		bodies[p] = string(b)
	}
	if !strings.Contains(bodies[paths[0]], "bfmarker=first-a1") || !strings.Contains(bodies[paths[3]], "bfmarker=second-b1") {
		t.Fatalf("the two MACs' menus are not theirs:\n%s\n---\n%s", bodies[paths[0]], bodies[paths[3]])
	}
	// Fetching a .sig is not a menu served: one "menu" log line per menu.
	if n := s.CountLog("msg=menu "); n != 6 {
		t.Errorf("%d menu log lines, want 6 (the .sig fetches must not count)\n%s", n, s.Log())
	}

	// Over TFTP, a per-client .sig signs what TFTP serves too.
	tf := filepath.Join(fetched, "tftp-menu")
	for _, n := range []string{"", ".sig"} {
		if r, err := run(t, 20*time.Second, "curl", "-sSf", "-o", tf+n, "tftp://"+s.TFTPAddr+"/pxelinux.cfg/01-"+pxeMAC(macB)+n); err != nil {
			t.Fatalf("curl tftp %s: %v %s", n, err, r)
		}
	}
	if err := sgOpenSSLVerify(t, ca, tf, tf+".sig"); err != nil {
		t.Errorf("pxelinux.cfg over TFTP: %v", err)
	}

	// A tampered file is rejected.
	tampered := filepath.Join(fetched, "0")
	b, _ := os.ReadFile(tampered)
	os.WriteFile(tampered, []byte(strings.Replace(string(b), "a1", "a2", 1)), 0o644)
	if err := sgOpenSSLVerify(t, ca, tampered, tampered+".sig"); err == nil {
		t.Error("openssl accepted a tampered menu")
	}

	// A signature by a certificate of the same CA without codeSigning
	// (serverAuth only) is rejected.
	tmp := t.TempDir()
	web, webKey, csr, ext := filepath.Join(tmp, "web.pem"), filepath.Join(tmp, "web.key"), filepath.Join(tmp, "web.csr"), filepath.Join(tmp, "ext")
	os.WriteFile(ext, []byte("keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"), 0o644)
	for _, args := range [][]string{
		{"req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", webKey, "-subj", "/CN=not a code signer", "-out", csr},
		{"x509", "-req", "-in", csr, "-CA", ca, "-CAkey", filepath.Join(keysDir, "ca.key"), "-CAcreateserial", "-CAserial", filepath.Join(tmp, "serial"),
			"-days", "1", "-extfile", ext, "-out", web},
		{"cms", "-sign", "-binary", "-outform", "DER", "-md", "sha256", "-signer", web, "-inkey", webKey, "-in", manifest, "-out", filepath.Join(tmp, "web.sig")},
	} {
		if r, err := run(t, 30*time.Second, "openssl", args...); err != nil {
			t.Fatalf("openssl %s: %v\n%s", args[0], err, r)
		}
	}
	if err := sgOpenSSLVerify(t, ca, manifest, filepath.Join(tmp, "web.sig")); err == nil || !strings.Contains(err.Error(), "no codeSigning") {
		t.Errorf("a serverAuth signer: %v, want refused for its EKU", err)
	}
	good, _ := os.ReadFile(manifest + ".sig")
	websig, _ := os.ReadFile(filepath.Join(tmp, "web.sig"))
	os.WriteFile(manifest+".sig", websig, 0o644)
	if out, code := clRun(t, time.Minute, signOn, append([]string{"image", "verify"}, dirs...)...); code == 0 || !strings.Contains(out, "manifest signature does not verify") {
		t.Errorf("image verify with a serverAuth signer's signature: %d\n%s", code, out)
	}
	os.WriteFile(manifest+".sig", good, 0o644)

	// A tampered or unsigned manifest is drift, and fails the images check.
	mb, _ := os.ReadFile(manifest)
	os.WriteFile(manifest, []byte(strings.Replace(string(mb), `"sig"`, `"sig" `, 1)), 0o644)
	if out, code := clRun(t, time.Minute, signOn, append([]string{"image", "verify"}, dirs...)...); code == 0 || !strings.Contains(out, "manifest signature does not verify") {
		t.Errorf("image verify of a tampered manifest: %d\n%s", code, out)
	}
	os.WriteFile(manifest, mb, 0o644)
	os.Remove(manifest + ".sig")
	if out, code := clRun(t, time.Minute, signOn, append([]string{"image", "verify"}, dirs...)...); code == 0 || !strings.Contains(out, "manifest signature missing") {
		t.Errorf("image verify of an unsigned manifest: %d\n%s", code, out)
	}
	if out, code := clRun(t, time.Minute, nil, append([]string{"image", "verify"}, dirs...)...); code != 0 {
		t.Errorf("image verify with signing off needs no signature: %d\n%s", code, out)
	}

	// bootforge check: the images item fails on the active version's
	// unsigned manifest, and passes once it is signed again. (The other
	// items fail here: nothing listens on the addresses given.)
	if out, code := clRun(t, time.Minute, signOn, append([]string{"image", "promote", "sig@1.0.0"}, dirs...)...); code != 0 {
		t.Fatalf("image promote: %d\n%s", code, out)
	}
	imagesItem := func() (status, detail string) {
		t.Helper()
		s.Stop() // its addresses are not the check's; it must not answer
		out, _ := clRun(t, time.Minute, signOn, append([]string{"check", "--json", "--tftp-addr", "127.0.0.1:1",
			"--http-addr", "127.0.0.1:1", "--api-addr", "127.0.0.1:1"}, dirs...)...)
		var items []struct{ Name, Status, Detail string }
		if err := json.Unmarshal([]byte(out[:strings.LastIndexByte(out, ']')+1]), &items); err != nil {
			t.Fatalf("check --json: %v\n%s", err, out)
		}
		for _, it := range items {
			if it.Name == "images" {
				return it.Status, it.Detail
			}
		}
		t.Fatalf("check --json has no images item:\n%s", out)
		return "", ""
	}
	if st, d := imagesItem(); st != "fail" || !strings.Contains(d, "manifest signature missing") {
		t.Errorf("images item of an unsigned active manifest: %s %s", st, d)
	}
	os.WriteFile(manifest+".sig", good, 0o644)
	if st, d := imagesItem(); st != "pass" {
		t.Errorf("images item of a signed active manifest: %s %s", st, d)
	}
}

// TestSigningKeysNeverServed: a symlink inside root that points at the
// signing key in the data dir is refused over TFTP and HTTP.
func TestSigningKeysNeverServed(t *testing.T) {
	need(t, "curl")
	e := newImgEnv(t)
	if out, code := clRun(t, time.Minute, nil, "keys", "init", "--root", e.root, "--data-dir", e.data); code != 0 {
		t.Fatalf("keys init: %d\n%s", code, out)
	}
	key := filepath.Join(e.data, "keys", "signing.key")
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("signing.key: %v %v", st, err)
	}
	if err := os.Symlink(key, filepath.Join(e.root, "signing.key")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(e.root, "ok.txt"), []byte("ok"), 0o644)
	s := StartServer(t, ServerOptions{Root: e.root})
	if got := clGet(t, "http://"+s.HTTPAddr+"/ok.txt"); got != "ok" {
		t.Fatalf("a plain file is not served: %q", got)
	}
	if got := clGet(t, "tftp://"+s.TFTPAddr+"/ok.txt"); got != "ok" {
		t.Fatalf("a plain file is not served over TFTP: %q", got)
	}
	for _, u := range []string{"http://" + s.HTTPAddr + "/signing.key", "tftp://" + s.TFTPAddr + "/signing.key"} {
		if got := clGet(t, u); got != "" {
			t.Errorf("%s served the private key (%d bytes)", u, len(got))
		}
	}
}

// TestSigningBringYourOwnCA: keys init --ca-cert/--ca-key takes an
// operator's CA (made here with openssl), which issues the signing
// certificate; keys show --json names it.
func TestSigningBringYourOwnCA(t *testing.T) {
	need(t, "openssl")
	e := newImgEnv(t)
	tmp := t.TempDir()
	caCert, caKey := filepath.Join(tmp, "op-ca.pem"), filepath.Join(tmp, "op-ca.key")
	if r, err := run(t, 30*time.Second, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", caKey,
		"-out", caCert, "-days", "30", "-subj", "/CN=Operator Root", "-addext", "basicConstraints=critical,CA:TRUE",
		"-addext", "keyUsage=critical,keyCertSign"); err != nil {
		t.Fatalf("openssl req: %v\n%s", err, r)
	}
	dirs := []string{"--root", e.root, "--data-dir", e.data}
	if out, code := clRun(t, time.Minute, nil, append([]string{"keys", "init", "--ca-cert", caCert, "--ca-key", caKey}, dirs...)...); code != 0 {
		t.Fatalf("keys init --ca-cert: %d\n%s", code, out)
	}
	out, code := clRun(t, time.Minute, nil, append([]string{"keys", "show", "--json"}, dirs...)...)
	var info []struct {
		Subject, Issuer, SHA256 string
		KeyMode                 string `json:"key_mode"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &info) != nil || len(info) != 2 ||
		info[0].Subject != "CN=Operator Root" || info[1].Issuer != "CN=Operator Root" || info[1].KeyMode != "0600" || len(info[1].SHA256) != 64 {
		t.Fatalf("keys show --json: %d\n%s", code, out)
	}
	// The signing certificate chains to the operator's CA, for openssl.
	keysDir := filepath.Join(e.data, "keys")
	if r, err := run(t, 10*time.Second, "openssl", "verify", "-CAfile", caCert, filepath.Join(keysDir, "signing.pem")); err != nil {
		t.Fatalf("openssl verify: %v\n%s", err, r)
	}
	// --force replaces the keys with a new self-signed CA.
	if out, code := clRun(t, time.Minute, nil, append([]string{"keys", "init", "--force"}, dirs...)...); code != 0 {
		t.Fatalf("keys init --force: %d\n%s", code, out)
	}
	if r, err := run(t, 10*time.Second, "openssl", "verify", "-CAfile", caCert, filepath.Join(keysDir, "signing.pem")); err == nil {
		t.Fatalf("after --force the signing certificate still chains to the operator's CA: %s", r)
	}
}
