package menufs

import (
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"bootforge/internal/audit"
	"bootforge/internal/boot"
	"bootforge/internal/metrics"
	"bootforge/internal/store"
)

// refusing is a boot-log store that refuses every batch: a disk that
// fails, a database that times out, as the recorder's queue may meet.
type refusing struct{}

func (refusing) PutEvents([]audit.Event) error { return errors.New("refused") }

// A one-shot's moves during a boot (delivered with its menu, booted by its
// kernel) are in the boot log as soon as the store holds them — written
// in their transaction, not queued behind the recorder, whose store may
// refuse the batch or be closed — and each reaches every consumer exactly
// once: the store, the live feed (Subscribe, the API's stream) and the
// metrics (the booted stage).
func TestOneShotEventsWithTheirMove(t *testing.T) {
	for _, queue := range []string{"writing", "refusing"} {
		t.Run(queue, func(t *testing.T) {
			m, db := setup(t)
			var recStore audit.Store = db
			if queue == "refusing" {
				recStore = refusing{}
			}
			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
			rec := audit.NewRecorder(recStore, "test", nil, quiet)
			feed := rec.Subscribe(1000)
			mt := metrics.New(metrics.Build{Version: "test"})
			m.Events = mt.Sink(rec, nil)
			// The boot begins with a DHCP answer, which the booted stage
			// is timed from.
			m.Events.Record(audit.Event{MAC: macA.String(), Protocol: "dhcp", Stage: "ack", Arch: "bios", Result: "ok"})

			if err := db.PutNextBoot(macA, boot.NextBoot{Entry: "b", State: boot.OneShotPending}); err != nil {
				t.Fatal(err)
			}
			script(t, m)
			script(t, m) // a firmware retry: no move, no line
			read(t, m, "vmlinuz", nil)
			read(t, m, "vmlinuz", nil) // consumed already
			if nb, _ := db.NextBoot(macA); nb.State != boot.OneShotBooted {
				t.Fatalf("state %s, want booted", nb.State)
			}
			rec.Close() // what was queued is written (or refused)

			want := []string{"delivered b", "booted (fetched vmlinuz, bytes 0-7 of 7)"}
			stored, err := db.Events(store.EventFilter{Stage: "one-shot"})
			if err != nil {
				t.Fatal(err)
			}
			if got := results(stored); strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("boot log's one-shot lines: %q, want %q", got, want)
			}
			var live []audit.Event
			for len(feed.C) > 0 {
				if e := <-feed.C; e.Stage == "one-shot" {
					live = append(live, e)
				}
			}
			if got := results(live); strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("live feed's one-shot events: %q, want %q", got, want)
			}
			for _, e := range live {
				if e.Server != "test" || e.IP != client.Addr().String() {
					t.Errorf("live event not stamped as the log keeps it: %+v", e)
				}
			}
			rr := httptest.NewRecorder()
			mt.Handler().ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
			if line := `bootforge_boot_stage_seconds_count{stage="booted"} 1`; !strings.Contains(rr.Body.String(), line+"\n") {
				t.Errorf("metrics: want %s, got:\n%s", line, grepLines(rr.Body.String(), "boot_stage_seconds_count"))
			}
		})
	}
}

func results(events []audit.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.Result)
	}
	return out
}

func grepLines(text, word string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
