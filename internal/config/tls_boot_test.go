package config

import (
	"strings"
	"testing"
)

// http.tls.boot: the boot TLS listener's address is checked only when it is
// on, its port is what DHCP's https:// URLs use, the environment sets it,
// and ipxe_trust needs the listener and signing.
func TestTLSBoot(t *testing.T) {
	c := Default()
	if c.HTTP.TLS.Boot || c.HTTP.TLS.BootListen != ":4433" || c.BootURLPort() != 0 {
		t.Fatalf("defaults: boot %v listen %q port %d", c.HTTP.TLS.Boot, c.HTTP.TLS.BootListen, c.BootURLPort())
	}
	c, err := Parse("b.yaml", []byte("http:\n  tls: {boot: true, boot_listen: \"192.0.2.1:4434\"}\n"))
	if err != nil || c.BootURLPort() != 4434 {
		t.Fatalf("boot on: port %d, %v", c.BootURLPort(), err)
	}
	for _, tt := range []struct{ yaml, want string }{
		{"http:\n  tls: {boot: true, boot_listen: \"nonsense\"}\n", "b.yaml:2: http.tls.boot_listen:"},
		{"http:\n  tls: {boot: true, ipxe_trust: true}\n", "http.tls.ipxe_trust: needs"},
		{"http:\n  tls: {ipxe_trust: true}\nsigning: {enabled: true}\n", "http.tls.ipxe_trust: needs"},
	} {
		_, err := Parse("b.yaml", []byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(tt.want, "b.yaml:2: ")) {
			t.Errorf("%q: %v, want %q", tt.yaml, err, tt.want)
		}
	}
	if _, err := Parse("b.yaml", []byte("http:\n  tls: {boot: false, boot_listen: \"nonsense\"}\n")); err != nil {
		t.Errorf("boot off, bad boot_listen: %v", err)
	}
	if _, err := Parse("b.yaml", []byte("http:\n  tls: {boot: true, ipxe_trust: true}\nsigning: {enabled: true}\n")); err != nil {
		t.Errorf("ipxe_trust with boot and signing: %v", err)
	}
	t.Setenv("BOOTFORGE_HTTP_TLS_BOOT", "true")
	t.Setenv("BOOTFORGE_HTTP_TLS_BOOT_LISTEN", ":4435")
	c = Default()
	if err := c.Apply(FromEnv()); err != nil || !c.HTTP.TLS.Boot || c.BootURLPort() != 4435 {
		t.Errorf("from the environment: boot %v port %d, %v", c.HTTP.TLS.Boot, c.BootURLPort(), err)
	}
}
