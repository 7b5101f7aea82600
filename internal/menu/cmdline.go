package menu

import (
	"errors"
	"fmt"
	"strings"

	"bootforge/internal/boot"
)

// Kernel command lines, as each loader hands them to the kernel.
//
// The operator's command line (its {placeholders} substituted) must reach
// /proc/cmdline as written, whichever loader boots it. The three loaders
// read it differently, so each menu writes it in its own way, and an
// entry whose command line a loader cannot carry is left out of that
// loader's menu (CheckCmdline warns about it; page says how) rather than
// booted changed:
//
//   - pxelinux takes APPEND's text as it is.
//   - iPXE splits the line at whitespace and joins the words again with one
//     space. Before a command runs it ends the command at a word that is
//     ";", "&&" or "||", drops the rest of the line from a word that starts
//     with "#", and then expands "${name}" in each word, again and again
//     until none is left, a setting it does not know as empty
//     (expand_settings in iPXE's core/settings.c). A word that would end the
//     command is written behind an empty expansion, ${bfnil}, which iPXE
//     checks for terminators before it expands. "${...}" itself has no
//     escape, since iPXE expands what an expansion produces too; it is
//     written as it is: an operator who writes ${net0/ip} in a command
//     line means iPXE's setting (CheckCmdline warns that GRUB and pxelinux
//     hand it to the kernel as written).
//   - GRUB 2.06 parses the line as its script language (quotes, "\", "$x",
//     ";", "#", braces) into words, and then writes the kernel's line from
//     those words itself (grub_create_loader_cmdline in lib/cmdline.c): it
//     puts a backslash before each ', " and \, which the kernel keeps, and
//     double quotes around a word with a space in it. So each word is
//     written single-quoted, where GRUB expands nothing, and the kernel
//     sees exactly what the operator wrote only if it has no ' or \, and
//     double quotes only around a whole word with a space in it
//     ("preseed/late_command=in-target sh -c ls", not
//     preseed/late_command="in-target sh -c ls", which the kernel reads the
//     same). GRUB also puts BOOT_IMAGE=<kernel> in front.
//
// All three loaders are given the words of the command line joined by one
// space, since iPXE and GRUB join them so (pxelinux also puts
// BOOT_IMAGE=<kernel> in front). Inside double quotes, where the kernel
// would keep a run of spaces or a tab, iPXE cannot carry it (it splits
// there too, and joins with one space), nor GRUB a tab (it quotes only a
// word with a space): such a command line is refused too.
//
// A kernel keeps only so much of its command line (kernelLineMax on x86)
// and drops the rest without a word. CheckEntry warns about a longer line,
// counted as the kernel gets it, with what each loader adds; menus still
// carry it, since other architectures keep more. pxelinux cannot carry a
// line longer than its config lines (pxelinuxLineMax).

// ipxeNil is a setting name no script sets: "${bfnil}" expands to nothing
// in iPXE and hides a word's first character from its terminator check.
const ipxeNil = "${bfnil}"

// cmdWords splits a command line into the words the kernel sees: at
// whitespace outside double quotes. Inside quotes only single spaces are
// allowed, as explained above.
func cmdWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			quoted = !quoted
			cur.WriteByte(c)
		case quoted && (c == '\t' || c == '\v' || c == '\f' || c == ' ' && i+1 < len(s) && s[i+1] == ' '):
			return nil, fmt.Errorf("a tab or a run of spaces inside double quotes (%q): iPXE splits there and joins with one space", strings.TrimSpace(s))
		case !quoted && (c == ' ' || c == '\t' || c == '\v' || c == '\f'):
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteByte(c)
		}
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	return words, nil
}

// ipxeWord writes one of iPXE's words (split at every space) for an iPXE
// kernel line.
func ipxeWord(w string) string {
	if w == ";" || w == "&&" || w == "||" || strings.HasPrefix(w, "#") {
		return ipxeNil + w
	}
	return w
}

// grubWord writes one word for a GRUB linux line, single-quoted unless
// it has only Safe's characters: GRUB passes the word in its quotes on,
// and re-quotes it as it was.
func grubWord(w string) (string, error) {
	if strings.ContainsAny(w, `'\`) {
		return "", fmt.Errorf("%q has ' or \\, which GRUB hands to the kernel with a backslash before it", w)
	}
	if strings.Contains(w, `"`) {
		inner, ok := strings.CutPrefix(w, `"`)
		inner, ok2 := strings.CutSuffix(inner, `"`)
		if !ok || !ok2 || strings.Contains(inner, `"`) || !strings.Contains(inner, " ") {
			return "", fmt.Errorf("%q has double quotes GRUB cannot pass on: GRUB hands the kernel a \" with a backslash before it, "+
				"and puts its own around a whole word with a space in it, so write the word in quotes (\"a=b c\", not a=\"b c\"; the kernel reads both the same)", w)
		}
		w = inner
	}
	if strings.IndexFunc(w, func(r rune) bool { return !plainRune(r) }) < 0 {
		return w, nil
	}
	return quote(w), nil
}

// loaderArgs writes the words of a command line for one loader.
func loaderArgs(s string, word func(string) (string, error)) (string, error) {
	words, err := cmdWords(s)
	if err != nil {
		return "", err
	}
	for i, w := range words {
		if words[i], err = word(w); err != nil {
			return "", err
		}
	}
	return strings.Join(words, " "), nil
}

// ipxeArgs writes a command line for an iPXE kernel line. iPXE's words are
// not the kernel's: it splits inside double quotes too, so each of the
// space-separated pieces of the kernel's words is written as a word.
func ipxeArgs(s string) (string, error) {
	words, err := cmdWords(s)
	if err != nil {
		return "", err
	}
	var out []string
	for _, w := range words {
		for _, piece := range strings.Split(w, " ") {
			out = append(out, ipxeWord(piece))
		}
	}
	return strings.Join(out, " "), nil
}

// ipxeExpands reports whether iPXE expands a setting in the words of a
// command line, one space apart: a word with "${" and a "}" after it
// (iPXE splits at spaces first, then expands each word).
func ipxeExpands(words string) bool {
	for _, w := range strings.Split(words, " ") {
		if i := strings.Index(w, "${"); i >= 0 && strings.Contains(w[i:], "}") {
			return true
		}
	}
	return false
}

func grubArgs(s string) (string, error) { return loaderArgs(s, grubWord) }

// pxelinuxArgs writes a command line for APPEND: its words joined by one
// space.
func pxelinuxArgs(s string) (string, error) {
	return loaderArgs(s, func(w string) (string, error) { return w, nil })
}

// prependArg puts a word the loader needs (initrd=...) before the
// command line's words. It trims nothing: the command line's words are
// already split at the whitespace the loaders know, and a Unicode space
// at its end (U+0085) is the operator's.
func prependArg(arg, args string) string {
	if args == "" {
		return arg
	}
	return arg + " " + args
}

// CheckCmdline is CheckEntry for a Linux entry with this command line
// whose kernel and initrd paths are not known: the length it counts is
// the least the kernel can get.
func CheckCmdline(cmdline string) error {
	return CheckEntry(boot.Entry{Kind: boot.KindLinux, Cmdline: cmdline})
}

// CheckEntry says why a Linux entry's command line cannot reach the
// kernel as written through the loaders, or nil: a loader that cannot
// carry it leaves the entry out of its menus (GRUB, pxelinux for a line
// longer than its config lines, all three for a tab in double quotes),
// iPXE expands "${...}" as its settings, and a kernel cuts a line longer
// than it keeps. It names each loader with a problem. Placeholders are
// substituted as a client's menu would have them, with values of one
// character: their values are letters, digits and ._:@+=,/- only, which
// no loader reads specially.
func CheckEntry(e boot.Entry) error {
	r := Request{Vars: map[string]string{}}
	for _, p := range Placeholders {
		r.Vars[p] = "x"
	}
	e.Name = "x"
	s := r.cmdline(e)
	words, err := pxelinuxArgs(s)
	if err != nil {
		return fmt.Errorf("the kernel would not get it as written: %w", err)
	}
	var why []string
	if ipxeExpands(words) {
		why = append(why, "iPXE would not pass it on as written: it expands ${...} as its settings (GRUB and pxelinux hand it to the kernel as written)")
	}
	if _, err := grubArgs(s); err != nil {
		why = append(why, fmt.Sprintf("GRUB would not pass it on as written: %v", err))
	}
	r.EFI = true // the longer paths
	if _, err := r.pxelinuxAppend(e); err != nil {
		why = append(why, fmt.Sprintf("pxelinux would not pass it on as written: %v", err))
	}
	if n, loader := r.longestKernelLine(e, words); n > kernelLineMax {
		why = append(why, fmt.Sprintf("the kernel would get %d bytes of command line through %s (with what the loader adds), "+
			"more than the %d an x86 kernel keeps (COMMAND_LINE_SIZE 2048, with its NUL); it drops the rest without a word", n, loader, kernelLineMax))
	}
	if len(why) == 0 {
		return nil
	}
	return errors.New(strings.Join(why, "; "))
}

// kernelLineMax is the longest command line an x86 Linux kernel keeps:
// COMMAND_LINE_SIZE (arch/x86/include/asm/setup.h) is 2048 bytes with the
// terminating NUL. The boot protocol tells loaders so (cmdline_size) and
// they cut a longer line there (syslinux's load_linux.c), as the kernel
// itself does, without an error. Other architectures keep more (4096 on
// arm64), so a longer line is warned about, not refused.
const kernelLineMax = 2047

// longestKernelLine is the length of the longest command line the kernel
// gets for e from a loader, and that loader: e's words (one space apart)
// with what the loader puts before them. GRUB and pxelinux put
// BOOT_IMAGE=<kernel> first, pxelinux then initrd=<paths> from APPEND;
// iPXE puts nothing on BIOS, and on EFI the image's name (efi_image_cmdline
// in iPXE's efi_image.c) and initrd=<name> for each initrd. pxelinux and
// iPXE are counted for EFI clients (r.EFI), whose paths are longer. None
// of them adds BOOTIF= or ip=: bootforge writes no IPAPPEND.
func (r Request) longestKernelLine(e boot.Entry, words string) (int, string) {
	join := func(a, b string) string { return strings.TrimSuffix(a+" "+b, " ") }
	lines := map[string]string{
		"GRUB": join("BOOT_IMAGE="+grubPath(e.Kernel), words),
		"iPXE": join(base(e.Kernel), r.ipxeInitrds(e, words)),
	}
	if args, err := r.pxelinuxAppend(e); err == nil {
		lines["pxelinux"] = join("BOOT_IMAGE="+r.pxePath(e.Kernel), args)
	}
	n, loader := 0, ""
	for _, l := range []string{"GRUB", "iPXE", "pxelinux"} {
		if len(lines[l]) > n {
			n, loader = len(lines[l]), l
		}
	}
	return n, loader
}
