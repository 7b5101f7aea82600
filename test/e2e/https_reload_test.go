package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHTTPSCertReload: a certificate renewed under the same paths (as
// certbot renews one) is served after a SIGHUP, for HTTPS and the API,
// and its expiry is exported; a file that cannot be read leaves the
// certificate in service, with an error. Before, the certificate read at
// start was served until a restart, whatever the files held.
func TestHTTPSCertReload(t *testing.T) {
	t.Parallel()
	need(t, "openssl", "curl")
	base := kgRealDir(t)
	root, data := filepath.Join(base, "root"), filepath.Join(base, "data")
	must(t, os.MkdirAll(root, 0o755))
	cert, key := filepath.Join(base, "cert.pem"), filepath.Join(base, "key.pem")
	makeCert := func(days int) string {
		t.Helper()
		if out, err := run(t, 30*time.Second, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
			"-nodes", "-keyout", key, "-out", cert, "-days", fmt.Sprint(days), "-subj", "/CN=localhost",
			"-addext", "subjectAltName=IP:127.0.0.1"); err != nil {
			t.Fatalf("openssl req: %v\n%s", err, out)
		}
		return htFingerprint(t, cert)
	}
	first := makeCert(30)
	conf := filepath.Join(base, "bootforge.yaml")
	must(t, os.WriteFile(conf, []byte(fmt.Sprintf(`root: %s
data_dir: %s
http:
  tls: {cert: %s, key: %s}
api:
  tls: {enabled: true, cert: %s, key: %s}
`, root, data, cert, key, cert, key)), 0o644))
	s := kgSpawn(t, "--config", conf)
	s.WaitLog("bootforge ready", 15*time.Second)

	presented := func(addr string) string {
		t.Helper()
		out, err := run(t, 15*time.Second, "openssl", "s_client", "-connect", addr, "-showcerts")
		begin, end := strings.Index(out, "-----BEGIN CERTIFICATE-----"), strings.Index(out, "-----END CERTIFICATE-----")
		if begin < 0 || end < begin {
			t.Fatalf("openssl s_client %s: %v, no certificate:\n%s", addr, err, out)
		}
		f := filepath.Join(t.TempDir(), "presented.pem")
		must(t, os.WriteFile(f, []byte(out[begin:end+len("-----END CERTIFICATE-----")]+"\n"), 0o644))
		return htFingerprint(t, f)
	}
	expiry := func() string {
		t.Helper()
		res := htCurl(t, "-k", "https://"+s.APIAddr+"/metrics")
		for _, l := range strings.Split(string(res.body), "\n") {
			if v, ok := strings.CutPrefix(l, "bootforge_tls_cert_expiry_timestamp_seconds "); ok {
				return v
			}
		}
		t.Fatalf("no certificate expiry in /metrics (status %d)", res.code)
		return ""
	}
	for _, addr := range []string{s.HTTPSAddr, s.APIAddr} {
		if fp := presented(addr); fp != first {
			t.Fatalf("%s presents %s, want the certificate of cert.pem %s", addr, fp, first)
		}
	}
	before := expiry()

	second := makeCert(90)
	must(t, s.cmd.Process.Signal(syscall.SIGHUP))
	s.WaitLog("reload: http.tls: certificate replaced", 10*time.Second)
	s.WaitLog("reload: api.tls: certificate replaced", 10*time.Second)
	for _, addr := range []string{s.HTTPSAddr, s.APIAddr} {
		if fp := presented(addr); fp != second {
			t.Errorf("after SIGHUP %s presents %s, want the renewed %s", addr, fp, second)
		}
	}
	if after := expiry(); after == before {
		t.Errorf("the exported expiry stayed %s after the renewal", after)
	}

	must(t, os.WriteFile(cert, []byte("not a certificate\n"), 0o644))
	must(t, s.cmd.Process.Signal(syscall.SIGHUP))
	s.WaitLog("reload: http.tls: certificate not replaced", 10*time.Second)
	if fp := presented(s.HTTPSAddr); fp != second {
		t.Errorf("after a reload of a broken file HTTPS presents %s, want the one in service %s", fp, second)
	}
}
