package config

import (
	"strings"
	"testing"
)

// The API listener's keys: api.max_connections at least 1, api.tls's cert
// and key together or neither, both only when the API is on.
func TestAPIListenerKeys(t *testing.T) {
	for _, tt := range []struct{ yaml, key, msg string }{
		{"api:\n  max_connections: 0\n", "api.max_connections", "0 must be at least 1"},
		{"api:\n  tls:\n    enabled: true\n    cert: /etc/c.pem\n", "api.tls.cert", "together"},
		{"api:\n  tls:\n    enabled: true\n    key: /etc/k.pem\n", "api.tls.cert", "together"},
	} {
		_, err := Parse("bootforge.yaml", []byte(siblingPaths+tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.key+": ") || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%q: %v, want %s: ...%s", tt.yaml, err, tt.key, tt.msg)
		}
	}
	for _, y := range []string{
		"api:\n  tls:\n    enabled: true\n",
		"api:\n  max_connections: 1\n  tls:\n    enabled: true\n    cert: /etc/c.pem\n    key: /etc/k.pem\n",
		"api:\n  enabled: false\n  max_connections: 0\n",
	} {
		if _, err := Parse("bootforge.yaml", []byte(siblingPaths+y)); err != nil {
			t.Errorf("%q: %v", y, err)
		}
	}
	if d := Default().API; d.MaxConnections != 64 || d.TLS.Enabled {
		t.Errorf("API defaults: %+v", d)
	}
}
