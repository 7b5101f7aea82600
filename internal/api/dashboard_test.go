package api

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/store"
)

// dashTest is an API server with the dashboard, over the fake store.
type dashTest struct {
	*apiTest
	srv *Server
}

func newDashTest(t *testing.T) *dashTest {
	a := newAPITest(t)
	return &dashTest{apiTest: a, srv: a.srv}
}

// login posts the login form as a browser on this origin would.
func (d *dashTest) login(token string, tlsOn bool, origin string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/ui/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", origin)
	if tlsOn {
		r.TLS = &tls.ConnectionState{}
	}
	w := httptest.NewRecorder()
	d.handler.ServeHTTP(w, r)
	return w
}

// withCookie sends a request carrying the session cookie tok.
func (d *dashTest) withCookie(tok, method, path, body string, header bool) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = "192.0.2.7:40000"
	r.AddCookie(&http.Cookie{Name: sessionCookie, Value: tok})
	if header {
		r.Header.Set(csrfHeader, "1")
	}
	w := httptest.NewRecorder()
	d.handler.ServeHTTP(w, r)
	return w
}

func sessionOf(w *httptest.ResponseRecorder) *http.Cookie {
	for _, c := range w.Result().Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	return nil
}

func TestDashboardLogin(t *testing.T) {
	d := newDashTest(t)
	// A wrong token: refused, no cookie.
	w := d.login("bf_00000000_"+strings.Repeat("0", 40), false, "http://example.com")
	if w.Code != http.StatusUnauthorized || sessionOf(w) != nil || !strings.Contains(w.Body.String(), "Unknown or revoked token") {
		t.Errorf("wrong token: %d, cookie %v, body %q", w.Code, sessionOf(w), w.Body)
	}
	// A form from another site: refused.
	if w := d.login(d.admin, false, "http://evil.example"); w.Code != http.StatusForbidden || sessionOf(w) != nil {
		t.Errorf("cross-site login: %d, cookie %v", w.Code, sessionOf(w))
	}
	// A good one: the cookie, HttpOnly, Strict, for the whole site; Secure under TLS only.
	for _, tlsOn := range []bool{false, true} {
		w := d.login(d.admin, tlsOn, "http://example.com")
		c := sessionOf(w)
		if w.Code != http.StatusSeeOther || c == nil {
			t.Fatalf("admin login (TLS %v): %d, no cookie", tlsOn, w.Code)
		}
		if c.Value != d.admin || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure != tlsOn {
			t.Errorf("session cookie (TLS %v): %+v", tlsOn, c)
		}
	}
	// The page: for a read token without the one-shot form, behind the CSP.
	for _, tc := range []struct {
		tok, role string
		form      bool
	}{{d.read, "read", false}, {d.admin, "admin", true}} {
		w := d.withCookie(tc.tok, "GET", "/", "", false)
		body := w.Body.String()
		if w.Code != 200 || !strings.Contains(body, `data-role="`+tc.role+`"`) || strings.Contains(body, `id="oneshot-form"`) != tc.form {
			t.Errorf("page for %s: %d, form %v want %v", tc.role, w.Code, strings.Contains(body, `id="oneshot-form"`), tc.form)
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("CSP %q", csp)
		}
	}
	// A revoked or unknown cookie: the login form, and the cookie cleared.
	w = d.withCookie("bf_00000000_nope", "GET", "/", "", false)
	if c := sessionOf(w); c == nil || c.MaxAge >= 0 || !strings.Contains(w.Body.String(), `id="login"`) {
		t.Errorf("stale cookie: cookie %+v, body %q", c, w.Body)
	}
	// Logout clears it.
	r := httptest.NewRequest("POST", "/ui/logout", nil)
	lw := httptest.NewRecorder()
	d.handler.ServeHTTP(lw, r)
	if c := sessionOf(lw); lw.Code != http.StatusSeeOther || c == nil || c.MaxAge >= 0 {
		t.Errorf("logout: %d, cookie %+v", lw.Code, c)
	}
}

// The cookie stands for the bearer token; a write with it needs the
// X-Bootforge header, and the roles still hold.
func TestDashboardCookieAuth(t *testing.T) {
	d := newDashTest(t)
	const path, body = "/api/v1/next-boot/52:54:00:00:00:10", `{"entry":"install"}`
	if w := d.withCookie(d.read, "GET", "/api/v1/next-boot", "", false); w.Code != 200 {
		t.Errorf("GET with a read cookie: %d %s", w.Code, w.Body)
	}
	if w := d.withCookie("bf_00000000_nope", "GET", "/api/v1/next-boot", "", false); w.Code != 401 {
		t.Errorf("GET with an unknown cookie: %d", w.Code)
	}
	if w := d.withCookie(d.admin, "PUT", path, body, false); w.Code != 403 || !strings.Contains(w.Body.String(), "X-Bootforge") {
		t.Errorf("PUT with the admin cookie and no X-Bootforge: %d %s", w.Code, w.Body)
	}
	if w := d.withCookie(d.read, "PUT", path, body, true); w.Code != 403 || !strings.Contains(w.Body.String(), "admin") {
		t.Errorf("PUT with a read cookie: %d %s", w.Code, w.Body)
	}
	if w := d.withCookie(d.admin, "PUT", path, body, true); w.Code != 200 {
		t.Errorf("PUT with the admin cookie and X-Bootforge: %d %s", w.Code, w.Body)
	}
	if w := d.withCookie(d.admin, "DELETE", path, "", true); w.Code != 200 {
		t.Errorf("DELETE with the admin cookie and X-Bootforge: %d %s", w.Code, w.Body)
	}
}

type discardEvents struct{}

func (discardEvents) PutEvents([]audit.Event) error { return nil }

// The live feed streams recorded events past the server's deadlines, and
// CloseStreams lets the server's Shutdown finish at once.
func TestStreamEvents(t *testing.T) {
	d := newDashTest(t)
	rec := audit.NewRecorder(discardEvents{}, "srv1", nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer rec.Close()
	d.srv.Feed = rec
	ts := httptest.NewUnstartedServer(d.srv.Handler())
	ts.Config.RegisterOnShutdown(d.srv.CloseStreams)
	// A feed outlives the server's request deadlines.
	ts.Config.ReadTimeout, ts.Config.WriteTimeout = 100*time.Millisecond, 100*time.Millisecond
	ts.Start()
	defer ts.Close()

	req, _ := http.NewRequest("GET", ts.URL+"/api/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+d.read)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := bufio.NewScanner(resp.Body)
	if !lines.Scan() || lines.Text() != "retry: 3000" {
		t.Fatalf("first line %q", lines.Text())
	}
	time.Sleep(300 * time.Millisecond)
	rec.Record(audit.Event{MAC: "52:54:00:00:00:10", Stage: "ack", Protocol: "dhcp", Result: "ok", Profile: "lab"})
	var got []string
	for lines.Scan() && len(got) < 2 {
		if l := lines.Text(); l != "" {
			got = append(got, l)
		}
	}
	if len(got) != 2 || got[0] != "event: boot" || !strings.HasPrefix(got[1], "data: {") || !strings.Contains(got[1], `"mac":"52:54:00:00:00:10"`) || !strings.Contains(got[1], `"server":"srv1"`) {
		t.Fatalf("streamed %q", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := ts.Config.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a feed open: %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Shutdown took %s with a feed open", el)
	}
	for lines.Scan() {
	}
}

// A token revoked while its live feed is open gets no event recorded
// after the revocation: the feed ends, as its next request would get
// 401. The feed kept streaming the boot log to a revoked token.
func TestStreamEndsWhenTokenRevoked(t *testing.T) {
	d := newDashTest(t)
	rec := audit.NewRecorder(discardEvents{}, "srv1", nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer rec.Close()
	d.srv.Feed = rec
	ts := httptest.NewServer(d.srv.Handler())
	defer ts.Close()
	tok, err := NewToken(d.db, RoleRead, "feed")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", ts.URL+"/api/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	if !lines.Scan() || lines.Text() != "retry: 3000" {
		t.Fatalf("first line %q", lines.Text())
	}
	rec.Record(audit.Event{MAC: "52:54:00:00:00:01", Stage: "ack", Result: "before"})
	for lines.Scan() && !strings.Contains(lines.Text(), `"before"`) {
	}

	d.db.mu.Lock()
	delete(d.db.tokens, strings.Split(tok, "_")[1])
	d.db.mu.Unlock()
	time.Sleep(streamRecheck + 100*time.Millisecond)
	rec.Record(audit.Event{MAC: "52:54:00:00:00:02", Stage: "ack", Result: "after the revocation"})

	done := make(chan []string)
	go func() {
		var rest []string
		for lines.Scan() {
			rest = append(rest, lines.Text())
		}
		done <- rest
	}()
	select {
	case rest := <-done:
		all := strings.Join(rest, "\n")
		if strings.Contains(all, "after the revocation") {
			t.Fatalf("a revoked token was sent an event:\n%s", all)
		}
		if !strings.Contains(all, "event: revoked") {
			t.Errorf("the feed ended without saying why:\n%s", all)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the feed of a revoked token stayed open")
	}
}

// flakyTokens is a store whose token lookups fail while fail is set.
type flakyTokens struct {
	*fakeStore
	fail atomic.Bool
}

func (f *flakyTokens) TokenByID(id string) (store.Token, bool, error) {
	if f.fail.Load() {
		return store.Token{}, false, errors.New("store unreachable")
	}
	return f.fakeStore.TokenByID(id)
}

// A store that cannot be asked about the token is no revocation: the
// feed goes on, rather than send a signed-in dashboard to the login form
// at the first blip of the store.
func TestStreamSurvivesStoreErrors(t *testing.T) {
	d := newDashTest(t)
	rec := audit.NewRecorder(discardEvents{}, "srv1", nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer rec.Close()
	flaky := &flakyTokens{fakeStore: d.db}
	d.srv.DB, d.srv.Feed = flaky, rec
	ts := httptest.NewServer(d.srv.Handler())
	defer ts.Close()
	req, _ := http.NewRequest("GET", ts.URL+"/api/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+d.read)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	if !lines.Scan() || lines.Text() != "retry: 3000" {
		t.Fatalf("first line %q", lines.Text())
	}
	flaky.fail.Store(true)
	time.Sleep(streamRecheck + 100*time.Millisecond)
	rec.Record(audit.Event{MAC: "52:54:00:00:00:03", Stage: "ack", Result: "while the store is down"})
	got := make(chan string, 1)
	go func() {
		for lines.Scan() {
			if l := lines.Text(); strings.HasPrefix(l, "event: ") || strings.Contains(l, "while the store is down") {
				got <- l
				return
			}
		}
		got <- "(the feed ended)"
	}()
	select {
	case l := <-got:
		if l != "event: boot" {
			t.Errorf("with the store down the feed sent %q, want the event", l)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no event with the store down")
	}
}

// While the store cannot be asked about a token, the API answers 503
// saying so, and the dashboard keeps its session: it answered 401
// "unknown or revoked token", and the page cleared the cookie and said
// the token was no longer valid, so a store outage signed every operator
// out and read as a revocation.
func TestAuthStoreDown(t *testing.T) {
	d := newDashTest(t)
	flaky := &flakyTokens{fakeStore: d.db}
	d.srv.DB = flaky
	d.handler = d.srv.Handler()
	flaky.fail.Store(true)
	d.wantError(d.read, "GET", "/api/v1/hosts", "", 503, "store", "", "could not check the token", "store unreachable")
	w := d.withCookie(d.read, "GET", "/", "", false)
	if c := sessionOf(w); c != nil {
		t.Errorf("the page cleared the session while the store was down: %v", c)
	}
	if body := w.Body.String(); w.Code != 503 || !strings.Contains(body, "could not check") || strings.Contains(body, "no longer valid") {
		t.Errorf("the page while the store is down: %d\n%s", w.Code, body)
	}
	w = d.login(d.read, false, "")
	if c := sessionOf(w); c != nil || w.Code != 503 || !strings.Contains(w.Body.String(), "could not check") {
		t.Errorf("login while the store is down: %d, cookie %v\n%s", w.Code, c, w.Body)
	}
	// A token that is not of NewToken's shape is unknown without asking
	// the store: 401, not 503.
	for _, tok := range []string{"bf_\xff\xfe\xfd\xfc_" + strings.Repeat("a", 40), "bf_0000000g_" + strings.Repeat("a", 40), "bf_00000000_abc", "nothing"} {
		if code := d.callAuth("Bearer "+tok, "GET", "/api/v1/hosts"); code != 401 {
			t.Errorf("token %q with the store down: %d, want 401", tok, code)
		}
	}
	flaky.fail.Store(false)
	if code := d.call(d.read, "GET", "/api/v1/hosts", "", nil); code != 200 {
		t.Errorf("with the store back: %d", code)
	}
}

// HEAD of the live feed answers the headers and ends: it ran the feed
// for a body no one would get, holding one of the 16 feeds (and the
// connection) until the client went away.
func TestStreamHead(t *testing.T) {
	d := newDashTest(t)
	rec := audit.NewRecorder(discardEvents{}, "srv1", nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer rec.Close()
	d.srv.Feed = rec
	ts := httptest.NewServer(d.srv.Handler())
	defer ts.Close()
	req, _ := http.NewRequest("HEAD", ts.URL+"/api/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+d.read)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // the connection stays open, kept alive
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("HEAD: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for end := time.Now().Add(2 * time.Second); d.srv.streams.open.Load() != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("after a HEAD, %d feeds are still open", d.srv.streams.open.Load())
		}
	}
}

// countEvents counts the events a recorder stores itself.
type countEvents struct{ n atomic.Int64 }

func (c *countEvents) PutEvents(es []audit.Event) error { c.n.Add(int64(len(es))); return nil }

// A host written through the API is in the store with its event, which
// the live feed then shows, stamped by the server, without the recorder
// storing it a second time.
func TestWriteEventStoredWithWriteAndShownLive(t *testing.T) {
	a := newAPITest(t)
	queued := &countEvents{}
	rec := audit.NewRecorder(queued, "srv1", nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	a.srv.Events = rec
	sub := rec.Subscribe(4)
	defer sub.Close()
	if code := a.call(a.admin, "PUT", "/api/v1/hosts/pc1", `{"macs":["52:54:00:aa:00:01"]}`, nil); code != 200 {
		t.Fatalf("PUT: %d %s", code, a.lastResponse)
	}
	rec.Close()
	if len(a.db.events) != 1 || a.db.events[0].Server != "srv1" || a.db.events[0].Result != "host stored by 192.0.2.7" {
		t.Fatalf("stored with the host: %+v", a.db.events)
	}
	select {
	case e := <-sub.C:
		if e != a.db.events[0] {
			t.Errorf("shown %+v, stored %+v", e, a.db.events[0])
		}
	default:
		t.Error("the live feed did not show the write")
	}
	if queued.n.Load() != 0 || rec.Written() != 1 {
		t.Errorf("the recorder stored %d events itself, counted %d written", queued.n.Load(), rec.Written())
	}
}
