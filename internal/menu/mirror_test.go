package menu

import (
	"strings"
	"testing"

	"bootforge/internal/boot"
)

// Files of image entries whose version the mirror holds come from the
// mirror; everything else, and the signatures, from this server.
func TestIPXEMirror(t *testing.T) {
	r := req()
	r.Trust = true
	r.Menu.Entries = []boot.Entry{
		{Name: "img", Kind: boot.KindLinux, Kernel: "images/deb/1.0.0/vmlinuz", Initrds: []string{"images/deb/1.0.0/initrd.gz"}, ImageVersion: "deb@1.0.0"},
		{Name: "old", Kind: boot.KindLinux, Kernel: "images/deb/0.9.0/vmlinuz", ImageVersion: "deb@0.9.0"},
		{Name: "plain", Kind: boot.KindLinux, Kernel: "k/vmlinuz"},
		{Name: "win", Kind: boot.KindWimboot, Wimboot: "images/w/1.0.0/wimboot", BCD: "images/w/1.0.0/BCD", BootSDI: "images/w/1.0.0/boot.sdi", BootWIM: "images/w/1.0.0/boot.wim", ImageVersion: "w@1.0.0"},
	}
	r.Mirror = boot.Mirror{URL: "http://198.51.100.1:8080/", Versions: map[string]bool{"deb@1.0.0": true, "w@1.0.0": true}}
	s, err := IPXE(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"kernel http://198.51.100.1:8080/images/deb/1.0.0/vmlinuz ",
		"imgverify vmlinuz http://192.0.2.1:8080/images/deb/1.0.0/vmlinuz.sig",
		"initrd http://198.51.100.1:8080/images/deb/1.0.0/initrd.gz\n",
		"kernel http://192.0.2.1:8080/images/deb/0.9.0/vmlinuz ",
		"kernel http://192.0.2.1:8080/k/vmlinuz ",
		"kernel http://198.51.100.1:8080/images/w/1.0.0/wimboot\n",
		"initrd http://198.51.100.1:8080/images/w/1.0.0/boot.wim boot.wim\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in:\n%s", want, s)
		}
	}
	r.Mirror = boot.Mirror{}
	s, _ = IPXE(r)
	if strings.Contains(s, "198.51.100.1") {
		t.Errorf("no mirror, yet:\n%s", s)
	}
}
