package e2e

// The dashboard in a real browser: headless Chromium (Debian's chromium),
// driven over its DevTools protocol by chromedp, against bootforge serving
// DHCP, TFTP and HTTP on a lab bridge where a QEMU VM PXE-boots.
//
// bootforge runs in the lab namespace; the browser runs in the test's own
// and reaches the management listener through a TCP forwarder whose
// connections are dialled from inside the lab namespace, so the page's
// origin is http://127.0.0.1:PORT and its cookie is that origin's.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// TestDashboard: a wrong token is refused; a read token sees the page
// but no controls, and the API refuses its writes; an admin sees a QEMU
// BIOS PXE boot appear in the live feed and the image versions verified,
// sets a one-shot from the page, and the next menu fetch for that MAC
// (curl, as iPXE asks) is the one-shot's entry. Screenshots go to the
// test's artifact directory.
func TestDashboard(t *testing.T) {
	need(t, "chromium", "curl")
	const mac = "52:54:00:da:5b:01"
	m := newMenuLab(t, menuLabOptions{
		Inventory: `inventory:
  default_profile: os
  profiles:
    - name: os
      menu:
        default: a
        timeout: 2s
        entries:
` + linuxEntries("", "a", "b"),
	})
	// Two image versions: one as built, one with a file changed since.
	icWriteVersion(t, m.Root, "demo@1.0.0", map[string][]byte{"vmlinuz": []byte("kernel one")})
	icWriteVersion(t, m.Root, "demo@1.1.0", map[string][]byte{"vmlinuz": []byte("kernel two")})
	if err := os.WriteFile(filepath.Join(m.Root, "images", "demo", "1.1.0", "vmlinuz"), []byte("kernel 2!!"), 0o644); err != nil {
		t.Fatal(err)
	}
	admin := strings.TrimSpace(m.cli(t, "token", "create", "--role", "admin", "--name", "dashboard-e2e"))
	read := strings.TrimSpace(m.cli(t, "token", "create", "--role", "read", "--name", "dashboard-e2e-read"))
	base := "http://" + forwardIntoLab(t, m.Lab.Netns, m.Server.APIAddr)
	shots := t.ArtifactDir()
	t.Logf("screenshots in %s (kept with go test -artifacts)", shots)

	// The page's protections, as the server sends them.
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy %q: want script-src 'self' and nothing unsafe", csp)
	}

	b := startBrowser(t, shots)

	// A wrong token: refused, the page says so, no cookie.
	b.run("wrong token", 30*time.Second,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), "bf_00000000_0000000000000000000000000000000000000000"),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#login-error")))
	if msg := b.text("#login-error"); !strings.Contains(msg, "Unknown or revoked token") {
		t.Errorf("after a wrong token the page says %q", msg)
	}
	b.screenshot("wrong-token")
	if c := b.cookie(base); c != nil {
		t.Errorf("a wrong token set the cookie %s=%s", c.Name, c.Value)
	}

	// A read token: the page, no controls, and the API refuses its writes
	// even with the header.
	b.login(read)
	b.run("read page", 20*time.Second, chromedp.WaitVisible(chromedp.CSS("#feed-section")))
	if b.eval(`document.getElementById("oneshot-form") === null`) != true {
		t.Error("a read token sees the one-shot form")
	}
	if got := b.eval(putNextBoot(mac, "b", true)); got != float64(403) {
		t.Errorf("PUT next-boot from the page with a read token: %v, want 403", got)
	}
	b.screenshot("read-token")
	b.run("logout", 20*time.Second, chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#token")))
	if c := b.cookie(base); c != nil {
		t.Errorf("logout left the cookie %s", c.Name)
	}

	// An admin token: the cookie is HttpOnly, SameSite=Strict, for the whole site.
	b.login(admin)
	b.run("admin page", 20*time.Second, chromedp.WaitVisible(chromedp.CSS("#oneshot-form")))
	c := b.cookie(base)
	if c == nil {
		t.Fatal("no session cookie after logging in with an admin token")
	}
	if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || c.Path != "/" || c.Secure {
		t.Errorf("session cookie: HttpOnly %v SameSite %q Path %q Secure %v; want HttpOnly, Strict, /, not Secure over plain HTTP",
			c.HTTPOnly, c.SameSite, c.Path, c.Secure)
	}
	// A write with the cookie but without the X-Bootforge header (what a
	// cross-site form would send) is refused.
	if got := b.eval(putNextBoot(mac, "b", false)); got != float64(403) {
		t.Errorf("PUT next-boot with the cookie but no X-Bootforge header: %v, want 403", got)
	}
	b.waitText("feed live", 20*time.Second, "#feed-state", "live")

	// A client with a hostile file name: its event is shown as text.
	hostile := "x<img src=x id=pwned>.txt"
	peer := m.Lab.AddHost(t, "192.0.2.10")
	peer.Exec(20*time.Second, "curl", "-s", "-o", "/dev/null", "--path-as-is", m.HTTP+"/x%3Cimg%20src=x%20id=pwned%3E.txt")
	b.run("hostile event", 20*time.Second, chromedp.WaitVisible(chromedp.CSS(`#feed tr[data-stage="file"]`)))
	if got := b.eval(`document.querySelector("#feed").textContent.includes(` + jsString(hostile) + `) && document.getElementById("pwned") === null`); got != true {
		t.Errorf("the hostile file name is not shown as text in the feed (or became an element): %v", got)
	}

	// A QEMU BIOS PXE boot appears in the live feed while the VM boots.
	vm := StartVM(t, VMOptions{Lab: m.Lab, Firmware: "bios", MAC: mac})
	row := fmt.Sprintf(`#feed tr.new[data-mac=%q]`, mac)
	b.run("DHCP in the feed", 90*time.Second, chromedp.WaitVisible(chromedp.CSS(row)))
	t.Logf("the VM's first event in the feed after %s", vm.Elapsed().Round(time.Millisecond))
	b.run("menu in the feed", 90*time.Second, chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#feed tr.new[data-mac=%q][data-stage="menu"]`, mac))))
	t.Logf("the VM's menu fetch in the feed after %s", vm.Elapsed().Round(time.Millisecond))
	// The image versions with the outcome of re-hashing them.
	b.waitText("image verified", 30*time.Second, `#images tr[data-image="demo@1.0.0"]`, "ok")
	b.waitText("image drift", 30*time.Second, `#images tr[data-image="demo@1.1.0"]`, "drift: demo@1.1.0: vmlinuz: digest differs")
	b.screenshot("boot-in-feed")
	vm.Kill() // its next boot is the curl below

	// A one-shot set from the page; the next menu fetch takes it.
	b.run("set one-shot", 20*time.Second,
		chromedp.SendKeys(chromedp.CSS("#oneshot-mac"), mac),
		chromedp.SendKeys(chromedp.CSS("#oneshot-entry"), "b"),
		chromedp.Click(chromedp.CSS("#oneshot-set")),
		chromedp.WaitVisible(chromedp.CSS("#oneshot-result.ok")),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#oneshots tr[data-mac=%q]`, mac))))
	if msg := b.text("#oneshot-result"); !strings.Contains(msg, mac) || !strings.Contains(msg, ": b") {
		t.Errorf("after setting the one-shot the page says %q", msg)
	}
	b.screenshot("one-shot-set")
	if e, s := m.nextBootState(t, mac); e != "b" || s != "pending" {
		t.Fatalf("after setting it from the page, host show says entry %q state %q, want b pending", e, s)
	}
	url := m.HTTP + "/bootforge/ipxe?mac=" + pxeMAC(mac) + "&buildarch=i386&platform=pcbios"
	script := peer.MustExec("curl", "-sS", "--fail", "--max-time", "20", url)
	if !strings.Contains(script, "bfmarker=os-b") || strings.Contains(script, "bfmarker=os-a") {
		t.Errorf("the menu fetch after the one-shot was set from the page: want entry b alone, got:\n%s", script)
	}
	// The page shows it delivered after its next refresh.
	b.waitText("one-shot delivered", 30*time.Second, fmt.Sprintf(`#oneshots tr[data-mac=%q]`, mac), "delivered")
	b.screenshot("one-shot-delivered")

	// Clearing it from the page removes it.
	b.run("clear one-shot", 20*time.Second,
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#oneshots tr[data-mac=%q] button.oneshot-clear`, mac))),
		chromedp.WaitNotPresent(chromedp.CSS(fmt.Sprintf(`#oneshots tr[data-mac=%q]`, mac))))
	if e, s := m.nextBootState(t, mac); e != "" {
		t.Errorf("after clearing it from the page, host show says entry %q state %q", e, s)
	}

	// The page's script ran without an uncaught error, and nothing broke
	// the Content-Security-Policy.
	for _, p := range b.problems() {
		t.Errorf("browser: %s", p)
	}

	// SIGTERM with the page's live feed open: the feed ends at once
	// rather than holding shutdown for its 30 s grace.
	start := time.Now()
	m.Server.Stop()
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("bootforge took %s to stop with the dashboard's feed open", el.Round(time.Millisecond))
	}
}

// putNextBoot is page script that sets a one-shot through the API with
// the session cookie, with or without the X-Bootforge header, and
// evaluates to the response status.
func putNextBoot(mac, entry string, header bool) string {
	h := `{"Content-Type": "application/json"}`
	if header {
		h = `{"Content-Type": "application/json", "X-Bootforge": "1"}`
	}
	return fmt.Sprintf(`fetch("/api/v1/next-boot/%s", {method: "PUT", credentials: "same-origin", headers: %s, body: JSON.stringify({entry: %q})}).then(r => r.status)`,
		mac, h, entry)
}

func jsString(s string) string { return fmt.Sprintf("%q", s) }

// forwardIntoLab listens on 127.0.0.1 in the test's namespace and
// forwards each connection to addr as dialled inside netns. It returns
// the listening address; it stops when the test ends.
func forwardIntoLab(t *testing.T, netns, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var up net.Conn
				if err := dhInNetns(netns, func() error {
					var err error
					up, err = net.DialTimeout("tcp", addr, 5*time.Second)
					return err
				}); err != nil {
					return
				}
				defer up.Close()
				done := make(chan struct{}, 2)
				go func() { io.Copy(up, c); done <- struct{}{} }()
				go func() { io.Copy(c, up); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}

// startBrowser starts headless Chromium; it is closed (the process
// killed and waited for) when the test ends. It notes the page's uncaught
// script errors and Content-Security-Policy violations.
func startBrowser(t *testing.T, shots string) *browser {
	t.Helper()
	b := &browser{t: t, shots: shots}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("chromium"),
		chromedp.NoSandbox, // the tests run as root
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1400, 1000),
		chromedp.UserDataDir(t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(b.listen))
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // kills Chromium and waits for it
	})
	// The first run starts the browser, which lives as long as the
	// context of that run: no timeout here.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	b.ctx = ctx
	b.run("enable the log", 10*time.Second, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{})
		return err
	}))
	return b
}

// browser runs steps in one tab.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string
	n     int

	mu    sync.Mutex
	trips []string // uncaught script errors and CSP violations
}

// listen notes uncaught script errors and CSP violations.
func (b *browser) listen(ev any) {
	var trip string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		trip = fmt.Sprintf("uncaught script error at %s:%d: %s", d.URL, d.LineNumber+1, d.Text)
		if d.Exception != nil && d.Exception.Description != "" {
			trip += " " + d.Exception.Description
		}
	case *cdplog.EventEntryAdded:
		if e := ev.Entry; e.Source == cdplog.EntrySourceSecurity || strings.Contains(e.Text, "Content Security Policy") {
			trip = fmt.Sprintf("%s %s: %s", e.Source, e.Level, e.Text)
		}
	}
	if trip != "" {
		b.mu.Lock()
		b.trips = append(b.trips, trip)
		b.mu.Unlock()
	}
}

func (b *browser) problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.trips...)
}

// run runs actions within timeout; a failure saves a screenshot and
// fails the test now.
func (b *browser) run(step string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("not done within %s", timeout)
		}
		b.screenshot("failed-" + strings.ReplaceAll(step, " ", "-"))
		b.t.Fatalf("browser, %s: %v", step, err)
	}
}

func (b *browser) login(token string) {
	b.t.Helper()
	b.run("login", 20*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#feed-section")))
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	var s string
	b.run("read "+sel, 10*time.Second, chromedp.Func(func(ctx context.Context, t *chromedp.Target) (err error) {
		s, err = chromedp.Text(chromedp.CSS(sel))(ctx, t)
		return err
	}))
	return s
}

// waitText waits until sel's text contains want.
func (b *browser) waitText(step string, timeout time.Duration, sel, want string) {
	b.t.Helper()
	b.run(step, timeout, chromedp.Poll[chromedp.Void](fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e !== null && e.textContent.includes(%q); })()`, sel, want),
		chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
}

// eval evaluates page script, awaiting a promise, and returns its value.
func (b *browser) eval(js string) any {
	b.t.Helper()
	var v any
	b.run("eval", 20*time.Second, chromedp.Func(func(ctx context.Context, t *chromedp.Target) (err error) {
		v, err = chromedp.Evaluate[any](js, chromedp.EvalAwaitPromise)(ctx, t)
		return err
	}))
	return v
}

// cookie returns the session cookie the browser holds for base, or nil.
func (b *browser) cookie(base string) *network.Cookie {
	b.t.Helper()
	var found *network.Cookie
	b.run("cookies", 10*time.Second, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/"}})
		for _, c := range res.Cookies {
			if c.Name == "bootforge_token" {
				found = c
			}
		}
		return err
	}))
	return found
}

// screenshot saves the whole page as NN-name.png.
func (b *browser) screenshot(name string) {
	b.n++
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.n, name))
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
	}
}

// TestDashboardHostsWithoutMAC: a host known by its SMBIOS UUID alone is
// a row of the hosts table like any other, with its name and profile.
// The table was keyed by MAC only, so such a host (which the API and
// `host list` show) was missing from the dashboard altogether.
func TestDashboardHostsWithoutMAC(t *testing.T) {
	need(t, "chromium", "curl")
	s := StartServer(t, ServerOptions{Config: aeConfig})
	admin := aeToken(t, s, "admin", "dashboard")
	base := "http://" + s.APIAddr
	for name, body := range map[string]string{
		"bymac":  `{"macs":["52:54:00:aa:00:31"]}`,
		"byuuid": `{"uuid":"4c4c4544-0042-3510-8052-b4c04f4a4d32"}`,
	} {
		r, err := aeCurl(t, base+"/api/v1/hosts/"+name, "-X", "PUT", "-H", "Authorization: Bearer "+admin, "--data-binary", body)
		if err != nil || r.code != 200 {
			t.Fatalf("PUT host %s: %v %d %s", name, err, r.code, r.body)
		}
	}
	b := startBrowser(t, t.TempDir())
	b.run("open", 20*time.Second, chromedp.Navigate(base+"/"))
	b.login(admin)
	b.waitText("host by MAC", 20*time.Second, "#hosts", "bymac")
	b.waitText("host by UUID", 10*time.Second, "#hosts", "byuuid")
	if row := b.text(`#hosts tr[data-host="byuuid"]`); !strings.Contains(row, "lab") || !strings.Contains(row, "4c4c4544-0042-3510-8052-b4c04f4a4d32") {
		t.Errorf("the UUID-only host's row: %q, want its UUID and profile lab", row)
	}
	if p := b.problems(); len(p) > 0 {
		t.Errorf("the page had problems: %v", p)
	}
}
