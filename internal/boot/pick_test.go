package boot

import (
	"strings"
	"testing"
	"time"
)

func TestKeepPick(t *testing.T) {
	inv := decideInventory(t)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	c := Client{MAC: mustMAC("52:54:00:00:00:01"), Firmware: FirmwareBIOS}
	active := &NextBoot{Entry: "install", State: OneShotDelivered}
	tests := []struct {
		name   string
		shot   *NextBoot
		pick   *Pick
		boot   string
		used   bool
		reason string
	}{
		{name: "no pick shows the menu", boot: "", used: false},
		{name: "a fresh pick boots its entry", pick: &Pick{Entry: "live", At: now.Add(-20 * time.Second)},
			boot: "live", used: true, reason: `boots "live", chosen in pxelinux's menu`},
		{name: "a pick at its lifetime still counts", pick: &Pick{Entry: "live", At: now.Add(-PickLifetime)}, boot: "live", used: true},
		{name: "an old pick is ignored", pick: &Pick{Entry: "live", At: now.Add(-PickLifetime - time.Second)},
			reason: "too old to keep"},
		{name: "a pick from the future is ignored", pick: &Pick{Entry: "live", At: now.Add(time.Hour)}, reason: "too old to keep"},
		{name: "a pick not in the menu is ignored", pick: &Pick{Entry: "kiosk-app", At: now},
			reason: `"kiosk-app" made in pxelinux is not in this menu`},
		{name: "the one-shot wins over another pick", shot: active, pick: &Pick{Entry: "live", At: now},
			boot: "install", reason: "gives way to the one-shot"},
		{name: "the one-shot's own entry spends the pick", shot: active, pick: &Pick{Entry: "install", At: now},
			boot: "install", used: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Decide(c, inv, tt.shot, now)
			if err != nil {
				t.Fatal(err)
			}
			d, used := d.Keep(tt.pick, now)
			if d.Boot != tt.boot || used != tt.used {
				t.Errorf("Keep: boot %q used %v, want %q %v (reason %q)", d.Boot, used, tt.boot, tt.used, d.Reason)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason %q lacks %q", d.Reason, tt.reason)
			}
			if tt.shot == nil && len(d.Proof) != 0 {
				t.Errorf("a pick without a one-shot has proof files %v: nothing to consume", d.Proof)
			}
		})
	}
}
