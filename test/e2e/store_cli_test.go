package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bootforge/internal/store/storetest"
)

// An operator moves an installation to PostgreSQL: serve refuses the
// database until `store migrate` ran, `store copy` moves the hosts and
// one-shots (refusing a filled target without --force), and the CLI then
// sees them through store.url (here BOOTFORGE_STORE_URL).
func TestStoreMigrateAndCopy(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	dd := []string{"BOOTFORGE_DATA_DIR=" + data}
	if out, code := clRun(t, 60*time.Second, dd, "host", "add", "pc1", "--mac", "52:54:00:16:00:01", "--label", "lab"); code != 0 {
		t.Fatalf("host add: %d\n%s", code, out)
	}
	if out, code := clRun(t, 60*time.Second, dd, "host", "add", "pc2", "--mac", "52:54:00:16:00:02"); code != 0 {
		t.Fatalf("host add: %d\n%s", code, out)
	}
	if out, code := clRun(t, 60*time.Second, dd, "store", "migrate"); code != 0 || !strings.Contains(out, "up to date") {
		t.Fatalf("store migrate on the SQLite store, which migrates itself: exit %d\n%s", code, out)
	}
	u := storetest.PostgresURL(t)
	pgEnv := []string{"BOOTFORGE_STORE_URL=" + u, "BOOTFORGE_DATA_DIR=" + t.TempDir()}

	// serve on an un-migrated database: refused, saying what to do.
	out, code := clRun(t, 60*time.Second, pgEnv, "serve", "--root", t.TempDir(),
		"--tftp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--https-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(out, "bootforge store migrate") {
		t.Fatalf("serve on an un-migrated PostgreSQL: exit %d, want a refusal naming `bootforge store migrate`:\n%s", code, out)
	}

	sqlite := "sqlite:" + filepath.Join(data, "bootforge.db")
	out, code = clRun(t, 60*time.Second, nil, "store", "copy", "--from", sqlite, "--to", u)
	if code != 0 || !strings.Contains(out, "hosts        2") || !strings.Contains(out, "host_macs    2") {
		t.Fatalf("store copy: exit %d\n%s", code, out)
	}
	if out, code := clRun(t, 60*time.Second, nil, "store", "copy", "--from", sqlite, "--to", u); code == 0 || !strings.Contains(out, "--force") {
		t.Fatalf("store copy into a filled store: exit %d, want a refusal naming --force\n%s", code, out)
	}
	if out, code := clRun(t, 60*time.Second, nil, "store", "copy", "--from", sqlite, "--to", u, "--force"); code != 0 {
		t.Fatalf("store copy --force: exit %d\n%s", code, out)
	}
	out, code = clRun(t, 60*time.Second, pgEnv, "host", "list")
	if code != 0 || !strings.Contains(out, "pc1") || !strings.Contains(out, "pc2") {
		t.Fatalf("host list on PostgreSQL after the copy: exit %d\n%s", code, out)
	}
	if out, code := clRun(t, 60*time.Second, pgEnv, "store", "migrate"); code != 0 || !strings.Contains(out, "up to date") {
		t.Fatalf("store migrate after the copy: exit %d\n%s", code, out)
	}
}
