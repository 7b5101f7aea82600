package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

// testCert is a certificate and its key, made for a test.
type testCert struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// makeCert makes a certificate named cn, valid from nb to na, issued by
// parent (self-signed if nil): a CA, or with codeSigning a signer.
func makeCert(t *testing.T, cn string, nb, na time.Time, parent *testCert, isCA bool) testCert {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: nb, NotAfter: na,
	}
	if isCA {
		tmpl.KeyUsage, tmpl.BasicConstraintsValid, tmpl.IsCA = x509.KeyUsageCertSign, true, true
	} else {
		tmpl.KeyUsage, tmpl.ExtKeyUsage = x509.KeyUsageDigitalSignature, []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
	}
	issuer, issuerKey := tmpl, crypto.Signer(k)
	if parent != nil {
		issuer, issuerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, k.Public(), issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{c, k}
}

// write puts c into dir as certFile and keyFile.
func (c testCert) write(t *testing.T, dir, certFile, keyFile string) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, certFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, keyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A signer whose signatures would not verify against ca.pem now is refused
// at load, with the file and the reason, and "keys show" names the same
// problem.
func TestLoadSignerRefuses(t *testing.T) {
	now := time.Now()
	year := 365 * 24 * time.Hour
	ca := makeCert(t, "Test CA", now.Add(-year), now.Add(10*year), nil, true)
	other := makeCert(t, "Other CA", now.Add(-year), now.Add(10*year), nil, true)
	twin := makeCert(t, "Test CA", now.Add(-year), now.Add(10*year), nil, true) // same name, another key
	oldCA := makeCert(t, "Old CA", day("2019-01-01"), day("2022-01-01"), nil, true)

	for _, tc := range []struct {
		name   string
		ca     testCert
		signer testCert
		want   string // in the error; "" for none
		onCA   bool   // keys show names the problem on ca.pem
	}{
		{"good", ca, makeCert(t, "s", now.Add(-time.Hour), now.Add(year), &ca, false), "", false},
		{"other CA", ca, makeCert(t, "s", now.Add(-time.Hour), now.Add(year), &other, false),
			"signing.pem was not issued by DIR/ca.pem: its issuer is CN=Other CA, the CA is CN=Test CA", false},
		{"same name, other key", ca, makeCert(t, "s", now.Add(-time.Hour), now.Add(year), &twin, false),
			"signing.pem was not issued by DIR/ca.pem: its issuer is another CA of the same name (CN=Test CA) with another key", false},
		{"expired", ca, makeCert(t, "s", day("2020-01-01"), day("2021-01-01"), &ca, false),
			"signing.pem expired on 2021-01-01T00:00:00Z", false},
		{"not yet valid", ca, makeCert(t, "s", now.Add(year), now.Add(2*year), &ca, false),
			"signing.pem is not valid yet: not before " + now.Add(year).UTC().Format(time.RFC3339), false},
		{"expired CA", oldCA, makeCert(t, "s", day("2020-01-01"), now.Add(year), &oldCA, false),
			"ca.pem expired on 2022-01-01T00:00:00Z", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.ca.write(t, dir, CACert, CAKey)
			tc.signer.write(t, dir, SigningCert, SigningKey)
			want := strings.ReplaceAll(tc.want, "DIR", dir)
			s, err := LoadSigner(dir)
			switch {
			case want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case want == "":
				if _, err := s.Sign([]byte("x")); err != nil {
					t.Fatal(err)
				}
			case err == nil:
				t.Fatalf("loaded; want %q", want)
			case !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "keys init --force"):
				t.Fatalf("error %q\nwant %q and what to do", err, want)
			}
			info, err := Show(dir)
			if err != nil {
				t.Fatal(err)
			}
			caProblem, signerProblem := info[0].Problem, info[1].Problem
			if tc.onCA {
				caProblem, signerProblem = signerProblem, caProblem
			}
			if caProblem != "" || !strings.Contains(signerProblem, want) || (want == "") != (signerProblem == "") {
				t.Errorf("keys show: problems %q, %q; want %q on %s only", info[0].Problem, info[1].Problem, want,
					map[bool]string{true: "ca.pem", false: "signing.pem"}[tc.onCA])
			}
		})
	}
}

// A server outlives its signer: once the certificate has expired, Sign
// fails rather than make a signature no verifier accepts.
func TestSignRefusesExpired(t *testing.T) {
	dir := t.TempDir()
	ca := makeCert(t, "Test CA", day("2019-01-01"), time.Now().AddDate(5, 0, 0), nil, true)
	ca.write(t, dir, CACert, CAKey)
	makeCert(t, "s", day("2020-01-01"), day("2021-01-01"), &ca, false).write(t, dir, SigningCert, SigningKey)
	s, err := loadSigner(dir, day("2020-06-01"))
	if err != nil {
		t.Fatalf("loaded within its validity: %v", err)
	}
	if _, err := s.Sign([]byte("x")); err == nil || !strings.Contains(err.Error(), "expired on 2021-01-01") {
		t.Fatalf("Sign with an expired certificate: %v", err)
	}
}

// keys init --ca-cert refuses a CA it cannot issue a lasting signing
// certificate from, and writes nothing.
func TestInitRefusesCA(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name   string
		nb, na time.Time
		want   string
	}{
		{"expired", day("2019-01-01"), day("2022-01-01"), "op.pem expired on 2022-01-01T00:00:00Z: it cannot issue a signing certificate"},
		{"not yet valid", now.AddDate(1, 0, 0), now.AddDate(5, 0, 0), "op.pem is not valid yet"},
		{"ends soon", now.AddDate(-1, 0, 0), now.Add(3*24*time.Hour + time.Hour), "op.pem expires on " +
			now.Add(3*24*time.Hour+time.Hour).UTC().Format(time.RFC3339) + ", in 3 days: too short to issue a signing certificate from (at least 7 days are needed)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			makeCert(t, "Operator CA", tc.nb, tc.na, nil, true).write(t, tmp, "op.pem", "op.key")
			dir := filepath.Join(tmp, "keys")
			err := Init(dir, InitOptions{CACertFile: filepath.Join(tmp, "op.pem"), CAKeyFile: filepath.Join(tmp, "op.key")})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant %q", err, tc.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the keys directory was made: %v", err)
			}
		})
	}
}
