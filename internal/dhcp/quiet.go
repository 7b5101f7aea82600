package dhcp

import (
	"sync"
	"time"
)

// quietEvery is how often one client's refusal or undeliverable reply may
// cost a log line (and a boot-log event), as in internal/tftp: firmware
// retries every few seconds, and a full pool or an oversized reply would
// otherwise write a line per packet. The ones in between are counted in
// Stats, and the next line says how many there were.
const quietEvery = 10 * time.Second

// maxQuiet bounds the clients the quiet log remembers: MACs are free to
// spoof, memory is not. Past it, clients not remembered are only counted.
const maxQuiet = 4096

// quietLog admits one line per client per quietEvery.
type quietLog struct {
	mu      sync.Mutex
	clients map[string]*quietClient
}

type quietClient struct {
	logged time.Time // the last line written
	since  int64     // lines not written since
}

// admit reports whether a line about client (a key: what happened and to
// whom) may be written at now, and how many went unwritten before it.
func (q *quietLog) admit(client string, now time.Time) (ok bool, since int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.clients == nil {
		q.clients = map[string]*quietClient{}
	}
	c := q.clients[client]
	if c == nil {
		if len(q.clients) >= maxQuiet {
			for k, old := range q.clients {
				if now.Sub(old.logged) >= quietEvery {
					delete(q.clients, k)
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
