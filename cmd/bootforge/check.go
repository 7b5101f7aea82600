package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"bootforge/internal/check"
)

func newCheckCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate the boot network and a running server",
	}
	cmd.AddCommand(newCheckDHCPCmd())
	return cmd
}

func newCheckDHCPCmd() *cobra.Command {
	var iface string
	var wait time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "dhcp --interface IF",
		Short: "List the DHCP servers answering on a segment; fail if more than one gives addresses",
		Long: `Broadcast a DISCOVER with PXE options on the interface and list every
server that offers: authoritative servers (they offer an address) and
proxyDHCP servers (PXE answers without an address). More than one
authoritative server on a segment is a misconfiguration or a rogue server,
and makes this command exit non-zero. Needs root and a free udp/68.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if iface == "" {
				return errors.New("--interface is required")
			}
			res, err := check.ProbeDHCP(iface, wait)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(out, "DHCP servers answering on %s within %s:\n", iface, wait)
				if len(res.Servers) == 0 {
					fmt.Fprintln(out, "  none")
				}
				for _, s := range res.Servers {
					fmt.Fprintf(out, "  %-13s server-id %-15s from %-15s offered %-15s next-server %-15s file %q\n",
						s.Kind, s.ServerID, s.Source, orDash(s.OfferedIP), orDash(s.NextServer), s.BootFile)
				}
			}
			if res.Conflict {
				return errors.New("more than one authoritative DHCP server on " + iface)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&iface, "interface", "i", "", "interface to probe")
	cmd.Flags().DurationVar(&wait, "wait", 5*time.Second, "how long to collect offers (dnsmasq pings an address for up to 3 s before it offers)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
