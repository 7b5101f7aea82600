package e2e

// Keys that cannot sign are refused, not used: a signing certificate that
// another CA issued, or one that has expired, has serve refuse to start
// with signing on (and image build, keys show, the checklist's signing
// item say why); keys init refuses an operator's CA that has expired; and
// keys init on a full disk leaves nothing that blocks the retry. openssl
// is the peer that agrees the certificates are bad, and makes the expired
// ones ("openssl ca" is the only openssl 3.0 command that sets dates in
// the past).

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// krCA is a minimal "openssl ca" setup in dir: issuing with it sets the
// start and end dates and the extensions of the section asked for.
func krCA(t *testing.T, dir string) (conf string) {
	t.Helper()
	conf = filepath.Join(dir, "ca.cnf")
	os.WriteFile(filepath.Join(dir, "index.txt"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "serial"), []byte("1000\n"), 0o644)
	os.WriteFile(conf, []byte(`[ca]
default_ca = ca_default
[ca_default]
database = `+dir+`/index.txt
new_certs_dir = `+dir+`
serial = `+dir+`/serial
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign
[v3_codesign]
keyUsage = digitalSignature
extendedKeyUsage = codeSigning
`), 0o644)
	return conf
}

// krIssue makes a key and a certificate named cn with openssl ca: issued
// by caCert/caKey, or self-signed if caCert is "", valid from start to end
// (YYYYMMDDHHMMSSZ), with the extensions of section ext.
func krIssue(t *testing.T, conf, cn, caCert, caKey, start, end, ext, certOut, keyOut string) {
	t.Helper()
	csr := certOut + ".csr"
	if r, err := run(t, 30*time.Second, "openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", keyOut,
		"-subj", "/CN="+cn, "-out", csr); err != nil {
		t.Fatalf("openssl req: %v\n%s", err, r)
	}
	args := []string{"ca", "-batch", "-notext", "-config", conf, "-in", csr, "-out", certOut,
		"-startdate", start, "-enddate", end, "-extensions", ext}
	if caCert == "" {
		args = append(args, "-selfsign", "-keyfile", keyOut)
	} else {
		args = append(args, "-cert", caCert, "-keyfile", caKey)
	}
	if r, err := run(t, 30*time.Second, "openssl", args...); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, r)
	}
}

// krServe runs bootforge serve with signing on and free loopback ports; a
// serve that refuses exits at once, one that starts is a failure.
func krServe(t *testing.T, dirs []string) (string, int) {
	t.Helper()
	args := append([]string{"serve",
		"--tftp-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t, "udp")),
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")),
		"--https-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")),
		"--api-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))}, dirs...)
	return clRun(t, 30*time.Second, []string{"BOOTFORGE_SIGNING_ENABLED=true"}, args...)
}

// krSigningItem runs bootforge check with signing on and returns its
// signing item. Nothing listens on the addresses given, so other items
// fail; only this one is looked at.
func krSigningItem(t *testing.T, dirs []string) (status, detail string) {
	t.Helper()
	out, _ := clRun(t, time.Minute, []string{"BOOTFORGE_SIGNING_ENABLED=true"}, append([]string{"check", "--json",
		"--tftp-addr", "127.0.0.1:1", "--http-addr", "127.0.0.1:1", "--api-addr", "127.0.0.1:1"}, dirs...)...)
	var items []struct{ Name, Status, Detail string }
	if err := json.Unmarshal([]byte(out[:strings.LastIndexByte(out, ']')+1]), &items); err != nil {
		t.Fatalf("check --json: %v\n%s", err, out)
	}
	for _, it := range items {
		if it.Name == "signing" {
			return it.Status, it.Detail
		}
	}
	t.Fatalf("check --json has no signing item:\n%s", out)
	return "", ""
}

// TestKeysRefuseBadSigner: a signing certificate of another data dir's
// CA, then one of the right CA that expired in 2021, in the keys
// directory. openssl verify says so of each; serve refuses to start with
// signing on, naming the file and the reason; keys show prints the
// problem and exits non-zero; image build refuses; check fails its
// signing item. With the keys made anew all of them pass.
func TestKeysRefuseBadSigner(t *testing.T) {
	need(t, "openssl")
	e := newImgEnv(t)
	dirs := []string{"--root", e.root, "--data-dir", e.data}
	keysDir := filepath.Join(e.data, "keys")
	ca, signer := filepath.Join(keysDir, "ca.pem"), filepath.Join(keysDir, "signing.pem")
	if out, code := clRun(t, time.Minute, nil, append([]string{"keys", "init"}, dirs...)...); code != 0 {
		t.Fatalf("keys init: %d\n%s", code, out)
	}
	if st, d := krSigningItem(t, dirs); st != "pass" {
		t.Fatalf("signing item of good keys: %s %s", st, d)
	}
	other := newImgEnv(t)
	if out, code := clRun(t, time.Minute, nil, "keys", "init", "--root", other.root, "--data-dir", other.data); code != 0 {
		t.Fatalf("keys init (other): %d\n%s", code, out)
	}
	for _, n := range []string{"signing.pem", "signing.key"} {
		copyFileTo(t, filepath.Join(other.data, "keys", n), filepath.Join(keysDir, n))
	}

	tmp := t.TempDir()
	conf := krCA(t, tmp)
	expiredPem, expiredKey := filepath.Join(tmp, "expired.pem"), filepath.Join(tmp, "expired.key")
	krIssue(t, conf, "expired code signing", ca, filepath.Join(keysDir, "ca.key"), "20200101000000Z", "20210101000000Z",
		"v3_codesign", expiredPem, expiredKey)

	for _, tc := range []struct {
		name    string
		setup   func()
		openssl string // what openssl verify -CAfile ca.pem says of signing.pem
		reason  string // what bootforge says
	}{
		{"another CA's", func() {}, "unable to get local issuer certificate",
			signer + " was not issued by " + ca + ": its issuer is another CA of the same name (CN=bootforge signing CA) with another key"},
		{"expired", func() {
			copyFileTo(t, expiredPem, signer)
			copyFileTo(t, expiredKey, filepath.Join(keysDir, "signing.key"))
		}, "certificate has expired", signer + " expired on 2021-01-01T00:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			if r, err := run(t, 10*time.Second, "openssl", "verify", "-CAfile", ca, "-purpose", "any", signer); err == nil || !strings.Contains(r, tc.openssl) {
				t.Fatalf("openssl verify: %v\n%s\nwant %q", err, r, tc.openssl)
			}
			out, code := krServe(t, dirs)
			if code == 0 || !strings.Contains(out, tc.reason) || strings.Contains(out, "signing generated menus") {
				t.Errorf("serve: exit %d\n%s\nwant a refusal: %q", code, out, tc.reason)
			}
			out, code = clRun(t, time.Minute, nil, append([]string{"keys", "show"}, dirs...)...)
			if code == 0 || !strings.Contains(out, "PROBLEM  "+tc.reason) {
				t.Errorf("keys show: exit %d\n%s", code, out)
			}
			src := t.TempDir()
			os.WriteFile(filepath.Join(src, "vmlinuz"), []byte("kernel"), 0o644)
			out, code = clRun(t, time.Minute, []string{"BOOTFORGE_SIGNING_ENABLED=true"}, append([]string{"image", "build", "bad@1.0.0",
				"--template", "linux", "--kernel", filepath.Join(src, "vmlinuz")}, dirs...)...)
			if code == 0 || !strings.Contains(out, tc.reason) {
				t.Errorf("image build: exit %d\n%s", code, out)
			}
			if st, d := krSigningItem(t, dirs); st != "fail" || !strings.Contains(d, tc.reason) {
				t.Errorf("signing item: %s %s", st, d)
			}
		})
	}

	// keys init --force makes a set that signs again.
	if out, code := clRun(t, time.Minute, nil, append([]string{"keys", "init", "--force"}, dirs...)...); code != 0 {
		t.Fatalf("keys init --force: %d\n%s", code, out)
	}
	if r, err := run(t, 10*time.Second, "openssl", "verify", "-CAfile", ca, "-purpose", "any", signer); err != nil {
		t.Fatalf("openssl verify of the new signer: %v\n%s", err, r)
	}
	if out, code := clRun(t, time.Minute, nil, append([]string{"keys", "show"}, dirs...)...); code != 0 || strings.Contains(out, "PROBLEM") {
		t.Errorf("keys show of new keys: exit %d\n%s", code, out)
	}
	if st, d := krSigningItem(t, dirs); st != "pass" {
		t.Errorf("signing item of new keys: %s %s", st, d)
	}
}

// TestKeysInitRefusesExpiredCA: keys init --ca-cert with a CA valid
// 2019–2022 (openssl says it has expired) exits non-zero, names the CA
// and its end, and writes nothing.
func TestKeysInitRefusesExpiredCA(t *testing.T) {
	need(t, "openssl")
	e := newImgEnv(t)
	tmp := t.TempDir()
	conf := krCA(t, tmp)
	oldCA, oldKey := filepath.Join(tmp, "oldca.pem"), filepath.Join(tmp, "oldca.key")
	krIssue(t, conf, "Old Operator CA", "", "", "20190101000000Z", "20220101000000Z", "v3_ca", oldCA, oldKey)
	if r, err := run(t, 10*time.Second, "openssl", "x509", "-in", oldCA, "-noout", "-checkend", "0"); err == nil || !strings.Contains(r, "will expire") {
		t.Fatalf("openssl x509 -checkend 0 of the old CA: %v %s", err, r)
	}
	out, code := clRun(t, time.Minute, nil, "keys", "init", "--ca-cert", oldCA, "--ca-key", oldKey, "--root", e.root, "--data-dir", e.data)
	want := oldCA + " expired on 2022-01-01T00:00:00Z: it cannot issue a signing certificate"
	if code == 0 || !strings.Contains(out, want) {
		t.Fatalf("keys init with an expired CA: exit %d\n%s\nwant %q", code, out, want)
	}
	if ents, err := os.ReadDir(filepath.Join(e.data, "keys")); len(ents) != 0 {
		t.Errorf("a refused keys init wrote %v (%v)", ents, err)
	}
}

// TestKeysInitFullDisk: the keys directory on a tmpfs of 8 KiB, too small
// for the set. keys init fails with ENOSPC and leaves nothing; keys show
// finds no keys rather than half of them; with room made (the tmpfs grown)
// the retry is not refused and makes keys that sign.
func TestKeysInitFullDisk(t *testing.T) {
	need(t, "mount", "umount", "openssl")
	e := newImgEnv(t)
	keysDir := filepath.Join(t.TempDir(), "keys")
	os.Mkdir(keysDir, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8k,mode=0700", "tmpfs", keysDir).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs (the e2e tests run as root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", keysDir).Run() })
	env := []string{"BOOTFORGE_SIGNING_DIR=" + keysDir}
	dirs := []string{"--root", e.root, "--data-dir", e.data}

	out, code := clRun(t, time.Minute, env, append([]string{"keys", "init"}, dirs...)...)
	if code == 0 || !strings.Contains(out, "no space left on device") {
		t.Fatalf("keys init on a full tmpfs: exit %d\n%s", code, out)
	}
	if ents, _ := os.ReadDir(keysDir); len(ents) != 0 {
		var names []string
		for _, d := range ents {
			names = append(names, d.Name())
		}
		t.Fatalf("a failed keys init left %v", names)
	}
	if out, code := clRun(t, time.Minute, env, append([]string{"keys", "show"}, dirs...)...); code == 0 || !strings.Contains(out, "ca.pem") {
		t.Errorf("keys show after a failed init: exit %d\n%s", code, out)
	}

	if out, err := exec.Command("mount", "-o", "remount,size=1m", keysDir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	if out, code := clRun(t, time.Minute, env, append([]string{"keys", "init"}, dirs...)...); code != 0 {
		t.Fatalf("keys init with room: exit %d\n%s", code, out)
	}
	if out, code := clRun(t, time.Minute, env, append([]string{"keys", "show"}, dirs...)...); code != 0 {
		t.Errorf("keys show: exit %d\n%s", code, out)
	}
	if r, err := run(t, 10*time.Second, "openssl", "verify", "-CAfile", filepath.Join(keysDir, "ca.pem"), "-purpose", "any",
		filepath.Join(keysDir, "signing.pem")); err != nil {
		t.Errorf("openssl verify: %v\n%s", err, r)
	}
}
