package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/store"
)

// syncBuffer is a bytes.Buffer that the follow loop can write while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func openTestStore(t *testing.T) *store.SQLite {
	t.Helper()
	db, err := store.OpenSQLite(filepath.Join(t.TempDir(), "bf.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func putEvent(t *testing.T, db *store.SQLite, at time.Time, file string) {
	t.Helper()
	err := db.PutEvents([]audit.Event{{Time: at, MAC: "52:54:00:12:34:56", IP: "192.0.2.10",
		Protocol: "tftp", Stage: "kernel", File: file, Result: "ok"}})
	if err != nil {
		t.Fatal(err)
	}
}

// followLog runs showLog with follow in the background, calls during once
// it has started, and returns what it printed once want appears (or after
// a bounded wait).
func followLog(t *testing.T, db *store.SQLite, f store.EventFilter, during func(), want string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- showLog(ctx, db, f, true, false, out, nil, 20*time.Millisecond) }()
	time.Sleep(100 * time.Millisecond) // a few polls with nothing new
	during()
	for ctx.Err() == nil && !strings.Contains(out.String(), want) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // a few more polls: anything else would show now
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// Bug 8: with --since and nothing in that window yet, follow printed the
// whole older history on its second poll.
func TestLogFollowSinceSkipsOlderEvents(t *testing.T) {
	db := openTestStore(t)
	putEvent(t, db, time.Now().Add(-time.Hour), "old.efi")
	f := store.EventFilter{Since: time.Now().Add(-time.Minute), Limit: 1000}
	got := followLog(t, db, f, func() { putEvent(t, db, time.Now(), "new.efi") }, "new.efi")
	if strings.Contains(got, "old.efi") {
		t.Errorf("follow --since 1m printed an event from an hour ago:\n%s", got)
	}
	if !strings.Contains(got, "new.efi") {
		t.Errorf("follow --since 1m did not print the new event:\n%s", got)
	}
}

// Without --since: the last page, then only new events.
func TestLogFollowLastPageThenNew(t *testing.T) {
	db := openTestStore(t)
	base := time.Now().Add(-time.Hour)
	for i, name := range []string{"first.efi", "second.efi", "third.efi"} {
		putEvent(t, db, base.Add(time.Duration(i)*time.Minute), name)
	}
	f := store.EventFilter{Limit: 2}
	got := followLog(t, db, f, func() { putEvent(t, db, time.Now(), "new.efi") }, "new.efi")
	if strings.Contains(got, "first.efi") {
		t.Errorf("follow printed more than the last page:\n%s", got)
	}
	for _, name := range []string{"second.efi", "third.efi", "new.efi"} {
		if n := strings.Count(got, name); n != 1 {
			t.Errorf("%s printed %d times:\n%s", name, n, got)
		}
	}
}

// A filter that matches nothing yet: the first matching event is printed,
// and nothing that the filter excludes.
func TestLogFollowEmptyThenNew(t *testing.T) {
	db := openTestStore(t)
	putEvent(t, db, time.Now().Add(-time.Hour), "other.efi")
	f := store.EventFilter{MAC: "52:54:00:ff:ff:ff", Limit: 1000}
	got := followLog(t, db, f, func() {
		putEvent(t, db, time.Now(), "new.efi")
		db.PutEvents([]audit.Event{{Time: time.Now(), MAC: "52:54:00:ff:ff:ff", Protocol: "tftp", Stage: "kernel",
			File: "mine.efi", Result: "ok"}})
	}, "mine.efi")
	if strings.Contains(got, "other.efi") || strings.Contains(got, "new.efi") {
		t.Errorf("follow --mac printed another client's events:\n%s", got)
	}
	if !strings.Contains(got, "mine.efi") {
		t.Errorf("follow --mac did not print the new event:\n%s", got)
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"pc1":                  "pc1",
		"Boot\\BCD and ü":      "Boot\\BCD and ü",
		"\x1b[31mRED":          `\x1b[31mRED`,
		"a\x00b\tc\x7f":        `a\x00b\tc\x7f`,
		"c1 \u009b2J":          `c1 \u009b2J`,
		"bad \xff utf-8":       `bad \xff utf-8`,
		"PXEClient:Arch:00007": "PXEClient:Arch:00007",
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %s, want %s", in, got, want)
		}
	}
}

// lateLister is a boot log whose events become visible in an order other
// than their IDs, as on PostgreSQL when two servers commit at once.
type lateLister struct {
	mu      sync.Mutex
	visible []audit.Event
}

func (l *lateLister) Events(f store.EventFilter) ([]audit.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []audit.Event
	for _, e := range l.visible {
		if e.ID > f.After {
			out = append(out, e)
		}
	}
	return out, nil
}

func (l *lateLister) add(id int64, file string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.visible = append(l.visible, audit.Event{ID: id, Time: time.Now(), MAC: "52:54:00:12:34:56",
		Protocol: "tftp", Stage: "kernel", File: file, Result: "ok"})
}

// An event whose ID is smaller than one already printed, committed a
// moment later, is still printed, and nothing is printed twice.
func TestLogFollowLateCommit(t *testing.T) {
	l := &lateLister{}
	l.add(1, "before.efi")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- showLog(ctx, l, store.EventFilter{Limit: 1000}, true, false, out, nil, 20*time.Millisecond)
	}()
	time.Sleep(60 * time.Millisecond)
	l.add(3, "third.efi") // ID 2 is taken but not yet committed
	time.Sleep(60 * time.Millisecond)
	l.add(2, "second.efi")
	for ctx.Err() == nil && !strings.Contains(out.String(), "second.efi") {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, name := range []string{"before.efi", "second.efi", "third.efi"} {
		if n := strings.Count(got, name); n != 1 {
			t.Errorf("%s printed %d times, want once:\n%s", name, n, got)
		}
	}
}

// A page as long as the limit may not be the whole log: it ends with the
// --before that shows the page before it, on the hint writer; a shorter
// page, the last, does not.
func TestLogPageHint(t *testing.T) {
	db := openTestStore(t)
	base := time.Now().Add(-time.Hour)
	for i := range 5 {
		putEvent(t, db, base.Add(time.Duration(i)*time.Minute), fmt.Sprintf("f%d", i))
	}
	all, _ := db.Events(store.EventFilter{})
	var out, hint bytes.Buffer
	if err := showLog(context.Background(), db, store.EventFilter{Limit: 3}, false, false, &out, &hint, time.Second); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("older events: --before %d\n", all[2].ID)
	if hint.String() != want || strings.Count(out.String(), "\n") != 3 || !strings.Contains(out.String(), "f4") {
		t.Fatalf("first page: hint %q (want %q), out:\n%s", hint.String(), want, out.String())
	}
	out.Reset()
	hint.Reset()
	if err := showLog(context.Background(), db, store.EventFilter{Limit: 3, Before: all[2].ID}, false, false, &out, &hint, time.Second); err != nil {
		t.Fatal(err)
	}
	if hint.Len() != 0 || strings.Count(out.String(), "\n") != 2 || !strings.Contains(out.String(), "f0") || strings.Contains(out.String(), "f2") {
		t.Fatalf("last page: hint %q, out:\n%s", hint.String(), out.String())
	}
}

// With --log-format json, what log and -v print on stderr (the page
// hint, which config and store) are JSON log lines too.
func TestLogNotesInJSON(t *testing.T) {
	cfg := apiOffConfig(t)
	run := func(args ...string) string {
		var errOut bytes.Buffer
		root := newRootCmd(&globalFlags{})
		root.SetOut(io.Discard)
		root.SetErr(&errOut)
		root.SetArgs(append([]string{"--config", cfg}, args...))
		if err := root.Execute(); err != nil {
			t.Fatalf("%s: %v", args, err)
		}
		return errOut.String()
	}
	run("host", "add", "pc1", "--mac", "52:54:00:00:00:01")
	run("host", "add", "pc2", "--mac", "52:54:00:00:00:02")
	errOut := run("--log-format", "json", "-v", "log", "--limit", "1")
	var msgs []string
	for _, l := range strings.Split(strings.TrimSpace(errOut), "\n") {
		var line struct{ Msg string }
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Errorf("not JSON: %q", l)
		}
		msgs = append(msgs, line.Msg)
	}
	all := strings.Join(msgs, "\n")
	for _, w := range []string{"older events: --before ", "config: " + cfg, "store:  "} {
		if !strings.Contains(all, w) {
			t.Errorf("no line with %q in:\n%s", w, errOut)
		}
	}
}

// apiOffConfig writes a config with its root and data_dir in a temp dir
// and no API server (a command then opens the store itself), and returns
// its path.
func apiOffConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bootforge.yaml")
	text := "root: " + filepath.Join(dir, "root") + "\ndata_dir: " + filepath.Join(dir, "data") + "\napi: {enabled: false}\n"
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A refused query names the flags to give, not the API's parameters: the
// limit's advice is --before, as typed on the command line.
func TestLogQueryNamesFlags(t *testing.T) {
	cfg := apiOffConfig(t)
	for args, want := range map[string]string{
		"--limit 100000": "--limit 100000 is over 10000, the most one read returns; page back with --before, the smallest ID read",
		"--limit 0":      "--limit 0 is not a positive number",
		"--since -1h":    "--since -1h0m0s is negative",
		"--before -3":    "--before -3 is not an event ID",
	} {
		root := newRootCmd(&globalFlags{})
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		root.SetArgs(append([]string{"--config", cfg, "log"}, strings.Fields(args)...))
		if err := root.Execute(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("log %s: %v, want %q", args, err, want)
		}
	}
}
