package store

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"bootforge/internal/dhcp/lease"
)

// A source token whose name the rule refuses stops the copy before the
// target is touched, even with force: the target keeps what it held, and
// the error names every such token and why. Good names copy.
func TestCopyRefusesTokenNames(t *testing.T) {
	bs := backends(t)
	sq, pg := bs[0].open(t), bs[1].open(t)
	fill(t, sq)
	for _, tk := range []Token{
		{ID: "0000bbbb", Hash: "h2", Role: "admin", Name: "old\xffname", Created: time.Unix(1_900_000_001, 0)},
		{ID: "0000cccc", Hash: "h3", Role: "read", Name: "tab\tname", Created: time.Unix(1_900_000_002, 0)},
	} {
		if err := sq.PutToken(tk); err != nil {
			t.Fatal(err)
		}
	}
	rule := func(name string) error {
		switch {
		case !utf8.ValidString(name):
			return fmt.Errorf("token name %q is not valid UTF-8", name)
		case strings.ContainsRune(name, '\t'):
			return fmt.Errorf("token name %q is not printable text", name)
		}
		return nil
	}
	other := backend{"sqlite", Location{Path: filepath.Join(t.TempDir(), "other.db")}}.open(t)
	fill(t, other)
	if _, err := Copy(other, pg, false, nil); err != nil {
		t.Fatal(err)
	}
	want := dump(t, pg)
	_, err := Copy(sq, pg, true, rule)
	if err == nil {
		t.Fatal("a copy with two bad token names succeeded")
	}
	for _, s := range []string{"nothing copied", "2 token(s)", `token "0000bbbb": token name "old\xffname" is not valid UTF-8`,
		`token "0000cccc": token name "tab\tname" is not printable text`, "bootforge token revoke ID"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("copy: %v\nwant %q in it", err, s)
		}
	}
	if got := dump(t, pg); got != want {
		t.Errorf("the refused copy changed the target:\n%s\nwant:\n%s", got, want)
	}
	if err := sq.DeleteToken("0000cccc"); err != nil {
		t.Fatal(err)
	}
	if _, err := Copy(sq, pg, true, rule); err == nil || !strings.Contains(err.Error(), "token revoke 0000bbbb") {
		t.Errorf("one bad token: %v, want the revoke line with its ID", err)
	}
	if err := sq.DeleteToken("0000bbbb"); err != nil {
		t.Fatal(err)
	}
	if _, err := Copy(sq, pg, true, rule); err != nil {
		t.Fatalf("after revoking both: %v", err)
	}
	if got, want := dump(t, pg), dump(t, sq); got != want {
		t.Errorf("postgres after the copy:\n%s\nwant:\n%s", got, want)
	}
}

// A lease stored before hostnames were cleaned (lease.Hostname) may hold
// bytes that are not UTF-8: the copy writes the name as the lease path
// now keeps it, instead of failing on PostgreSQL.
func TestCopyCleansLeaseHostnames(t *testing.T) {
	bs := backends(t)
	sq, pg := bs[0].open(t), bs[1].open(t)
	l := lease.Lease{IP: netip.MustParseAddr("192.0.2.10"), MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Hostname: "pc\xff\x00x",
		Expires: time.Now().Add(time.Hour).Truncate(time.Second), State: lease.Bound}
	if err := sq.PutLease(l); err != nil {
		t.Fatal(err)
	}
	if _, err := Copy(sq, pg, true, nil); err != nil {
		t.Fatalf("copy of a lease with a hostname not UTF-8: %v", err)
	}
	ls, err := pg.LoadLeases()
	if err != nil || len(ls) != 1 || ls[0].Hostname != lease.Hostname(l.Hostname) {
		t.Fatalf("postgres leases %+v, %v; want the hostname %q", ls, err, lease.Hostname(l.Hostname))
	}
}
