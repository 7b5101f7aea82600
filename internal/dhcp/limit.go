package dhcp

import (
	"sync"
	"time"
)

// limiter is a token bucket per MAC address: rate tokens a second, bursts
// of twice that.
type limiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	buckets map[string]bucket // by value: one per client, no object of its own
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate int) *limiter {
	return &limiter{rate: float64(rate), burst: float64(2 * rate), buckets: map[string]bucket{}}
}

func (l *limiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		l.sweep(now)
	}
	b, ok := l.buckets[key]
	if !ok {
		b = bucket{tokens: l.burst, last: now}
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	allowed := b.tokens >= 1
	if allowed {
		b.tokens--
	}
	l.buckets[key] = b
	return allowed
}

// sweep forgets buckets that have refilled: they hold no information.
func (l *limiter) sweep(now time.Time) {
	l.swept = now
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.last) > full {
			delete(l.buckets, k)
		}
	}
}
