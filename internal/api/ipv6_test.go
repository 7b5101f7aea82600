package api

import (
	"testing"

	"bootforge/internal/audit"
	"bootforge/internal/store"
)

// filterSpy notes the filter the events endpoint asks the store for.
type filterSpy struct {
	*fakeStore
	got store.EventFilter
}

func (s *filterSpy) Events(f store.EventFilter) ([]audit.Event, error) {
	s.got = f
	return nil, nil
}

// ?ip= finds a client however its address is written: the boot log keeps
// one spelling (audit.ClientIP), and the filter asks for that one.
func TestEventsFilterIPv6(t *testing.T) {
	a := newAPITest(t)
	spy := &filterSpy{fakeStore: a.db}
	a.srv.DB = spy
	for in, want := range map[string]string{
		"2001:db8::5":          "2001:db8::5",
		"2001:DB8:0::5":        "2001:db8::5",
		"2001:0db8::0005":      "2001:db8::5",
		"::ffff:192.0.2.7":     "192.0.2.7",
		"192.0.2.7":            "192.0.2.7",
		"fe80::5%25br0":        "fe80::5",
		"2001:db8:0:0:1::1":    "2001:db8::1:0:0:1",
		"2001:db8:0:1:0:0:0:1": "2001:db8:0:1::1",
	} {
		spy.got = store.EventFilter{}
		if code := a.call(a.read, "GET", "/api/v1/events?ip="+in, "", nil); code != 200 {
			t.Errorf("?ip=%s: %d %s", in, code, a.lastResponse)
			continue
		}
		if spy.got.IP != want {
			t.Errorf("?ip=%s asked the store for %q, want %q", in, spy.got.IP, want)
		}
	}
	a.wantError(a.read, "GET", "/api/v1/events?ip=2001:db8::zz", "", 400, "bad_request", "ip")
}
