package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"bootforge/internal/boot"
	"bootforge/internal/config"
	"bootforge/internal/image"
)

// Status is what one check found on one mirror.
type Status struct {
	URL string `json:"url"`
	// OK: every active version of the primary is on the mirror with the
	// same manifest. Only then is the mirror used.
	OK       bool      `json:"ok"`
	Versions []string  `json:"versions"` // NAME@VERSION verified, when OK
	Reason   string    `json:"reason"`   // why not OK
	Checked  time.Time `json:"checked"`
}

// Check fetches, from the mirror at base, the manifest of every version in
// want (the primary's active ones) and compares its SHA-256 with the
// primary's. The mirror's own file server refuses files that do not match
// its manifests, so equal manifests mean equal files.
func Check(ctx context.Context, client *http.Client, base string, want Index) Status {
	st := Status{URL: base, Checked: time.Now()}
	s := &Syncer{Base: base, Client: client}
	for _, v := range want.Versions {
		id, err := v.ID()
		if err != nil {
			st.Reason = err.Error()
			return st
		}
		data, err := s.get(ctx, v.Manifest, maxManifest)
		var se *StatusError
		switch {
		case errors.As(err, &se) && se.Code == http.StatusNotFound:
			st.Reason = fmt.Sprintf("missing %s", id)
			return st
		case err != nil:
			st.Reason = "unreachable: " + err.Error()
			return st
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != v.SHA256 {
			st.Reason = fmt.Sprintf("%s differs: manifest sha256 %x, this server's %s", id, sum, v.SHA256)
			return st
		}
		st.Versions = append(st.Versions, id.String())
	}
	st.OK = true
	return st
}

// Checker checks the configured mirrors in the background and says which
// may be used.
type Checker struct {
	mirrors []config.Mirror
	index   func() (Index, error)
	client  *http.Client
	log     *slog.Logger
	kick    chan struct{}

	mu    sync.Mutex
	state map[string]Status // by URL
}

// NewChecker checks mirrors against index (the primary's active versions).
func NewChecker(mirrors []config.Mirror, index func() (Index, error), log *slog.Logger) *Checker {
	return &Checker{mirrors: mirrors, index: index, log: log, kick: make(chan struct{}, 1),
		client: &http.Client{Timeout: 30 * time.Second, CheckRedirect: noRedirects.CheckRedirect}, state: map[string]Status{}}
}

// Run checks at once, then every interval and whenever Kick is called,
// until ctx ends.
func (c *Checker) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		c.CheckAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
	}
}

// Kick asks Run for a check now (SIGHUP).
func (c *Checker) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// CheckAll checks every mirror once and logs each change of state.
func (c *Checker) CheckAll(ctx context.Context) []Status {
	idx, err := c.index()
	var out []Status
	for _, m := range c.mirrors {
		var st Status
		if err != nil {
			st = Status{URL: m.URL, Checked: time.Now(), Reason: "this server's image index: " + err.Error()}
		} else {
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			st = Check(cctx, c.client, m.URL, idx)
			cancel()
		}
		if ctx.Err() != nil {
			return out
		}
		c.mu.Lock()
		prev, seen := c.state[m.URL]
		c.state[m.URL] = st
		c.mu.Unlock()
		out = append(out, st)
		if seen && prev.OK == st.OK && prev.Reason == st.Reason {
			continue
		}
		if st.OK {
			c.log.Info("mirror verified: clients of its subnets get image files from it", "mirror", m.URL, "versions", strings.Join(st.Versions, ","))
		} else {
			c.log.Warn("mirror not used: its clients get image files from this server", "mirror", m.URL, "reason", st.Reason)
		}
	}
	return out
}

// Statuses is the last check of each mirror, in config order; a mirror
// not checked yet is not OK.
func (c *Checker) Statuses() []Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Status, len(c.mirrors))
	for i, m := range c.mirrors {
		st, ok := c.state[m.URL]
		if !ok {
			st = Status{URL: m.URL, Reason: "not checked yet"}
		}
		out[i] = st
	}
	return out
}

// Mirrors is the configured mirrors with the versions last verified on
// each (none for a mirror that is not OK), for boot.ChooseMirror.
func (c *Checker) Mirrors() []boot.Mirror {
	sts := c.Statuses()
	out := make([]boot.Mirror, len(c.mirrors))
	for i, m := range c.mirrors {
		out[i] = BootMirror(m, sts[i])
	}
	return out
}

// BootMirror is a configured mirror as the boot decision sees it.
func BootMirror(m config.Mirror, st Status) boot.Mirror {
	b := boot.Mirror{URL: m.URL, Relays: m.Relays, Redirect: m.Redirect}
	for _, p := range m.Subnets {
		b.Subnets = append(b.Subnets, p.Prefix)
	}
	if st.OK && len(st.Versions) > 0 {
		b.Versions = map[string]bool{}
		for _, v := range st.Versions {
			b.Versions[v] = true
		}
	}
	return b
}

// Redirect is the file server's 302 for a request by client of path: the
// same path on a verified mirror with redirect on that serves the client
// and holds the path's image version; "" for none. relay is the giaddr
// DHCP last saw the client through, if any.
func Redirect(mirrors []boot.Mirror, client, relay netip.Addr, path string) string {
	v, ok := versionOf(path)
	if !ok {
		return ""
	}
	m, ok := boot.MirrorFor(client, relay, v, mirrors)
	if !ok {
		return ""
	}
	// Escaped as sync escapes it (fileURL): the file server hands
	// Location on as it is, and a name with '#', '?', '%' or a space is
	// one path only escaped.
	return strings.TrimSuffix(m.URL, "/") + (&url.URL{Path: "/" + strings.TrimPrefix(path, "/")}).EscapedPath()
}

// versionOf is the image version a served path belongs to, but not its
// manifest or signature, which stay on this server.
func versionOf(p string) (string, bool) {
	id, ok := image.OfPath(p)
	if !ok {
		return "", false
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(p, "/"), id.Dir()+"/")
	if rest == image.ManifestName || strings.HasSuffix(rest, ".sig") {
		return "", false
	}
	return id.String(), true
}
