package boot

import "strings"

// MenuLabel is the one word that stands for the entry called name in every
// menu language: iPXE's item, choose --default, goto and :label, GRUB's
// menuentry --id, pxelinux's LABEL and DEFAULT, and what a user types at
// pxelinux's boot: prompt. Those languages split words on spaces and give
// meaning to quotes, '$', ';' and more, so a label holds letters, digits,
// '-' and '_' only.
//
// A name made of those characters alone is its own label, so that existing
// menus, and the pxelinux labels people type, stay as they are. Any other
// name has each byte that is not a letter, digit or '-' written as '_' and
// two lower-case hex digits — '_' too, so that the escapes read back one
// way: "a.b" is "a_2eb", "a_b." is "a_5fb_2e", "сеть" is
// "_d1_81_d0_b5_d1_82_d1_8c". Two such names never share a label. One may
// still equal a name that is its own label (a name "a_2eb" beside "a.b"),
// and the check at load refuses a menu where that happens, since a menu
// with two equal labels boots the first for both.
func MenuLabel(name string) string {
	if name == "" {
		return "_" // refused at load; a label that is still one word
	}
	if !strings.ContainsFunc(name, func(r rune) bool { return !labelChar(r) }) {
		return name
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(3 * len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c != '_' && labelChar(rune(c)) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('_')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

// labelChar reports whether r may appear in a label as it is.
func labelChar(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_'
}
