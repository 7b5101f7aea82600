package image

import "testing"

func TestNames(t *testing.T) {
	for _, ok := range []string{"debian-12", "winpe", "a1", "x-y-z"} {
		if err := CheckName(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Debian", "a_b", "-a", "a-", "a--b", "../x", "a/b", "a b", "ä"} {
		if CheckName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, bad := range []string{"1", "1.2", "v1.2.3", "01.2.3", "1.2.3.4", ""} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("version %q accepted", bad)
		}
	}
	if id, err := ParseID("debian-12@1.2.3-rc.1"); err != nil || id.String() != "debian-12@1.2.3-rc.1" || id.Dir() != "images/debian-12/1.2.3-rc.1" {
		t.Errorf("ParseID: %v %v", id, err)
	}
	for _, bad := range []string{"debian", "debian@", "debian@^1", "@1.0.0", "Deb@1.0.0"} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("id %q accepted", bad)
		}
	}
}

func TestRefPick(t *testing.T) {
	v := func(id string, s State) Version {
		i, err := ParseID(id)
		if err != nil {
			t.Fatal(err)
		}
		return Version{ID: i, State: s}
	}
	built := []Version{v("deb@12.0.0", Retired), v("deb@12.1.0", Active), v("deb@12.2.0", Staged), v("deb@13.0.0", Staged), v("win@1.0.0", Active)}
	tests := []struct{ ref, want string }{
		{"deb", "deb@12.1.0"},
		{"deb@^12.1", "deb@12.2.0"},
		{"deb@~12.0", "deb@12.0.0"},
		{"deb@12.1.0", "deb@12.1.0"},
		{"deb@>=13", "deb@13.0.0"},
		{"deb@^14", ""},
		{"other", ""},
		{"win", "win@1.0.0"},
	}
	for _, tt := range tests {
		r, err := ParseRef(tt.ref)
		if err != nil {
			t.Fatalf("%s: %v", tt.ref, err)
		}
		got, ok := r.Pick(built)
		if (tt.want == "") == ok || (ok && got.ID.String() != tt.want) {
			t.Errorf("%s: got %v %v, want %q", tt.ref, got.ID, ok, tt.want)
		}
	}
	for _, bad := range []string{"deb@not a constraint", "DEB", "deb@"} {
		if _, err := ParseRef(bad); err == nil {
			t.Errorf("ref %q accepted", bad)
		}
	}
}

func TestOfPath(t *testing.T) {
	for p, want := range map[string]string{
		"images/deb/1.2.0/vmlinuz":      "deb@1.2.0",
		"/images/deb/1.2.0/sub/initrd":  "deb@1.2.0",
		"images/deb/1.2.0":              "",
		"images/deb/latest/vmlinuz":     "",
		"other/deb/1.2.0/vmlinuz":       "",
		"images/.build-1/1.2.0/vmlinuz": "",
	} {
		id, ok := OfPath(p)
		if got := map[bool]string{true: id.String(), false: ""}[ok]; got != want {
			t.Errorf("%s: %q, want %q", p, got, want)
		}
	}
}
