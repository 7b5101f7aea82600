package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"bootforge/internal/audit"
)

// Feed is the live boot log; *audit.Recorder is one.
type Feed interface {
	Subscribe(n int) *audit.Subscription
}

// Bounds of the live feed: watchers at once, events buffered for each
// (past that a slow watcher misses events and is told how many), and the
// keep-alive comment that finds dead connections.
const (
	maxStreams   = 16
	streamBuffer = 256
	streamPing   = 20 * time.Second
)

// streamRecheck is how often a feed asks the store whether its token is
// still valid: before an event is sent when the last check is older, and
// at each ping. A revoked token's feed ends within it, without the
// lookup per event that a boot storm would multiply by every feed.
var streamRecheck = time.Second

// streams are the live feeds being served; CloseStreams ends them.
type streams struct {
	open     atomic.Int32
	initOnce sync.Once
	stopOnce sync.Once
	stop     chan struct{}
}

func (st *streams) done() chan struct{} {
	st.initOnce.Do(func() { st.stop = make(chan struct{}) })
	return st.stop
}

// CloseStreams ends every live feed: an http.Server's Shutdown waits for
// requests to finish, and a feed never does by itself. Register it with
// the server's RegisterOnShutdown.
func (s *Server) CloseStreams() {
	ch := s.streams.done()
	s.streams.stopOnce.Do(func() { close(ch) })
}

// streamEvents sends boot-log events as they are recorded, as server-sent
// events (text/event-stream): each a "boot" event whose data is the event
// as /api/v1/events returns it. A "dropped" event says how many this
// watcher missed because it read too slowly. A "revoked" event ends the
// feed of a token revoked meanwhile (checked every streamRecheck).
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) {
	if s.Feed == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "", "the boot log is off (audit.enabled: false)")
		return
	}
	if r.Method == http.MethodHead { // the headers a feed would have, and no feed
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		return
	}
	if n := s.streams.open.Add(1); n > maxStreams {
		s.streams.open.Add(-1)
		writeError(w, http.StatusServiceUnavailable, "busy", "", fmt.Sprintf("%d live feeds are open already", maxStreams))
		return
	}
	defer s.streams.open.Add(-1)
	sub := s.Feed.Subscribe(streamBuffer)
	defer sub.Close()

	// A feed outlives any request deadline the server sets.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 3000\n\n"); err != nil || rc.Flush() != nil {
		return
	}
	ping := time.NewTicker(streamPing)
	defer ping.Stop()
	// The token was checked when the feed opened; a revocation must end
	// the feed too, as it would refuse the token's next request.
	_, tok, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	tok = strings.TrimSpace(tok)
	checked := time.Now()
	revoked := func(force bool) bool {
		if !force && time.Since(checked) < streamRecheck {
			return false
		}
		checked = time.Now()
		// A store that cannot be asked is no revocation: the feed goes
		// on rather than send a signed-in dashboard to the login form.
		if role, err := lookupRole(s.DB, tok); role != "" || err != nil {
			return false
		}
		fmt.Fprint(w, "event: revoked\ndata: {\"message\": \"the token was revoked\"}\n\n")
		rc.Flush()
		return true
	}
	var reported int64
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-s.streams.done():
			return
		case <-ping.C:
			if revoked(true) {
				return
			}
			_, err = fmt.Fprint(w, ": ping\n\n")
		case e, ok := <-sub.C:
			if !ok {
				return
			}
			if revoked(false) {
				return
			}
			if d := sub.Dropped(); d != reported {
				_, err = fmt.Fprintf(w, "event: dropped\ndata: {\"dropped\": %d}\n\n", d)
				reported = d
			}
			if err == nil {
				data, _ := json.Marshal(e)
				_, err = fmt.Fprintf(w, "event: boot\ndata: %s\n\n", data)
			}
		}
		if err != nil || rc.Flush() != nil {
			return
		}
	}
}
