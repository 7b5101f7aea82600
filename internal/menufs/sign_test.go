package menufs

import (
	"crypto/sha256"
	"errors"
	"io/fs"
	"net/url"
	"testing"

	"bootforge/internal/audit"
	"bootforge/internal/boot"
	"bootforge/internal/bootfs"
)

// hashSigner "signs" with a SHA-256 of the data, so that a test can see
// what was signed.
type hashSigner struct{}

func (hashSigner) Sign(b []byte) ([]byte, error) { s := sha256.Sum256(b); return s[:], nil }

type countSink struct{ n int }

func (c *countSink) Record(audit.Event) { c.n++ }

func TestSignatures(t *testing.T) {
	m, db := setup(t)
	ev := &countSink{}
	m.Events = ev
	ipxeQ := url.Values{"mac": {"52-54-00-00-00-0a"}, "buildarch": {"i386"}, "platform": {"pcbios"}}

	// Signing off: no .sig is generated.
	if _, err := m.Open(bootfs.Request{Path: "boot.ipxe.sig", Client: client, Protocol: "http"}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("signing off: boot.ipxe.sig: %v", err)
	}
	m.Signer = hashSigner{}
	db.PutNextBoot(macA, boot.NextBoot{Entry: "b", State: boot.OneShotPending})

	// The .sig has no side effects: the one-shot stays pending, no event.
	sig := read(t, m, "bootforge/ipxe.sig", ipxeQ)
	if nb, _ := db.NextBoot(macA); nb.State != boot.OneShotPending {
		t.Fatalf("fetching the .sig moved the one-shot to %s", nb.State)
	}
	if ev.n != 0 {
		t.Fatalf("fetching the .sig recorded %d events", ev.n)
	}
	menuText := read(t, m, "bootforge/ipxe", ipxeQ)
	if h := sha256.Sum256([]byte(menuText)); string(h[:]) != sig {
		t.Fatalf("the .sig did not sign the menu the same request returns:\n%s", menuText)
	}
	// After delivery, the .sig still signs what the client gets.
	again := read(t, m, "bootforge/ipxe", ipxeQ)
	if h := sha256.Sum256([]byte(again)); string(h[:]) != read(t, m, "bootforge/ipxe.sig", ipxeQ) {
		t.Fatal("the .sig after delivery signs another menu")
	}

	for _, p := range []string{"boot.ipxe", "pxelinux.cfg/01-52-54-00-00-00-0b", "grub.cfg", "grub/grub.cfg-01-52:54:00:00:00:0b", "bootforge/grub/52:54:00:00:00:0b.cfg"} {
		text := read(t, m, p, nil)
		if h := sha256.Sum256([]byte(text)); string(h[:]) != read(t, m, p+".sig", nil) {
			t.Errorf("%s.sig does not sign %s", p, p)
		}
	}
	// Not generated: no .sig (a disk file, the beacon, an unknown path).
	for _, p := range []string{"static.txt.sig", "bootforge/booted.sig", "nothing.sig", ".sig"} {
		q := url.Values{"mac": {"52-54-00-00-00-0a"}}
		if _, err := m.Open(bootfs.Request{Path: p, Client: client, Protocol: "http", Query: q}); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want not found", p, err)
		}
	}
	if nb, _ := db.NextBoot(macA); nb.State != boot.OneShotDelivered {
		t.Errorf("booted.sig consumed the one-shot: %s", nb.State)
	}
}
