package store

import (
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

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
