// Package keys holds bootforge's signing keys: a signing CA and a
// code-signing certificate it issues (X.509, for detached CMS signatures of
// manifests and generated menus).
//
// The keys live in a directory of data_dir (default data_dir/keys, mode
// 0700), which config validation keeps outside root, so they are never
// served. Private keys are written 0600. Files:
//
//	ca.pem       the signing CA's certificate (what verifiers trust)
//	ca.key       the CA's private key (PKCS#8 PEM)
//	signing.pem  the code-signing certificate, issued by the CA
//	signing.key  its private key (PKCS#8 PEM)
//
// The CA also issues the certificate of the boot TLS listener (tlsboot.go:
// RSA, kept in data_dir/tls), and is exported for UEFI firmware to trust
// (edk2.go: an EFI signature list).
//
// Operators can bring their own: drop those four files in (the signing
// certificate must carry extKeyUsage codeSigning), or give their CA to
// "bootforge keys init --ca-cert F --ca-key F", which then issues the
// signing certificate with it.
package keys

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File names inside the keys directory.
const (
	CACert      = "ca.pem"
	CAKey       = "ca.key"
	SigningCert = "signing.pem"
	SigningKey  = "signing.key"
)

// ErrExist is returned by Init when keys already exist and force is off.
var ErrExist = errors.New("keys already exist (use --force to replace them)")

// Dir returns the keys directory: dir if set, else dataDir/keys.
func Dir(dataDir, dir string) string {
	if dir != "" {
		return dir
	}
	return filepath.Join(dataDir, "keys")
}

// ensureDir makes dir with mode 0700 (and tightens an existing one).
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// Exist reports whether dir holds any of the X.509 keys, which Init
// refuses to replace without Force.
func Exist(dir string) bool { return existing(dir) != "" }

// existing is the first of the X.509 key files that dir holds, or "".
func existing(dir string) string {
	for _, n := range X509Files {
		if p := filepath.Join(dir, n); exists(p) {
			return p
		}
	}
	return ""
}

// X509Files and OpenPGPFiles are the key files of the X.509 keys (the
// signer, the CA) and of GRUB's OpenPGP key, for Digest: keys init
// --force replaces the first and keeps the second.
var (
	X509Files    = []string{CACert, CAKey, SigningCert, SigningKey}
	OpenPGPFiles = []string{OpenPGPPrivateFile, OpenPGPPublicFile}
)

// Digest is a SHA-256 of the key files in dir (X509Files or
// OpenPGPFiles), or "" if one is there but cannot be read: a server that
// loads its keys at start compares it then and later to tell that they
// were replaced under it (keys init --force, or files dropped in).
func Digest(dir string, files []string) string {
	h := sha256.New()
	for _, n := range files {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return ""
		}
		fmt.Fprintf(h, "%s %d %t\n", n, len(b), err == nil)
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func errf(format string, args ...any) error { return fmt.Errorf("keys: "+format, args...) }
