package tftp

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"bootforge/internal/allow"
	"bootforge/internal/audit"
	"bootforge/internal/bootfs"
)

type events struct {
	mu sync.Mutex
	ev []audit.Event
}

func (e *events) Record(ev audit.Event) { e.mu.Lock(); e.ev = append(e.ev, ev); e.mu.Unlock() }
func (e *events) all() []audit.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]audit.Event(nil), e.ev...)
}

// A client outside the allow-list gets no packet at all, is counted, and
// costs one log event however often it asks; once allowed (a reload), it
// is served.
func TestNotAllowedIsSilent(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "pxelinux.0"), []byte("loader"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err := bootfs.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	st := Settings{MaxWindowSize: 1, Timeout: time.Second, Retries: 1, MaxTransfers: 4, MaxPerClient: 4,
		Allow: allow.List{Key: "allow", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}}
	srv := New(dir, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ev := &events{}
	srv.Events = ev
	conn, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(conn)
	t.Cleanup(func() { srv.Shutdown(t.Context()) })

	client, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	rrq := []byte("\x00\x01pxelinux.0\x00octet\x00")
	answer := func() []byte {
		t.Helper()
		if _, err := client.WriteTo(rrq, conn.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		client.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 600)
		n, _, err := client.ReadFrom(buf)
		if err != nil {
			return nil
		}
		return buf[:n]
	}
	for range 3 {
		if got := answer(); got != nil {
			t.Fatalf("a client outside the allow-list got an answer: % x", got)
		}
	}
	if n := srv.Stats.Refusals.NotAllowed.Load(); n != 3 {
		t.Errorf("NotAllowed = %d, want 3", n)
	}
	got := ev.all()
	if len(got) != 1 || got[0].Result != "refused" || got[0].IP != "127.0.0.1" || got[0].Reason != "127.0.0.1 is not in allow" || got[0].File != "pxelinux.0" {
		t.Errorf("events %+v, want one refusal of 127.0.0.1", got)
	}

	st.Allow.Prefixes = append(st.Allow.Prefixes, netip.MustParsePrefix("127.0.0.0/8"))
	srv.Update(dir, st)
	if got := answer(); len(got) < 4 || got[1] != opDATA {
		t.Fatalf("an allowed client got % x, want DATA", got)
	}
}
