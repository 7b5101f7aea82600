package api

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/boot"
	"bootforge/internal/dhcp/lease"
	"bootforge/internal/store"
)

// fakeStore is the API's Store in memory.
type fakeStore struct {
	mu     sync.Mutex
	hosts  map[string]boot.Host
	shots  map[string]*boot.NextBoot
	tokens map[string]store.Token
	events []audit.Event
}

func newFakeStore() *fakeStore {
	return &fakeStore{hosts: map[string]boot.Host{}, shots: map[string]*boot.NextBoot{}, tokens: map[string]store.Token{}}
}

func (f *fakeStore) Hosts() ([]boot.Host, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []boot.Host
	for _, h := range f.hosts {
		h.Source = "store"
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *fakeStore) PutHost(h boot.Host, events ...audit.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hosts[h.Name] = h
	f.events = append(f.events, events...)
	return nil
}

func (f *fakeStore) DeleteHost(name string, events ...audit.Event) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.hosts[name]
	delete(f.hosts, name)
	if ok {
		f.events = append(f.events, events...)
	}
	return ok, nil
}

func (f *fakeStore) NextBoots() (map[string]*boot.NextBoot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]*boot.NextBoot{}
	for k, v := range f.shots {
		nb := *v
		out[k] = &nb
	}
	return out, nil
}

func (f *fakeStore) PutNextBoot(mac net.HardwareAddr, nb boot.NextBoot, events ...audit.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shots[strings.ToLower(mac.String())] = &nb
	f.events = append(f.events, events...)
	return nil
}

func (f *fakeStore) DeleteNextBoot(mac net.HardwareAddr, events ...audit.Event) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := strings.ToLower(mac.String())
	_, ok := f.shots[k]
	delete(f.shots, k)
	if ok {
		f.events = append(f.events, events...)
	}
	return ok, nil
}

func (f *fakeStore) PutToken(t store.Token) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[t.ID] = t
	return nil
}

func (f *fakeStore) TokenByID(id string) (store.Token, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tokens[id]
	return t, ok, nil
}

func (f *fakeStore) Ping() error                        { return nil }
func (f *fakeStore) LoadLeases() ([]lease.Lease, error) { return nil, nil }
func (f *fakeStore) Events(store.EventFilter) ([]audit.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]audit.Event(nil), f.events...), nil
}

type apiTest struct {
	t            *testing.T
	db           *fakeStore
	read, admin  string
	handler      http.Handler
	srv          *Server
	lastResponse string
}

// newAPITest serves the API over a fake store. The inventory in force has
// profile "lab" (OUI 52:54:00; "install" and "disk" in its menu, "winpe"
// only in its efi-x64 variant), profile "other" (OUI 00:16:3e, "rescue")
// and a host from a file, pc0. Hosts written through the API live in the
// fake store only, as they do in the store before the watcher reloads.
func newAPITest(t *testing.T) *apiTest {
	t.Helper()
	local := func(names ...string) []boot.Entry {
		var out []boot.Entry
		for _, n := range names {
			out = append(out, boot.Entry{Name: n, Kind: boot.KindLocal})
		}
		return out
	}
	pc0, _ := net.ParseMAC("52:54:00:00:00:10")
	inv, err := boot.NewInventory([]boot.Profile{
		{Name: "lab", Match: []boot.Selector{{OUI: []byte{0x52, 0x54, 0x00}}}, Menu: boot.Menu{Entries: local("install", "disk")},
			Variants: map[boot.Firmware]boot.Menu{boot.FirmwareEFIx64: {Entries: local("install", "winpe")}}},
		{Name: "other", Match: []boot.Selector{{OUI: []byte{0x00, 0x16, 0x3e}}}, Menu: boot.Menu{Entries: local("rescue")}},
	}, []boot.Host{{Name: "pc0", MACs: []net.HardwareAddr{pc0}, Source: "hosts/site.yaml:1"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	db := newFakeStore()
	a := &apiTest{t: t, db: db}
	if a.read, err = NewToken(db, RoleRead, "reader"); err != nil {
		t.Fatal(err)
	}
	if a.admin, err = NewToken(db, RoleAdmin, "admin"); err != nil {
		t.Fatal(err)
	}
	s := &Server{DB: db, Inventory: func() *boot.Inventory { return inv }, Events: audit.Offline{Server: "srv1"}}
	a.handler, a.srv = s.Handler(), s
	return a
}

// call sends a request as from 192.0.2.7 and returns the status and the
// body decoded into out (if not nil).
func (a *apiTest) call(token, method, path, body string, out any) int {
	a.t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = "192.0.2.7:40000"
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	a.handler.ServeHTTP(w, r)
	a.lastResponse = w.Body.String()
	if out != nil {
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			a.t.Fatalf("%s %s: %d, body not JSON: %v\n%s", method, path, w.Code, err, w.Body)
		}
	}
	return w.Code
}

// wantError checks a refusal: status, code and field.
func (a *apiTest) wantError(token, method, path, body string, status int, code, field string, words ...string) {
	a.t.Helper()
	var e apiError
	if got := a.call(token, method, path, body, &e); got != status || e.Code != code || e.Field != field {
		a.t.Errorf("%s %s %s: %d %+v, want %d %s naming %q", method, path, body, got, e, status, code, field)
	}
	for _, w := range words {
		if !strings.Contains(e.Message, w) {
			a.t.Errorf("%s %s: message %q lacks %q", method, path, e.Message, w)
		}
	}
}

func TestAuthByRole(t *testing.T) {
	a := newAPITest(t)
	reads := []string{"/api/v1/health", "/api/v1/hosts", "/api/v1/profiles", "/api/v1/next-boot", "/api/v1/leases", "/api/v1/events"}
	for _, p := range reads {
		a.wantError("", "GET", p, "", 401, "unauthorized", "")
		a.wantError("bf_00000000_nope", "GET", p, "", 401, "unauthorized", "")
		a.wantError(strings.TrimSuffix(a.read, "0")+"x", "GET", p, "", 401, "unauthorized", "") // right ID, wrong secret
		if code := a.call(a.read, "GET", p, "", nil); code != 200 {
			t.Errorf("GET %s with a read token: %d %s", p, code, a.lastResponse)
		}
	}
	writes := []struct{ method, path, body string }{
		{"PUT", "/api/v1/hosts/pc1", `{"macs":["52:54:00:aa:00:01"]}`},
		{"PUT", "/api/v1/next-boot/52:54:00:aa:00:01", `{"entry":"install"}`},
		{"DELETE", "/api/v1/next-boot/52:54:00:aa:00:01", ""},
		{"DELETE", "/api/v1/hosts/pc1", ""},
	}
	for _, w := range writes {
		a.wantError("", w.method, w.path, w.body, 401, "unauthorized", "")
		a.wantError(a.read, w.method, w.path, w.body, 403, "forbidden", "")
	}
	if len(a.db.hosts) != 0 || len(a.db.shots) != 0 || len(a.db.events) != 0 {
		t.Fatalf("refused writes reached the store: %v %v %v", a.db.hosts, a.db.shots, a.db.events)
	}
	for _, w := range writes {
		if code := a.call(a.admin, w.method, w.path, w.body, nil); code != 200 {
			t.Errorf("%s %s with an admin token: %d %s", w.method, w.path, code, a.lastResponse)
		}
	}
	if n := len(a.db.events); n != 4 {
		t.Fatalf("%d events for 4 writes: %+v", n, a.db.events)
	}
	for _, e := range a.db.events {
		if e.Protocol != "api" || !strings.HasSuffix(e.Result, " by 192.0.2.7") {
			t.Errorf("event %+v: want protocol api, result naming the client", e)
		}
	}
}

func TestPutHostSecureBootRoundTrip(t *testing.T) {
	a := newAPITest(t)
	body := `{"macs":["52:54:00:AA:00:01"],"labels":["kiosk"],"secure_boot":true}`
	if code := a.call(a.admin, "PUT", "/api/v1/hosts/pc1", body, nil); code != 200 {
		t.Fatalf("PUT: %d %s", code, a.lastResponse)
	}
	var hosts []map[string]any
	if code := a.call(a.read, "GET", "/api/v1/hosts", "", &hosts); code != 200 {
		t.Fatalf("GET: %d", code)
	}
	var pc1 map[string]any
	for _, h := range hosts {
		if h["name"] == "pc1" {
			pc1 = h
		}
	}
	if pc1 == nil {
		t.Fatalf("pc1 not listed: %s", a.lastResponse)
	}
	if pc1["secure_boot"] != true || pc1["source"] != "store" || pc1["chosen_profile"] != "lab" || pc1["profile"] != nil {
		t.Errorf("pc1 as listed: %v", pc1)
	}
	if macs, _ := pc1["macs"].([]any); len(macs) != 1 || macs[0] != "52:54:00:aa:00:01" {
		t.Errorf("macs %v", pc1["macs"])
	}
	// And off again: a PUT replaces the whole host.
	a.call(a.admin, "PUT", "/api/v1/hosts/pc1", `{"macs":["52:54:00:aa:00:01"],"profile":"other"}`, nil)
	hosts = nil // Unmarshal would reuse the maps
	a.call(a.read, "GET", "/api/v1/hosts", "", &hosts)
	for _, h := range hosts {
		if h["name"] == "pc1" && (h["secure_boot"] != nil || h["profile"] != "other" || h["chosen_profile"] != "other") {
			t.Errorf("pc1 after the second PUT: %v", h)
		}
	}
}

func TestPutHostRefused(t *testing.T) {
	a := newAPITest(t)
	if code := a.call(a.admin, "PUT", "/api/v1/hosts/pc1", `{"macs":["52:54:00:aa:00:01"]}`, nil); code != 200 {
		t.Fatalf("PUT pc1: %d %s", code, a.lastResponse)
	}
	a.wantError(a.admin, "PUT", "/api/v1/hosts/pc2", `{"macs":["52:54:00:aa:00:02","zz"]}`, 400, "bad_request", "macs[1]", `"zz"`)
	a.wantError(a.admin, "PUT", "/api/v1/hosts/pc2", `{"macs":"52:54:00:aa:00:02"}`, 400, "bad_request", "macs")
	a.wantError(a.admin, "PUT", "/api/v1/hosts/pc2", `{"macz":[]}`, 400, "bad_request", "macz")
	a.wantError(a.admin, "PUT", "/api/v1/hosts/pc2", `{"labels":["x"]}`, 400, "bad_request", "macs")
	a.wantError(a.admin, "PUT", "/api/v1/hosts/pc2", `{"macs":["52:54:00:aa:00:02"],"profile":"ghost"}`, 400, "bad_request", "profile")
	a.wantError(a.admin, "PUT", "/api/v1/hosts/pc2", `{"name":"pc3","macs":["52:54:00:aa:00:02"]}`, 400, "bad_request", "name")
	a.wantError(a.admin, "PUT", "/api/v1/hosts/pc2", `{"macs":[`, 400, "bad_request", "")
	// A MAC another host owns: in the store, or in a file.
	a.wantError(a.admin, "PUT", "/api/v1/hosts/pc2", `{"macs":["52:54:00:AA:00:01"]}`, 409, "conflict", "macs[0]", `"pc1"`)
	a.wantError(a.admin, "PUT", "/api/v1/hosts/pc2", `{"macs":["52:54:00:00:00:10"]}`, 409, "conflict", "macs[0]", `"pc0"`)
	// A host from a file is changed in its file.
	a.wantError(a.admin, "PUT", "/api/v1/hosts/pc0", `{"macs":["52:54:00:00:00:10"]}`, 409, "conflict", "name", "hosts/site.yaml:1")
	a.wantError(a.admin, "DELETE", "/api/v1/hosts/pc0", "", 409, "conflict", "name")
	a.wantError(a.admin, "DELETE", "/api/v1/hosts/nobody", "", 404, "not_found", "name")
	if _, ok := a.db.hosts["pc2"]; ok || len(a.db.events) != 1 {
		t.Fatalf("refused writes reached the store: %v %v", a.db.hosts, a.db.events)
	}
}

func TestNextBoot(t *testing.T) {
	a := newAPITest(t)
	// No profile a 52:54:00 MAC can get has "rescue" (only "other" does).
	a.wantError(a.admin, "PUT", "/api/v1/next-boot/52:54:00:aa:00:01", `{"entry":"rescue"}`, 400, "bad_request", "entry",
		"52:54:00:aa:00:01", `"lab"`, `"rescue"`)
	// No profile at all can boot this MAC.
	a.wantError(a.admin, "PUT", "/api/v1/next-boot/02:00:00:00:00:01", `{"entry":"install"}`, 400, "bad_request", "mac",
		"no profile can boot")
	a.wantError(a.admin, "PUT", "/api/v1/next-boot/52:54:00:aa:00:01", `{"entry":"install","expires":"soon"}`, 400, "bad_request", "expires")
	// Read by the CLI's rule (inventory.ParseExpires): positive, at most 10 years.
	a.wantError(a.admin, "PUT", "/api/v1/next-boot/52:54:00:aa:00:01", `{"entry":"install","expires":"2500000h"}`, 400, "bad_request", "expires",
		"expires 2500000h0m0s is more than 87600h (10 years)")
	a.wantError(a.admin, "PUT", "/api/v1/next-boot/52:54:00:aa:00:01", `{"entry":"install","expires":"-1h"}`, 400, "bad_request", "expires",
		"expires -1h0m0s is not a positive duration")
	a.wantError(a.admin, "PUT", "/api/v1/next-boot/not-a-mac", `{"entry":"install"}`, 400, "bad_request", "mac")
	a.wantError(a.admin, "PUT", "/api/v1/next-boot/52:54:00:aa:00:01", `{}`, 400, "bad_request", "entry")
	if len(a.db.shots) != 0 {
		t.Fatalf("refused one-shots stored: %v", a.db.shots)
	}

	// Only in the efi-x64 variant of lab: accepted, and the answer says so.
	var res map[string]string
	if code := a.call(a.admin, "PUT", "/api/v1/next-boot/52-54-00-AA-00-01", `{"entry":"winpe","expires":"2h"}`, &res); code != 200 {
		t.Fatalf("variant-only entry: %d %s", code, a.lastResponse)
	}
	if res["status"] != "pending" || res["mac"] != "52:54:00:aa:00:01" || res["entry"] != "winpe" ||
		res["note"] != `only in the efi-x64 menu of profile "lab"` {
		t.Errorf("answer %v", res)
	}
	if nb := a.db.shots["52:54:00:aa:00:01"]; nb == nil || nb.Entry != "winpe" || nb.State != boot.OneShotPending || nb.Expires.IsZero() {
		t.Fatalf("stored %+v", nb)
	}
	if e := a.db.events[len(a.db.events)-1]; e.Stage != "one-shot" || e.Result != "set by 192.0.2.7" || e.Reason != res["note"] {
		t.Errorf("event %+v", e)
	}
	// A main-menu entry has no note.
	res = nil
	if code := a.call(a.admin, "PUT", "/api/v1/next-boot/52:54:00:aa:00:01", `{"entry":"install"}`, &res); code != 200 || res["note"] != "" {
		t.Errorf("main-menu entry: %d %v", code, res)
	}

	var shots []map[string]any
	if code := a.call(a.read, "GET", "/api/v1/next-boot", "", &shots); code != 200 || len(shots) != 1 ||
		shots[0]["mac"] != "52:54:00:aa:00:01" || shots[0]["entry"] != "install" || shots[0]["state"] != "pending" {
		t.Errorf("GET next-boot: %s", a.lastResponse)
	}
	// The host's view carries it.
	a.call(a.admin, "PUT", "/api/v1/hosts/pc1", `{"macs":["52:54:00:aa:00:01"]}`, nil)
	var hosts []struct {
		Name     string `json:"name"`
		NextBoot *struct {
			Entry string `json:"entry"`
			State string `json:"state"`
		} `json:"next_boot"`
	}
	a.call(a.read, "GET", "/api/v1/hosts", "", &hosts)
	for _, h := range hosts {
		if h.Name == "pc1" && (h.NextBoot == nil || h.NextBoot.Entry != "install" || h.NextBoot.State != "pending") {
			t.Errorf("pc1's next boot: %+v", h.NextBoot)
		}
	}

	if code := a.call(a.admin, "DELETE", "/api/v1/next-boot/52:54:00:aa:00:01", "", nil); code != 200 || len(a.db.shots) != 0 {
		t.Errorf("DELETE: %d %v", code, a.db.shots)
	}
	// Nothing left to clear: 404, and no boot-log event.
	events := len(a.db.events)
	a.wantError(a.admin, "DELETE", "/api/v1/next-boot/52:54:00:aa:00:01", "", 404, "not_found", "mac")
	if len(a.db.events) != events {
		t.Errorf("a DELETE that changed nothing is an event: %+v", a.db.events[events:])
	}
}

// TestRequestEdges: the request plumbing in front of every handler.
func TestRequestEdges(t *testing.T) {
	a := newAPITest(t)
	// Over MaxBody: 413, whether the JSON is cut or complete and padded.
	huge := `{"macs":["52:54:00:aa:00:01"],"labels":["` + strings.Repeat("x", MaxBody) + `"]}`
	a.wantError(a.admin, "PUT", "/api/v1/hosts/big", huge, 413, "too_large", "", "1048576")
	a.wantError(a.admin, "PUT", "/api/v1/hosts/big", `{"macs":["52:54:00:aa:00:01"]}`+strings.Repeat(" ", MaxBody), 413, "too_large", "")
	// Exactly at the limit is fine.
	body := `{"macs":["52:54:00:aa:00:01"]}`
	if code := a.call(a.admin, "PUT", "/api/v1/hosts/edge", body+strings.Repeat(" ", MaxBody-len(body)), nil); code != 200 {
		t.Errorf("a body of exactly MaxBody: %d %s", code, a.lastResponse)
	}
	// One value, each key once.
	a.wantError(a.admin, "PUT", "/api/v1/hosts/pc2", `{"macs":["52:54:00:aa:00:02"]} x`, 400, "bad_request", "", "after the JSON value")
	a.wantError(a.admin, "PUT", "/api/v1/hosts/pc2", `{"macs":["52:54:00:aa:00:02"]}{}`, 400, "bad_request", "", "after the JSON value")
	a.wantError(a.admin, "PUT", "/api/v1/hosts/pc2", `{"macs":["52:54:00:aa:00:02"],"macs":["52:54:00:aa:00:03"]}`, 400, "bad_request", "macs", `duplicate key "macs"`)
	a.wantError(a.admin, "PUT", "/api/v1/hosts/pc2", `{"macs":["52:54:00:aa:00:02"],"Macs":["52:54:00:aa:00:03"]}`, 400, "bad_request", "Macs", `duplicate key "Macs"`)
	a.wantError(a.admin, "PUT", "/api/v1/next-boot/52:54:00:aa:00:02", `{"entry":"install","expires":"1h","expires":"2h"}`, 400, "bad_request", "expires")
	a.wantError(a.admin, "PUT", "/api/v1/hosts/pc2", `{"macs":[`, 400, "bad_request", "", "ends inside")
	a.wantError(a.admin, "PUT", "/api/v1/hosts/pc2", ``, 400, "bad_request", "", "needs a JSON body")
	if _, ok := a.db.hosts["pc2"]; ok || len(a.db.shots) != 0 {
		t.Fatalf("refused bodies reached the store: %v %v", a.db.hosts, a.db.shots)
	}

	// A wrong method: 405 with Allow, as JSON; no path at all: 404.
	for _, w := range []struct{ method, path, allow string }{
		{"POST", "/api/v1/hosts", "GET, HEAD"},
		{"GET", "/api/v1/hosts/pc1", "DELETE, PUT"},
		{"PATCH", "/api/v1/next-boot/52:54:00:aa:00:01", "DELETE, PUT"},
		{"DELETE", "/api/v1/openapi.json", "GET, HEAD"},
		{"PUT", "/readyz", "GET, HEAD"},
	} {
		r := httptest.NewRequest(w.method, w.path, nil)
		r.Header.Set("Authorization", "Bearer "+a.admin)
		rec := httptest.NewRecorder()
		a.handler.ServeHTTP(rec, r)
		var e apiError
		json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != 405 || rec.Header().Get("Allow") != w.allow || e.Code != "method_not_allowed" {
			t.Errorf("%s %s: %d Allow %q %s, want 405 with Allow %q", w.method, w.path, rec.Code, rec.Header().Get("Allow"), rec.Body, w.allow)
		}
	}
	a.wantError(a.admin, "GET", "/api/v1/nothing", "", 404, "not_found", "")
	a.wantError(a.admin, "GET", "/nothing", "", 404, "not_found", "") // "/" is the dashboard

	// The bearer scheme in any case (RFC 7235); anything else is 401.
	for _, h := range []string{"bearer " + a.read, "BEARER " + a.read, "Bearer  " + a.read + " ", "bEaReR " + a.read} {
		if code := a.callAuth(h, "GET", "/api/v1/hosts"); code != 200 {
			t.Errorf("Authorization: %q: %d %s", h, code, a.lastResponse)
		}
	}
	for _, h := range []string{"", "Bearer", "Bearer ", "Basic " + a.read, a.read, "Bearer" + a.read, "Bearer x " + a.read} {
		if code := a.callAuth(h, "GET", "/api/v1/hosts"); code != 401 {
			t.Errorf("Authorization: %q: %d, want 401", h, code)
		}
	}
}

// callAuth sends a request with the Authorization header as given.
func (a *apiTest) callAuth(header, method, path string) int {
	r := httptest.NewRequest(method, path, nil)
	if header != "" {
		r.Header.Set("Authorization", header)
	}
	w := httptest.NewRecorder()
	a.handler.ServeHTTP(w, r)
	a.lastResponse = w.Body.String()
	return w.Code
}

// The fake must stay a Store and a token writer, like *store.SQLite.
var (
	_ Store                                    = (*fakeStore)(nil)
	_ Store                                    = (*store.SQLite)(nil)
	_ interface{ PutToken(store.Token) error } = (*fakeStore)(nil)
)

// ?limit= is a whole number, read as `bootforge log --limit` reads it: a
// number with anything after it is refused, not taken for its digits.
func TestEventsLimit(t *testing.T) {
	a := newAPITest(t)
	spy := &filterSpy{fakeStore: a.db}
	a.srv.DB = spy
	if code := a.call(a.read, "GET", "/api/v1/events?limit=5", "", nil); code != 200 || spy.got.Limit != 5 {
		t.Errorf("?limit=5: %d, limit %d asked of the store", code, spy.got.Limit)
	}
	for _, v := range []string{"5abc", "5%20", "5.0", "0x5", "0", "-5", "abc", "99999999999999999999"} {
		a.wantError(a.read, "GET", "/api/v1/events?limit="+v, "", 400, "bad_request", "limit", "is not a positive number")
	}
	for _, v := range []string{"1habc", "1h%20", "-1h"} {
		a.wantError(a.read, "GET", "/api/v1/events?since="+v, "", 400, "bad_request", "since")
	}
}

// A token's name is printable UTF-8 of at most MaxTokenName bytes, or
// empty; anything else is refused before the store sees it (PostgreSQL
// answered a name that is not UTF-8 with a raw error, SQLite kept it).
func TestTokenNames(t *testing.T) {
	db := newFakeStore()
	for _, name := range []string{"", "ci", "ci runner (team ✓)", strings.Repeat("a", MaxTokenName)} {
		if _, err := NewToken(db, RoleRead, name); err != nil {
			t.Errorf("token name %q: %v", name, err)
		}
	}
	for name, want := range map[string]string{
		"bad\xffname":                       `token name "bad\xffname" is not valid UTF-8`,
		"a\x00b":                            `token name "a\x00b" is not printable text`,
		"\x1b[31mred":                       `is not printable text`,
		"two\nlines":                        `is not printable text`,
		"tab\there":                         `is not printable text`,
		"\u202eevil":                        `is not printable text`,
		strings.Repeat("a", MaxTokenName+1): "is 65 bytes long; at most 64",
	} {
		_, err := NewToken(db, RoleRead, name)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("token name %q: %v, want a refusal with %q", name, err, want)
		}
	}
	if n := len(db.tokens); n != 4 {
		t.Errorf("%d tokens stored, want the 4 with good names", n)
	}
}

// The boot log's filters are mac, ip, stage, since and limit. Any other
// parameter (a typo such as ?limt=5, or a filter it does not have) is
// refused naming it, and so is one given twice: either was ignored, and
// the whole log came back as if filtered.
func TestEventsQueryParams(t *testing.T) {
	a := newAPITest(t)
	spy := &filterSpy{fakeStore: a.db}
	a.srv.DB = spy
	if code := a.call(a.read, "GET", "/api/v1/events?stage=menu&limit=3", "", nil); code != 200 || spy.got.Stage != "menu" || spy.got.Limit != 3 {
		t.Errorf("?stage=menu&limit=3: %d, filter %+v asked of the store", code, spy.got)
	}
	for _, v := range []string{"%FF", "a%00b", "a%20b", strings.Repeat("a", 65)} {
		a.wantError(a.read, "GET", "/api/v1/events?stage="+v, "", 400, "bad_request", "stage", "is not a stage")
	}
	a.wantError(a.read, "GET", "/api/v1/events?limt=5", "", 400, "bad_request", "limt", "unknown query parameter", "mac, ip, stage, since, limit, before")
	a.wantError(a.read, "GET", "/api/v1/events?profile=lab", "", 400, "bad_request", "profile", "unknown query parameter")
	a.wantError(a.read, "GET", "/api/v1/events?mac=52:54:00:00:00:01&mac=52:54:00:00:00:02", "", 400, "bad_request", "mac", "given twice")
}

// A value of the wrong JSON type is refused in JSON's words, naming the
// field: the messages named Go's types ("macs must be []string", "must
// be config.Host, not array" with no field at all), which say nothing to
// a client that is not written in Go. A body that is not an object (null
// too, which was taken for an empty one) is refused as such.
func TestBodyTypeErrors(t *testing.T) {
	a := newAPITest(t)
	for _, c := range []struct{ path, body, field, want string }{
		{"/api/v1/hosts/pc2", `{"macs":"52:54:00:aa:00:02"}`, "macs", "macs must be an array of strings, not a string"},
		{"/api/v1/hosts/pc2", `{"macs":[1]}`, "macs", "each item of macs must be a string, not a number"},
		{"/api/v1/hosts/pc2", `{"macs":["52:54:00:aa:00:02"],"labels":[["a"]]}`, "labels", "each item of labels must be a string, not an array"},
		{"/api/v1/hosts/pc2", `{"macs":["52:54:00:aa:00:02"],"secure_boot":"yes"}`, "secure_boot", "secure_boot must be true or false, not a string"},
		{"/api/v1/hosts/pc2", `{"macs":["52:54:00:aa:00:02"],"labels":{}}`, "labels", "labels must be an array of strings, not an object"},
		{"/api/v1/next-boot/52:54:00:aa:00:02", `{"entry":7}`, "entry", "entry must be a string, not a number"},
		{"/api/v1/next-boot/52:54:00:aa:00:02", `{"entry":"install","always":"true"}`, "always", "always must be true or false, not a string"},
		{"/api/v1/hosts/pc2", `[]`, "", "the body must be a JSON object, not an array"},
		{"/api/v1/hosts/pc2", `"pc2"`, "", "the body must be a JSON object, not a string"},
		{"/api/v1/hosts/pc2", `null`, "", "the body must be a JSON object, not null"},
		{"/api/v1/next-boot/52:54:00:aa:00:02", `null`, "", "the body must be a JSON object, not null"},
	} {
		a.wantError(a.admin, "PUT", c.path, c.body, 400, "bad_request", c.field, c.want)
		if strings.Contains(a.lastResponse, "[]string") || strings.Contains(a.lastResponse, "config.") || strings.Contains(a.lastResponse, "api.") {
			t.Errorf("%s: the message names a Go type: %s", c.body, a.lastResponse)
		}
	}
}

// One read returns at most store.MaxEvents events: a larger ?limit (a
// whole log's worth) made the server build all of it in memory at once.
// Older events are read page by page with ?before, the smallest ID read.
func TestEventsLimitBoundedAndPaged(t *testing.T) {
	a := newAPITest(t)
	spy := &filterSpy{fakeStore: a.db}
	a.srv.DB = spy
	a.wantError(a.read, "GET", "/api/v1/events?limit=10001", "", 400, "bad_request", "limit", "over 10000", "before")
	a.wantError(a.read, "GET", "/api/v1/events?limit=99999999999999999999", "", 400, "bad_request", "limit", "not a positive number")
	if code := a.call(a.read, "GET", "/api/v1/events?limit=10000&before=42", "", nil); code != 200 || spy.got.Limit != 10000 || spy.got.Before != 42 {
		t.Errorf("?limit=10000&before=42: %d, filter %+v asked of the store", code, spy.got)
	}
	for _, v := range []string{"0", "-1", "5abc", "x"} {
		a.wantError(a.read, "GET", "/api/v1/events?before="+v, "", 400, "bad_request", "before", "is not an event ID")
	}
}

// ?since=0 sets no look-back bound, as `bootforge log --since 0` reads
// it: it asked for the events newer than the request itself, and so
// always answered [].
func TestEventsSinceZero(t *testing.T) {
	a := newAPITest(t)
	spy := &filterSpy{fakeStore: a.db}
	a.srv.DB = spy
	for _, v := range []string{"0", "0s", "0h"} {
		spy.got.Since = time.Unix(1, 0)
		if code := a.call(a.read, "GET", "/api/v1/events?since="+v, "", nil); code != 200 || !spy.got.Since.IsZero() {
			t.Errorf("?since=%s: %d, since %v asked of the store, want no bound", v, code, spy.got.Since)
		}
	}
	if code := a.call(a.read, "GET", "/api/v1/events?since=1h", "", nil); code != 200 || time.Since(spy.got.Since) < 59*time.Minute {
		t.Errorf("?since=1h: %d, since %v asked of the store", code, spy.got.Since)
	}
}

// Only the boot log takes query parameters. Any on another endpoint is
// refused naming it: ?name=pc1 on /hosts was ignored and every host came
// back, which a script taking the first as pc1 would act on.
func TestNoQueryParams(t *testing.T) {
	a := newAPITest(t)
	for _, p := range []string{"/api/v1/hosts?name=pc1", "/api/v1/profiles?name=lab", "/api/v1/next-boot?mac=52:54:00:00:00:10",
		"/api/v1/leases?mac=52:54:00:00:00:10", "/api/v1/health?verbose=1", "/api/v1/images?name=x"} {
		field := p[strings.Index(p, "?")+1 : strings.Index(p, "=")]
		a.wantError(a.read, "GET", p, "", 400, "bad_request", field, "takes no query parameters")
	}
	a.wantError(a.admin, "PUT", "/api/v1/next-boot/52:54:00:00:00:10?entry=disk", `{"entry":"install"}`, 400, "bad_request", "entry", "takes no query parameters")
	a.wantError(a.admin, "DELETE", "/api/v1/hosts/pc9?force=1", "", 400, "bad_request", "force", "takes no query parameters")
	if code := a.call(a.read, "GET", "/api/v1/hosts", "", nil); code != 200 {
		t.Errorf("/hosts without a query: %d", code)
	}
}

// TestUncleanPaths: a path with "//", "." or ".." names no endpoint. Left
// to ServeMux it got a 307 to the cleaned path, as HTML, with or without a
// token: a script expected JSON, and one that follows redirects sent its
// token on to an endpoint it never named. Now it is a JSON 404 that says
// which path was meant, and nothing is answered or written.
func TestUncleanPaths(t *testing.T) {
	a := newAPITest(t)
	for _, p := range []struct{ method, path, clean string }{
		{"GET", "/api/v1//hosts", "/api/v1/hosts"},
		{"GET", "//api/v1/hosts", "/api/v1/hosts"},
		{"GET", "/api/v1/./hosts", "/api/v1/hosts"},
		{"GET", "/api/v1/hosts/../next-boot", "/api/v1/next-boot"},
		{"GET", "/api/v1/hosts/x/../../health", "/api/v1/health"},
		{"GET", "/ui/../api/v1/leases", "/api/v1/leases"},
		{"GET", "/api/v1//events?limit=1", "/api/v1/events"},
		{"GET", "/api/v1/hosts/./", "/api/v1/hosts/"}, // a trailing slash is kept, as ServeMux keeps it
		{"GET", "/healthz/.", "/healthz"},
		{"PUT", "/api/v1/hosts/../hosts/pc9", "/api/v1/hosts/pc9"},
		{"DELETE", "/api/v1/next-boot//52:54:00:aa:00:01", "/api/v1/next-boot/52:54:00:aa:00:01"},
	} {
		for _, tok := range []string{"", a.admin} {
			r := httptest.NewRequest(p.method, p.path, strings.NewReader(`{"macs":["52:54:00:aa:00:09"]}`))
			if tok != "" {
				r.Header.Set("Authorization", "Bearer "+tok)
			}
			w := httptest.NewRecorder()
			a.handler.ServeHTTP(w, r)
			var e apiError
			err := json.Unmarshal(w.Body.Bytes(), &e)
			if w.Code != 404 || err != nil || e.Code != "not_found" || w.Header().Get("Location") != "" ||
				!strings.Contains(e.Message, p.method+" "+strings.Split(p.path, "?")[0]) {
				t.Errorf("%s %s (token %v): %d Location %q %s, want a JSON 404 naming the path", p.method, p.path, tok != "",
					w.Code, w.Header().Get("Location"), w.Body)
			}
			if !strings.Contains(e.Message, "did you mean "+p.clean+"?") {
				t.Errorf("%s %s: message %q does not name %s", p.method, p.path, e.Message, p.clean)
			}
		}
	}
	if _, ok := a.db.hosts["pc9"]; ok || len(a.db.shots) != 0 {
		t.Fatalf("a request on an unclean path reached the store: %v %v", a.db.hosts, a.db.shots)
	}
	// Written as they are, the same endpoints answer.
	if code := a.call(a.read, "GET", "/api/v1/hosts", "", nil); code != 200 {
		t.Errorf("GET /api/v1/hosts: %d %s", code, a.lastResponse)
	}
	// An escaped dot is a name, not a step up: ServeMux does not clean it.
	a.wantError(a.read, "GET", "/api/v1/hosts/%2e%2e/next-boot", "", 404, "not_found", "")
}
