// Package quiet keeps what one client costs the log to a line per
// interval. Firmware retries every few seconds and a spoofed source is
// free, so a server that wrote a line (and a boot-log event) for every
// refusal or every reply it could not send would let any client fill the
// disk. The ones held back are counted, and the next line says how many.
package quiet

import (
	"sync"
	"time"
)

// Every is how often one client may cost a line.
const Every = 10 * time.Second

// Max bounds the clients a Log remembers: memory is not free as sources
// are. Past it, clients not remembered are held back, and only the
// caller's counters see them.
const Max = 4096

// Log admits one line per client per Every. The zero Log is ready.
type Log[K comparable] struct {
	mu      sync.Mutex
	clients map[K]*client
}

type client struct {
	logged time.Time // the last line admitted
	since  int64     // lines held back since
}

// Admit reports whether a line about key may be written at now, and how
// many about it were held back before this one.
func (q *Log[K]) Admit(key K, now time.Time) (ok bool, since int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.clients == nil {
		q.clients = map[K]*client{}
	}
	c := q.clients[key]
	if c == nil {
		if len(q.clients) >= Max {
			for k, old := range q.clients {
				if now.Sub(old.logged) >= Every {
					delete(q.clients, k)
				}
			}
			if len(q.clients) >= Max {
				return false, 0
			}
		}
		q.clients[key] = &client{logged: now}
		return true, 0
	}
	if now.Sub(c.logged) < Every {
		c.since++
		return false, 0
	}
	since = c.since
	c.logged, c.since = now, 0
	return true, since
}
