package metrics

import (
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"bootforge/internal/dhcp"
	"bootforge/internal/dhcp6"
	"bootforge/internal/httpd"
	"bootforge/internal/tftp"
)

// TestEveryCounterExported: each counter a server keeps for metrics
// reaches /metrics. A field added to a server's Stats and forgotten here
// in collect.go (as Refusals.NotAllowed once was) fails this test: every
// counter gets a value of its own, and each value must show in a series.
func TestEveryCounterExported(t *testing.T) {
	dhcpSrv := dhcp.NewServer(&dhcp.Handler{Mode: dhcp.ModeProxy}, dhcp.Config{}, quiet)
	dhcp6Srv := dhcp6.NewServer(&dhcp6.Handler{}, nil, quiet)
	tftpSrv := tftp.New(nil, tftp.Settings{}, quiet)
	httpSrv := httpd.New(nil, false, 10, quiet)

	// Totals that are the sum of counters exported one by one: a series
	// of their own would count the same requests twice.
	sums := map[string]bool{
		"tftp.Stats.Refused": true, // = Refusals, bootforge_tftp_refused_total{reason}
		"dhcp.Stats.Replied": true, // = Replies, bootforge_dhcp_replies_total{type}
	}
	var counters []counterField
	collectCounters(&counters, "tftp.Stats", reflect.ValueOf(&tftpSrv.Stats).Elem(), sums)
	collectCounters(&counters, "dhcp.Stats", reflect.ValueOf(&dhcpSrv.Stats).Elem(), sums)
	collectCounters(&counters, "dhcp6.Stats", reflect.ValueOf(&dhcp6Srv.Stats).Elem(), sums)
	collectCounters(&counters, "httpd.Server", reflect.ValueOf(httpSrv).Elem(), sums)
	collectCounters(&counters, "turns.Stats (http)", reflect.ValueOf(httpSrv.Turns()).Elem(), sums)
	collectCounters(&counters, "turns.Stats (tftp)", reflect.ValueOf(tftpSrv.Turns()).Elem(), sums)

	// Distinct values, none of them a sum of others a test might confuse
	// with it: 1000003, 2000003, ...
	for i, c := range counters {
		c.v.Store(int64(i+1)*1_000_000 + 3)
	}
	m := New(Build{Version: "test"})
	m.WatchTFTP(tftpSrv)
	m.WatchHTTP(httpSrv)
	m.WatchDHCP(dhcpSrv)
	m.WatchDHCP6(dhcp6Srv)
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[float64]bool{}
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			switch {
			case s.Counter != nil:
				seen[s.GetCounter().GetValue()] = true
			case s.Gauge != nil:
				seen[s.GetGauge().GetValue()] = true
			}
		}
	}
	for i, c := range counters {
		v := float64(int64(i+1)*1_000_000 + 3)
		if c.nanos {
			v /= 1e9 // exported in seconds
		}
		if !seen[v] {
			t.Errorf("%s (set to %g) is in no series of /metrics", c.name, v)
		}
	}
	if len(counters) < 20 {
		t.Fatalf("found only %d counters: the walk over the Stats types is broken", len(counters))
	}
}

type counterField struct {
	name  string
	v     *atomic.Int64
	nanos bool
}

var atomicInt64 = reflect.TypeFor[atomic.Int64]()

// collectCounters appends the exported atomic.Int64 fields of v (a struct),
// in nested structs and arrays too, except those named in skip.
func collectCounters(out *[]counterField, name string, v reflect.Value, skip map[string]bool) {
	switch {
	case v.Type() == atomicInt64:
		if !skip[name] {
			*out = append(*out, counterField{name: name, v: v.Addr().Interface().(*atomic.Int64),
				nanos: strings.HasSuffix(name, "Nano")})
		}
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.IsExported() {
				collectCounters(out, name+"."+f.Name, v.Field(i), skip)
			}
		}
	case v.Kind() == reflect.Array:
		for i := range v.Len() {
			collectCounters(out, fmt.Sprintf("%s[%d]", name, i), v.Index(i), skip)
		}
	}
}
