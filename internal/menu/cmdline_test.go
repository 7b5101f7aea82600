package menu

import (
	"strings"
	"testing"

	"bootforge/internal/boot"
)

// hostileCmdline is legitimate, and has what each loader reads specially:
// GRUB's ; $ # { } and a double-quoted word, iPXE's ${ and its terminator
// and comment words (also inside double quotes, where iPXE splits too), a
// run of spaces, and a placeholder.
const hostileCmdline = `console=ttyS0  "preseed/late_command=in-target sh -c echo a; echo b" foo=$bar baz=${bar x=a;b ; && || #c h={hostname} q}{ $ "k=a #b ; c"`

// hostileKernel is what the kernel must see: the words joined by one
// space, the placeholder substituted.
const hostileKernel = `console=ttyS0 "preseed/late_command=in-target sh -c echo a; echo b" foo=$bar baz=${bar x=a;b ; && || #c h=pc1 q}{ $ "k=a #b ; c"`

func hostileReq() Request {
	r := req()
	r.Menu = boot.Menu{Entries: []boot.Entry{{Name: "install", Kind: boot.KindLinux, Kernel: "vmlinuz",
		Initrds: []string{"initrd.gz"}, Cmdline: hostileCmdline}}}
	return r
}

// lineAfter returns the rest of the line of s that starts with prefix.
func lineAfter(t *testing.T, s, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(s, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimLeft(l, " "), prefix); ok {
			return rest
		}
	}
	t.Fatalf("no line %q in:\n%s", prefix, s)
	return ""
}

// ipxeKernelSees runs a kernel line's arguments as iPXE's system() does
// (core/exec.c): whitespace words, cut at the first terminator or
// comment, each expanded by expand_settings with no setting set, joined
// by concat_args.
func ipxeKernelSees(args string) string {
	words := asciiFields(args)
	for i, w := range words {
		if w == ";" || w == "&&" || w == "||" || strings.HasPrefix(w, "#") {
			words = words[:i]
			break
		}
	}
	for i, w := range words {
		words[i] = ipxeExpand(w)
	}
	return strings.Join(words, " ")
}

// asciiFields splits s at the whitespace C's isspace knows, as the
// loaders and the kernel do.
func asciiFields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r < 0x80 && strings.ContainsRune(" \t\n\v\f\r", r) })
}

// ipxeExpand is expand_settings with no setting set: the last "${"
// before the first "}" that follows one is expanded, to nothing, until
// none is left.
func ipxeExpand(w string) string {
	for {
		start, end := -1, -1
		for i := 0; i < len(w); i++ {
			if w[i] == '$' && i+1 < len(w) && w[i+1] == '{' {
				start = i
			}
			if start >= 0 && w[i] == '}' {
				end = i
				break
			}
		}
		if end < 0 {
			return w
		}
		w = w[:start] + w[end+1:]
	}
}

// grubKernelSees reads a linux line's arguments as GRUB 2.06 does, for
// the forms the renderer writes (words of Safe's characters and
// single-quoted words; anything else GRUB would read specially is an
// error), and writes them as grub_create_loader_cmdline does.
func grubKernelSees(t *testing.T, args string) string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(args); i++ {
		c := args[i]
		switch {
		case quoted && c == '\'':
			quoted = false
		case quoted:
			cur.WriteByte(c)
		case c == '\'':
			quoted, inWord = true, true
		case strings.IndexByte(" \t\v\f", c) >= 0:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c < 0x80 && plainRune(rune(c)):
			cur.WriteByte(c)
			inWord = true
		default:
			t.Fatalf("GRUB would read %q specially outside quotes, in %q", c, args)
		}
	}
	if quoted {
		t.Fatalf("unclosed quote in %q", args)
	}
	if inWord {
		words = append(words, cur.String())
	}
	var out []string
	for _, w := range words {
		var b strings.Builder
		for i := 0; i < len(w); i++ {
			if c := w[i]; c == '\\' || c == '\'' || c == '"' {
				b.WriteByte('\\')
			}
			b.WriteByte(w[i])
		}
		if strings.Contains(w, " ") {
			out = append(out, `"`+b.String()+`"`)
		} else {
			out = append(out, b.String())
		}
	}
	return strings.Join(out, " ")
}

// pxelinuxKernelSees reads the text after "APPEND " as syslinux 6 does
// (readconfig.c: the value after the keyword's whitespace, where exactly
// "-" means no command line), and gives the words the kernel splits it
// into, joined by one space.
func pxelinuxKernelSees(value string) string {
	value = strings.TrimLeft(value, " \t")
	if value == "-" {
		value = ""
	}
	return strings.Join(asciiFields(value), " ")
}

// An APPEND of just "-" is pxelinux's "no command line": a command line
// that is "-" must still reach the kernel, and an empty one is empty.
func TestPXELinuxAppendDash(t *testing.T) {
	for _, cmdline := range []string{"-", " - ", "", "- -", "-{mac}"} {
		r := req()
		r.Boot = "install"
		r.Menu.Entries[0].Initrds = nil
		r.Menu.Entries[0].Cmdline = cmdline
		s, err := PXELinux(r)
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Join(asciiFields(r.cmdline(r.Menu.Entries[0])), " ")
		if got := pxelinuxKernelSees(lineAfter(t, s, "APPEND ")); got != want {
			t.Errorf("command line %q: pxelinux hands the kernel %q, want %q; config:\n%s", cmdline, got, want, s)
		}
	}
}

func TestCmdlineReachesKernelIPXE(t *testing.T) {
	for _, efi := range []bool{false, true} {
		r := hostileReq()
		r.EFI = efi
		s, err := IPXE(r)
		if err != nil {
			t.Fatal(err)
		}
		args := lineAfter(t, s, "kernel http://192.0.2.1:8080/vmlinuz ")
		want := hostileKernel
		if efi {
			want = "initrd=initrd.gz " + want
		}
		if got := ipxeKernelSees(args); got != want {
			t.Errorf("EFI %v: iPXE hands the kernel\n%q, want\n%q; script:\n%s", efi, got, want, s)
		}
	}
}

func TestCmdlineReachesKernelGRUB(t *testing.T) {
	for _, signed := range []bool{false, true} {
		r := hostileReq()
		r.Signed = signed
		s, err := GRUB(r)
		if err != nil {
			t.Fatal(err)
		}
		prefix := "linux '/vmlinuz' "
		if signed {
			prefix = "if " + prefix
		}
		args := strings.TrimSuffix(lineAfter(t, s, prefix), "; then")
		if got := grubKernelSees(t, args); got != hostileKernel {
			t.Errorf("signed %v: GRUB hands the kernel\n%q, want\n%q; menu:\n%s", signed, got, hostileKernel, s)
		}
	}
}

func TestCmdlineReachesKernelPXELinux(t *testing.T) {
	s, err := PXELinux(hostileReq())
	if err != nil {
		t.Fatal(err)
	}
	// APPEND is literal; pxelinux puts BOOT_IMAGE= in front, as GRUB does.
	if got, want := lineAfter(t, s, "APPEND "), "initrd=initrd.gz "+hostileKernel; got != want {
		t.Errorf("APPEND %q, want %q", got, want)
	}
}

func TestCheckCmdline(t *testing.T) {
	for _, ok := range []string{
		"",
		hostileCmdline,
		`"a=b c" d`,
		`a=$x b=${hostname} c={mac} x=${`,
		"a=b\tc",
		"#", ";",
	} {
		if err := CheckCmdline(ok); err != nil {
			t.Errorf("CheckCmdline(%q): %v", ok, err)
		}
	}
	for in, want := range map[string]string{
		`preseed/late_command="in-target sh -c 'echo a; echo b'"`: "GRUB would not pass it on as written",
		`a="b c"`:        `write the word in quotes ("a=b c"`,
		`"abc"`:          "GRUB",
		`"a b"c`:         "GRUB",
		`it's`:           "GRUB",
		`a\b`:            "GRUB",
		`m=${net0/mac}`:  "iPXE would not pass it on as written",
		`m=${{mac}}`:     "iPXE",
		`"a  b"`:         "a run of spaces inside double quotes",
		"\"a\tb\"":       "a tab",
		"x \"a=b \n c\"": "a run of spaces",
		`it's ${x}`:      "iPXE would not pass it on as written: it expands ${...} as its settings (GRUB and pxelinux hand it to the kernel as written); GRUB would not",
	} {
		err := CheckCmdline(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckCmdline(%q) = %v, want an error with %q", in, err, want)
		}
	}
}

// A command line longer than an x86 kernel keeps is warned about, counted
// as the kernel gets it: with what the loader puts before it.
func TestCheckEntryLength(t *testing.T) {
	e := boot.Entry{Kind: boot.KindLinux, Kernel: "images/d/vmlinuz", Initrds: []string{"images/d/initrd.gz"}}
	// The longest is pxelinux's on EFI: "BOOT_IMAGE=::images/d/vmlinuz
	// initrd=::images/d/initrd.gz " (58 bytes) and the words.
	e.Cmdline = "a=" + strings.Repeat("b", 2047-58-2)
	if err := CheckEntry(e); err != nil {
		t.Errorf("2047 bytes: %v", err)
	}
	e.Cmdline += "b"
	if err := CheckEntry(e); err == nil || !strings.Contains(err.Error(), "the kernel would get 2048 bytes of command line through pxelinux") ||
		!strings.Contains(err.Error(), "more than the 2047 an x86 kernel keeps") {
		t.Errorf("2048 bytes: %v, want a warning naming the length and the limit", err)
	}
	// Without paths, EFI pxelinux's "BOOT_IMAGE=:: " is what is added.
	if err := CheckCmdline(strings.Repeat("b", 2047-14)); err != nil {
		t.Errorf("CheckCmdline, 2047 bytes: %v", err)
	}
	if err := CheckCmdline(strings.Repeat("b", 2047-13)); err == nil || !strings.Contains(err.Error(), "2048 bytes") {
		t.Errorf("CheckCmdline, 2048 bytes: %v, want a warning", err)
	}
	// A placeholder counts as one character; runs of spaces as one.
	if err := CheckCmdline(strings.Repeat("{mac}  ", 1010)); err != nil {
		t.Errorf("placeholders: %v", err)
	}
}

// syslinux reads 4095 bytes of a config line and the rest as a directive
// of its own: a longer APPEND line is left out of pxelinux's menu, not
// written to be read as something else.
func TestPXELinuxLineLimit(t *testing.T) {
	r := req()
	r.Menu.Entries[0].Initrds = nil
	r.Menu.Entries[0].Cmdline = strings.Repeat("b", 4095-len("  APPEND "))
	s, err := PXELinux(r)
	if err != nil || !strings.Contains(s, "\n  APPEND "+r.Menu.Entries[0].Cmdline+"\n") {
		t.Fatalf("4095 bytes: %v, want the APPEND line in:\n%.300s", err, s)
	}
	r.Menu.Entries[0].Cmdline += "b"
	s, err = PXELinux(r)
	if err != nil || strings.Contains(s, "LABEL install") || !strings.Contains(s, `# bootforge: left out entry "install": command line: pxelinux: its APPEND line would be 4096 bytes`) {
		t.Fatalf("4096 bytes: %v, want the entry left out of:\n%.600s", err, s)
	}
	if err := CheckCmdline(r.Menu.Entries[0].Cmdline); err == nil || !strings.Contains(err.Error(), "pxelinux would not pass it on as written") {
		t.Errorf("CheckCmdline: %v, want pxelinux named", err)
	}
	// GRUB and iPXE carry it (the kernel cuts it: CheckCmdline warns).
	for _, render := range []func(Request) (string, error){GRUB, IPXE} {
		if s, err := render(r); err != nil || !strings.Contains(s, r.Menu.Entries[0].Cmdline) {
			t.Errorf("%v, want the entry in:\n%.300s", err, s)
		}
	}
}

// An entry whose command line a loader cannot carry is left out of that
// loader's menu alone, with a comment saying why; the others are served
// as they were.
func TestRenderLeavesOutCmdline(t *testing.T) {
	r := req()
	r.Menu.Entries[1].Cmdline = `a="b c"` // rescue: GRUB cannot carry it
	s, err := GRUB(r)
	if err != nil {
		t.Fatalf("GRUB refused the whole menu: %v", err)
	}
	for _, want := range []string{
		"# bootforge: left out entry \"rescue\": command line: GRUB: ",
		"set default=0\n", "set timeout=3\n",
		"menuentry 'Install Debian' --id 'install' {\n  linux '/images/d/vmlinuz' console=ttyS0",
		"menuentry 'Local disk' --id 'disk'",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("GRUB: missing %q in:\n%s", want, s)
		}
	}
	if strings.Contains(s, "menuentry 'rescue'") {
		t.Errorf("GRUB: the entry it cannot carry is in the menu:\n%s", s)
	}
	// iPXE and pxelinux carry it: nothing is left out there.
	for name, render := range map[string]func(Request) (string, error){"ipxe": IPXE, "pxelinux": PXELinux} {
		if s, err := render(r); err != nil || strings.Contains(s, "left out") || !strings.Contains(s, `a="b c"`) {
			t.Errorf("%s: %v, want the entry in:\n%s", name, err, s)
		}
	}
	// Make says what was left out, for the log.
	d := boot.Decision{Choice: boot.Choice{Profile: boot.Profile{Name: "lab"}, Menu: r.Menu}}
	m, err := Make(d, FormatGRUB, Site{})
	if err != nil || len(m.LeftOut) != 1 || !strings.Contains(m.LeftOut[0].Error(), `entry "rescue"`) {
		t.Errorf("Make: %v, left out %v; want the rescue entry", err, m.LeftOut)
	}
	if m, err := Make(d, FormatIPXE, Site{}); err != nil || len(m.LeftOut) != 0 {
		t.Errorf("Make iPXE: %v, left out %v; want nothing", err, m.LeftOut)
	}

	// iPXE's settings are the operator's to use: written as they are.
	r = req()
	r.Menu.Entries[0].Cmdline = `ip=${net0/ip} a=${b}`
	if out, err := IPXE(r); err != nil || !strings.Contains(out, ` ip=${net0/ip} a=${b}`) {
		t.Errorf("iPXE: %v, want ${...} written as it is in:\n%s", err, out)
	}
}

// When the default is left out, nothing boots unattended: the menu waits
// for a choice (even with one entry left, which would otherwise boot at
// once). A one-shot whose entry is left out, or a menu with nothing
// left, is refused.
func TestRenderLeavesOutDefault(t *testing.T) {
	const bad = `"a  b"` // a run of spaces in quotes: no loader carries it
	r := req()
	r.Menu.Entries = r.Menu.Entries[:2]
	r.Menu.Entries[0].Cmdline = bad // install, the default
	for _, c := range []struct {
		render func(Request) (string, error)
		want   []string
		not    []string
	}{
		{IPXE, []string{"# bootforge: left out entry \"install\"", "menu Lab\n", "item rescue rescue\n", "choose --default rescue selected || goto rescue\n"},
			[]string{"--timeout", ":install"}},
		{GRUB, []string{"# bootforge: left out entry \"install\"", "set default=0\n", "set timeout=-1\n", "menuentry 'rescue'"},
			[]string{"Install Debian"}},
		{PXELinux, []string{"# bootforge: left out entry \"install\"", "UI menu.c32\n", "TIMEOUT 0\n", "DEFAULT rescue\n", "LABEL rescue\n"},
			[]string{"LABEL install"}},
	} {
		s, err := c.render(r)
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		for _, want := range c.want {
			if !strings.Contains(s, want) {
				t.Errorf("missing %q in:\n%s", want, s)
			}
		}
		for _, not := range c.not {
			if strings.Contains(s, not) {
				t.Errorf("%q in:\n%s", not, s)
			}
		}
	}
	// A one-shot boots its entry without a menu: never another instead.
	r.Boot = "install"
	for _, render := range []func(Request) (string, error){IPXE, GRUB, PXELinux} {
		if s, err := render(r); err == nil || !strings.Contains(err.Error(), `one-shot entry "install"`) {
			t.Errorf("one-shot: %v, want a refusal naming the entry; menu:\n%s", err, s)
		}
	}
	// A one-shot of an entry the loader carries boots it, whatever the
	// other entries' command lines.
	r.Boot = "rescue"
	for name, render := range map[string]func(Request) (string, error){"ipxe": IPXE, "grub": GRUB, "pxelinux": PXELinux} {
		if s, err := render(r); err != nil || !strings.Contains(s, "images/r/a.gz") {
			t.Errorf("%s: one-shot of rescue: %v, want rescue booted:\n%s", name, err, s)
		}
	}
	// Nothing left to boot.
	r.Boot = ""
	r.Menu.Entries = r.Menu.Entries[:1]
	for _, render := range []func(Request) (string, error){IPXE, GRUB, PXELinux} {
		if s, err := render(r); err == nil || !strings.Contains(err.Error(), `entry "install"`) {
			t.Errorf("nothing left: %v, want a refusal naming the entry; menu:\n%s", err, s)
		}
	}
}

// Any command line CheckCmdline accepts reaches the kernel the same
// through all three loaders: its words joined by one space.
func FuzzCmdlineReachesKernel(f *testing.F) {
	for _, s := range []string{hostileCmdline, `"a=b c"`, "a\tb  c", "${x", "x}${", "#", "{entry}{mac}", "\"a b\" \"c d\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cmdline string) {
		if CheckCmdline(cmdline) != nil {
			return
		}
		r := hostileReq()
		r.Menu.Entries[0].Cmdline = cmdline
		want := strings.Join(asciiFields(r.cmdline(r.Menu.Entries[0])), " ")
		ipxe, err := IPXE(r)
		if err != nil {
			t.Fatalf("accepted, but iPXE: %v", err)
		}
		if got := ipxeKernelSees(lineAfter(t, ipxe, "kernel http://192.0.2.1:8080/vmlinuz ")); got != want {
			t.Errorf("iPXE hands the kernel %q, want %q", got, want)
		}
		r.EFI = true
		if ipxe, err = IPXE(r); err != nil {
			t.Fatalf("accepted, but EFI iPXE: %v", err)
		}
		if got := ipxeKernelSees(lineAfter(t, ipxe, "kernel http://192.0.2.1:8080/vmlinuz ")); got != strings.TrimSuffix("initrd=initrd.gz "+want, " ") {
			t.Errorf("EFI iPXE hands the kernel %q, want initrd=initrd.gz and %q", got, want)
		}
		r.EFI = false
		grub, err := GRUB(r)
		if err != nil {
			t.Fatalf("accepted, but GRUB: %v", err)
		}
		if got := grubKernelSees(t, lineAfter(t, grub, "linux '/vmlinuz' ")); got != want {
			t.Errorf("GRUB hands the kernel %q, want %q", got, want)
		}
		pxe, err := PXELinux(r)
		if err != nil {
			t.Fatalf("accepted, but pxelinux: %v", err)
		}
		if got := strings.TrimPrefix(pxelinuxKernelSees(lineAfter(t, pxe, "APPEND ")), "initrd=initrd.gz"); strings.TrimPrefix(got, " ") != want {
			t.Errorf("pxelinux hands the kernel %q, want %q", got, want)
		}
		r.Menu.Entries[0].Initrds = nil // APPEND is the command line alone
		if pxe, err = PXELinux(r); err != nil {
			t.Fatalf("accepted, but pxelinux without initrds: %v", err)
		}
		if got := pxelinuxKernelSees(lineAfter(t, pxe, "APPEND ")); got != want {
			t.Errorf("pxelinux without initrds hands the kernel %q, want %q", got, want)
		}
	})
}
