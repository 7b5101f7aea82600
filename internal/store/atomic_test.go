package store

import (
	"net"
	"strings"
	"testing"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/boot"
	"bootforge/internal/image"
	"bootforge/internal/store/storetest"
)

// A change made through the write path and its boot-log events commit
// together: when the store refuses the events, the change is not made.
// Before, the change was one transaction and its events another, written
// after it: an image was promoted (a host stored...) with no line in the
// log.
func TestChangeNotMadeWithoutItsEvents(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			mac, _ := net.ParseMAC("52:54:00:00:00:01")
			now := time.Unix(1_900_000_000, 0)
			if err := s.PutHost(boot.Host{Name: "pc0", MACs: []net.HardwareAddr{mac}}); err != nil {
				t.Fatal(err)
			}
			if err := s.PutNextBoot(mac, boot.NextBoot{Entry: "install", State: boot.OneShotPending}); err != nil {
				t.Fatal(err)
			}
			if err := s.SetImageStates(nil, []ImageState{{Name: "deb", Version: "1.0.0", State: image.Active, Changed: now}}); err != nil {
				t.Fatal(err)
			}
			g0, _ := s.Generation()
			storetest.RefuseEvents(t, b.path(), b.loc.Postgres)
			ev := audit.Event{Time: now, Stage: "image", Protocol: "cli", Result: "promoted"}

			err := s.SetImageStates(nil, []ImageState{
				{Name: "deb", Version: "1.0.0", State: image.Retired, Changed: now},
				{Name: "deb", Version: "2.0.0", State: image.Active, Changed: now},
			}, ev, ev)
			if err == nil {
				t.Error("a promote whose events were refused succeeded")
			}
			if got, _ := s.ImageStates(); len(got) != 1 || got[0].Version != "1.0.0" || got[0].State != image.Active {
				t.Errorf("image states after the refused promote: %+v", got)
			}
			if err := s.PutHost(boot.Host{Name: "pc1", MACs: []net.HardwareAddr{{0x52, 0x54, 0, 0, 0, 2}}}, ev); err == nil {
				t.Error("a host add whose event was refused succeeded")
			}
			if deleted, err := s.DeleteHost("pc0", ev); err == nil || deleted {
				t.Errorf("a host removal whose event was refused: deleted %v, err %v", deleted, err)
			}
			if hosts, _ := s.Hosts(); len(hosts) != 1 || hosts[0].Name != "pc0" {
				t.Errorf("hosts after the refused writes: %+v", hosts)
			}
			if err := s.PutNextBoot(mac, boot.NextBoot{Entry: "rescue", State: boot.OneShotPending}, ev); err == nil {
				t.Error("a one-shot whose event was refused was set")
			}
			if deleted, err := s.DeleteNextBoot(mac, ev); err == nil || deleted {
				t.Errorf("a one-shot clear whose event was refused: deleted %v, err %v", deleted, err)
			}
			if nb, _ := s.NextBoot(mac); nb == nil || nb.Entry != "install" {
				t.Errorf("one-shot after the refused writes: %+v", nb)
			}
			if g, _ := s.Generation(); g != g0 {
				t.Errorf("generation %d after refused writes, want %d", g, g0)
			}
			// Without events (the boot log is off), nothing is refused.
			if err := s.PutHost(boot.Host{Name: "pc1", MACs: []net.HardwareAddr{{0x52, 0x54, 0, 0, 0, 2}}}); err != nil {
				t.Errorf("a host add without events: %v", err)
			}
		})
	}
}

// The events of a write are in the log once it returns; a removal that
// finds nothing to remove writes none.
func TestChangeWritesItsEvents(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			mac, _ := net.ParseMAC("52:54:00:00:00:01")
			now := time.Unix(1_900_000_000, 0)
			ev := func(result string) audit.Event {
				return audit.Event{Time: now, MAC: mac.String(), Stage: "host", Protocol: "cli", File: "pc1", Result: result, Server: "srv1"}
			}
			if err := s.PutHost(boot.Host{Name: "pc1", MACs: []net.HardwareAddr{mac}}, ev("host stored")); err != nil {
				t.Fatal(err)
			}
			if err := s.PutNextBoot(mac, boot.NextBoot{Entry: "install", State: boot.OneShotPending}, ev("set")); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ { // the second finds nothing
				if _, err := s.DeleteNextBoot(mac, ev("cleared")); err != nil {
					t.Fatal(err)
				}
				if _, err := s.DeleteHost("pc1", ev("host removed")); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.SetImageStates(nil, []ImageState{{Name: "deb", Version: "1.0.0", State: image.Active, Changed: now}}, ev("promoted")); err != nil {
				t.Fatal(err)
			}
			got, err := s.Events(EventFilter{})
			if err != nil {
				t.Fatal(err)
			}
			var results []string
			for _, e := range got {
				results = append(results, e.Result)
				if e.MAC != "52:54:00:00:00:01" || e.Server != "srv1" || !e.Time.Equal(now) {
					t.Errorf("event %+v", e)
				}
			}
			want := "host stored,set,cleared,host removed,promoted"
			if g := strings.Join(results, ","); g != want {
				t.Errorf("events %s, want %s", g, want)
			}
		})
	}
}
