package menu

import (
	"fmt"
	"strings"
	"time"

	"bootforge/internal/boot"
)

// IPXE renders an iPXE script: a menu when there are several entries, a
// direct boot when there is one (or a one-shot names one), unless the
// default was left out (page).
func IPXE(r Request) (string, error) {
	m, err := r.render(FormatIPXE)
	return m.Text, err
}

// ipxeMenu writes page p of r's menu.
func ipxeMenu(r Request, p page) string {
	var b strings.Builder
	b.WriteString("#!ipxe\n")
	fmt.Fprintf(&b, "# bootforge profile %s\n", Safe(r.Profile))
	p.comments(&b)
	if r.Trust {
		// From here on iPXE runs only images it verified (imgverify)
		// against the CA it was built with; permanent: no later script
		// can turn that off.
		b.WriteString("imgtrust --permanent\n")
	}
	if len(p.entries) == 0 {
		b.WriteString("echo bootforge: profile " + Safe(r.Profile) + " has no entries\nexit\n")
		return b.String()
	}
	if len(p.entries) == 1 && !p.wait {
		writeIPXEEntry(&b, r, p.entries[0], p.args[0])
		return b.String()
	}
	fmt.Fprintf(&b, "menu %s\n", title(r))
	for _, e := range p.entries {
		fmt.Fprintf(&b, "item %s %s\n", boot.MenuLabel(e.Name), label(e))
	}
	// choose without --timeout waits for the user; --timeout is in ms.
	def := boot.MenuLabel(p.def)
	if timeout := waitIn(r.Menu.Timeout, time.Millisecond); timeout > 0 && !p.wait {
		fmt.Fprintf(&b, "choose --default %s --timeout %d selected || goto %s\n", def, timeout, def)
	} else {
		fmt.Fprintf(&b, "choose --default %s selected || goto %s\n", def, def)
	}
	b.WriteString("goto ${selected}\n")
	for i, e := range p.entries {
		fmt.Fprintf(&b, "\n:%s\n", boot.MenuLabel(e.Name))
		writeIPXEEntry(&b, r, e, p.args[i])
	}
	return b.String()
}

// writeIPXEEntry writes the commands that boot e; args is a Linux entry's
// command line as kernelArgs writes it.
func writeIPXEEntry(b *strings.Builder, r Request, e boot.Entry, args string) {
	switch e.Kind {
	case boot.KindLinux:
		fmt.Fprintf(b, "kernel %s %s\n", r.fileURL(e, e.Kernel), args)
		r.verify(b, base(e.Kernel), e.Kernel)
		for _, i := range e.Initrds {
			fmt.Fprintf(b, "initrd %s\n", r.fileURL(e, i))
			r.verify(b, base(i), i)
		}
		b.WriteString("boot\n")
	case boot.KindWimboot:
		fmt.Fprintf(b, "kernel %s\n", r.fileURL(e, e.Wimboot))
		r.verify(b, base(e.Wimboot), e.Wimboot)
		if e.Bootmgr != "" { // BIOS wimboot needs it; newer wimboot finds it in boot.wim
			fmt.Fprintf(b, "initrd %s bootmgr\n", r.fileURL(e, e.Bootmgr))
			r.verify(b, base(e.Bootmgr), e.Bootmgr)
		}
		fmt.Fprintf(b, "initrd %s BCD\n", r.fileURL(e, e.BCD))
		r.verify(b, base(e.BCD), e.BCD)
		fmt.Fprintf(b, "initrd %s boot.sdi\n", r.fileURL(e, e.BootSDI))
		r.verify(b, base(e.BootSDI), e.BootSDI)
		fmt.Fprintf(b, "initrd %s boot.wim\n", r.fileURL(e, e.BootWIM))
		r.verify(b, base(e.BootWIM), e.BootWIM)
		b.WriteString("boot\n")
	case boot.KindISO:
		if r.Trust {
			b.WriteString("# not verified: sanboot reads the ISO block by block\n")
		}
		fmt.Fprintf(b, "sanboot %s\n", r.url(e.ISO))
	case boot.KindChain:
		if r.Trust {
			fmt.Fprintf(b, "imgfetch --name chained %s\n", r.url(e.URL))
			r.verify(b, "chained", e.URL)
			b.WriteString("chain chained\n")
			break
		}
		fmt.Fprintf(b, "chain %s\n", r.url(e.URL))
	case boot.KindLocal:
		b.WriteString("exit\n")
	case boot.KindShell:
		b.WriteString("shell\n")
	}
}

// verify writes, with Trust, the check of the image iPXE just fetched as
// name (the last path component: iPXE's default image name) from path against path's detached CMS signature, <path>.sig. A
// failed check stops the script, as any failed command does.
func (r Request) verify(b *strings.Builder, name, path string) {
	if !r.Trust {
		return
	}
	fmt.Fprintf(b, "imgverify %s %s\n", name, r.url(sigPath(path)))
}

// sigPath is the path of p's detached signature: .sig after the path,
// before any query.
func sigPath(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		return p[:i] + ".sig" + p[i:]
	}
	return p + ".sig"
}
