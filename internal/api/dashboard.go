// The dashboard is a web page on the API listener, at /. It lives in this
// package, not one of its own, because it is nothing but a client of this
// API on the same origin: it signs in with the same tokens, checked by the
// same code, and every read and write it makes goes through the /api/v1
// endpoints and their one write path, so it can show nothing and change
// nothing that a token holder could not with curl. What it adds here is
// small: the page (ui/, plain HTML, CSS and JavaScript embedded in the
// binary: no build step, nothing fetched from elsewhere), a login that
// keeps the token in a cookie, the live boot feed (/api/v1/events/stream)
// and the image list (/api/v1/images).
//
// The cookie is HttpOnly, SameSite=Strict and, under TLS, Secure. The API
// takes it in place of the Authorization header; a write made with it must
// also carry the header X-Bootforge: 1, which a cross-site form cannot
// send. The page's Content-Security-Policy allows scripts, styles and
// connections from this origin only, and no inline script.
package api

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
)

// sessionCookie holds the dashboard's token.
const sessionCookie = "bootforge_token"

// csrfHeader must accompany a write made with the session cookie.
const csrfHeader = "X-Bootforge"

//go:embed ui
var uiFiles embed.FS

var (
	pageTemplate = template.Must(template.ParseFS(uiFiles, "ui/page.html"))
	staticFiles  = func() fs.FS { f, _ := fs.Sub(uiFiles, "ui/static"); return f }()
)

// contentSecurityPolicy allows nothing but this origin's own script, style
// and requests: no inline script, no frames, forms posting here only.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// dashboardRoutes adds the page, its files, login and logout.
func (s *Server) dashboardRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("POST /ui/login", s.login)
	mux.HandleFunc("POST /ui/logout", s.logout)
	mux.Handle("GET /ui/", http.StripPrefix("/ui/", pageHeaders(http.FileServerFS(staticFiles))))
}

// pageHeaders sets the browser protections on everything the dashboard serves.
func pageHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w)
		next.ServeHTTP(w, r)
	})
}

func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin") // "no-referrer" would make the login form's Origin "null"
	h.Set("Cache-Control", "no-store")
}

// pageData fills ui/page.html: the login form when Role is empty.
type pageData struct {
	Role  string
	Error string
}

func renderPage(w http.ResponseWriter, status int, d pageData) {
	setPageHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	pageTemplate.Execute(w, d)
}

// page shows the dashboard to a valid session, else the login form.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		renderPage(w, http.StatusOK, pageData{})
		return
	}
	role, err := lookupRole(s.DB, c.Value)
	if err != nil { // the session stays: the token may well be good
		renderPage(w, http.StatusServiceUnavailable, pageData{Error: "The server could not check your token (" + err.Error() + "); reload to try again."})
		return
	}
	if role == "" {
		clearSession(w, r)
		renderPage(w, http.StatusOK, pageData{Error: "Your token is no longer valid; sign in again."})
		return
	}
	renderPage(w, http.StatusOK, pageData{Role: role})
}

// login checks the token of the login form and keeps it in the session
// cookie. A wrong token sets no cookie.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		renderPage(w, http.StatusForbidden, pageData{Error: "The login came from another site; refused."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		renderPage(w, http.StatusBadRequest, pageData{Error: "The login form could not be read."})
		return
	}
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	role, err := lookupRole(s.DB, tok)
	if err != nil {
		renderPage(w, http.StatusServiceUnavailable, pageData{Error: "The server could not check the token (" + err.Error() + "); try again."})
		return
	}
	if role == "" {
		renderPage(w, http.StatusUnauthorized, pageData{Error: "Unknown or revoked token: not signed in."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: tok, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout forgets the session cookie.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		renderPage(w, http.StatusForbidden, pageData{Error: "The logout came from another site; refused."})
		return
	}
	clearSession(w, r)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

// sameOrigin refuses a form posted from another site: browsers send
// Origin with every POST, and it must name this host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true // not a browser, or an old one: SameSite still holds
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// withSession lets the dashboard's session cookie stand for the bearer
// token of a request that has no Authorization header. A write made with
// the cookie needs the X-Bootforge header too: a cross-site form cannot
// set it, and a cross-site script may not without a CORS preflight, which
// this server never grants.
func (s *Server) withSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		if err != nil || c.Value == "" || r.Header.Get("Authorization") != "" || !strings.HasPrefix(r.URL.Path, "/api/") {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Header.Get(csrfHeader) != "1" {
			writeError(w, http.StatusForbidden, "forbidden", "", "a write signed in by the dashboard's cookie needs the header "+csrfHeader+": 1")
			return
		}
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+c.Value)
		next.ServeHTTP(w, r)
	})
}
