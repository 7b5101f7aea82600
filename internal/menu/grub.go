package menu

import (
	"fmt"
	"strings"

	"bootforge/internal/boot"
)

// GRUB renders grub.cfg for BIOS and EFI GRUB. Files come over the same
// protocol GRUB was loaded with ($root), so paths are root-relative; on EFI
// the linuxefi-capable "linux" command is the same word.
func GRUB(r Request) (string, error) {
	entries, def, err := r.entries()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# bootforge profile %s\n", ident(r.Profile))
	if r.Signed {
		b.WriteString("set check_signatures=enforce\n")
	}
	fmt.Fprintf(&b, "set default=%s\n", quote(ident(def)))
	timeout := int(r.Menu.Timeout.Seconds())
	if len(entries) == 1 {
		timeout = 0
	}
	fmt.Fprintf(&b, "set timeout=%d\n", timeout)
	for _, e := range entries {
		fmt.Fprintf(&b, "\nmenuentry %s --id %s {\n", quote(label(e)), quote(ident(e.Name)))
		writeGRUBEntry(&b, r, e)
		b.WriteString("}\n")
	}
	return b.String(), nil
}

func writeGRUBEntry(b *strings.Builder, r Request, e boot.Entry) {
	switch e.Kind {
	case boot.KindLinux:
		if r.Signed {
			writeGRUBSigned(b, r, e)
			return
		}
		fmt.Fprintf(b, "  linux %s %s\n", quote(grubPath(e.Kernel)), r.cmdline(e))
		if len(e.Initrds) > 0 {
			paths := make([]string, len(e.Initrds))
			for i, p := range e.Initrds {
				paths[i] = quote(grubPath(p))
			}
			fmt.Fprintf(b, "  initrd %s\n", strings.Join(paths, " "))
		}
	case boot.KindLocal:
		b.WriteString("  exit\n")
	case boot.KindChain:
		fmt.Fprintf(b, "  chainloader %s\n", quote(grubPath(e.URL)))
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
// initrd. GRUB 2.06 script has if/then/else; the else branch stops.
func writeGRUBSigned(b *strings.Builder, r Request, e boot.Entry) {
	stop := func(what string) {
		fmt.Fprintf(b, "  else\n    echo %s\n    sleep 10\n    reboot\n  fi\n",
			quote("bootforge: the "+what+" did not load or its signature is bad; not booting"))
	}
	fmt.Fprintf(b, "  if linux %s %s; then\n    echo %s\n", quote(grubPath(e.Kernel)), r.cmdline(e), quote("bootforge: kernel verified"))
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
