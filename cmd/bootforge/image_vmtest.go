package main

import (
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"bootforge/internal/image"
	"bootforge/internal/vmtest"
)

// newImageTestCmd is `image test`: boot a built version in a VM through a
// private bootforge and watch its serial console (internal/vmtest).
func newImageTestCmd(g *globalFlags) *cobra.Command {
	var firmware, expect string
	var timeout time.Duration
	var memory int
	var showConsole bool
	cmd := &cobra.Command{
		Use:   "test NAME@VERSION",
		Short: "Boot a built image in a VM (QEMU, TCG) through a private bootforge",
		Long: `Boot NAME@VERSION in a QEMU VM before it goes into real menus.

A private bootforge (this binary) runs in a new network namespace with its
own bridge (192.0.2.1/24) as the only DHCP, TFTP and HTTP server there; its
root holds the loaders from Debian's packages and the image's files, and its
one profile boots the image as the default entry. The VM boots from the
network with --firmware:

  bios     SeaBIOS with QEMU's iPXE ROM (e1000)
  uefi     OVMF's own PXE client, then snponly.efi (iPXE)
  secboot  OVMF enforcing Secure Boot: shim, Debian's signed GRUB, a
           signed kernel

Linux kernels get console=ttyS0 added. The test passes when a console line
matches --expect (default for linux images: the kernel's "Run /init as init
process", printed unless the command line has "quiet"; for wimboot images:
wimboot's banner). It fails at once on a kernel panic, a refused signature
or a loader that could not boot the image, or when --timeout passes, and
then prints the console's tail and the server's log lines about the VM.

Needs root, qemu-system-x86_64 (qemu-system-x86), ip (iproute2) and the
firmware (ipxe-qemu, ovmf) and loaders (ipxe, shim-signed,
grub-efi-amd64-signed). Everything it sets up is removed when it ends, also
on Ctrl-C. Exits 0 when the image booted, non-zero otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := image.ParseID(args[0])
			if err != nil {
				return err
			}
			fw, err := vmtest.ParseFirmware(firmware)
			if err != nil {
				return err
			}
			cfg, err := loadConfig(cmd, g)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			out := cmd.OutOrStdout()
			o := vmtest.Options{Root: cfg.Root, ID: id, Firmware: fw, Expect: expect,
				Timeout: timeout, Memory: memory, Progress: out}
			if showConsole {
				o.Console = cmd.ErrOrStderr()
			}
			res, err := vmtest.Run(ctx, o)
			if err != nil {
				return err
			}
			printVMResult(out, res)
			if !res.Passed {
				return fmt.Errorf("image test %s (%s) failed: %s", res.ID, res.Firmware, res.Reason)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&firmware, "firmware", string(vmtest.BIOS), "bios, uefi or secboot")
	f.StringVar(&expect, "expect", "", "pass when a console line matches this regexp (default: by the image's kind, see above)")
	f.DurationVar(&timeout, "timeout", vmtest.DefaultTimeout, "fail if nothing matched by then")
	f.IntVar(&memory, "memory", vmtest.DefaultMemory, "VM memory in MiB")
	f.BoolVar(&showConsole, "console", false, "copy the serial console to stderr as it comes")
	return cmd
}

// printVMResult prints the verdict, and for a failure the console's tail
// and the server's log about the VM.
func printVMResult(w io.Writer, r *vmtest.Result) {
	secs := r.Elapsed.Seconds()
	if r.Passed {
		fmt.Fprintf(w, "PASS %s (%s): matched after %.1f s: %s\n", r.ID, r.Firmware, secs, r.Line)
		return
	}
	fmt.Fprintf(w, "FAIL %s (%s) after %.1f s: %s\n", r.ID, r.Firmware, secs, r.Reason)
	fmt.Fprintf(w, "--- console tail (last %d lines) ---\n", vmtest.TailLines)
	for _, l := range r.ConsoleTail {
		fmt.Fprintln(w, l)
	}
	if len(r.ConsoleTail) == 0 {
		fmt.Fprintln(w, "(the console printed nothing)")
	}
	fmt.Fprintf(w, "--- server log for %s / %s ---\n", r.MAC, r.IP)
	for _, l := range r.ServerLog {
		fmt.Fprintln(w, l)
	}
	if len(r.ServerLog) == 0 {
		fmt.Fprintln(w, "(the server logged nothing about this VM)")
	}
	fmt.Fprintln(w, "---")
}
