package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"bootforge/internal/audit"
	"bootforge/internal/boot"
	"bootforge/internal/config"
	"bootforge/internal/dhcp"
	"bootforge/internal/inventory"
	"bootforge/internal/menu"
	"bootforge/internal/store"
)

// openConfiguredStore loads the config and opens its store, for commands
// that work beside (or without) a running server.
func openConfiguredStore(cmd *cobra.Command, g *globalFlags) (config.Config, *store.SQLite, error) {
	cfg, err := loadConfig(cmd, g)
	if err != nil {
		return config.Config{}, nil, err
	}
	db, err := openStore(cfg)
	return cfg, db, err
}

// offline is what the inventory commands need: the config, the store and
// the inventory, opened beside (or without) a running server. SQLite in
// WAL mode lets both write.
type offline struct {
	cfg config.Config
	db  *store.SQLite
	inv *boot.Inventory
}

func openOffline(cmd *cobra.Command, g *globalFlags) (*offline, error) {
	cfg, db, err := openConfiguredStore(cmd, g)
	if err != nil {
		return nil, err
	}
	inv, err := inventory.Load(inventorySource(cfg, g.config, db))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("inventory: %w", err)
	}
	return &offline{cfg: cfg, db: db, inv: inv}, nil
}

func newHostCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "host", Short: "Manage hosts and their one-shot next boots (works while the server runs)"}
	var macs, labels []string
	var uuid, profile string
	add := &cobra.Command{
		Use:   "add NAME --mac MAC [--mac MAC] [--uuid U] [--label L] [--profile P]",
		Short: "Add or replace a host in the store",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := openOffline(cmd, g)
			if err != nil {
				return err
			}
			defer o.db.Close()
			h := boot.Host{Name: args[0], UUID: strings.ToLower(uuid), Labels: labels, Profile: profile}
			for _, m := range macs {
				hw, err := net.ParseMAC(m)
				if err != nil {
					return fmt.Errorf("--mac %q: not a MAC address", m)
				}
				h.MACs = append(h.MACs, hw)
			}
			if len(h.MACs) == 0 && h.UUID == "" {
				return errors.New("a host needs --mac or --uuid")
			}
			// Check the result before storing it: a bad pin must not reach the server.
			if _, err := boot.NewInventory(o.inv.Profiles(), append(without(o.inv.Hosts(), h.Name), h), o.inv.Default); err != nil {
				return err
			}
			if err := o.db.PutHost(h); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "host %s stored\n", h.Name)
			return nil
		},
	}
	add.Flags().StringSliceVar(&macs, "mac", nil, "MAC address (repeatable)")
	add.Flags().StringVar(&uuid, "uuid", "", "SMBIOS UUID")
	add.Flags().StringSliceVar(&labels, "label", nil, "label (repeatable)")
	add.Flags().StringVar(&profile, "profile", "", "pin this profile")

	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a host from the store",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := openOffline(cmd, g)
			if err != nil {
				return err
			}
			defer o.db.Close()
			return o.db.DeleteHost(args[0])
		},
	}

	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List hosts (config, inventory files and store) with their next boot",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := openOffline(cmd, g)
			if err != nil {
				return err
			}
			defer o.db.Close()
			return printHosts(cmd.OutOrStdout(), o, o.inv.Hosts(), asJSON)
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	show := &cobra.Command{
		Use:   "show MAC|NAME",
		Short: "Show one host, its profile and its next boot",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := openOffline(cmd, g)
			if err != nil {
				return err
			}
			defer o.db.Close()
			var found []boot.Host
			for _, h := range o.inv.Hosts() {
				if h.Name == args[0] || hasMAC(h, args[0]) {
					found = append(found, h)
				}
			}
			if len(found) == 0 {
				if mac, err := net.ParseMAC(args[0]); err == nil {
					found = append(found, boot.Host{Name: "(not in inventory)", MACs: []net.HardwareAddr{mac}})
				} else {
					return fmt.Errorf("no host %q", args[0])
				}
			}
			return printHosts(cmd.OutOrStdout(), o, found, asJSON)
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var expires time.Duration
	var always, clear bool
	next := &cobra.Command{
		Use:   "next-boot MAC [ENTRY] [--expires 2h] [--always] [--clear]",
		Short: "Make the next boot of MAC take ENTRY instead of the menu",
		Long: `Set a one-shot: the next boot of MAC boots ENTRY of its profile's menu
directly. It is consumed only when the boot has clearly started (the
kernel, wimboot or ISO was fetched), so a firmware retry of the menu still
sees it. --always keeps it for every boot; --clear removes it.
States: pending, delivered (a menu with it was served), booted, expired.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			mac, err := net.ParseMAC(args[0])
			if err != nil {
				return fmt.Errorf("%q is not a MAC address", args[0])
			}
			o, err := openOffline(cmd, g)
			if err != nil {
				return err
			}
			defer o.db.Close()
			if clear {
				host, _ := os.Hostname()
				o.db.PutEvents([]audit.Event{{Time: time.Now(), MAC: mac.String(), Stage: "one-shot", Protocol: "cli", Result: "cleared", Server: host}})
				return o.db.DeleteNextBoot(mac)
			}
			if len(args) != 2 {
				return errors.New("name the ENTRY to boot (or --clear)")
			}
			c, ok := o.inv.Choose(boot.Client{MAC: mac})
			if ok {
				if _, found := c.Menu.Entry(args[1]); !found {
					found = anyVariantHas(c.Profile, args[1])
					if !found {
						return fmt.Errorf("profile %q of %s has no entry %q", c.Profile.Name, mac, args[1])
					}
				}
			}
			nb := boot.NextBoot{Entry: args[1], Always: always, State: boot.OneShotPending}
			if expires > 0 {
				nb.Expires = time.Now().Add(expires)
			}
			if err := o.db.PutNextBoot(mac, nb); err != nil {
				return err
			}
			host, _ := os.Hostname()
			o.db.PutEvents([]audit.Event{{Time: time.Now(), MAC: mac.String(), Stage: "one-shot", Protocol: "cli",
				File: args[1], Result: "set", Server: host}})
			fmt.Fprintf(cmd.OutOrStdout(), "next boot of %s: %s (pending)\n", mac, args[1])
			return nil
		},
	}
	next.Flags().DurationVar(&expires, "expires", 0, "forget the one-shot after this long (0: never)")
	next.Flags().BoolVar(&always, "always", false, "keep it after the boot: every boot takes ENTRY")
	next.Flags().BoolVar(&clear, "clear", false, "remove the one-shot")

	cmd.AddCommand(add, rm, list, show, next)
	return cmd
}

func anyVariantHas(p boot.Profile, entry string) bool {
	for _, m := range p.Variants {
		if _, ok := m.Entry(entry); ok {
			return true
		}
	}
	return false
}

func without(hosts []boot.Host, name string) []boot.Host {
	out := hosts[:0:0]
	for _, h := range hosts {
		if h.Name != name {
			out = append(out, h)
		}
	}
	return out
}

func hasMAC(h boot.Host, s string) bool {
	mac, err := net.ParseMAC(s)
	if err != nil {
		return false
	}
	for _, m := range h.MACs {
		if strings.EqualFold(m.String(), mac.String()) {
			return true
		}
	}
	return false
}

type hostView struct {
	Name     string   `json:"name"`
	MACs     []string `json:"macs"`
	UUID     string   `json:"uuid,omitempty"`
	Labels   []string `json:"labels,omitempty"`
	Profile  string   `json:"profile"`
	Why      string   `json:"why,omitempty"`
	NextBoot *nbView  `json:"next_boot,omitempty"`
	Source   string   `json:"source"`
}

type nbView struct {
	MAC     string `json:"mac"`
	Entry   string `json:"entry"`
	State   string `json:"state"`
	Always  bool   `json:"always,omitempty"`
	Expires string `json:"expires,omitempty"`
}

func printHosts(w io.Writer, o *offline, hosts []boot.Host, asJSON bool) error {
	shots, err := o.db.NextBoots()
	if err != nil {
		return err
	}
	var views []hostView
	for _, h := range hosts {
		v := hostView{Name: h.Name, UUID: h.UUID, Labels: h.Labels, Source: h.Source}
		var first net.HardwareAddr
		for _, m := range h.MACs {
			v.MACs = append(v.MACs, m.String())
			if first == nil {
				first = m
			}
			if nb, ok := shots[strings.ToLower(m.String())]; ok && v.NextBoot == nil {
				state := string(nb.State)
				if !nb.Expires.IsZero() && time.Now().After(nb.Expires) && nb.State != boot.OneShotBooted {
					state = string(boot.OneShotExpired)
				}
				v.NextBoot = &nbView{MAC: m.String(), Entry: nb.Entry, State: state, Always: nb.Always}
				if !nb.Expires.IsZero() {
					v.NextBoot.Expires = nb.Expires.Format(time.RFC3339)
				}
			}
		}
		if c, ok := o.inv.Choose(boot.Client{MAC: first, UUID: h.UUID}); ok {
			v.Profile, v.Why = c.Profile.Name, c.Why
		}
		views = append(views, v)
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(views)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tMACS\tPROFILE\tNEXT BOOT\tSOURCE")
	for _, v := range views {
		nb := "-"
		if v.NextBoot != nil {
			nb = v.NextBoot.Entry + " (" + v.NextBoot.State
			if v.NextBoot.Always {
				nb += ", always"
			}
			nb += ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Name, strings.Join(v.MACs, ","), orDash(v.Profile), nb, v.Source)
	}
	return tw.Flush()
}

func newProfileCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "profile", Short: "Show hardware profiles"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List profiles in precedence order",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := openOffline(cmd, g)
			if err != nil {
				return err
			}
			defer o.db.Close()
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPRIORITY\tRULES\tENTRIES\tDEFAULT\tSOURCE")
			for _, p := range o.inv.Profiles() {
				def := p.Menu.Default
				if p.Name == o.inv.Default {
					def += " (default profile)"
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\n", p.Name, p.Priority, len(p.Match), len(p.Menu.Entries), orDash(def), p.Source)
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one profile as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := openOffline(cmd, g)
			if err != nil {
				return err
			}
			defer o.db.Close()
			p, ok := o.inv.Profile(args[0])
			if !ok {
				return fmt.Errorf("no profile %q", args[0])
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(p)
		},
	}
	cmd.AddCommand(list, show)
	return cmd
}

func newMenuCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "menu", Short: "Preview generated boot menus"}
	var macStr, arch, format, uuid, ip, server string
	render := &cobra.Command{
		Use:   "render --mac M [--arch A] [--format ipxe|pxelinux|grub]",
		Short: "Print the menu a client would get, and why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			mac, err := net.ParseMAC(macStr)
			if err != nil {
				return fmt.Errorf("--mac %q is not a MAC address", macStr)
			}
			ft, err := menu.ParseFormat(format)
			if err != nil {
				return err
			}
			a, err := boot.ParseArch(arch)
			if err != nil {
				return fmt.Errorf("--arch: %v", err)
			}
			o, err := openOffline(cmd, g)
			if err != nil {
				return err
			}
			defer o.db.Close()
			// The client as its firmware's DHCP request shows it.
			f := boot.Client{MAC: mac, UUID: strings.ToLower(uuid), Arch: a, HasArch: true, VendorClass: "PXEClient"}
			fw, http := a.Firmware()
			f.Firmware = fw
			if http {
				f.VendorClass = "HTTPClient"
			}
			if ip != "" {
				if f.IP, err = parseAddr(ip); err != nil {
					return err
				}
			}
			if server == "" {
				server = "SERVER:" + portOf(o.cfg.HTTP.Listen)
			}
			// What DHCP would hand this client's firmware first.
			plan := dhcp.NewResolver(o.cfg).Resolve(f, o.inv)
			if plan.SecureBoot && !cmd.Flags().Changed("format") {
				ft = menu.FormatGRUB // the menu a Secure Boot client reads
			}
			shot, err := o.db.NextBoot(mac)
			if err != nil {
				return err
			}
			d, err := boot.Decide(f, o.inv, shot, time.Now())
			if err != nil {
				return err
			}
			text, err := menu.Render(d, ft, server)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "# client: mac %s, firmware %s\n", mac, orDash(string(fw)))
			fmt.Fprintf(out, "# dhcp boot file: %s (%s)\n", orDash(plan.BootFile), plan.Reason)
			if plan.SecureBoot {
				fmt.Fprintf(out, "# Secure Boot chain: %s (shim, signed by Microsoft) -> grubx64.efi (signed GRUB) -> grub/grub.cfg -> bootforge/grub/%s.cfg (below) -> kernel checked by shim\n",
					plan.BootFile, mac)
			}
			fmt.Fprintf(out, "# profile: %s (%s)\n", d.Choice.Profile.Name, d.Choice.Why)
			if d.Boot != "" {
				fmt.Fprintf(out, "# one-shot: boots %q (%s)\n", d.Boot, d.OneShot.State)
			}
			io.WriteString(out, text)
			return nil
		},
	}
	render.Flags().StringVar(&macStr, "mac", "", "client MAC address")
	render.Flags().StringVar(&arch, "arch", "bios", "firmware: bios, efi-x64, efi-ia32, efi-arm64, ... or an option 93 number (0, 7, 9, 11, 16)")
	render.Flags().StringVar(&format, "format", "ipxe", "ipxe, pxelinux or grub")
	render.Flags().StringVar(&uuid, "uuid", "", "client UUID")
	render.Flags().StringVar(&ip, "ip", "", "client IP address (for subnet rules)")
	render.Flags().StringVar(&server, "server", "", "host:port in URLs (default SERVER:<http port>)")
	cmd.AddCommand(render)
	return cmd
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("--ip %q is not an IP address", s)
	}
	return a, nil
}

func portOf(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "80"
	}
	return p
}
