package menu

import (
	"strings"
	"testing"

	"bootforge/internal/boot"
)

// With Trust, the iPXE script turns on image trust once, before anything
// runs, and verifies each file right after fetching it, by iPXE's image
// name (the last path component), against <path>.sig on the same base.
// Without it, none of that appears (Debian's iPXE has no such commands).
func TestIPXETrust(t *testing.T) {
	r := req()
	r.BaseURL = "https://192.0.2.1:4433"
	r.Trust = true
	r.EFI = true
	m := r.Menu
	m.Entries = append(m.Entries, boot.Entry{Name: "next", Kind: boot.KindChain, URL: "scripts/next.ipxe"})
	r.Menu = m
	s, err := IPXE(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s, "#!ipxe\n# bootforge profile lab\nimgtrust --permanent\n") || strings.Count(s, "imgtrust") != 1 {
		t.Errorf("imgtrust --permanent is not the first command, once:\n%s", s)
	}
	for _, want := range []string{
		":install\nkernel https://192.0.2.1:4433/images/d/vmlinuz initrd=initrd.gz console=ttyS0 marker=lab-install host=pc1\n" +
			"imgverify vmlinuz https://192.0.2.1:4433/images/d/vmlinuz.sig\n" +
			"initrd https://192.0.2.1:4433/images/d/initrd.gz\n" +
			"imgverify initrd.gz https://192.0.2.1:4433/images/d/initrd.gz.sig\n" +
			"boot\n",
		"initrd https://192.0.2.1:4433/images/r/b.gz\nimgverify b.gz https://192.0.2.1:4433/images/r/b.gz.sig\n",
		// A kernel elsewhere is checked against a signature beside it.
		"kernel http://mirror.example/vmlinuz initrd=b.gz initrd=a.gz\nimgverify vmlinuz http://mirror.example/vmlinuz.sig\n",
		"kernel https://192.0.2.1:4433/wimboot\nimgverify wimboot https://192.0.2.1:4433/wimboot.sig\n",
		"initrd https://192.0.2.1:4433/win/BCD BCD\nimgverify BCD https://192.0.2.1:4433/win/BCD.sig\n",
		"initrd https://192.0.2.1:4433/win/boot.wim boot.wim\nimgverify boot.wim https://192.0.2.1:4433/win/boot.wim.sig\nboot\n",
		"# not verified: sanboot reads the ISO block by block\nsanboot https://192.0.2.1:4433/iso/live.iso\n",
		":next\nimgfetch --name chained https://192.0.2.1:4433/scripts/next.ipxe\n" +
			"imgverify chained https://192.0.2.1:4433/scripts/next.ipxe.sig\nchain chained\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in:\n%s", want, s)
		}
	}
	// Every kernel, initrd and wimboot file is verified: one imgverify
	// after each fetch.
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if (strings.HasPrefix(l, "kernel ") || strings.HasPrefix(l, "initrd ")) && !strings.HasPrefix(lines[i+1], "imgverify ") {
			t.Errorf("%q is not followed by imgverify", l)
		}
	}

	r.Trust = false
	plain, _ := IPXE(r)
	for _, word := range []string{"imgtrust", "imgverify", "imgfetch", ".sig"} {
		if strings.Contains(plain, word) {
			t.Errorf("without Trust the script has %q:\n%s", word, plain)
		}
	}
}

func TestBaseURL(t *testing.T) {
	for _, tt := range []struct{ proto, host, want string }{
		{"http", "192.0.2.1:8080", "http://192.0.2.1:8080"},
		{"https", "192.0.2.1:4433", "https://192.0.2.1:4433"},
		{"tftp", "", ""},
		{"https", "", ""},
		{"http", "boot.example:8080", "http://boot.example:8080"},
		{"http", "boot.example", "http://boot.example"},
		// IPv6 literals stay bracketed, however the Host header wrote them
		{"http", "[2001:db8::1]:8080", "http://[2001:db8::1]:8080"},
		{"https", "[2001:db8::1]", "https://[2001:db8::1]"},
		{"http", "2001:db8::1", "http://[2001:db8::1]"},
		{"http", "[2001:DB8:0::1]:80", "http://[2001:db8::1]:80"},
		{"http", "[fe80::1%25br0]:8080", "http://[fe80::1%25br0]:8080"},
		{"http", "[::ffff:192.0.2.1]:8080", "http://[::ffff:192.0.2.1]:8080"},
	} {
		if got := BaseURL(tt.proto, tt.host); got != tt.want {
			t.Errorf("BaseURL(%q, %q) = %q, want %q", tt.proto, tt.host, got, tt.want)
		}
	}
}
