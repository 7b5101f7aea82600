package boot

import (
	"strings"
	"testing"
)

// A name of letters, digits, '-' and '_' is its own label: menus and the
// pxelinux labels people type stay as they were.
func TestMenuLabelKeepsIdentifiers(t *testing.T) {
	for _, name := range []string{"install", "rescue", "win10_install", "Debian-12", "a_2eb", "_", "-", "0", "x_5f"} {
		if got := MenuLabel(name); got != name {
			t.Errorf("MenuLabel(%q) = %q, want it unchanged", name, got)
		}
	}
}

func TestMenuLabel(t *testing.T) {
	for _, tt := range []struct{ name, want string }{
		{"a.b", "a_2eb"},
		{"a b", "a_20b"},
		{"other net", "other_20net"},
		{"a_b.", "a_5fb_2e"},
		{"сеть", "_d1_81_d0_b5_d1_82_d1_8c"},
		{"\xff", "_ff"},
		{"", "_"},
	} {
		if got := MenuLabel(tt.name); got != tt.want {
			t.Errorf("MenuLabel(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// Names that differ only in characters a label cannot hold get different
// labels, each a single word of label characters. (A name that is its own
// label can still equal another's escaped label, "_2e" and "."; the check
// at load refuses such a menu: see TestInventoryErrors.)
func TestMenuLabelInjective(t *testing.T) {
	names := []string{
		"диск", "сеть", "安装", "救援", "ü", "u\u0308", "é", "e\u0301",
		"a.b", "a_b", "a-b", "a b", "a:b", "a/b", "a\tb", "a\nb", "a'b", `a"b`, "a$b", "a;b",
		"a__b", "a_.b", "a._b", "a..b", "a_2eb.", "_2e.", ".", "..", "_.", "._", " ", "  ",
		"a.", ".a", "a\x00", "a\xff", "a\xc3", "\xc3", "${x}", "a.b.c", "a_2eb.c",
	}
	byLabel := map[string]string{}
	for _, n := range names {
		l := MenuLabel(n)
		if l == "" || strings.ContainsFunc(l, func(r rune) bool { return !labelChar(r) }) {
			t.Errorf("MenuLabel(%q) = %q: not one word of letters, digits, - and _", n, l)
		}
		if other, dup := byLabel[l]; dup {
			t.Errorf("MenuLabel(%q) = MenuLabel(%q) = %q", n, other, l)
		}
		byLabel[l] = n
	}
}

// FuzzMenuLabel: two different names that are not their own labels never
// share one, and every label is a word of label characters.
func FuzzMenuLabel(f *testing.F) {
	f.Add("a.b", "a_b.")
	f.Add("сеть", "диск")
	f.Add("a_2e", "a.")
	f.Fuzz(func(t *testing.T, a, b string) {
		la, lb := MenuLabel(a), MenuLabel(b)
		if la == "" || strings.ContainsFunc(la, func(r rune) bool { return !labelChar(r) }) {
			t.Fatalf("MenuLabel(%q) = %q", a, la)
		}
		if a != b && la == lb && la != a && lb != b {
			t.Fatalf("MenuLabel(%q) = MenuLabel(%q) = %q", a, b, la)
		}
	})
}
