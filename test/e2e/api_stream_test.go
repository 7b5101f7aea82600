package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestAPIStreamRevoked: revoking a token ends its open live feed (the
// dashboard's), and no event recorded after the revocation reaches it.
// The feed, checked once when it opened, went on streaming the boot log
// to the revoked token for as long as the connection lasted.
func TestAPIStreamRevoked(t *testing.T) {
	need(t, "curl")
	s := StartServer(t, ServerOptions{Config: aeConfig})
	admin, feed := aeToken(t, s, "admin", "ops"), aeToken(t, s, "read", "leaked")
	base := "http://" + s.APIAddr
	out := &syncBuffer{}
	cmd := exec.Command("curl", "-sN", "-m", "20", "-H", "Authorization: Bearer "+feed, base+"/api/v1/events/stream")
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	go func() { cmd.Wait(); close(ended) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-ended })
	setOneShot := func(entry string) {
		t.Helper()
		r, err := aeCurl(t, base+"/api/v1/next-boot/52:54:00:aa:00:09", "-X", "PUT", "-H", "Authorization: Bearer "+admin,
			"--data-binary", `{"entry":"`+entry+`"}`)
		if err != nil || r.code != 200 {
			t.Fatalf("PUT next-boot: %v %d %s", err, r.code, r.body)
		}
	}
	waitFor := func(what string) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); !strings.Contains(out.String(), what); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("the feed never showed %q:\n%s", what, out.String())
			}
		}
	}
	waitFor("retry: 3000")
	setOneShot("disk")
	waitFor(`"result":"set by`)

	if o, code := aeCLI(t, s, "token", "revoke", strings.Split(feed, "_")[1]); code != 0 {
		t.Fatalf("token revoke: exit %d\n%s", code, o)
	}
	time.Sleep(1500 * time.Millisecond) // past the feed's recheck
	before := strings.Count(out.String(), "event: boot")
	setOneShot("disk")
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatalf("the feed of a revoked token stayed open:\n%s", out.String())
	}
	if got := strings.Count(out.String(), "event: boot"); got != before {
		t.Errorf("a revoked token was sent %d events recorded after the revocation:\n%s", got-before, out.String())
	}
	if !strings.Contains(out.String(), "event: revoked") {
		t.Errorf("the feed ended without saying why:\n%s", out.String())
	}
}
