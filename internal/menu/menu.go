// Package menu renders a profile's menu for the three loaders bootforge
// serves: iPXE scripts, pxelinux.cfg (menu.c32) and grub.cfg.
//
// Menus mix two kinds of text. What the operator wrote in a profile —
// labels, kernel command lines — is trusted, except that line breaks are
// removed, since a line break would start a new command in all three
// languages. Labels are written as they are; a kernel command line is
// written so that the kernel gets it as the operator wrote it, or its
// entry is left out of the menu of a loader that cannot carry it
// (cmdline.go, page). What comes from inventory or from
// clients — hostnames, labels, SMBIOS strings, MACs — is not trusted: it
// reaches a menu only through Vars, and every value is cut down to a small
// set of characters (letters, digits and ._:@+=,/-) that carries no meaning
// in iPXE, pxelinux or GRUB syntax. So `${...}`, `;`, quotes, newlines and
// keywords in a hostname render as harmless text.
package menu

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"bootforge/internal/boot"
)

// Request is one menu to render.
type Request struct {
	Menu    boot.Menu
	Profile string
	// BaseURL prefixes relative paths, e.g. "http://192.0.2.1:8080".
	BaseURL string
	// EFI makes iPXE add initrd=<name> for each initrd to Linux command
	// lines, which EFI kernels booted by iPXE need.
	EFI bool
	// Boot, if set, is the entry to boot now without a menu: a one-shot.
	Boot string
	// Vars are substituted into command lines as {name}: untrusted values,
	// sanitised on the way in.
	Vars map[string]string
	// Signed makes GRUB enforce signatures and stop when a load fails.
	Signed bool
	// Trust makes iPXE scripts turn on image trust (imgtrust --permanent)
	// and verify each file they load (imgverify FILE URL.sig).
	Trust bool
	// Mirror, if it has a URL, prefixes the files of image entries whose
	// version it holds instead of BaseURL (boot.ChooseMirror).
	Mirror boot.Mirror
}

// Placeholders are the names a command line may use as {name}: the keys
// Render sets in Vars, and "entry". The config check warns about any
// other name, which would reach the kernel as it was written.
var Placeholders = []string{"hostname", "mac", "ip", "uuid", "arch", "profile", "entry"}

// Safe reduces untrusted text to characters with no meaning in any of the
// menu languages. Others become '_'.
func Safe(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case plainRune(r):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 128 {
			break
		}
	}
	return b.String()
}

// plainRune reports whether r is one of Safe's characters.
func plainRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._:@+=,/-", r)
}

// oneLine removes line breaks from trusted text.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\n\r\x00") {
		return s
	}
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' || r == 0 }), " ")
}

// cmdline is e's command line with {var} substituted by sanitised values,
// and {entry} by the entry's name; unknown names stay. Each loader writes
// it in its own way (cmdline.go).
func (r Request) cmdline(e boot.Entry) string { return r.substitute(e.Cmdline, e.Name) }

// substitute does cmdline's work on s for the entry named entry.
func (r Request) substitute(s, entry string) string {
	return braced(oneLine(s), func(name string) (string, bool) {
		v, ok := r.Vars[name]
		if name == "entry" {
			v, ok = entry, true
		}
		if !ok && slices.Contains(Placeholders, name) {
			ok = true // known, but unknown for this client (no host, no address yet): empty
		}
		return Safe(v), ok
	})
}

// braced replaces each {name} in s with value(name), where that says ok,
// and keeps it otherwise. A name is what lies between a '}' and the last
// '{' before it, so a brace in text before a placeholder (a "${" iPXE
// would read, a "{" of the kernel's own) does not hide it.
func braced(s string, value func(name string) (string, bool)) string {
	var b strings.Builder
	for {
		j := strings.IndexByte(s, '}')
		if j < 0 {
			break
		}
		i := strings.LastIndexByte(s[:j], '{')
		if i < 0 {
			b.WriteString(s[:j+1])
			s = s[j+1:]
			continue
		}
		b.WriteString(s[:i])
		if v, ok := value(s[i+1 : j]); ok {
			b.WriteString(v)
		} else {
			b.WriteString(s[i : j+1])
		}
		s = s[j+1:]
	}
	b.WriteString(s)
	return b.String()
}

// UnknownPlaceholders lists the {names} in s that are not Placeholders,
// found as menus find them.
func UnknownPlaceholders(s string) []string {
	var out []string
	braced(s, func(name string) (string, bool) {
		if !slices.Contains(Placeholders, name) {
			out = append(out, name)
		}
		return "", false
	})
	return out
}

// url makes an absolute URL for a path below the HTTP root.
func (r Request) url(p string) string {
	if strings.Contains(p, "://") {
		return oneLine(p)
	}
	return strings.TrimSuffix(r.BaseURL, "/") + "/" + strings.TrimPrefix(oneLine(p), "/")
}

// fileURL makes the URL of a file entry e loads: on the mirror when e
// boots an image version the mirror holds, else as url does. Signatures
// (Trust) and everything else stay on this server.
func (r Request) fileURL(e boot.Entry, p string) string {
	if r.Mirror.URL != "" && e.ImageVersion != "" && r.Mirror.Versions[e.ImageVersion] && !strings.Contains(p, "://") {
		return strings.TrimSuffix(r.Mirror.URL, "/") + "/" + strings.TrimPrefix(oneLine(p), "/")
	}
	return r.url(p)
}

// entries returns the entries to show: one if a one-shot names it.
func (r Request) entries() ([]boot.Entry, string, error) {
	if r.Boot != "" {
		e, ok := r.Menu.Entry(r.Boot)
		if !ok {
			return nil, "", fmt.Errorf("next-boot entry %q is not in profile %q", r.Boot, r.Profile)
		}
		return []boot.Entry{e}, e.Name, nil
	}
	def := r.Menu.Default
	if def == "" && len(r.Menu.Entries) > 0 {
		def = r.Menu.Entries[0].Name
	}
	return r.Menu.Entries, def, nil
}

// page is one loader's menu: the entries it can boot, each Linux entry
// with its command line as that loader writes it, and the entries it
// cannot, left out.
//
// An entry whose command line the loader cannot carry (CheckCmdline
// warns about it) is left out of that loader's menu alone: the other
// entries still boot, and the menu says in a comment which entry is
// missing and why. Two cases are different, since there the client would
// boot, unattended, something the operator did not choose:
//   - a one-shot whose entry is left out: the menu is refused, as a
//     one-shot boots its entry without a menu, and booting another entry
//     instead is worse than not booting;
//   - a default that is left out: the menu is shown with no timeout, so
//     that nothing boots until someone chooses, even if one entry is left.
//
// A menu with no entry left to boot is refused.
type page struct {
	entries []boot.Entry
	args    []string // args[i] is entries[i]'s command line for the loader
	def     string   // the entry the menu boots without a choice
	wait    bool     // the default was left out: show the menu, no timeout
	leftOut []error  // one per entry left out, naming it and why
}

// page makes ft's page for r.
func (r Request) page(ft Format) (page, error) {
	entries, def, err := r.entries()
	if err != nil {
		return page{}, err
	}
	p := page{def: def}
	for _, e := range entries {
		var args string
		if e.Kind == boot.KindLinux {
			if args, err = r.kernelArgs(ft, e); err != nil {
				err = fmt.Errorf("entry %q: command line: %s: %w", e.Name, loaderName[ft], err)
				if r.Boot != "" {
					return page{}, fmt.Errorf("one-shot %w; no other entry is booted instead", err)
				}
				p.wait = p.wait || e.Name == def
				p.leftOut = append(p.leftOut, fmt.Errorf("left out %w", err))
				continue
			}
		}
		p.entries = append(p.entries, e)
		p.args = append(p.args, args)
	}
	if len(p.entries) == 0 && len(p.leftOut) > 0 {
		why := make([]string, len(p.leftOut))
		for i, err := range p.leftOut {
			why[i] = err.Error()
		}
		return page{}, fmt.Errorf("no entry is left to boot: %s", strings.Join(why, "; "))
	}
	if p.wait {
		p.def = p.entries[0].Name
	}
	return p, nil
}

// loaderName names a loader in messages.
var loaderName = map[Format]string{FormatIPXE: "iPXE", FormatPXELinux: "pxelinux", FormatGRUB: "GRUB"}

// kernelArgs writes e's command line for ft's kernel line, with what that
// loader needs added (initrd=...).
func (r Request) kernelArgs(ft Format, e boot.Entry) (string, error) {
	switch ft {
	case FormatGRUB:
		return grubArgs(r.cmdline(e))
	case FormatPXELinux:
		return r.pxelinuxAppend(e)
	}
	args, err := ipxeArgs(r.cmdline(e))
	if err != nil {
		return "", err
	}
	return r.ipxeInitrds(e, args), nil
}

// ipxeInitrds puts initrd=<name> before an iPXE kernel line's args for
// each of e's initrds the args do not name, on EFI: Debian's iPXE boots
// EFI kernels only with it (LAB.md).
func (r Request) ipxeInitrds(e boot.Entry, args string) string {
	if !r.EFI {
		return args
	}
	for _, i := range e.Initrds {
		if !strings.Contains(args, "initrd="+base(i)) {
			args = prependArg("initrd="+base(i), args)
		}
	}
	return args
}

// comments writes, for each entry left out, a comment line saying so, in
// a language where a line that starts with "#" is a comment (all three).
func (p page) comments(b *strings.Builder) {
	for _, err := range p.leftOut {
		fmt.Fprintf(b, "# bootforge: %s\n", oneLine(err.Error()))
	}
}

// label is what the menu shows for e. The word loaders know it by is
// boot.MenuLabel(e.Name).
func label(e boot.Entry) string {
	if e.Label != "" {
		return oneLine(e.Label)
	}
	return oneLine(e.Name)
}

// waitIn is how long a menu waits before it boots its default, in whole
// units of unit, the loader's unit. 0 means no timeout: the menu waits
// for the user, which is what all three loaders do when they get 0 (iPXE's
// choose without --timeout, pxelinux's TIMEOUT 0) or -1 (GRUB). A positive
// timeout rounds up, never down to 0, so that it is never read as "wait
// forever" or, in GRUB, "boot at once".
func waitIn(d, unit time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	n := d / unit
	if d%unit != 0 {
		n++
	}
	return int64(n)
}

func title(r Request) string {
	if r.Menu.Title != "" {
		return oneLine(r.Menu.Title)
	}
	return "bootforge: " + r.Profile
}

func base(p string) string { return path.Base(strings.SplitN(p, "?", 2)[0]) }
