package tftp

import (
	"net/netip"
	"sync"
	"time"

	"bootforge/internal/allow"
	"bootforge/internal/audit"
	"bootforge/internal/bootfs"
)

// quietEvery is how often a client outside the allow-list may cost a log
// line and a boot-log event. Requests in between are counted, and the
// next line says how many there were.
const quietEvery = 10 * time.Second

// maxQuiet bounds the clients remembered by the quiet log: spoofed
// sources are free, memory is not. Past it, refusals of clients not
// remembered are counted in Stats only.
const maxQuiet = 4096

// notAllowed drops a request from a client outside the allow-list without
// a word (see the package comment), and says so in the log and the boot
// log, sparingly.
func (s *Server) notAllowed(in inbound, req request, d allow.Decision) {
	s.Stats.Refused.Add(1)
	s.Stats.Refusals.NotAllowed.Add(1)
	now := time.Now()
	ok, since := s.quiet.admit(d.Client, now)
	if !ok {
		return
	}
	name := req.filename
	if c, err := bootfs.Clean(name); err == nil {
		name = c
	}
	s.log.Warn("tftp: refused, not answered", "client", in.src, "file", name, "reason", d.Reason, "refused_since_last", since)
	if s.Events != nil {
		s.Events.Record(audit.Event{Time: now, IP: d.Client.String(), Stage: audit.StageOf(name), Protocol: "tftp",
			File: name, Result: "refused", Reason: d.Reason})
	}
}

// quietLog admits one line per client per quietEvery.
type quietLog struct {
	mu      sync.Mutex
	clients map[netip.Addr]*quietClient
}

type quietClient struct {
	logged time.Time // the last line written
	since  int64     // refusals not logged since
}

// admit reports whether a line about client may be written at now, and
// how many refusals of it went unlogged before this one.
func (q *quietLog) admit(client netip.Addr, now time.Time) (ok bool, since int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.clients == nil {
		q.clients = map[netip.Addr]*quietClient{}
	}
	c := q.clients[client]
	if c == nil {
		if len(q.clients) >= maxQuiet {
			for a, old := range q.clients {
				if now.Sub(old.logged) >= quietEvery {
					delete(q.clients, a)
				}
			}
			if len(q.clients) >= maxQuiet {
				return false, 0
			}
		}
		q.clients[client] = &quietClient{logged: now}
		return true, 0
	}
	if now.Sub(c.logged) < quietEvery {
		c.since++
		return false, 0
	}
	since = c.since
	c.logged, c.since = now, 0
	return true, since
}
