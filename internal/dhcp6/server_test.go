package dhcp6

import (
	"io"
	"log/slog"
	"testing"

	"bootforge/internal/audit"
)

type events []audit.Event

func (e *events) Record(ev audit.Event) { *e = append(*e, ev) }

// The boot-log event is built from the Result the handler acted on: the
// reply's stage, the URL, the firmware and the address given.
func TestRecordFromResult(t *testing.T) {
	h, _ := newHandler(t, ModeAuthoritative)
	var got events
	s := NewServer(h, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.Events = &got
	res := handle(h, sol(t), 547)
	s.record(res, "ok")
	res4011 := res
	res4011.Port = BootServerPort
	s.record(res4011, "ok")
	if len(got) != 2 {
		t.Fatalf("%d events", len(got))
	}
	e := got[0]
	if e.Protocol != "dhcp" || e.Stage != "advertise" || e.File != "tftp://[2001:db8:1::1]/snponly.efi" ||
		e.Arch != "efi-x64" || e.MAC != mac.String() || e.IP != res.Addrs[0].String() || e.Reason != res.Plan.Reason {
		t.Errorf("event %+v", e)
	}
	if got[1].Stage != "bootserver-advertise" {
		t.Errorf("udp/4011 stage %q", got[1].Stage)
	}
}
