package store

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/dhcp/lease"
)

// BenchmarkDHCPWrites is the store's share of a DHCP lease under load: 16
// clients claiming leases at once, and the boot log's two events per
// lease written in batches beside them. The MACs are scattered, as a
// fleet's are: an index on them is written at random places. It reports
// the writer's CPU per lease, which is what bounds leases per second on a
// small server.
func BenchmarkDHCPWrites(b *testing.B) {
	for _, withLog := range []bool{false, true} {
		name := "leases"
		if withLog {
			name = "leases+events"
		}
		b.Run(name, func(b *testing.B) {
			s, err := OpenSQLite(filepath.Join(b.TempDir(), "b.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			const clients = 16
			cpu0 := cpuTime()
			b.ResetTimer()
			var wg sync.WaitGroup
			events := make(chan audit.Event, 65536)
			logDone := make(chan struct{})
			go func() {
				defer close(logDone)
				batch := make([]audit.Event, 0, 1024)
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case e, ok := <-events:
						if !ok {
							if len(batch) > 0 {
								s.PutEvents(batch)
							}
							return
						}
						batch = append(batch, e)
					case <-tick.C:
						if len(batch) > 0 {
							s.PutEvents(batch)
							batch = batch[:0]
						}
					}
				}
			}()
			for c := 0; c < clients; c++ {
				wg.Add(1)
				go func(c int) {
					defer wg.Done()
					for i := c; i < b.N; i += clients {
						ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
						h := uint32(i) * 2654435761 // scattered, as a fleet's MACs are
						mac := net.HardwareAddr{2, 0, byte(h >> 24), byte(h >> 16), byte(h >> 8), byte(h)}
						l := lease.Lease{IP: ip, MAC: mac, Expires: time.Now().Add(time.Hour), State: lease.Bound}
						if _, _, err := s.ClaimLease(l); err != nil {
							b.Error(err)
							return
						}
						if withLog {
							for _, st := range []string{"offer", "ack"} {
								events <- audit.Event{Time: time.Now(), MAC: mac.String(), IP: ip.String(), Arch: "bios", Stage: st,
									Protocol: "dhcp", File: "undionly.kpxe", Result: "ok", Reason: "pxe client, default profile", Server: "bench"}
							}
						}
					}
				}(c)
			}
			wg.Wait()
			close(events)
			<-logDone
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/lease")
		})
	}
}

// BenchmarkBootLogWrites is the boot log of a server that has run for a
// while: 300,000 events over the last 30 days in the store, then batches
// of 400 events (20 ms of a busy server's) from 500 clients, as the
// recorder writes them. An index keyed by client alone would take every
// event at a random place in an index as large as the whole log; the
// indexes lead with the event's segment (migration 16), so new events go
// into the newest segment's part. It reports CPU per event, for events
// that name their client's MAC (DHCP's, a per-client menu's) and for
// events that name only its IP (a TFTP or HTTP download's), which the
// index by MAC leaves out (migration 18).
func BenchmarkBootLogWrites(b *testing.B) {
	for _, withMAC := range []bool{true, false} {
		name := "mac"
		if !withMAC {
			name = "ip-only"
		}
		b.Run(name, func(b *testing.B) { benchmarkBootLogWrites(b, withMAC) })
	}
}

func benchmarkBootLogWrites(b *testing.B, withMAC bool) {
	s, err := OpenSQLite(filepath.Join(b.TempDir(), "b.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	event := func(t time.Time, client int) audit.Event {
		c := client % 500
		e := audit.Event{Time: t, IP: fmt.Sprintf("192.0.%d.%d", c/250, c%250),
			Stage: "kernel", Protocol: "http", File: "vmlinuz", Bytes: 8 << 20, Duration: time.Second, Result: "ok", Server: "bench"}
		if withMAC {
			e.MAC = fmt.Sprintf("02:00:00:00:%02x:%02x", c/250, c%250)
		}
		return e
	}
	history := make([]audit.Event, 10000)
	for day := 30; day > 0; day-- {
		for i := range history {
			history[i] = event(time.Now().Add(-time.Duration(day)*24*time.Hour+time.Duration(i)*time.Second), i)
		}
		if err := s.PutEvents(history); err != nil {
			b.Fatal(err)
		}
	}
	batch := make([]audit.Event, 400)
	cpu0 := cpuTime()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for i := range batch {
			batch[i] = event(time.Now(), n*len(batch)+i)
		}
		if err := s.PutEvents(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/1e3/float64(b.N*len(batch)), "cpu-µs/event")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
