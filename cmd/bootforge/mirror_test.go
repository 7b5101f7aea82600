package main

import (
	"net"
	"strings"
	"testing"
)

// mirror sync from a primary where nothing listens says so in words and
// what to check, as check does: it printed Go's error chain (Get "...":
// dial tcp ...: connect: connection refused).
func TestMirrorSyncNoPrimary(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close() // nothing listens there now
	addr := l.Addr().String()
	root := newRootCmd(&globalFlags{})
	var out strings.Builder
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"--config", apiOffConfig(t), "mirror", "sync", "http://" + addr})
	err = root.Execute()
	if err == nil {
		t.Fatal("mirror sync from nothing passed")
	}
	msg := err.Error()
	for _, want := range []string{"http://" + addr + "/bootforge/images.json", "connection refused, nothing listens there",
		"is bootforge serve running on the primary, with http.listen at " + addr} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	for _, leak := range []string{"dial tcp", `Get "`} {
		if strings.Contains(msg, leak) {
			t.Errorf("%q says %q", msg, leak)
		}
	}
}
