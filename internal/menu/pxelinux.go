package menu

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"bootforge/internal/boot"
)

// PXELinux renders pxelinux.cfg syntax for menu.c32. Kernels and initrds
// are fetched by pxelinux over TFTP, so their paths are written relative to
// the root (pxelinux.0 itself does no HTTP). wimboot entries boot natively
// through linux.c32; the kinds only iPXE can run (iso, chain, shell) chain
// to iPXE with the choice kept (see PickPath).
func PXELinux(r Request) (string, error) {
	m, err := r.render(FormatPXELinux)
	return m.Text, err
}

// pxelinuxMenu writes page p of r's menu.
func pxelinuxMenu(r Request, p page) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# bootforge profile %s\n", Safe(r.Profile))
	p.comments(&b)
	if len(p.entries) > 1 || p.wait {
		b.WriteString("UI menu.c32\n")
		fmt.Fprintf(&b, "MENU TITLE %s\n", title(r))
		// TIMEOUT is in tenths of a second, and 0 disables it: menu.c32
		// waits for the user (syslinux.cfg(5) in syslinux-common's docs;
		// menu.c32's run_menu treats a timeout of 0 as "no limit").
		// TOTALTIMEOUT, which user input does not cancel, is left at its
		// default, 0: none.
		// The default left out (page): no timeout, the menu waits.
		timeout := waitIn(r.Menu.Timeout, 100*time.Millisecond)
		if p.wait {
			timeout = 0
		}
		fmt.Fprintf(&b, "TIMEOUT %d\n", timeout)
	}
	fmt.Fprintf(&b, "DEFAULT %s\n", boot.MenuLabel(p.def))
	b.WriteString("PROMPT 0\n")
	for i, e := range p.entries {
		fmt.Fprintf(&b, "\nLABEL %s\n", boot.MenuLabel(e.Name))
		fmt.Fprintf(&b, "  MENU LABEL %s\n", label(e))
		writePXELinuxEntry(&b, r, e, p.args[i])
	}
	return b.String()
}

// pxelinuxAppend writes APPEND's text for a Linux entry: the kernel's
// command line as it is, after initrd=.
func (r Request) pxelinuxAppend(e boot.Entry) (string, error) {
	args, err := pxelinuxArgs(r.cmdline(e))
	if err != nil {
		return "", err
	}
	if len(e.Initrds) > 0 {
		paths := make([]string, len(e.Initrds))
		for i, p := range e.Initrds {
			paths[i] = r.pxePath(p)
		}
		args = prependArg("initrd="+strings.Join(paths, ","), args)
	}
	if args == "-" {
		// "APPEND -" means no command line at all (syslinux.cfg(5));
		// syslinux compares the whole value with "-" (record() in
		// ldlinux's and menu.c32's readconfig.c), so a space after it
		// keeps the operator's "-" for the kernel, which splits at it.
		args += " "
	}
	if n := len(pxelinuxAppendKey) + len(args); n > pxelinuxLineMax {
		return "", fmt.Errorf("its APPEND line would be %d bytes; syslinux reads %d bytes of a config line and the rest as a line of its own", n, pxelinuxLineMax)
	}
	return args, nil
}

// pxelinuxAppendKey is what an entry's APPEND line has before its text.
const pxelinuxAppendKey = "  APPEND "

// pxelinuxLineMax is the longest config line syslinux reads whole:
// syslinux 5 and later (ldlinux.c32 and menu.c32, readconfig.c) read the
// config with fgets into a buffer of 4096 bytes (MAX_LINE), which holds
// 4095 and the NUL, so the rest of a longer line is read as a directive
// of its own. (Syslinux 4 kept 2047 bytes of a command line, max_cmd_len
// in core/config.inc: the kernel's limit, which CheckEntry warns about.)
const pxelinuxLineMax = 4095

// writePXELinuxEntry writes the directives that boot e; args is a Linux
// entry's APPEND text as kernelArgs writes it.
func writePXELinuxEntry(b *strings.Builder, r Request, e boot.Entry, args string) {
	switch e.Kind {
	case boot.KindLinux:
		fmt.Fprintf(b, "  KERNEL %s\n", r.pxePath(e.Kernel))
		fmt.Fprintf(b, "%s%s\n", pxelinuxAppendKey, args)
	case boot.KindWimboot:
		// wimboot finds the WinPE files by name (bootmgr, BCD, boot.sdi,
		// boot.wim) in cpio archives, as iPXE's "initrd URL NAME" hands
		// them over. pxelinux's own INITRD loads raw files with no names;
		// linux.c32's initrdfile=PATH@NAME wraps each file in a cpio entry
		// called NAME. That is wimboot's documented syslinux usage, and it
		// works with Debian's syslinux 6.04 (linux.c32 needs libcom32.c32).
		var files []string
		for _, f := range wimbootFiles(e) {
			files = append(files, r.pxePath(f[0])+"@"+f[1])
		}
		b.WriteString("  COM32 linux.c32\n")
		fmt.Fprintf(b, "  APPEND %s initrdfile=%s\n", r.pxePath(e.Wimboot), strings.Join(files, ","))
	case boot.KindLocal:
		b.WriteString("  LOCALBOOT 0\n")
	default:
		if r.EFI {
			// syslinux.efi cannot chain iPXE's BIOS loader: the entry is
			// shown but cannot be chosen.
			fmt.Fprintf(b, "  MENU DISABLE\n  # kind %s needs iPXE, which syslinux.efi cannot chain\n", e.Kind)
			return
		}
		// iso, chain, shell: only iPXE runs these. pxelinux chains iPXE's
		// undionly.kpxe as a PXE program (the PXE keyword: syslinux takes
		// the image type from the extension, and would load .kpxe as a
		// Linux kernel). iPXE does its own DHCP, gets bootforge's script
		// URL and asks for this client's menu again. So that the choice is
		// not lost, undionly.kpxe is fetched under a path that names the
		// client and the entry: bootforge notes the pick there, and the
		// iPXE menu the client asks for next boots that entry directly
		// (boot.Decision.Keep). Debian's iPXE cannot be told a script any
		// other way without an embedded script: it always redoes DHCP.
		if mac := r.Vars["mac"]; mac != "" {
			fmt.Fprintf(b, "  PXE %s\n", PickPath(mac, e.Name))
		} else {
			b.WriteString("  PXE undionly.kpxe\n") // no client to note the pick for: iPXE shows the menu
		}
	}
}

// PickDir is where pxelinux fetches iPXE for an entry only iPXE can boot:
// PickDir/<mac>/<entry>/undionly.kpxe.
const PickDir = "bootforge/pick/"

// PickLoader is the iPXE build pxelinux chains: it drives the NIC through
// the PXE ROM's UNDI, so it works wherever pxelinux did.
const PickLoader = "undionly.kpxe"

// PickPath is the path that fetches PickLoader for mac's choice of entry.
// The entry name is path-escaped; the MAC is written with hyphens, as
// pxelinux writes it.
func PickPath(mac, entry string) string {
	return PickDir + strings.ReplaceAll(strings.ToLower(Safe(mac)), ":", "-") + "/" + url.PathEscape(entry) + "/" + PickLoader
}

// ParsePickPath reads a PickPath back: the MAC as written and the entry.
func ParsePickPath(p string) (mac, entry string, ok bool) {
	rest, found := strings.CutPrefix(p, PickDir)
	if !found {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[2] != PickLoader || parts[0] == "" || parts[1] == "" {
		return "", "", false
	}
	entry, err := url.PathUnescape(parts[1])
	if err != nil {
		return "", "", false
	}
	return parts[0], entry, true
}

// wimbootFiles are a wimboot entry's files with the names wimboot looks
// for; bootmgr is optional (newer wimboot finds it in boot.wim).
func wimbootFiles(e boot.Entry) [][2]string {
	var out [][2]string
	if e.Bootmgr != "" {
		out = append(out, [2]string{e.Bootmgr, "bootmgr"})
	}
	return append(out, [2]string{e.BCD, "BCD"}, [2]string{e.BootSDI, "boot.sdi"}, [2]string{e.BootWIM, "boot.wim"})
}

// tftpPath writes a path for a TFTP fetch: relative to the root.
func tftpPath(p string) string {
	return strings.TrimPrefix(oneLine(p), "/")
}

// pxePath writes a file's path for pxelinux. pxelinux.0 sits in the root
// and takes paths relative to it; syslinux.efi sits in efi64/ with its own
// modules and takes paths relative to that, so for EFI clients the path
// is written in syslinux's "server::path" form with the server left out
// (the boot server), which no prefix is put before.
func (r Request) pxePath(p string) string {
	if r.EFI {
		return "::" + tftpPath(p)
	}
	return tftpPath(p)
}
