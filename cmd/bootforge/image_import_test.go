package main

import (
	"strings"
	"testing"
)

func TestCheckImportFlags(t *testing.T) {
	const d = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	for _, tc := range []struct {
		o    importOptions
		want string // "" accepted
	}{
		{importOptions{sha256: d}, ""},
		{importOptions{sums: "S"}, ""},
		{importOptions{sums: "S", sumsSig: "S.sig", keyring: "K"}, ""},
		{importOptions{}, "--sha256 HEX or --sums"},
		{importOptions{sha256: d, sums: "S"}, "use one"},
		{importOptions{sums: "S", sumsSig: "S.sig"}, "--sums-sig needs --keyring"},
		{importOptions{sums: "S", keyring: "K"}, "--keyring needs --sums-sig"},
		{importOptions{sha256: d, sumsSig: "S.sig", keyring: "K"}, "check a --sums file"},
		{importOptions{sumsSig: "S.sig"}, "check a --sums file"},
	} {
		err := checkImportFlags(tc.o)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.o, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: err = %v, want %q", tc.o, err, tc.want)
		}
	}
}

func TestParseSource(t *testing.T) {
	for arg, want := range map[string]string{
		"debian-12.5.0-amd64-netinst.iso": "debian-12.5.0-amd64-netinst.iso",
		"/srv/isos/debian.iso":            "debian.iso",
		"./rel/path/x.wim":                "x.wim",
		"/srv/odd:name/x.iso":             "x.iso",
		"https://cdimage.debian.org/debian-cd/current/amd64/iso-cd/debian-12.5.0-amd64-netinst.iso": "debian-12.5.0-amd64-netinst.iso",
		"http://127.0.0.1:8080/a/b/boot.wim?token=1#frag":                                           "boot.wim",
		"http://mirror.example/with%20space.iso":                                                    "with space.iso",
	} {
		got, err := parseSource(arg)
		if err != nil || got.name != want {
			t.Errorf("parseSource(%q) = %+v, %v; want the name %q", arg, got, err, want)
		}
	}
	for _, bad := range []string{"", "/srv/isos/", "http://mirror.example/", "http://mirror.example", "ftp://mirror.example/x.iso", "file:///srv/x.iso", "http:///x.iso", "http://mirror.example:port/x.iso"} {
		if got, err := parseSource(bad); err == nil {
			t.Errorf("parseSource(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestParseSHA256(t *testing.T) {
	const d = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	for _, in := range []string{d, strings.ToUpper(d), "sha256:" + d, "sha256:" + strings.ToUpper(d), " " + d + "\n"} {
		if got, err := parseSHA256(in); err != nil || got != d {
			t.Errorf("parseSHA256(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", d[:63], d + "0", "sha256:", "sha256:" + d[:63], "SHA256:" + d, "md5:" + d, "sha256:sha256:" + d, strings.Repeat("g", 64), "../../etc/passwd"} {
		_, err := parseSHA256(bad)
		if err == nil || !strings.Contains(err.Error(), "want 64 hex digits") || strings.Contains(err.Error(), "lower-case") {
			t.Errorf("parseSHA256(%q): %v", bad, err)
		}
	}
}

// The password in a URL shows in no message, the URL valid or not.
func TestParseSourceHidesPassword(t *testing.T) {
	for arg, want := range map[string]string{
		"http://admin:S3cret@mirror.example/x.iso":        "http://admin:xxxxx@mirror.example/x.iso",
		"https://admin:S3cret@mirror.example:443/a/x.iso": "https://admin:xxxxx@mirror.example:443/a/x.iso",
		"http://admin@mirror.example/x.iso":               "http://admin@mirror.example/x.iso",
	} {
		got, err := parseSource(arg)
		if err != nil || got.shown != want {
			t.Errorf("parseSource(%q) = %+v, %v; want it shown as %q", arg, got, err, want)
		}
	}
	for _, bad := range []string{
		"ftp://admin:S3cret@mirror.example/x.iso",
		"http://admin:S3cret@mirror.example:port/x.iso",
		"http://admin:S3cret@/x.iso",
		"http://admin:S3cret@mirror.example/",
		"http://admin:S3cret%zz@mirror.example/x.iso",
		"http://admin:S3cret@mirror example/x.iso",
		"http://admin:S3cret@@mirror.example:port/x.iso",
	} {
		_, err := parseSource(bad)
		if err == nil {
			t.Errorf("parseSource(%q) accepted it", bad)
			continue
		}
		if strings.Contains(err.Error(), "S3cret") || !strings.Contains(err.Error(), "admin:xxxxx@") {
			t.Errorf("parseSource(%q): %v", bad, err)
		}
	}
}
