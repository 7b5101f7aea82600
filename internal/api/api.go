// Package api is bootforge's management API, /api/v1, served with the
// health endpoints on the management listener — a separate address from
// the boot listeners, so that it can live on the management network only.
//
// Every request but the health checks, the OpenAPI document and /metrics
// (unless api.metrics_auth) carries a bearer token (`bootforge token
// create --role read|admin`); tokens are stored hashed. Reads need the
// read role, writes admin, and every write is itself a boot-log event. Errors are JSON with a stable code and, for
// a bad request, the field at fault.
//
// Every client gets the same answer for the same mistake, whatever its
// HTTP library: a body past MaxBody is 413 (not a cut body that fails as
// "unexpected EOF"), a body is one JSON value with each key once (a second
// parser keeping the other duplicate would see another request), a method
// the path does not take is 405 with Allow, and the bearer scheme is
// matched in any case, as RFC 7235 says.
//
// api.allow, if set, is checked before anything else, the health checks
// included: a client outside it gets 403 in the same JSON shape, code
// "client_not_allowed". The listener is on 127.0.0.1 by default; the
// allow-list is for when it is not.
package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"bootforge/internal/allow"
	"bootforge/internal/api/strictjson"
	"bootforge/internal/audit"
	"bootforge/internal/boot"
	"bootforge/internal/catalog"
	"bootforge/internal/config"
	"bootforge/internal/dhcp/lease"
	"bootforge/internal/inventory"
	"bootforge/internal/store"
)

//go:embed openapi.json
var openAPI []byte

// Store is what the API reads and writes: hosts and one-shots (through
// an inventory.Service), tokens, leases and the boot log. *store.SQLite
// is one; the unit tests use a fake.
type Store interface {
	inventory.WriteStore
	TokenStore
	Ping() error
	LoadLeases() ([]lease.Lease, error)
	Events(store.EventFilter) ([]audit.Event, error)
}

// Server answers the API.
type Server struct {
	DB        Store
	Inventory func() *boot.Inventory
	// Events, if set, makes every host and one-shot write a boot-log
	// event, written by DB in the write's transaction (audit.Changes).
	Events audit.Changes
	// Ready lists what is not ready yet (empty: ready).
	Ready func() []string
	// CheckKernel, if set, refuses a Secure Boot host that could be handed
	// an unsigned kernel, as loading the inventory would (see
	// inventory.Source.CheckKernel).
	CheckKernel func(path string) error
	// Store names the store the server uses (for SQLite, the file), so
	// that a command run beside the server can tell it opened another.
	Store string
	// Feed, if set, is the live boot log for /api/v1/events/stream, the
	// dashboard's feed.
	Feed Feed
	// Images, if set, is the catalog whose versions /api/v1/images lists:
	// a function, since it is that of the root being served, which a
	// reload may move.
	Images func() *catalog.Catalog
	// Metrics, if set, answers /metrics: without a token, or with a read
	// token when MetricsAuth is set (api.metrics_auth).
	Metrics     http.Handler
	MetricsAuth bool
	// Log, if set, gets a line for each client refused by the allow-list.
	Log *slog.Logger

	allow atomic.Pointer[allow.List] // api.allow (SetAllow)

	streams  streams       // live feeds open (stream.go)
	verified verifications // image verify results (images.go)
}

// Handler returns the mux for the management listener.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPI)
	})
	mux.Handle("GET /api/v1/health", s.auth(RoleRead, noQuery(s.readyz)))
	mux.Handle("GET /api/v1/hosts", s.auth(RoleRead, noQuery(s.listHosts)))
	mux.Handle("PUT /api/v1/hosts/{name}", s.auth(RoleAdmin, noQuery(s.putHost)))
	mux.Handle("DELETE /api/v1/hosts/{name}", s.auth(RoleAdmin, noQuery(s.deleteHost)))
	mux.Handle("GET /api/v1/profiles", s.auth(RoleRead, noQuery(s.listProfiles)))
	mux.Handle("GET /api/v1/next-boot", s.auth(RoleRead, noQuery(s.listNextBoots)))
	mux.Handle("PUT /api/v1/next-boot/{mac}", s.auth(RoleAdmin, noQuery(s.putNextBoot)))
	mux.Handle("DELETE /api/v1/next-boot/{mac}", s.auth(RoleAdmin, noQuery(s.deleteNextBoot)))
	mux.Handle("GET /api/v1/leases", s.auth(RoleRead, noQuery(s.listLeases)))
	mux.Handle("GET /api/v1/events", s.auth(RoleRead, s.listEvents))
	mux.Handle("GET /api/v1/events/stream", s.auth(RoleRead, noQuery(s.streamEvents)))
	mux.Handle("GET /api/v1/images", s.auth(RoleRead, noQuery(s.listImages)))
	s.dashboardRoutes(mux)
	if s.Metrics != nil {
		if s.MetricsAuth {
			mux.Handle("GET /metrics", s.auth(RoleRead, s.Metrics.ServeHTTP))
		} else {
			mux.Handle("GET /metrics", s.Metrics)
		}
	}
	mux.HandleFunc("/", noRoute(mux))
	return s.allowClients(cleanPathsOnly(s.withSession(mux)))
}

// cleanPathsOnly answers 404 to a path with an empty, "." or ".." segment
// ("/api/v1//hosts", "/api/v1/hosts/../tokens"). ServeMux would answer it
// with a 307 to the cleaned path, in HTML and before any token is looked
// at: a script expects JSON, and one that follows redirects would send its
// token on to an endpoint it never named. A path names its endpoint as
// written; the message says which one was likely meant.
func cleanPathsOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The escaped path, as ServeMux cleans it: "%2e%2e" is a name, not a step up.
		p := r.URL.EscapedPath()
		if clean := cleanPath(p); clean != p && r.Method != http.MethodConnect {
			writeError(w, http.StatusNotFound, "not_found", "", fmt.Sprintf(
				"no such endpoint: %s %s: a path is taken as written, without empty, \".\" or \"..\" segments (did you mean %s?)",
				r.Method, r.URL.Path, clean))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// cleanPath is the path ServeMux routes p by: rooted, with path.Clean's
// rules, keeping a trailing slash.
func cleanPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean
}

// queryParam names a parameter in a message as a query string has it.
func queryParam(name string) string { return name }

// noQuery refuses a query parameter on an endpoint that takes none (all
// but /api/v1/events): ignored, ?name=pc1 on /hosts answered every host.
func noQuery(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query(); len(q) > 0 {
			k := slices.Sorted(maps.Keys(q))[0]
			writeError(w, http.StatusBadRequest, "bad_request", k,
				fmt.Sprintf("%s takes no query parameters; %q is one", r.URL.Path, k))
			return
		}
		next(w, r)
	}
}

// SetAllow replaces the clients the API answers (api.allow); an empty list
// allows every client.
func (s *Server) SetAllow(l allow.List) { s.allow.Store(&l) }

// allowClients answers 403 to a client outside api.allow, before any
// route, token or cookie is looked at.
func (s *Server) allowClients(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := s.allow.Load().Request(r)
		if d.Allowed {
			next.ServeHTTP(w, r)
			return
		}
		if s.Log != nil {
			s.Log.Warn("api: refused", "client", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "reason", d.Reason)
		}
		writeError(w, http.StatusForbidden, "client_not_allowed", "", d.Reason)
	})
}

// noRoute answers what no route takes: 405 with Allow when the path has
// routes for other methods, else 404. ServeMux would answer 405 itself,
// but as text; this catch-all keeps every error JSON and asks the mux
// which methods the path has.
func noRoute(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{"DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "/" {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			writeError(w, http.StatusNotFound, "not_found", "", "no such endpoint: "+r.Method+" "+r.URL.Path)
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "",
			fmt.Sprintf("%s is not allowed on %s; it takes %s", r.Method, r.URL.Path, strings.Join(allow, ", ")))
	}
}

// apiError is the body of every error.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, field, msg string) {
	writeJSON(w, status, apiError{Code: code, Message: msg, Field: field})
}

// auth requires a bearer token with at least role.
func (s *Server) auth(role string, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// RFC 7235: the scheme is case-insensitive, "bearer" as good as "Bearer".
		scheme, tok, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
		tok = strings.TrimSpace(tok)
		if !strings.EqualFold(scheme, "Bearer") || tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="bootforge"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "", "a bearer token is required (bootforge token create)")
			return
		}
		got, err := lookupRole(s.DB, tok)
		switch {
		case err != nil:
			// Not the client's fault, and no revocation: say so, so that
			// a store outage does not read as a revoked token.
			writeError(w, http.StatusServiceUnavailable, "store", "", "could not check the token: "+err.Error())
		case got == "":
			w.Header().Set("WWW-Authenticate", `Bearer realm="bootforge", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "", "unknown or revoked token")
		case role == RoleAdmin && got != RoleAdmin:
			writeError(w, http.StatusForbidden, "forbidden", "", "this needs an admin token; yours is "+got)
		default:
			next(w, r)
		}
	})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	var problems []string
	if s.Ready != nil {
		problems = s.Ready()
	}
	if err := s.DB.Ping(); err != nil {
		problems = append(problems, "store unreachable (DHCP offers nothing new; renewals are answered from the cache): "+err.Error())
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "problems": problems})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "store": s.Store})
}

// hostService is the write service for hosts and one-shots, shared with
// the CLI: the same rules, the same events, the same views.
func (s *Server) hostService() *inventory.Service {
	return &inventory.Service{Store: s.DB, Inventory: s.Inventory, Events: s.Events, CheckKernel: s.CheckKernel}
}

// actor names the client making a write, for the boot log.
func actor(r *http.Request) inventory.Actor {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return inventory.Actor{Protocol: "api", Who: host}
}

// writeServiceError answers a refusal of the inventory service: 400, 404
// or 409 naming the field, and 500 for anything else (the store).
func writeServiceError(w http.ResponseWriter, err error) {
	var e *inventory.Error
	if !errors.As(err, &e) {
		writeError(w, http.StatusInternalServerError, "store", "", err.Error())
		return
	}
	switch e.Kind {
	case inventory.Conflict:
		writeError(w, http.StatusConflict, "conflict", e.Field, e.Msg)
	case inventory.NotFound:
		writeError(w, http.StatusNotFound, "not_found", e.Field, e.Msg)
	default:
		writeError(w, http.StatusBadRequest, "bad_request", e.Field, e.Msg)
	}
}

// MaxBody bounds a request body. The API's bodies are a host or a
// one-shot: a few hundred bytes.
const MaxBody = 1 << 20

// decode reads a JSON body strictly: at most MaxBody bytes (413 past it),
// exactly one value, each key once, no unknown fields. A refusal names
// the field at fault.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", "", fmt.Sprintf("the body is over the limit of %d bytes", mb.Limit))
		} else {
			writeError(w, http.StatusBadRequest, "bad_request", "", "reading the body: "+err.Error())
		}
		return false
	}
	err = strictjson.Check(data)
	if err == nil {
		// Every body is an object: null, which encoding/json takes for
		// "leave v as it is", would be an empty request.
		if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] != '{' {
			writeError(w, http.StatusBadRequest, "bad_request", "", "the body must be a JSON object, not "+jsonValue(t[0]))
			return false
		}
		err = strictjson.Decode(data, v)
	}
	if err != nil {
		field, msg := "", err.Error()
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		var dup *strictjson.DuplicateKeyError
		switch {
		case errors.As(err, &dup):
			field, msg = dup.Path, fmt.Sprintf("duplicate key %q: give each key once (keys are matched ignoring case)", dup.Key)
		case errors.As(err, &te):
			field, msg = te.Field, fmt.Sprintf("%s must be %s, not %s", te.Field, jsonType(te.Type, false), jsonKind(te.Value))
			if ft := fieldType(v, te.Field); ft != nil && ft.Kind() == reflect.Slice && ft.Elem() == te.Type {
				// encoding/json names the array, not the item.
				msg = fmt.Sprintf("each item of %s must be %s, not %s", te.Field, jsonType(te.Type, false), jsonKind(te.Value))
			}
		case errors.As(err, &se):
			msg = fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, err)
		case strings.HasPrefix(msg, "json: unknown field "):
			field = strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`)
			msg = "unknown field " + field
		case errors.Is(err, io.ErrUnexpectedEOF):
			msg = "the body ends inside the JSON value"
		case errors.Is(err, io.EOF):
			msg = "the request needs a JSON body"
		}
		writeError(w, http.StatusBadRequest, "bad_request", field, msg)
		return false
	}
	return true
}

// jsonValue names the kind of the JSON value that starts with b.
func jsonValue(b byte) string {
	switch b {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 'n':
		return "null"
	case 't', 'f':
		return "true or false"
	}
	return "a number"
}

// jsonKind names a JSON kind as encoding/json's UnmarshalTypeError.Value
// gives it ("string", "number", "number 1.5", "bool", "array", "object").
func jsonKind(value string) string {
	kind, _, _ := strings.Cut(value, " ")
	switch kind {
	case "bool":
		return "true or false"
	case "array", "object":
		return "an " + kind
	case "string", "number":
		return "a " + kind
	}
	return value
}

// fieldType is the Go type of the top-level field of *v that JSON names
// name, or nil.
func fieldType(v any, name string) reflect.Type {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	t = t.Elem()
	for i := range t.NumField() {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == name || (tag == "" && f.Name == name) {
			return f.Type
		}
	}
	return nil
}

// jsonType says in JSON's words what a field of Go type t must be, e.g.
// "an array of strings" for []string: a client need not know Go.
func jsonType(t reflect.Type, plural bool) string {
	one := func(singular, many string) string {
		if plural {
			return many
		}
		return singular
	}
	switch t.Kind() {
	case reflect.Pointer:
		return jsonType(t.Elem(), plural)
	case reflect.String:
		return one("a string", "strings")
	case reflect.Bool:
		return one("true or false", "true or false values")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return one("a number", "numbers")
	case reflect.Slice, reflect.Array:
		return one("an array of ", "arrays of ") + jsonType(t.Elem(), true)
	case reflect.Struct, reflect.Map:
		return one("an object", "objects")
	}
	return one("a value of another type", "values of another type")
}

func (s *Server) listHosts(w http.ResponseWriter, r *http.Request) {
	hosts, err := s.hostService().Hosts()
	if err != nil {
		writeServiceError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, hosts)
}

// putHost takes a host as the inventory files write it (config.Host); its
// name is the path's, and a name in the body must agree.
func (s *Server) putHost(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var b config.Host
	if !decode(w, r, &b) {
		return
	}
	if b.Name != "" && b.Name != name {
		writeError(w, http.StatusBadRequest, "bad_request", "name", fmt.Sprintf("the body names host %q, the path %q", b.Name, name))
		return
	}
	b.Name = name
	if _, err := s.hostService().PutHost(actor(r), b); err != nil {
		writeServiceError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "stored", "name": name})
}

func (s *Server) deleteHost(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.hostService().DeleteHost(actor(r), name); err != nil {
		writeServiceError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "removed", "name": name})
}

func (s *Server) listProfiles(w http.ResponseWriter, r *http.Request) {
	type view struct {
		Name       string   `json:"name"`
		Priority   int      `json:"priority,omitempty"`
		Rules      int      `json:"rules"`
		Entries    []string `json:"entries"`
		Default    string   `json:"default,omitempty"`
		SecureBoot bool     `json:"secure_boot,omitempty"`
		Source     string   `json:"source"`
	}
	out := []view{}
	for _, p := range s.Inventory().Profiles() {
		v := view{Name: p.Name, Priority: p.Priority, Rules: len(p.Match), Default: p.Menu.Default, SecureBoot: p.SecureBoot, Source: p.Source, Entries: []string{}}
		for _, e := range p.Menu.Entries {
			v.Entries = append(v.Entries, e.Name)
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

type nextBootBody struct {
	Entry   string `json:"entry"`
	Expires string `json:"expires"` // a duration such as "2h" (inventory.ParseExpires); empty: never
	Always  bool   `json:"always"`
}

func (s *Server) listNextBoots(w http.ResponseWriter, r *http.Request) {
	shots, err := s.hostService().NextBoots()
	if err != nil {
		writeServiceError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, shots)
}

func (s *Server) putNextBoot(w http.ResponseWriter, r *http.Request) {
	var b nextBootBody
	if !decode(w, r, &b) {
		return
	}
	expires, err := inventory.ParseExpires(b.Expires)
	if err != nil {
		writeServiceError(w, err)
		return
	}
	req := inventory.NextBootRequest{Entry: b.Entry, Expires: expires, Always: b.Always}
	res, err := s.hostService().SetNextBoot(actor(r), r.PathValue("mac"), req)
	if err != nil {
		writeServiceError(w, err)
		return
	}
	out := map[string]string{"status": string(res.State), "mac": res.MAC, "entry": res.Entry}
	if note := res.Note(); note != "" {
		out["note"] = note
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteNextBoot(w http.ResponseWriter, r *http.Request) {
	mac, err := s.hostService().ClearNextBoot(actor(r), r.PathValue("mac"))
	if err != nil {
		writeServiceError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "cleared", "mac": mac})
}

func (s *Server) listLeases(w http.ResponseWriter, r *http.Request) {
	leases, err := s.DB.LoadLeases()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store", "", err.Error())
		return
	}
	type view struct {
		IP       string `json:"ip"`
		MAC      string `json:"mac,omitempty"`
		Hostname string `json:"hostname,omitempty"`
		State    string `json:"state"`
		Expires  string `json:"expires"`
	}
	out := []view{}
	for _, l := range leases {
		v := view{IP: l.IP.String(), Hostname: l.Hostname, State: string(l.State), Expires: l.Expires.Format(time.RFC3339)}
		if l.MAC != nil {
			v.MAC = l.MAC.String()
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

// eventParams are the boot log's filters, in the order errors name them.
var eventParams = []string{"mac", "ip", "stage", "since", "limit", "before"}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// A parameter it does not know, or one given twice, would be ignored
	// and the log returned as if filtered: refused, as an unknown field
	// or a duplicate key of a body is.
	for _, k := range slices.Sorted(maps.Keys(q)) {
		switch {
		case !slices.Contains(eventParams, k):
			writeError(w, http.StatusBadRequest, "bad_request", k,
				fmt.Sprintf("unknown query parameter %q; the boot log is filtered by %s", k, strings.Join(eventParams, ", ")))
			return
		case len(q[k]) > 1:
			writeError(w, http.StatusBadRequest, "bad_request", k, fmt.Sprintf("query parameter %q is given twice; give it once", k))
			return
		}
	}
	f := store.EventFilter{Stage: q.Get("stage")}
	// A stage is a word such as ack or one-shot; PostgreSQL would answer
	// text that is not UTF-8 with a raw error (500).
	if st := f.Stage; len(st) > 64 || !utf8.ValidString(st) || strings.ContainsFunc(st, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) {
		writeError(w, http.StatusBadRequest, "bad_request", "stage", fmt.Sprintf("%q is not a stage like ack, menu or one-shot", st))
		return
	}
	if m := q.Get("mac"); m != "" {
		mac, err := net.ParseMAC(m)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "mac", fmt.Sprintf("%q is not a MAC address", m))
			return
		}
		f.MAC = mac.String()
	}
	if ip := q.Get("ip"); ip != "" {
		if _, err := netip.ParseAddr(ip); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "ip", fmt.Sprintf("%q is not an IP address", ip))
			return
		}
		f.IP = audit.ClientIP(ip)
	}
	if sv := q.Get("since"); sv != "" {
		d, err := time.ParseDuration(sv)
		if err == nil {
			err = store.CheckQuery(d, 1, 0, queryParam)
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "since", fmt.Sprintf("%q is not a duration like 1h: %v", sv, err))
			return
		}
		if d > 0 { // 0: no bound, as `bootforge log --since 0`
			f.Since = time.Now().Add(-d)
		}
	}
	if lv := q.Get("limit"); lv != "" {
		// The whole value, as `bootforge log --limit` reads it: Sscanf
		// would take 5abc for 5.
		var err error
		if f.Limit, err = strconv.Atoi(lv); err != nil || f.Limit < 1 {
			writeError(w, http.StatusBadRequest, "bad_request", "limit", fmt.Sprintf("%q is not a positive number", lv))
			return
		}
		if err := store.CheckQuery(0, f.Limit, 0, queryParam); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "limit", err.Error())
			return
		}
	}
	if bv := q.Get("before"); bv != "" {
		var err error
		if f.Before, err = strconv.ParseInt(bv, 10, 64); err != nil || f.Before < 1 {
			writeError(w, http.StatusBadRequest, "bad_request", "before", fmt.Sprintf("%q is not an event ID", bv))
			return
		}
	}
	events, err := s.DB.Events(f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store", "", err.Error())
		return
	}
	if events == nil {
		events = []audit.Event{}
	}
	writeJSON(w, http.StatusOK, events)
}
