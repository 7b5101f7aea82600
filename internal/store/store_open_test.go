package store

import (
	"os"
	"path/filepath"
	"testing"
)

// A store that cannot be opened is a nil Store: callers that close what
// they opened must not call Close on a nil pointer inside an interface.
func TestOpenAtFailureIsNil(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, loc := range []Location{
		{Postgres: true, URL: "postgres://127.0.0.1:1/none?connect_timeout=1"},
		{Path: filepath.Join(notDir, "bf.db")},
	} {
		db, err := OpenAt(loc, "")
		if err == nil {
			db.Close()
			t.Fatalf("%+v opened", loc)
		}
		if db != nil {
			t.Errorf("%+v: the failed open returned a non-nil Store (%T)", loc, db)
		}
	}
}
