package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bootforge/internal/store"
	"bootforge/internal/store/storetest"
)

// A token whose name today's rule refuses (from an older store) stops
// `store copy` before anything is written, with a message naming the
// token, the rule and the way out, not PostgreSQL's raw error.
func TestStoreCopyRefusesBadTokenName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	src, err := store.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range []store.Token{
		{ID: "0000aaaa", Hash: "h1", Role: "read", Name: "ci", Created: time.Unix(1_900_000_000, 0)},
		{ID: "0000bbbb", Hash: "h2", Role: "admin", Name: "old\xffname", Created: time.Unix(1_900_000_001, 0)},
	} {
		if err := src.PutToken(tk); err != nil {
			t.Fatal(err)
		}
	}
	src.Close()
	pg := storetest.PostgresURL(t)
	root := newRootCmd(&globalFlags{})
	var out strings.Builder
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"store", "copy", "--from", "sqlite:" + path, "--to", pg})
	err = root.Execute()
	if err == nil {
		t.Fatalf("store copy of a token named old\\xffname succeeded:\n%s", out.String())
	}
	for _, want := range []string{"0000bbbb", "not valid UTF-8", "token revoke 0000bbbb", "old\\xffname"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("store copy: %v\nwant %q in it", err, want)
		}
	}
	dst, err := store.OpenPostgres(pg)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if toks, err := dst.Tokens(); err != nil || len(toks) != 0 {
		t.Errorf("the refused copy wrote %d tokens (%v)", len(toks), err)
	}
}

// A --from that names no store (a typo) is refused before anything
// happens: opening a SQLite path makes an empty store, which copied with
// --force emptied the target, and said "copied".
func TestStoreCopyRefusesMissingSource(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target.db")
	dst, err := store.OpenSQLite(target)
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.PutToken(store.Token{ID: "0000aaaa", Hash: "h1", Role: "read", Name: "ci", Created: time.Unix(1_900_000_000, 0)}); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{filepath.Join(dir, "typo", "x.db"), empty} {
		root := newRootCmd(&globalFlags{})
		var out strings.Builder
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs([]string{"store", "copy", "--from", "sqlite:" + from, "--to", "sqlite:" + target, "--force"})
		if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "is not a store") {
			t.Errorf("copy from %s: %v, want a refusal\n%s", from, err, out.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "typo")); err == nil {
		t.Error("the refused copy made the mistyped source's directory")
	}
	dst, err = store.OpenSQLite(target)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if toks, err := dst.Tokens(); err != nil || len(toks) != 1 {
		t.Errorf("the target holds %d tokens after the refused copies (%v), want its 1", len(toks), err)
	}
}
