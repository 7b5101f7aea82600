package keys

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// failAt makes the n-th call (from 1) of the writeFile or rename hook fail
// with ENOSPC, as a full disk does.
func failAt(t *testing.T, hook string, n int) {
	t.Helper()
	calls := 0
	fail := func() bool { calls++; return calls == n }
	switch hook {
	case "write":
		writeFile = func(name string, data []byte, perm os.FileMode) error {
			if fail() {
				return &os.PathError{Op: "write", Path: name, Err: syscall.ENOSPC}
			}
			return durableWriteFile(name, data, perm)
		}
	case "rename":
		rename = func(from, to string) error {
			if fail() {
				return &os.LinkError{Op: "rename", Old: from, New: to, Err: syscall.ENOSPC}
			}
			return os.Rename(from, to)
		}
	}
	t.Cleanup(func() { writeFile, rename = durableWriteFile, os.Rename })
}

var durableWriteFile = writeFile

// readSet reads the six files of dir; missing ones are nil.
func readSet(dir string) map[string][]byte {
	m := map[string][]byte{}
	for _, n := range []string{CACert, CAKey, SigningCert, SigningKey, OpenPGPPublicFile, OpenPGPPrivateFile} {
		m[n], _ = os.ReadFile(filepath.Join(dir, n))
	}
	return m
}

// A failed write or rename leaves the keys directory as it was: empty for
// a first init, which a retry then fills; the old set with --force. The
// GRUB OpenPGP key (the 5th and 6th file) is part of the set.
func TestInitAllOrNothing(t *testing.T) {
	for _, tc := range []struct {
		hook string
		at   int
	}{{"write", 3}, {"rename", 3}, {"write", 6}, {"rename", 6}} {
		hook := tc.hook
		t.Run(fmt.Sprintf("%s-%d", hook, tc.at), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "keys")
			failAt(t, hook, tc.at)
			if err := Init(dir, InitOptions{}); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("init on a full disk: %v", err)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Fatalf("a failed init left %v", ents)
			}
			writeFile, rename = durableWriteFile, os.Rename
			if err := Init(dir, InitOptions{}); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if _, err := LoadSigner(dir); err != nil {
				t.Fatal(err)
			}

			if _, err := LoadOpenPGP(dir); err != nil {
				t.Fatal(err)
			}

			before := readSet(dir)
			failAt(t, hook, 3)
			if err := Init(dir, InitOptions{Force: true}); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("--force on a full disk: %v", err)
			}
			after := readSet(dir)
			for n := range before {
				if !bytes.Equal(before[n], after[n]) {
					t.Errorf("a failed --force changed %s", n)
				}
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 6 {
				t.Errorf("after a failed --force the directory holds %d entries, want the 6 files", len(ents))
			}
			// --force keeps the OpenPGP key: GRUB images are built with it.
			if err := Init(dir, InitOptions{Force: true}); err != nil {
				t.Fatal(err)
			}
			after = readSet(dir)
			if !bytes.Equal(before[OpenPGPPrivateFile], after[OpenPGPPrivateFile]) || bytes.Equal(before[CAKey], after[CAKey]) {
				t.Errorf("--force: want new X.509 keys and the same OpenPGP key")
			}
		})
	}
}
