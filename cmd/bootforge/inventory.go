package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/user"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

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
func openConfiguredStore(cmd *cobra.Command, g *globalFlags) (config.Config, store.Store, error) {
	cfg, err := loadConfig(cmd, g)
	if err != nil {
		return config.Config{}, nil, err
	}
	db, err := openStore(cfg)
	if err == nil {
		warnOtherStore(cmd, g, cfg)
	}
	return cfg, db, err
}

// offline is what the inventory commands need: the config, the store and
// the inventory, opened beside (or without) a running server. SQLite in
// WAL mode lets both write.
type offline struct {
	cfg     config.Config
	db      store.Store
	inv     *boot.Inventory
	leftOut []inventory.FileError // files that cannot be read, left out
}

// openOffline opens the config, the store and the inventory for the
// inventory commands (host, profile list, menu render).
//
// An inventory file that cannot be read at all (a truncated YAML file)
// is left out with a warning naming it and its line, so that one bad
// edit does not stop every inventory command while the server goes on
// with its last good inventory. The CLI has no last good inventory: the
// hosts and profiles of a left-out file are unknown to its checks, so a
// write that the file may bear on is refused (refuseLeftOut).
//
// With repair (the host commands), an inventory refused with the store's
// hosts (say, an old store where two hosts share a MAC) is loaded from
// the config and files alone, with a warning, so that `host list`, `show`
// and `rm` can still see and repair the store. The read-only commands
// fail instead: without the store's hosts their answers would be wrong.
func openOffline(cmd *cobra.Command, g *globalFlags, repair bool) (*offline, error) {
	cfg, db, err := openConfiguredStore(cmd, g)
	if err != nil {
		return nil, err
	}
	src := inventorySource(cfg, g.config, db)
	inv, err := inventory.Load(src)
	var leftOut []inventory.FileError
	if err != nil {
		if bad := inventory.Unreadable(src); len(bad) > 0 {
			var why []string
			for _, b := range bad {
				leftOut = append(leftOut, b)
				src.LeaveOut = append(src.LeaveOut, b.File)
				why = append(why, b.Err.Error())
			}
			g.warn(cmd.ErrOrStderr(), "inventory files that cannot be read are left out "+
				"(the server keeps its last good inventory); host and one-shot writes are refused until they are fixed:\n"+
				printable(strings.Join(why, "\n")))
			inv, err = inventory.Load(src)
		}
	}
	if err != nil && repair {
		src.Store = nil
		var lerr error
		if inv, lerr = inventory.Load(src); lerr == nil {
			g.warn(cmd.ErrOrStderr(), "the inventory is refused; the server keeps its last good one:\n"+printable(err.Error()))
			err = nil
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("inventory: %w", err)
	}
	return &offline{cfg: cfg, db: db, inv: inv, leftOut: leftOut}, nil
}

// hostService is the inventory write service over the configured store,
// the same one the API uses: one set of rules, events and views.
type hostService struct {
	*inventory.Service
	db      store.Store
	by      inventory.Actor
	leftOut []inventory.FileError // files that cannot be read, left out
}

// openHostService opens the write service over openOffline's inventory
// (with repair: see there).
func openHostService(cmd *cobra.Command, g *globalFlags) (*hostService, error) {
	o, err := openOffline(cmd, g, true)
	if err != nil {
		return nil, err
	}
	svc := &inventory.Service{Store: o.db, Inventory: func() *boot.Inventory { return o.inv },
		CheckKernel: inventorySource(o.cfg, g.config, o.db).CheckKernel}
	if o.cfg.Audit.Enabled {
		svc.Events = offlineChanges()
	}
	who := "cli"
	if u, err := user.Current(); err == nil && u.Username != "" {
		who = u.Username
	}
	return &hostService{Service: svc, db: o.db, by: inventory.Actor{Protocol: "cli", Who: who}, leftOut: o.leftOut}, nil
}

// refuseLeftOut refuses a write while an inventory file is left out.
// Unread, such a file may hold a host with the same name, MAC or UUID,
// which the checks cannot see, or the profiles that decide which entries
// a MAC may boot; the write could clash once the file is fixed. Removals
// go on. The API checks against the server's last good inventory.
func (s *hostService) refuseLeftOut() error {
	if len(s.leftOut) == 0 {
		return nil
	}
	f := s.leftOut[0]
	return fmt.Errorf("%s cannot be read, and what it holds may bear on this write: fix it first, or use the API, which checks against the server's last good inventory (%s)",
		printable(f.File), printable(f.Err.Error()))
}

// offlineChanges records a command's changes (image promote, host add,
// ...) in the boot log, named by this machine: the store writes each
// change's events in its transaction, so that a change whose line the
// store refuses is not made, and the command fails saying why.
func offlineChanges() audit.Offline {
	server, _ := os.Hostname()
	return audit.Offline{Server: server}
}

func newHostCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "host", Short: "Manage hosts and their one-shot next boots (works while the server runs)"}
	var h config.Host
	add := &cobra.Command{
		Use:   "add NAME --mac MAC [--mac MAC] [--uuid U] [--label L] [--profile P] [--secure-boot]",
		Short: "Add or replace a host in the store",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openHostService(cmd, g)
			if err != nil {
				return err
			}
			defer s.db.Close()
			h.Name = args[0]
			if err := s.refuseLeftOut(); err != nil {
				return err
			}
			if _, err := s.PutHost(s.by, h); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "host %s stored\n", printable(h.Name))
			return nil
		},
	}
	add.Flags().StringSliceVar(&h.MACs, "mac", nil, "MAC address (repeatable)")
	add.Flags().StringVar(&h.UUID, "uuid", "", "SMBIOS UUID")
	// One label per flag, taken as written: a CSV flag would split "rack,1"
	// in two, and fail on a quote, where the API and host files take it
	// whole; the label rule then decides as it does for them.
	add.Flags().StringArrayVar(&h.Labels, "label", nil, "label, as written (repeat the flag for several: --label a --label b)")
	add.Flags().StringVar(&h.Profile, "profile", "", "pin this profile")
	add.Flags().BoolVar(&h.SecureBoot, "secure-boot", false, "send this host, if it is x64 UEFI, down the shim → signed GRUB chain")

	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a host from the store",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openHostService(cmd, g)
			if err != nil {
				return err
			}
			defer s.db.Close()
			if err := s.DeleteHost(s.by, args[0]); err != nil {
				return rmByMAC(s, args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "host %s removed\n", printable(args[0]))
			return nil
		},
	}

	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List hosts (config, inventory files and store) with their profile and next boot",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openHostService(cmd, g)
			if err != nil {
				return err
			}
			defer s.db.Close()
			views, err := s.Hosts()
			if err != nil {
				return err
			}
			return printHosts(cmd.OutOrStdout(), views, asJSON)
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON (the API's host view)")

	show := &cobra.Command{
		Use:   "show MAC|NAME",
		Short: "Show one host, its profile and its next boot",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openHostService(cmd, g)
			if err != nil {
				return err
			}
			defer s.db.Close()
			views, err := s.FindHosts(args[0])
			if err != nil {
				return err
			}
			return printHosts(cmd.OutOrStdout(), views, asJSON)
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON (the API's host view)")

	var req inventory.NextBootRequest
	var expires string
	var clear bool
	next := &cobra.Command{
		Use:   "next-boot MAC|HOST [ENTRY] [--expires 2h] [--always] [--clear]",
		Short: "Make the next boot of MAC (or of a host's one MAC) take ENTRY instead of the menu",
		Long: `Set a one-shot: the next boot of MAC boots ENTRY of its profile's menu
directly. A host name stands for the host's MAC (a host with several
must be given the one to boot). ENTRY must be in a menu (the main one or a firmware variant) of
a profile MAC can get: its pinned profile, or any profile whose rules its
MAC and labels do not rule out, and the default profile. It is consumed
only when the boot has clearly started (the kernel, wimboot or ISO was
fetched), so a firmware retry of the menu still sees it. --always keeps it
for every boot; --clear removes it.
States: pending, delivered (a menu with it was served), booted, expired.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !clear && len(args) != 2 {
				return errors.New("name the ENTRY to boot (or --clear)")
			}
			// Read as the API reads its "expires": one rule, one message.
			var err error
			if req.Expires, err = inventory.ParseExpires(expires); err != nil {
				return err
			}
			s, err := openHostService(cmd, g)
			if err != nil {
				return err
			}
			defer s.db.Close()
			if clear {
				mac, err := s.ClearNextBoot(s.by, args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "next boot of %s cleared\n", mac)
				return nil
			}
			req.Entry = args[1]
			if err := s.refuseLeftOut(); err != nil {
				return err
			}
			res, err := s.SetNextBoot(s.by, args[0], req)
			if err != nil {
				return err
			}
			state := string(res.State)
			if note := res.Note(); note != "" {
				state += "; " + note
			}
			fmt.Fprintf(cmd.OutOrStdout(), "next boot of %s: %s (%s)\n", res.MAC, res.Entry, state)
			return nil
		},
	}
	next.Flags().StringVar(&expires, "expires", "", "forget the one-shot after this long, e.g. 2h (at most 87600h, 10 years; default: never)")
	next.Flags().BoolVar(&req.Always, "always", false, "keep it after the boot: every boot takes ENTRY")
	next.Flags().BoolVar(&clear, "clear", false, "remove the one-shot")

	cmd.AddCommand(add, rm, list, show, next)
	return cmd
}

// printHosts prints host views as JSON, or as a table whose PROFILE is
// the profile each host gets.
func printHosts(w io.Writer, views []inventory.HostView, asJSON bool) error {
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
		profile := orDash(v.ChosenProfile)
		if v.SecureBoot {
			profile += " (secure boot)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", printable(v.Name), printable(orDash(strings.Join(v.MACs, ","))),
			printable(profile), printable(nb), printable(v.Source))
	}
	return tw.Flush()
}

func newProfileCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "profile", Short: "Show hardware profiles"}
	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List profiles in precedence order",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := openOffline(cmd, g, false)
			if err != nil {
				return err
			}
			defer o.db.Close()
			if listJSON {
				type view struct {
					Name           string   `json:"name"`
					Priority       int      `json:"priority"`
					Rules          int      `json:"rules"`
					Entries        []string `json:"entries"`
					Default        string   `json:"default,omitempty"`
					DefaultProfile bool     `json:"default_profile"`
					Source         string   `json:"source"`
				}
				views := []view{}
				for _, p := range o.inv.Profiles() {
					v := view{Name: p.Name, Priority: p.Priority, Rules: len(p.Match), Entries: []string{}, Default: p.Menu.Default,
						DefaultProfile: p.Name == o.inv.Default, Source: p.Source}
					for _, e := range p.Menu.Entries {
						v.Entries = append(v.Entries, e.Name)
					}
					views = append(views, v)
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(views)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPRIORITY\tRULES\tENTRIES\tDEFAULT\tSOURCE")
			for _, p := range o.inv.Profiles() {
				def := p.Menu.Default
				if p.Name == o.inv.Default {
					def += " (default profile)"
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\n", printable(p.Name), p.Priority, len(p.Match), len(p.Menu.Entries), printable(orDash(def)), printable(p.Source))
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one profile as written (YAML), and where",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd, g)
			if err != nil {
				return err
			}
			profiles, _, errs := inventory.Read(inventorySource(cfg, g.config, nil))
			for _, w := range profiles {
				if w.Value.Name != args[0] {
					continue
				}
				text, err := profileYAML(w.Value)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "# %s\n%s", printable(w.Source), text)
				return nil
			}
			if len(errs) > 0 {
				return fmt.Errorf("no profile %q (and: %s)", args[0], strings.Join(errs, "; "))
			}
			return fmt.Errorf("no profile %q", args[0])
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")
	cmd.AddCommand(list, show)
	return cmd
}

// profileYAML writes a profile as YAML without the keys left at their
// zero value, so that it reads as it was written.
func profileYAML(p config.Profile) (string, error) {
	var n yaml.Node
	if err := n.Encode(p); err != nil {
		return "", err
	}
	pruneZero(&n)
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return "", err
	}
	return b.String(), enc.Close()
}

// pruneZero drops mapping keys whose value is "", 0, false, or an empty
// list or mapping.
func pruneZero(n *yaml.Node) {
	for _, c := range n.Content {
		pruneZero(c)
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	kept := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		v := n.Content[i+1]
		zero := (v.Kind == yaml.ScalarNode && (v.Value == "" || v.Tag == "!!int" && v.Value == "0" || v.Tag == "!!bool" && v.Value == "false" || v.Value == "0s")) ||
			((v.Kind == yaml.SequenceNode || v.Kind == yaml.MappingNode) && len(v.Content) == 0)
		if !zero {
			kept = append(kept, n.Content[i], v)
		}
	}
	n.Content = kept
}

// rmByMAC explains a host rm given a MAC, which show and next-boot take
// but rm does not: it names the host that has the MAC. Any other error
// is returned as it is.
func rmByMAC(s *hostService, arg string, err error) error {
	mac, perr := net.ParseMAC(arg)
	if perr != nil {
		return err
	}
	views, verr := s.Hosts()
	if verr != nil {
		return err
	}
	for _, v := range views {
		if slices.Contains(v.MACs, mac.String()) {
			return fmt.Errorf("host rm takes a host's name, not a MAC: %s is host %s's (bootforge host rm %s)", mac, printable(v.Name), printable(v.Name))
		}
	}
	return fmt.Errorf("host rm takes a host's name, not a MAC; no host has %s", mac)
}

func newMenuCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "menu", Short: "Preview generated boot menus"}
	var macStr, arch, format, uuid, ip, server string
	render := &cobra.Command{
		Use:   "render --mac M [--arch A] [--format ipxe|pxelinux|grub]",
		Short: "Print the menu a client would get, and why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if macStr == "" {
				return fmt.Errorf("--mac is required: the MAC of the client whose menu to show; usage: %s", cmd.UseLine())
			}
			mac, err := net.ParseMAC(macStr)
			if err != nil {
				return fmt.Errorf("--mac %q is not a MAC address", macStr)
			}
			ft, err := menu.ParseFormat(format)
			if err != nil {
				return fmt.Errorf("--format: %v", err)
			}
			a, err := boot.ParseArch(arch)
			if err != nil {
				return fmt.Errorf("--arch: %v", err)
			}
			if uuid != "" {
				if uuid, err = boot.ParseUUID(uuid); err != nil {
					return fmt.Errorf("--uuid: %v", err)
				}
			}
			o, err := openOffline(cmd, g, false)
			if err != nil {
				return err
			}
			defer o.db.Close()
			// The client as its firmware's DHCP request shows it.
			f := boot.Client{MAC: mac, UUID: uuid, Arch: a, HasArch: true, VendorClass: "PXEClient"}
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
			// Where the client reaches us: --server, else dhcp.server_address.
			f.Server = o.cfg.DHCP.ServerAddress
			if ap, err := netip.ParseAddrPort(server); err == nil {
				f.Server = ap.Addr()
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
			site := menu.Site{BaseURL: "http://" + server}
			if o.cfg.HTTP.TLS.IPXETrust && ft == menu.FormatIPXE {
				// An iPXE built with HTTPS and image trust: the boot TLS listener.
				host, _, err := net.SplitHostPort(server)
				if err != nil {
					host = server
				}
				site = menu.Site{BaseURL: "https://" + net.JoinHostPort(host, portOf(o.cfg.HTTP.TLS.BootListen)), Trust: true}
			}
			text, err := menu.Render(d, ft, site)
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
			for _, e := range d.Choice.Menu.Entries {
				if e.Image != "" {
					fmt.Fprintf(out, "# image: entry %q boots %s (image: %s)\n", e.Name, e.ImageVersion, e.Image)
				}
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
