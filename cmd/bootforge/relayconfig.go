package main

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"bootforge/internal/boot"
	"bootforge/internal/config"
	"bootforge/internal/dhcp"
	"bootforge/internal/relaydoc"
)

func newDHCPCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "dhcp", Short: "DHCP documentation for the network around bootforge"}
	cmd.AddCommand(newRelayConfigCmd(g))
	return cmd
}

func newRelayConfigCmd(g *globalFlags) *cobra.Command {
	var formats []string
	var server, clientIface, upstreamIface string
	cmd := &cobra.Command{
		Use:   "relay-config [--format isc,cisco,juniper,mikrotik,options]",
		Short: "Print the relay (IP helper) configuration for each relayed subnet, and options 66/67 for an existing DHCP server",
		Long: `Print, for audit and for the network team, what the equipment around
bootforge needs:

  isc       ISC dhcrelay (Debian's isc-dhcp-relay)
  cisco     Cisco IOS ip helper-address
  juniper   Juniper Junos forwarding-options dhcp-relay
  mikrotik  MikroTik RouterOS /ip dhcp-relay
  options   options 66/67 (and siaddr) for the network's existing DHCP
            server, by client architecture, as bootforge itself would
            answer (printed in proxy mode, or when asked for)

A subnet of the config is relayed when no served interface of this
machine has an address in it. The helper address is dhcp.server_address,
else the first IPv4 address of the served interfaces (or --server).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, g)
			if err != nil {
				return err
			}
			in, err := relayInput(cfg, server)
			if err != nil {
				return err
			}
			in.ClientIface, in.UpstreamIface = clientIface, upstreamIface
			if len(formats) == 0 {
				formats = []string{"isc", "cisco", "juniper", "mikrotik"}
				if cfg.DHCP.Mode == dhcp.ModeProxy {
					formats = append(formats, "options")
				}
			}
			return relaydoc.Write(cmd.OutOrStdout(), in, formats)
		},
	}
	cmd.Flags().StringSliceVar(&formats, "format", nil, "sections to print: "+strings.Join(relaydoc.Formats, ","))
	cmd.Flags().StringVar(&server, "server", "", "the helper address (default: dhcp.server_address, else the served interfaces' first IPv4 address)")
	cmd.Flags().StringVar(&clientIface, "client-iface", "<client-side interface>", "the relay's interface toward the clients")
	cmd.Flags().StringVar(&upstreamIface, "upstream-iface", "<server-side interface>", "the relay's interface toward bootforge")
	return cmd
}

// relayInput gathers the documentation's facts from cfg and this
// machine's interfaces.
func relayInput(cfg config.Config, server string) (relaydoc.Input, error) {
	var in relaydoc.Input
	var local []netip.Prefix
	for _, name := range cfg.DHCP.Interfaces {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			continue
		}
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
				local = append(local, p)
			}
		}
	}
	switch {
	case server != "":
		a, err := netip.ParseAddr(server)
		if err != nil || !a.Is4() {
			return in, fmt.Errorf("--server %q is not an IPv4 address", server)
		}
		in.Server = a
	case cfg.DHCP.ServerAddress.IsValid():
		in.Server = cfg.DHCP.ServerAddress
	case len(local) > 0:
		in.Server = local[0].Addr()
	default:
		return in, fmt.Errorf("no helper address: set dhcp.server_address, serve an interface of this machine, or give --server")
	}
	for _, s := range cfg.DHCP.Subnets {
		onLink := false
		for _, p := range local {
			onLink = onLink || s.Subnet.Contains(p.Addr())
		}
		if !onLink {
			in.Relayed = append(in.Relayed, relaydoc.Subnet{Prefix: s.Subnet.Prefix, Gateway: s.Router})
		}
	}
	// Option 67 as bootforge would answer each kind of client: the
	// resolver decides, as it does for real packets.
	r := dhcp.NewResolver(cfg)
	if p := r.Resolve(boot.Client{VendorClass: "PXEClient", IPXE: true, Server: in.Server}, nil); p.Boot {
		in.BootFiles = append(in.BootFiles, relaydoc.BootFile{Clients: "iPXE", IPXE: true, File: p.BootFile})
	}
	for _, fw := range boot.Firmwares() {
		arches := fw.Arches(false)
		c := boot.Client{VendorClass: "PXEClient", Arch: arches[0], HasArch: true, Firmware: fw, Server: in.Server}
		if p := r.Resolve(c, nil); p.Boot {
			codes := make([]uint16, len(arches))
			for i, a := range arches {
				codes[i] = uint16(a)
			}
			in.BootFiles = append(in.BootFiles, relaydoc.BootFile{Clients: string(fw) + " PXE", Arches: codes, File: p.BootFile})
		}
	}
	return in, nil
}
