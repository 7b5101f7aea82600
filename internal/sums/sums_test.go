package sums

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"reflect"
	"strings"
	"testing"
)

func hexOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

var (
	dA = hexOf("a")
	dB = hexOf("b")
	dC = hexOf("c")
	// dE0 is in no other line: a digest of its own.
	dE0 = hexOf("e0")
)

func TestParseFormats(t *testing.T) {
	in := strings.Join([]string{
		"# Fedora-Server-dvd-x86_64-40.iso: 2612854784 bytes",
		dA + "  debian-12.5.0-amd64-netinst.iso",
		strings.ToUpper(dB) + " *ubuntu-24.04-live-server-amd64.iso",
		"",
		"   ",
		"SHA256 (Fedora-Server-dvd-x86_64-40.iso) = " + dC,
		"MD5 (Fedora-Server-dvd-x86_64-40.iso) = d41d8cd98f00b204e9800998ecf8427e",
		"SHA512 (x) = " + strings.Repeat("0", 128),
		dA + "  name with  spaces.iso\r",
		dB + "   leading space",
		"SHA256 (odd) = (name)) = " + dA,
		`\` + dC + `  back\\slash\nnewline`,
		`\SHA256 (tag\\name) = ` + dB,
		dC + "  ./dotted.iso",
	}, "\n")
	got, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Name: "debian-12.5.0-amd64-netinst.iso", Digest: dA, Line: 2},
		{Name: "ubuntu-24.04-live-server-amd64.iso", Digest: dB, Line: 3},
		{Name: "Fedora-Server-dvd-x86_64-40.iso", Digest: dC, Line: 6},
		{Name: "name with  spaces.iso", Digest: dA, Line: 9},
		{Name: " leading space", Digest: dB, Line: 10},
		{Name: "odd) = (name)", Digest: dA, Line: 11},
		{Name: "back\\slash\nnewline", Digest: dC, Line: 12},
		{Name: `tag\name`, Digest: dB, Line: 13},
		{Name: "./dotted.iso", Digest: dC, Line: 14},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", got, want)
	}
}

// What sha256sum really writes, byte for byte.
func TestParseSha256sumOutput(t *testing.T) {
	in := "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  abc.txt\n" +
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 *empty.bin\n"
	got, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "abc.txt" || got[1].Name != "empty.bin" ||
		got[1].Digest != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Fatalf("%+v", got)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{dA + " onespace.iso", "line 1"},
		{dA + "\tname", "line 1"},
		{dA + "  ", "no file name"},
		{dA + " *", "no file name"},
		{dA, "line 1"},
		{"ok\n" + dA[:63] + "  short.iso", "line 1"},
		{dA + "  fine.iso\n" + dA[:63] + "  short.iso", "line 2"},
		{dA + "0  long.iso", "not a checksum line"},
		{"d41d8cd98f00b204e9800998ecf8427e  md5.iso", "MD5"},
		{"da39a3ee5e6b4b0d3255bfef95601890afd80709  sha1.iso", "SHA-1"},
		{strings.Repeat("ab", 64) + "  sha512.iso", "SHA-512"},
		{"SHA256 (x) = " + dA[:10], "not 64 hex"},
		{"SHA256 (x) = " + dA + " ", "not 64 hex"},
		{"SHA256 () = " + dA, "no file name"},
		{`\` + dA + `  bad\qescape`, `unknown escape`},
		{`\` + dA + `  trailing\`, `lone backslash`},
		{"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n" + dA + "  x.iso", "clearsigned"},
		{"<html><body>404 Not Found</body></html>", "line 1: not a checksum line"},
		{"sha256 (x) = " + dA, "not a checksum line"},
	} {
		_, err := Parse([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", tc.in, err, tc.want)
		}
	}
}

// A list saved by a Windows editor: a UTF-8 byte order mark, CRLF.
func TestParseBOM(t *testing.T) {
	got, err := Parse([]byte("\xef\xbb\xbf" + dA + "  a.iso\r\n" + dB + "  b.iso\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{{Name: "a.iso", Digest: dA, Line: 1}, {Name: "b.iso", Digest: dB, Line: 2}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// Only at the start of the file: on another line it is not a digest.
	if _, err := Parse([]byte(dA + "  a.iso\n\xef\xbb\xbf" + dB + "  b.iso\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("a BOM on line 2: %v, want an error naming line 2", err)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "\n\n", "# only a comment\n"} {
		got, err := Parse([]byte(in))
		if err != nil || len(got) != 0 {
			t.Errorf("Parse(%q) = %v, %v", in, got, err)
		}
	}
}

func TestFind(t *testing.T) {
	entries, err := Parse([]byte(dA + "  a.iso\n" + dB + "  ./b.iso\n" + dC + "  sub/c.iso\n" + dA + " *a.iso\n" + dB + "  twice.iso\n" + dC + "  twice.iso\n"))
	if err != nil {
		t.Fatal(err)
	}
	if e, err := Find(entries, "a.iso"); err != nil || e.Digest != dA || e.Line != 1 {
		t.Errorf("a.iso: %+v %v", e, err)
	}
	if e, err := Find(entries, "b.iso"); err != nil || e.Digest != dB {
		t.Errorf("b.iso: %+v %v", e, err)
	}
	if _, err := Find(entries, "c.iso"); err == nil || !strings.Contains(err.Error(), `no line for "c.iso"`) {
		t.Errorf("c.iso (listed in a subdirectory only): %v", err)
	}
	if _, err := Find(entries, "twice.iso"); err == nil || !strings.Contains(err.Error(), "lines 5 and 6") {
		t.Errorf("twice.iso: %v", err)
	}
	if _, err := Find(entries, "missing.iso"); err == nil || !strings.Contains(err.Error(), `"missing.iso"`) {
		t.Errorf("missing.iso: %v", err)
	}
}

// Lines with paths, as Debian's installer images/SHA256SUMS has them: the
// line for a source is the longest whose path its path ends with.
func TestFindByPath(t *testing.T) {
	dD, dE := hexOf("d"), hexOf("e")
	list := strings.Join([]string{
		dA + "  ./netboot/debian-installer/amd64/linux",
		dB + "  ./netboot/gtk/debian-installer/amd64/linux",
		dC + "  ./hd-media/vmlinuz",
		dD + "  vmlinuz",
		"SHA256 (./cdrom/initrd.gz) = " + dE,
		dE + "  /srv/isos/abs.iso",
		dA + "  ../outside/evil.iso",
		dB + "  a/../evil2.iso",
		dC + "  amd64/same",
		dD + "  ./amd64/same",
		dA + "  x/same",
		dB + "  ./y/same",
		dC + " *deep/agree",
		dC + "  ./deep/agree",
		dD + "  ./odd dir/with space.iso",
	}, "\n")
	entries, err := Parse([]byte(list))
	if err != nil {
		t.Fatal(err)
	}
	const images = "/debian/dists/bookworm/main/installer-amd64/current/images/"
	for _, tc := range []struct {
		src     string
		digest  string // "" an error
		line    int
		wantErr string
	}{
		{images + "netboot/debian-installer/amd64/linux", dA, 1, ""},
		{images + "netboot/gtk/debian-installer/amd64/linux", dB, 2, ""},
		{"/srv/mirror/debian/images/netboot/debian-installer/amd64/linux", dA, 1, ""},
		{"netboot/debian-installer/amd64/linux", dA, 1, ""}, // the whole path
		// The suffix must start at a "/": "xnetboot/..." is another directory.
		{"/mirror/xnetboot/debian-installer/amd64/linux", "", 0, `no line for "linux", nor for a path that /mirror/xnetboot/debian-installer/amd64/linux ends with`},
		// Only the name matches nothing longer: no line is for this linux.
		{"/mirror/amd64/linux", "", 0, `no line for "linux"`},
		// The bare name "vmlinuz" is for any vmlinuz, but a longer match wins.
		{images + "hd-media/vmlinuz", dC, 3, ""},
		{images + "cdrom/vmlinuz", dD, 4, ""},
		{"/elsewhere/vmlinuz", dD, 4, ""},
		{images + "cdrom/initrd.gz", dE, 5, ""},
		// An absolute path in the list is for that path only.
		{"/srv/isos/abs.iso", dE, 6, ""},
		{"/other/srv/isos/abs.iso", "", 0, `no line for "abs.iso"`},
		// Names with ".." are for no file.
		{"/outside/evil.iso", "", 0, `no line for "evil.iso"`},
		{"/x/../outside/evil.iso", "", 0, `no line for "evil.iso"`},
		{"/a/../evil2.iso", "", 0, `no line for "evil2.iso"`},
		// Equally long, different digests: refused, naming both lines.
		{"/m/amd64/same", "", 0, `lines 9 and 10 ("amd64/same" and "./amd64/same") list /m/amd64/same with different digests`},
		{"/m/x/same", dA, 11, ""},
		{"/m/y/same", dB, 12, ""},
		{"/m/z/same", "", 0, `no line for "same"`},
		// Equally long and the same digest: the first line.
		{"/m/deep/agree", dC, 13, ""},
		{"/m/odd dir/with space.iso", dD, 15, ""},
	} {
		e, err := Find(entries, tc.src)
		switch {
		case tc.digest == "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("Find(%q) = %+v, %v; want an error with %q", tc.src, e, err, tc.wantErr)
		case tc.digest != "" && (err != nil || e.Digest != tc.digest || e.Line != tc.line):
			t.Errorf("Find(%q) = %+v, %v; want line %d", tc.src, e, err, tc.line)
		}
	}
}

// format writes entries the way sha256sum does, escaping names that need it.
func format(entries []Entry) string {
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(Line(e.Digest, e.Name))
	}
	return b.String()
}

func FuzzParseSums(f *testing.F) {
	f.Add([]byte(dA + "  debian.iso\n" + strings.ToUpper(dB) + " *ubuntu.iso\r\n"))
	f.Add([]byte("# comment\nSHA256 (Fedora.iso) = " + dC + "\nMD5 (x) = 00\n"))
	f.Add([]byte(`\` + dC + `  back\\slash\nnewline` + "\n" + `\SHA256 (a\\b) = ` + dA))
	f.Add([]byte("SHA256 (odd) = (name)) = " + dA))
	f.Add([]byte("-----BEGIN PGP SIGNED MESSAGE-----\n"))
	f.Add([]byte(dA + "  \n"))
	f.Add([]byte("\xef\xbb\xbf" + dA + "  bom.iso\r\n"))
	f.Add([]byte(dA + "  ./netboot/debian-installer/amd64/linux\n" + dB + "  ./netboot/gtk/debian-installer/amd64/linux\n" + dC + "  linux\n"))
	f.Add([]byte(dA + "  amd64/linux\n" + dB + "  ./amd64/linux\n" + dC + "  ../amd64/linux\n" + dA + "  /abs/linux\n"))
	f.Add([]byte("SHA256 (./cdrom/initrd.gz) = " + dE0 + "\n" + dA + " *cdrom/initrd.gz\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := Parse(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Fatalf("error %q does not name the line", err)
			}
			return
		}
		lines := strings.Count(string(data), "\n") + 1
		last := 0
		for _, e := range entries {
			if len(e.Digest) != 64 || strings.Trim(e.Digest, "0123456789abcdef") != "" {
				t.Fatalf("digest %q is not 64 lower-case hex digits", e.Digest)
			}
			if e.Name == "" {
				t.Fatal("empty name")
			}
			if e.Line <= last || e.Line > lines {
				t.Fatalf("line %d after %d, of %d", e.Line, last, lines)
			}
			last = e.Line
			// A plain name is matched by itself and "./name" only: Find
			// gives its digest or says the lines disagree.
			if !strings.ContainsAny(e.Name, "/") && e.Name != "." && e.Name != ".." {
				got, err := Find(entries, e.Name)
				if err == nil && got.Digest != e.Digest {
					t.Fatalf("Find(%q) = %s, want %s", e.Name, got.Digest, e.Digest)
				}
				if err != nil && !strings.Contains(err.Error(), "different digests") {
					t.Fatalf("Find(%q): %v", e.Name, err)
				}
			}
			// Below any directory, the line found is for that path, and
			// no line for it is longer.
			src := "/mirror/" + strings.TrimPrefix(e.Name, "./")
			if got, err := Find(entries, src); err == nil {
				n := len(strings.TrimPrefix(got.Name, "./"))
				for _, o := range entries {
					p := strings.TrimPrefix(o.Name, "./")
					if len(p) > n && strings.HasSuffix(src, "/"+p) && !strings.Contains("/"+p+"/", "/../") {
						t.Fatalf("Find(%q) = line %d (%q), but line %d (%q) is longer", src, got.Line, got.Name, o.Line, o.Name)
					}
				}
				p := strings.TrimPrefix(got.Name, "./")
				if p != path.Base(src) && !strings.HasSuffix(src, "/"+p) {
					t.Fatalf("Find(%q) = line %d (%q), which is not for it", src, got.Line, got.Name)
				}
			}
		}
		// What was read, written back as sha256sum would, reads the same.
		again, err := Parse([]byte(format(entries)))
		if err != nil {
			t.Fatalf("re-parsing %q: %v", format(entries), err)
		}
		if len(again) != len(entries) {
			t.Fatalf("%d entries, then %d", len(entries), len(again))
		}
		for i := range again {
			if again[i].Name != entries[i].Name || again[i].Digest != entries[i].Digest {
				t.Fatalf("entry %d: %+v, then %+v", i, entries[i], again[i])
			}
		}
	})
}
