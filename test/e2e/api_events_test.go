package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestAPIEventsParams: the boot log's filters through the real server.
// ?stage= keeps one stage; a parameter it does not know (a typo such as
// ?limt=) or one given twice is 400 naming it. Both were ignored, and
// the whole log came back as if filtered.
func TestAPIEventsParams(t *testing.T) {
	need(t, "curl")
	s := StartServer(t, ServerOptions{Config: aeConfig})
	read, admin := aeToken(t, s, "read", "reader"), aeToken(t, s, "admin", "ops")
	base := "http://" + s.APIAddr
	get := func(query string) aeResult {
		t.Helper()
		r, err := aeCurl(t, base+"/api/v1/events"+query, "-H", "Authorization: Bearer "+read)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Two stages in the log: a host and a one-shot.
	for path, body := range map[string]string{
		"/api/v1/hosts/pc1":                   `{"macs":["52:54:00:aa:00:41"]}`,
		"/api/v1/next-boot/52:54:00:aa:00:41": `{"entry":"disk"}`,
	} {
		if r, err := aeCurl(t, base+path, "-X", "PUT", "-H", "Authorization: Bearer "+admin, "--data-binary", body); err != nil || r.code != 200 {
			t.Fatalf("PUT %s: %v %d %s", path, err, r.code, r.body)
		}
	}
	// The boot log is written in batches: wait for both events.
	for end := time.Now().Add(5 * time.Second); strings.Count(get("").body, `"stage"`) < 2; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the two writes never reached the boot log: %s", get("").body)
		}
	}
	r := get("?stage=one-shot")
	var events []map[string]any
	if err := json.Unmarshal([]byte(r.body), &events); err != nil || r.code != 200 {
		t.Fatalf("?stage=one-shot: %d %s", r.code, r.body)
	}
	if len(events) != 1 || events[0]["stage"] != "one-shot" {
		t.Errorf("?stage=one-shot: %v, want the one one-shot event", events)
	}
	for query, field := range map[string]string{
		"?limt=5":                       "limt",
		"?profile=lab":                  "profile",
		"?mac=52:54:00:aa:00:41&mac=x":  "mac",
		"?limit=5&since=1h&limit=10000": "limit",
	} {
		r := get(query)
		if r.code != 400 || r.obj["field"] != field {
			t.Errorf("%s: %d %s, want 400 naming %s", query, r.code, r.body, field)
		}
	}
}
