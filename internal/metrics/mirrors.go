package metrics

import "github.com/prometheus/client_golang/prometheus"

var mirrorVerified = prometheus.NewDesc("bootforge_mirror_verified",
	"1 if the mirror held every active image version with this server's manifests at the last check (its clients get image files from it), else 0.", []string{"url"}, nil)

// WatchMirrors exports the mirrors' last checks: verified returns each
// configured mirror's URL and whether it is used.
func (m *Metrics) WatchMirrors(verified func() map[string]bool) {
	m.reg.MustRegister(mirrorCollector(verified))
}

type mirrorCollector func() map[string]bool

func (c mirrorCollector) Describe(ch chan<- *prometheus.Desc) { ch <- mirrorVerified }

func (c mirrorCollector) Collect(ch chan<- prometheus.Metric) {
	for url, ok := range c() {
		v := 0.0
		if ok {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(mirrorVerified, prometheus.GaugeValue, v, url)
	}
}
