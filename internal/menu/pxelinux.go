package menu

import (
	"fmt"
	"strings"

	"bootforge/internal/boot"
)

// PXELinux renders pxelinux.cfg syntax for menu.c32. Kernels and initrds
// are fetched by pxelinux over TFTP, so their paths are written relative to
// the root (pxelinux.0 itself does no HTTP). Entry kinds pxelinux cannot run
// (iso, wimboot) chain to iPXE instead.
func PXELinux(r Request) (string, error) {
	entries, def, err := r.entries()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# bootforge profile %s\n", ident(r.Profile))
	if len(entries) > 1 {
		b.WriteString("UI menu.c32\n")
		fmt.Fprintf(&b, "MENU TITLE %s\n", title(r))
		// TIMEOUT is in tenths of a second; 0 waits forever.
		fmt.Fprintf(&b, "TIMEOUT %d\n", max(1, int(r.Menu.Timeout.Milliseconds()/100)))
	}
	fmt.Fprintf(&b, "DEFAULT %s\n", ident(def))
	b.WriteString("PROMPT 0\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "\nLABEL %s\n", ident(e.Name))
		fmt.Fprintf(&b, "  MENU LABEL %s\n", label(e))
		writePXELinuxEntry(&b, r, e)
	}
	return b.String(), nil
}

func writePXELinuxEntry(b *strings.Builder, r Request, e boot.Entry) {
	switch e.Kind {
	case boot.KindLinux:
		fmt.Fprintf(b, "  KERNEL %s\n", tftpPath(e.Kernel))
		args := r.cmdline(e)
		if len(e.Initrds) > 0 {
			paths := make([]string, len(e.Initrds))
			for i, p := range e.Initrds {
				paths[i] = tftpPath(p)
			}
			args = strings.TrimSpace("initrd=" + strings.Join(paths, ",") + " " + args)
		}
		fmt.Fprintf(b, "  APPEND %s\n", args)
	case boot.KindLocal:
		b.WriteString("  LOCALBOOT 0\n")
	default:
		// iso, wimboot, chain, shell: hand over to iPXE, which can.
		b.WriteString("  KERNEL undionly.kpxe\n")
	}
}

// tftpPath writes a path for a TFTP fetch: relative to the root.
func tftpPath(p string) string {
	return strings.TrimPrefix(oneLine(p), "/")
}
