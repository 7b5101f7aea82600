package keys

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/smallstep/pkcs7"
)

// RSABits is the size of generated RSA keys. The CA is RSA because UEFI
// HTTPS boot firmware (OVMF) accepts only RSA certificates, and the CA will
// issue the boot TLS certificate too.
const RSABits = 3072

// InitOptions are the choices of Init.
type InitOptions struct {
	// Force replaces existing keys.
	Force bool
	// CACertFile and CAKeyFile bring the operator's own CA (PEM): it is
	// copied in and issues the signing certificate.
	CACertFile, CAKeyFile string
	// Now is the start of validity; zero means time.Now.
	Now time.Time
}

// Init makes the keys directory's X.509 keys: a self-signed signing CA (or
// the operator's) and a code-signing certificate issued by it. An
// operator's CA that is not valid now, or has less than 7 days left, is
// refused before anything is written. With them goes GRUB's OpenPGP key
// unless dir has one already (which is kept, --force or not: GRUB images
// are built with it). The files are written all or nothing (writeSet).
func Init(dir string, o InitOptions) error {
	if (o.CACertFile == "") != (o.CAKeyFile == "") {
		return errf("--ca-cert and --ca-key must be given together")
	}
	if f := existing(dir); f != "" && !o.Force {
		return fmt.Errorf("keys: %s: %w", f, ErrExist)
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	var caCert *x509.Certificate
	var caKey crypto.Signer
	var caCertPEM []byte
	if o.CACertFile != "" {
		var err error
		if caCert, caCertPEM, err = readCert(o.CACertFile); err != nil {
			return err
		}
		if caKey, err = readKey(o.CAKeyFile); err != nil {
			return err
		}
		if !publicEqual(caCert.PublicKey, caKey.Public()) {
			return errf("%s does not hold the key of %s", o.CAKeyFile, o.CACertFile)
		}
		if !caCert.IsCA {
			return errf("%s is not a CA certificate (basicConstraints CA:FALSE)", o.CACertFile)
		}
		if err := checkIssuer(o.CACertFile, caCert, now); err != nil {
			return errf("%v", err)
		}
	} else {
		k, err := rsa.GenerateKey(rand.Reader, RSABits)
		if err != nil {
			return err
		}
		caKey = k
		tmpl := &x509.Certificate{
			SerialNumber:          serial(),
			Subject:               pkix.Name{CommonName: "bootforge signing CA"},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.AddDate(20, 0, 0),
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
		if err != nil {
			return err
		}
		if caCert, err = x509.ParseCertificate(der); err != nil {
			return err
		}
		caCertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	sk, err := rsa.GenerateKey(rand.Reader, RSABits)
	if err != nil {
		return err
	}
	// The signing certificate lives within the CA's validity: a verifier
	// that checks the chain at signing time needs both valid then.
	notBefore, notAfter := now.Add(-time.Hour), now.AddDate(5, 0, 0)
	if notBefore.Before(caCert.NotBefore) {
		notBefore = caCert.NotBefore
	}
	if notAfter.After(caCert.NotAfter) {
		notAfter = caCert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "bootforge code signing"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	sder, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, sk.Public(), caKey)
	if err != nil {
		return err
	}
	// What serve will load must pass serve's check: an operator's CA may,
	// say, restrict its extKeyUsage so that codeSigning does not chain.
	sc, err := x509.ParseCertificate(sder)
	if err != nil {
		return err
	}
	caName := CACert
	if o.CACertFile != "" {
		caName = o.CACertFile
	}
	if err := checkSigner("the signing certificate", sc, caName, caCert, now); err != nil {
		return errf("%v", err)
	}
	caKeyDER, err := x509.MarshalPKCS8PrivateKey(caKey)
	if err != nil {
		return err
	}
	skDER, err := x509.MarshalPKCS8PrivateKey(sk)
	if err != nil {
		return err
	}
	if err := ensureDir(dir); err != nil {
		return err
	}
	// GRUB's OpenPGP key (grub build) goes in the same set, so that a
	// failure on it leaves no X.509 keys for the retry to refuse.
	pgp, err := openPGPSet(dir)
	if err != nil {
		return err
	}
	return writeSet(dir, append([]setFile{
		{CAKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: caKeyDER}), 0o600},
		{SigningKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: skDER}), 0o600},
		{CACert, caCertPEM, 0o644},
		{SigningCert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sder}), 0o644},
	}, pgp...))
}

// minIssueLife is the least validity an operator's CA must have left for
// Init to issue a signing certificate from it: the signing certificate
// ends with the CA, and serve refuses it from then on, so one that ends
// within days is not worth making. Short-lived test CAs (30 days) pass.
const minIssueLife = 7 * 24 * time.Hour

// checkIssuer reports why the operator's CA in file cannot issue a
// signing certificate at now. Without it, an expired CA gave a signing
// certificate that ends before it begins.
func checkIssuer(file string, ca *x509.Certificate, now time.Time) error {
	if err := checkValid(file, ca, now); err != nil {
		return fmt.Errorf("%v: it cannot issue a signing certificate", err)
	}
	if left := ca.NotAfter.Sub(now); left < minIssueLife {
		return fmt.Errorf("%s expires on %s, in %d days: too short to issue a signing certificate from (at least %d days are needed); renew the CA",
			file, ca.NotAfter.UTC().Format(time.RFC3339), int(left.Hours()/24), int(minIssueLife.Hours()/24))
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

func publicEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

func readCert(path string) (*x509.Certificate, []byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, errf("%w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, nil, errf("%s: no PEM CERTIFICATE", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, nil, errf("%s: %v", path, err)
	}
	return c, pem.EncodeToMemory(blk), nil
}

func readKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, errf("%w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errf("%s: no PEM key", path)
	}
	var k any
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, errf("%s: unsupported PEM block %q (encrypted keys are not supported)", path, blk.Type)
	}
	if err != nil {
		return nil, errf("%s: %v", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errf("%s: not a signing key", path)
	}
	return s, nil
}

// Signer makes detached CMS signatures with the code-signing certificate.
type Signer struct {
	cert *x509.Certificate
	key  crypto.Signer
	// file and caFile name the certificates in errors; ca, if set, is
	// checked at each signature along with cert.
	file, caFile string
	ca           *x509.Certificate
}

// LoadSigner reads signing.pem and signing.key from dir and refuses a
// signer whose signatures would not verify against ca.pem now: a key that
// is not the certificate's, a certificate without codeSigning, one issued
// by another CA, or one (or a CA) that has expired or is not valid yet.
// serve and image build load it before doing anything, so they refuse to
// start rather than hand out signatures that fail every check.
func LoadSigner(dir string) (*Signer, error) {
	return loadSigner(dir, time.Now())
}

func loadSigner(dir string, now time.Time) (*Signer, error) {
	certFile, caFile := filepath.Join(dir, SigningCert), filepath.Join(dir, CACert)
	c, _, err := readCert(certFile)
	if err != nil {
		return nil, initHint(err)
	}
	k, err := readKey(filepath.Join(dir, SigningKey))
	if err != nil {
		return nil, initHint(err)
	}
	if !publicEqual(c.PublicKey, k.Public()) {
		return nil, errf("%s does not hold the key of %s", SigningKey, SigningCert)
	}
	ca, _, err := readCert(caFile)
	if err != nil {
		return nil, initHint(err)
	}
	if err := checkSigner(certFile, c, caFile, ca, now); err != nil {
		return nil, errf("%v; %s", err, renewHint)
	}
	return &Signer{cert: c, key: k, file: certFile, caFile: caFile, ca: ca}, nil
}

// initHint adds what to do to the error for a key file that is not
// there. The errors of LoadSigner, Show, BootTLSCert and EDK2CACerts carry
// their advice, once: this, renewHint, or "remove it"; their callers
// add none of their own.
func initHint(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w (bootforge keys init makes them)", err)
	}
	return err
}

// renewHint says what to do about a signer that is refused.
const renewHint = "make new keys with \"bootforge keys init --force\" (with --ca-cert and --ca-key to issue from your own CA)"

// checkSigner reports why signatures by c, the certificate in file, would
// not verify at now against ca, the CA in caFile, as openssl cms -verify
// -CAfile and bootforge's Verifier check them; nil if they would.
func checkSigner(file string, c *x509.Certificate, caFile string, ca *x509.Certificate, now time.Time) error {
	if !hasCodeSigning(c) {
		return fmt.Errorf("%s has no extKeyUsage codeSigning", file)
	}
	// Validity first, the CA's too: x509's own error for it does not say
	// which certificate or when.
	if err := checkValid(caFile, ca, now); err != nil {
		return err
	}
	if err := checkValid(file, c, now); err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	_, err := c.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	})
	var unknown x509.UnknownAuthorityError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &unknown):
		// Two "keys init" make CAs of the same name, so the name alone
		// does not tell them apart; the key does.
		issuer, caName := c.Issuer.String(), ca.Subject.String()
		if issuer == caName {
			return fmt.Errorf("%s was not issued by %s: its issuer is another CA of the same name (%s) with another key", file, caFile, issuer)
		}
		return fmt.Errorf("%s was not issued by %s: its issuer is %s, the CA is %s", file, caFile, issuer, caName)
	}
	return fmt.Errorf("%s does not verify against %s: %v", file, caFile, err)
}

// checkValid reports a certificate that is not valid at now.
func checkValid(file string, c *x509.Certificate, now time.Time) error {
	switch {
	case now.Before(c.NotBefore):
		return fmt.Errorf("%s is not valid yet: not before %s", file, c.NotBefore.UTC().Format(time.RFC3339))
	case now.After(c.NotAfter):
		return fmt.Errorf("%s expired on %s", file, c.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// Certificate is the signer's certificate.
func (s *Signer) Certificate() *x509.Certificate { return s.cert }

// Sign returns a detached CMS SignedData (DER) over data: SHA-256, the
// signing certificate included.
//
// A server runs for longer than a certificate may be valid: once the
// signer or its CA has expired, Sign fails rather than make a signature
// that no verifier accepts (signing time outside validity).
func (s *Signer) Sign(data []byte) ([]byte, error) {
	now := time.Now()
	if err := checkValid(s.file, s.cert, now); err != nil {
		return nil, errf("%v; %s", err, renewHint)
	}
	if s.ca != nil {
		if err := checkValid(s.caFile, s.ca, now); err != nil {
			return nil, errf("%v; %s", err, renewHint)
		}
	}
	sd, err := pkcs7.NewSignedData(data)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(s.cert, s.key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, err
	}
	sd.Detach()
	return sd.Finish()
}

func hasCodeSigning(c *x509.Certificate) bool {
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageCodeSigning {
			return true
		}
	}
	return false
}

// Verifier checks detached CMS signatures against the signing CA.
type Verifier struct {
	roots *x509.CertPool
}

// LoadVerifier reads ca.pem from dir.
func LoadVerifier(dir string) (*Verifier, error) {
	c, _, err := readCert(filepath.Join(dir, CACert))
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	p.AddCert(c)
	return &Verifier{roots: p}, nil
}

// Verify checks that sig is a detached CMS signature over data by a
// certificate with extKeyUsage codeSigning that chains to the CA.
func (v *Verifier) Verify(data, sig []byte) (err error) {
	defer func() {
		if r := recover(); r != nil { // a hostile DER must not crash a check
			err = fmt.Errorf("signature: %v", r)
		}
	}()
	p7, err := pkcs7.Parse(sig)
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	if len(p7.Content) != 0 && !bytes.Equal(p7.Content, data) {
		return errors.New("signature: not detached, and its content differs")
	}
	p7.Content = data
	if len(p7.Signers) != 1 {
		return fmt.Errorf("signature: %d signers, want 1", len(p7.Signers))
	}
	if err := p7.Verify(); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	signer := p7.GetOnlySigner()
	if signer == nil {
		return errors.New("signature: no signer certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range p7.Certificates {
		if c != signer {
			inter.AddCert(c)
		}
	}
	if _, err := signer.Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}); err != nil {
		return fmt.Errorf("signature: signer %q: %w", signer.Subject.CommonName, err)
	}
	return nil
}

// CertInfo describes one certificate for "keys show".
type CertInfo struct {
	File      string    `json:"file"`
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	SHA256    string    `json:"sha256"`
	KeyFile   string    `json:"key_file,omitempty"`
	KeyMode   string    `json:"key_mode,omitempty"`
	// Problem says why the certificate cannot be used now (expired, not
	// valid yet, not issued by the CA, not its key's): what has serve and
	// image build refuse the keys with signing on. Empty if none.
	Problem string `json:"problem,omitempty"`
}

// Show describes the certificates in dir: the CA, then the signing
// certificate, each with its problem, if any.
func Show(dir string) ([]CertInfo, error) {
	return show(dir, time.Now())
}

func show(dir string, now time.Time) ([]CertInfo, error) {
	var out []CertInfo
	var certs []*x509.Certificate
	for _, p := range [][2]string{{CACert, CAKey}, {SigningCert, SigningKey}} {
		c, _, err := readCert(filepath.Join(dir, p[0]))
		if err != nil {
			return nil, initHint(err)
		}
		sum := sha256.Sum256(c.Raw)
		ci := CertInfo{
			File: filepath.Join(dir, p[0]), Subject: c.Subject.String(), Issuer: c.Issuer.String(),
			NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), SHA256: hex.EncodeToString(sum[:]),
		}
		if st, err := os.Stat(filepath.Join(dir, p[1])); err == nil {
			ci.KeyFile, ci.KeyMode = filepath.Join(dir, p[1]), fmt.Sprintf("%04o", st.Mode().Perm())
		}
		out = append(out, ci)
		certs = append(certs, c)
	}
	ca, sc := &out[0], &out[1]
	if err := checkValid(ca.File, certs[0], now); err != nil {
		ca.Problem = err.Error()
	}
	if k, err := readKey(filepath.Join(dir, SigningKey)); err != nil {
		sc.Problem = strings.TrimPrefix(err.Error(), "keys: ")
	} else if !publicEqual(certs[1].PublicKey, k.Public()) {
		sc.Problem = fmt.Sprintf("%s does not hold the key of %s", SigningKey, SigningCert)
	} else if err := checkSigner(sc.File, certs[1], ca.File, certs[0], now); err != nil && err.Error() != ca.Problem {
		// An expired CA is said once, on the CA.
		sc.Problem = err.Error()
	}
	return out, nil
}
