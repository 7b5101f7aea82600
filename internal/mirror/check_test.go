package mirror

import (
	"net/netip"
	"testing"

	"bootforge/internal/boot"
	"bootforge/internal/config"
)

// The file server's redirect: files of a version the verified mirror holds,
// for its clients only; manifests and signatures stay here.
func TestRedirect(t *testing.T) {
	cm := config.Mirror{URL: "http://198.51.100.2:8080/", Subnets: []config.Prefix{{Prefix: netip.MustParsePrefix("198.51.100.0/24")}}, Redirect: true}
	ok := Status{URL: cm.URL, OK: true, Versions: []string{"deb@1.0.0"}}
	remote := netip.MustParseAddr("198.51.100.20")
	tests := []struct {
		name   string
		st     Status
		client netip.Addr
		path   string
		want   string
	}{
		{"kernel", ok, remote, "images/deb/1.0.0/vmlinuz", "http://198.51.100.2:8080/images/deb/1.0.0/vmlinuz"},
		{"nested file", ok, remote, "/images/deb/1.0.0/sources/boot.wim", "http://198.51.100.2:8080/images/deb/1.0.0/sources/boot.wim"},
		// A name the primary serves escaped stays one path on the mirror:
		// not cut at '#' or '?', no bare space or '%' in Location.
		{"escaped name", ok, remote, "images/deb/1.0.0/initrd #2?100%.img", "http://198.51.100.2:8080/images/deb/1.0.0/initrd%20%232%3F100%25.img"},
		{"manifest", ok, remote, "images/deb/1.0.0/manifest.json", ""},
		{"signature", ok, remote, "images/deb/1.0.0/vmlinuz.sig", ""},
		{"another version", ok, remote, "images/deb/2.0.0/vmlinuz", ""},
		{"not an image", ok, remote, "vmlinuz", ""},
		{"another client", ok, netip.MustParseAddr("192.0.2.20"), "images/deb/1.0.0/vmlinuz", ""},
		{"not verified", Status{URL: cm.URL, Reason: "missing deb@1.0.0"}, remote, "images/deb/1.0.0/vmlinuz", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Redirect([]boot.Mirror{BootMirror(cm, tt.st)}, tt.client, netip.Addr{}, tt.path)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
