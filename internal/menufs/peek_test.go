package menufs

import (
	"io"
	"net/url"
	"testing"

	"bootforge/internal/boot"
	"bootforge/internal/bootfs"
)

// A peek (HTTP HEAD) at a client's menu returns the text a fetch would,
// so the same Content-Length, and takes no effect: the one-shot stays
// pending, no boot-log event (the boot counter of /metrics counts menu
// events), no sighting. The fetch after it delivers as usual.
func TestPeekAtMenuHasNoEffect(t *testing.T) {
	m, db := setup(t)
	ev := &countSink{}
	m.Events = ev
	q := url.Values{"mac": {"52-54-00-00-00-0a"}, "buildarch": {"i386"}, "platform": {"pcbios"}}
	db.PutNextBoot(macA, boot.NextBoot{Entry: "b", State: boot.OneShotPending})

	f, err := m.Open(bootfs.Request{Path: "bootforge/ipxe", Client: client, Protocol: "http", Query: q, Host: "192.0.2.1:8080", Peek: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	peeked, _ := io.ReadAll(f)
	f.Close()
	if nb, _ := db.NextBoot(macA); nb.State != boot.OneShotPending {
		t.Fatalf("a peek moved the one-shot to %s", nb.State)
	}
	if ev.n != 0 {
		t.Fatalf("a peek recorded %d events", ev.n)
	}
	if _, seen := m.Sightings.ByMAC(macA); seen {
		t.Fatal("a peek recorded a sighting")
	}
	got := read(t, m, "bootforge/ipxe", q)
	if int64(len(got)) != st.Size() || got != string(peeked) {
		t.Fatalf("the peek saw %d bytes, the fetch got %d:\n%s", st.Size(), len(got), got)
	}
	if nb, _ := db.NextBoot(macA); nb.State != boot.OneShotDelivered {
		t.Fatalf("the fetch after a peek left the one-shot %s", nb.State)
	}
	if ev.n == 0 {
		t.Fatal("the fetch after a peek recorded no event")
	}
}
