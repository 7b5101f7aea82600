package menu

import (
	"fmt"
	"strings"
	"time"

	"bootforge/internal/boot"
)

// GRUB renders grub.cfg for BIOS and EFI GRUB. Files come over the same
// protocol GRUB was loaded with ($root), so paths are root-relative; on EFI
// the linuxefi-capable "linux" command is the same word.
func GRUB(r Request) (string, error) {
	m, err := r.render(FormatGRUB)
	return m.Text, err
}

// grubMenu writes page p of r's menu.
func grubMenu(r Request, p page) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# bootforge profile %s\n", Safe(r.Profile))
	p.comments(&b)
	if r.Signed {
		b.WriteString("set check_signatures=enforce\n")
	}
	// GRUB's default is the entry's position, not its id: GRUB reads a
	// number as a position (2.06 reads any value that starts with digits
	// so: "2nd" is entry 2), and any other value as the title or the id of
	// the first entry that has it, so an id could pick an earlier entry
	// whose title it equals.
	fmt.Fprintf(&b, "set default=%d\n", position(p.entries, p.def))
	// GRUB's manual (grub.info, "timeout"): 0 boots the default at once
	// without showing the menu, -1 waits for the user; whole seconds.
	// timeout_style is left unset: its default, "menu", shows the menu
	// while the timeout counts, and GRUB unsets it itself when the
	// timeout is -1 (run_menu in grub-core/normal/menu.c), so an
	// inherited "hidden" cannot hide a menu that waits forever. One entry
	// (or a one-shot) boots at once, as iPXE's script and pxelinux's
	// config without a menu do, unless the default was left out (page).
	timeout := int64(-1)
	switch {
	case p.wait:
	case len(p.entries) == 1:
		timeout = 0
	case r.Menu.Timeout > 0:
		timeout = waitIn(r.Menu.Timeout, time.Second)
	}
	fmt.Fprintf(&b, "set timeout=%d\n", timeout)
	for i, e := range p.entries {
		fmt.Fprintf(&b, "\nmenuentry %s --id %s {\n", quote(label(e)), quote(boot.MenuLabel(e.Name)))
		writeGRUBEntry(&b, r, e, p.args[i])
		b.WriteString("}\n")
	}
	return b.String()
}

// position is the index of the entry named name: 0 when there is none, as
// GRUB falls back to the first entry.
func position(entries []boot.Entry, name string) int {
	for i, e := range entries {
		if e.Name == name {
			return i
		}
	}
	return 0
}

// writeGRUBEntry writes the commands that boot e; args is a Linux entry's
// command line as kernelArgs writes it.
func writeGRUBEntry(b *strings.Builder, r Request, e boot.Entry, args string) {
	switch e.Kind {
	case boot.KindLinux:
		if r.Signed {
			writeGRUBSigned(b, e, args)
			return
		}
		fmt.Fprintf(b, "  linux %s %s\n", quote(grubPath(e.Kernel)), args)
		if len(e.Initrds) > 0 {
			paths := make([]string, len(e.Initrds))
			for i, p := range e.Initrds {
				paths[i] = quote(grubPath(p))
			}
			fmt.Fprintf(b, "  initrd %s\n", strings.Join(paths, " "))
		}
	case boot.KindLocal:
		b.WriteString("  exit\n")
	case boot.KindWimboot:
		writeGRUBWimboot(b, e)
	case boot.KindChain:
		writeGRUBChain(b, e)
	default:
		fmt.Fprintf(b, "  echo %s\n", quote("bootforge: entry kind "+e.Kind+" needs iPXE"))
		b.WriteString("  sleep 5\n")
	}
}

// grubPath makes a path absolute on GRUB's current root device.
func grubPath(p string) string {
	p = oneLine(p)
	if strings.Contains(p, "://") {
		return p
	}
	return "/" + strings.TrimPrefix(p, "/")
}

// quote single-quotes for GRUB's shell-like parser: nothing inside single
// quotes is expanded; a quote itself is closed, escaped and reopened.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeGRUBSigned loads a Linux entry so that a load GRUB refuses (a bad
// or missing signature) stops the boot: GRUB reports the error and goes
// on with the next command, which would boot the kernel without its
// initrd. GRUB 2.06 script has if/then/else; the else branch stops. args
// is the command line as grubArgs writes it.
func writeGRUBSigned(b *strings.Builder, e boot.Entry, args string) {
	stop := func(what string) {
		fmt.Fprintf(b, "  else\n    echo %s\n    sleep 10\n    reboot\n  fi\n",
			quote("bootforge: the "+what+" did not load or its signature is bad; not booting"))
	}
	fmt.Fprintf(b, "  if linux %s %s; then\n    echo %s\n", quote(grubPath(e.Kernel)), args, quote("bootforge: kernel verified"))
	stop("kernel")
	if len(e.Initrds) > 0 {
		paths := make([]string, len(e.Initrds))
		for i, p := range e.Initrds {
			paths[i] = quote(grubPath(p))
		}
		fmt.Fprintf(b, "  if initrd %s; then\n    echo %s\n", strings.Join(paths, " "), quote("bootforge: initrd verified"))
		stop("initrd")
	}
}

// writeGRUBWimboot loads wimboot as wimboot's documentation shows for
// GRUB: as a 16-bit Linux kernel, with the WinPE files as initrds that
// GRUB wraps in a cpio archive under the names wimboot looks for
// ("newc:NAME:PATH"). That is BIOS GRUB only: GRUB 2.06 on EFI has no
// linux16, and its chainloader cannot hand wimboot the files, so an EFI
// GRUB says so and stops instead of booting a half-loaded wimboot. The
// platform is tested when the entry runs, since the menu may be fetched
// before the firmware is known.
func writeGRUBWimboot(b *strings.Builder, e boot.Entry) {
	files := []string{}
	add := func(name, p string) {
		if p != "" {
			files = append(files, quote("newc:"+name+":"+grubPath(p)))
		}
	}
	add("bootmgr", e.Bootmgr) // BIOS wimboot needs it; newer wimboot finds it in boot.wim
	add("BCD", e.BCD)
	add("boot.sdi", e.BootSDI)
	add("boot.wim", e.BootWIM)
	b.WriteString("  if [ \"$grub_platform\" = pc ]; then\n")
	fmt.Fprintf(b, "    linux16 %s\n", quote(grubPath(e.Wimboot)))
	fmt.Fprintf(b, "    initrd16 %s\n", strings.Join(files, " "))
	b.WriteString("  else\n")
	fmt.Fprintf(b, "    echo %s\n", quote("bootforge: wimboot needs iPXE or BIOS GRUB; this EFI GRUB cannot load it"))
	b.WriteString("    sleep 10\n  fi\n")
}

// writeGRUBChain chains what GRUB can run: a loader below the root,
// fetched from GRUB's root device (TFTP or HTTP), as an EFI image on EFI
// and as a PXE network boot program (pxechainloader) on BIOS. A URL is
// not: GRUB cannot chainload "http://..." (it reads paths on devices), and
// what such a URL names is usually an iPXE script, which only iPXE runs.
// Such an entry says so and does not boot.
func writeGRUBChain(b *strings.Builder, e boot.Entry) {
	if strings.Contains(e.URL, "://") {
		fmt.Fprintf(b, "  echo %s\n", quote("bootforge: chain to "+oneLine(e.URL)+" needs iPXE; GRUB cannot run it"))
		b.WriteString("  sleep 10\n")
		return
	}
	p := quote(grubPath(e.URL))
	b.WriteString("  if [ \"$grub_platform\" = pc ]; then\n")
	fmt.Fprintf(b, "    pxechainloader %s\n", p)
	b.WriteString("  else\n")
	fmt.Fprintf(b, "    chainloader %s\n", p)
	b.WriteString("  fi\n")
}

// GRUBForward is GRUB's first config, served as grub.cfg and
// grub.cfg-01-<mac> and built into the signed GRUB: it reads the
// machine's SMBIOS facts (type 1, System Information: manufacturer at
// offset 4, product 5, serial 7, UUID 8) with GRUB's smbios command and
// asks for its menu by a path that carries them, since GRUB sends no
// query string over TFTP and profiles may match on them. Values go in as
// GRUB reads them: TFTP takes spaces and any other printable byte in a
// file name. If that path fails (no smbios command, a value the server
// refuses such as "..", a path over 255 bytes, or HTTP, where a space
// breaks the request line), the menu by MAC alone follows. A string is
// read only when its index byte is not 0 (none set): GRUB would print an
// error for it, and a machine without a serial number is not a fault.
const GRUBForward = `# bootforge: per-client menus, chosen by MAC and SMBIOS facts
smbios --type 1 --get-byte 4 --set bf_i
if [ "$bf_i" -gt 0 ]; then smbios --type 1 --get-string 4 --set bf_manufacturer; fi
smbios --type 1 --get-byte 5 --set bf_i
if [ "$bf_i" -gt 0 ]; then smbios --type 1 --get-string 5 --set bf_product; fi
smbios --type 1 --get-byte 7 --set bf_i
if [ "$bf_i" -gt 0 ]; then smbios --type 1 --get-string 7 --set bf_serial; fi
smbios --type 1 --get-uuid 8 --set bf_uuid
configfile "/bootforge/grub/${net_default_mac}/uuid=${bf_uuid}/manufacturer=${bf_manufacturer}/product=${bf_product}/serial=${bf_serial}/grub.cfg"
configfile "/bootforge/grub/${net_default_mac}.cfg"
`
