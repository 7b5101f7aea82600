package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"bootforge/internal/grub"
)

// loaders are the boot loaders `init` copies from Debian's packages, by
// their path there and their name in the served root. Nothing is downloaded.
var loaders = []struct{ src, dst, pkg string }{
	{"/usr/lib/ipxe/undionly.kpxe", "undionly.kpxe", "ipxe"},
	{"/usr/lib/ipxe/ipxe.pxe", "ipxe.pxe", "ipxe"},
	{"/usr/lib/ipxe/ipxe.efi", "ipxe.efi", "ipxe"},
	{"/usr/lib/ipxe/snponly.efi", "snponly.efi", "ipxe"},
	{"/usr/lib/PXELINUX/pxelinux.0", "pxelinux.0", "pxelinux"},
	{"/usr/lib/syslinux/modules/bios/ldlinux.c32", "ldlinux.c32", "syslinux-common"},
	{"/usr/lib/syslinux/modules/bios/menu.c32", "menu.c32", "syslinux-common"},
	{"/usr/lib/syslinux/modules/bios/libutil.c32", "libutil.c32", "syslinux-common"},
	{"/usr/lib/syslinux/modules/bios/libcom32.c32", "libcom32.c32", "syslinux-common"},
	// linux.c32 boots wimboot entries from pxelinux with named initrds.
	{"/usr/lib/syslinux/modules/bios/linux.c32", "linux.c32", "syslinux-common"},
	// syslinux.efi for x64 UEFI clients given pxelinux-style menus
	// (dhcp.loaders.efi_x64: efi64/syslinux.efi). It loads its modules and
	// pxelinux.cfg/ from its own directory; the EFI modules have the same
	// names as the BIOS ones, so they live apart.
	{"/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi", "efi64/syslinux.efi", "syslinux-efi"},
	{"/usr/lib/syslinux/modules/efi64/ldlinux.e64", "efi64/ldlinux.e64", "syslinux-common"},
	{"/usr/lib/syslinux/modules/efi64/menu.c32", "efi64/menu.c32", "syslinux-common"},
	{"/usr/lib/syslinux/modules/efi64/libutil.c32", "efi64/libutil.c32", "syslinux-common"},
	{"/usr/lib/syslinux/modules/efi64/libcom32.c32", "efi64/libcom32.c32", "syslinux-common"},
	{"/usr/lib/syslinux/modules/efi64/linux.c32", "efi64/linux.c32", "syslinux-common"},
	{"/usr/lib/grub/x86_64-efi/monolithic/grubnetx64.efi", "grubnetx64.efi", "grub-efi-amd64-bin"},
	{"/usr/lib/shim/shimx64.efi.signed", "shimx64.efi", "shim-signed"},
	{"/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed", "grubx64.efi", "grub-efi-amd64-signed"},
}

func newInitCmd() *cobra.Command {
	var force, install bool
	cmd := &cobra.Command{
		Use:   "init DIR",
		Short: "Write a starter config and data directory, with loaders from Debian's packages",
		Long: `Create DIR with a commented bootforge.yaml, a served root DIR/root and a
state directory, and copy in the boot loaders that Debian's ipxe, pxelinux,
syslinux-common and grub packages have installed, and build BIOS GRUB's
netboot core with grub-mknetdir (root/grub/i386-pc/core.0). Nothing is
downloaded.
An existing config is kept unless --force is given; loaders already in the
root are never overwritten. With --install the config goes to
` + systemConfig + ` instead, where the service and every command
find it without --config.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfgPath := ""
			if install {
				cfgPath = systemConfig
			}
			return initDir(cmd.OutOrStdout(), args[0], cfgPath, force)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing bootforge.yaml")
	cmd.Flags().BoolVar(&install, "install", false, "write the config to "+systemConfig)
	return cmd
}

// plainPath matches a path that YAML and the shell both read as it is
// written; init quotes any other (a directory named "boot #1" would end
// at the "#" in YAML, and break the "Start with" line in the shell).
var plainPath = regexp.MustCompile(`^[A-Za-z0-9/._+-]+$`)

// yamlQuote writes p as a YAML scalar: plain if it can be, else double
// quoted (a JSON string is one).
func yamlQuote(p string) string {
	if plainPath.MatchString(p) {
		return p
	}
	b, _ := json.Marshal(p)
	return string(b)
}

// shellQuote writes p as one shell word.
func shellQuote(p string) string {
	if plainPath.MatchString(p) {
		return p
	}
	return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
}

// initDir makes dir and writes the config to cfgPath, or to
// dir/bootforge.yaml when cfgPath is empty.
func initDir(out io.Writer, dir, cfgPath string, force bool) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	start := "bootforge serve"
	if cfgPath == "" {
		cfgPath = filepath.Join(dir, "bootforge.yaml")
		start += " --config " + shellQuote(cfgPath)
	}
	if err := os.MkdirAll(filepath.Dir(cfgPath), 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(cfgPath); err == nil && !force {
		fmt.Fprintf(out, "kept      %s (use --force to overwrite)\n", cfgPath)
	} else {
		text := strings.NewReplacer("@DATA@", yamlQuote(dir), "@ROOT@", yamlQuote(root)).Replace(starterConfig)
		if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote     %s\n", cfgPath)
	}
	var missing []string
	for _, l := range loaders {
		dst := filepath.Join(root, l.dst)
		if _, err := os.Stat(l.src); err == nil {
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
		}
		switch err := copyNew(l.src, dst); {
		case err == nil:
			fmt.Fprintf(out, "copied    %s -> %s\n", l.src, dst)
		case errors.Is(err, fs.ErrExist):
			fmt.Fprintf(out, "kept      %s\n", dst)
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, l.pkg)
		default:
			return err
		}
	}
	// BIOS GRUB: grub-mknetdir builds the PXE core and its module tree.
	core := filepath.Join(root, filepath.FromSlash(grub.NetCore))
	if _, err := os.Stat(core); err == nil {
		fmt.Fprintf(out, "kept      %s\n", core)
	} else if err := grub.MkNetDir(context.Background(), "/usr/lib/grub", root); err != nil {
		fmt.Fprintf(out, "not built: BIOS GRUB (%v)\n", err)
		missing = append(missing, "grub-pc-bin")
	} else {
		fmt.Fprintf(out, "built     %s (grub-mknetdir; for BIOS clients set dhcp.loaders.bios: %s)\n", core, grub.NetCore)
	}
	if len(missing) > 0 {
		fmt.Fprintf(out, "not found: some loaders; install Debian packages: %s\n", strings.Join(uniq(missing), " "))
	}
	fmt.Fprintf(out, "\nStart with:  %s\n", start)
	return nil
}

// copyNew copies src to dst unless dst exists; fs.ErrNotExist if src is missing.
func copyNew(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if _, err := os.Stat(dst); err == nil {
		return fs.ErrExist
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".init-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

const starterConfig = `# bootforge configuration. Every key is optional: what is left out keeps the
# default shown here. Any key can also be set in the environment as
# BOOTFORGE_<KEY> with dots as underscores, e.g. BOOTFORGE_TFTP_LISTEN.
# Reload with SIGHUP; a config with errors is refused and the old one kept.

# State that must never be served: the TLS key, the store.
data_dir: @DATA@
# The directory served over TFTP and HTTP(S).
root: @ROOT@
# full: a lease is on disk before its ACK leaves (survives power loss);
# normal: it survives a crash of bootforge only, like Kea's memfile.
store_sync: full

log:
  level: info        # debug, info, warn, error
  format: text       # text or json

tftp:
  enabled: true
  listen: ":69"
  # Largest RFC 2348 blksize. 0: the receiving interface's MTU minus 32
  # (IPv6: minus 52), so one block fills one frame without fragments.
  max_block_size: 0
  # Largest RFC 7440 windowsize (blocks sent before waiting for an ACK);
  # a window also never holds more than 128 KiB.
  max_window_size: 64
  # First retransmission timeout (doubles on each retry) when the client
  # does not negotiate one, and the retries before a transfer fails.
  timeout: 1s
  retries: 5
  # Concurrent transfers in total, and per client IP address.
  max_transfers: 1000
  max_per_client: 16
  # Find "Boot\BCD" as "boot/bcd": Windows loaders are case-insensitive.
  case_insensitive: false

http:
  enabled: true
  listen: ":8080"
  access_log: true
  max_requests: 1024   # in flight; past it, 503 with Retry-After
  max_per_client: 32   # in flight from one address (0: no bound)
  tls:
    enabled: true
    listen: ":8443"
    # Leave both empty for a self-signed certificate kept in data_dir/tls.
    cert: ""
    key: ""

# The management API (/api/v1, /healthz, /readyz): keep it off the boot
# network. Tokens: bootforge token create --role read|admin
api:
  enabled: true
  listen: "127.0.0.1:9090"

# The boot log: every DHCP, TFTP, HTTP and menu step, with MAC and IP.
audit:
  enabled: true
  retention: 2160h

dhcp:
  # off, proxy (beside the network's DHCP server: PXE answers only) or
  # authoritative (give addresses from the subnets below).
  mode: "off"
  # Name the interfaces to serve; a DHCP server never answers elsewhere.
  interfaces: []
  # subnets:
  #   - subnet: 192.0.2.0/24
  #     pools: ["192.0.2.100-192.0.2.200"]
  #     router: 192.0.2.1
  #     dns: [192.0.2.1]
  #     reservations:
  #       - {mac: "52:54:00:12:34:56", ip: 192.0.2.50, hostname: pc1}

# Hardware profiles and hosts: here, or one file each (or a list) in
# profiles/ and hosts/ beside this file, watched while bootforge runs.
inventory:
  # The profile of every client that no other profile matches.
  default_profile: starter
  profiles:
    # Boots the local disk after 10 s; the iPXE shell is one key away.
    - name: starter
      menu:
        default: disk
        timeout: 10s
        entries:
          - {name: disk, label: "Boot from local disk", kind: local}
          - {name: shell, label: "iPXE shell", kind: shell}
    # A Linux installer, matched by OUI and firmware:
    # - name: lab
    #   match: [{oui: "52:54:00", arch: efi-x64}]
    #   menu:
    #     default: install
    #     timeout: 5s
    #     entries:
    #       - {name: install, kind: linux, kernel: debian/vmlinuz,
    #          initrds: [debian/initrd.gz], cmdline: "hostname={hostname}"}
    #       - {name: disk, kind: local}
`
