package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"

	"bootforge/internal/audit"
	"bootforge/internal/boot"
	"bootforge/internal/config"
	"bootforge/internal/dhcp"
	"bootforge/internal/dhcp/lease"
	"bootforge/internal/menufs"
	"bootforge/internal/store"
)

// resolverFor builds the boot resolver from the config.
func resolverFor(cfg config.Config) *boot.Resolver {
	l := cfg.DHCP.Loaders
	port := cfg.DHCP.HTTPPort
	if port == 0 {
		_, p, _ := net.SplitHostPort(cfg.HTTP.Listen)
		port, _ = strconv.Atoi(p)
	}
	return &boot.Resolver{
		Loaders:           l.TFTP(),
		HTTPLoaders:       l.HTTP(),
		Script:            cfg.DHCP.IPXEScript,
		HTTPPort:          port,
		SecureBootLoader:  l.SecureBootX64,
		SecureBootSubnets: secureBootSubnets(cfg.DHCP),
	}
}

func secureBootSubnets(d config.DHCP) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range d.Subnets {
		if s.SecureBoot {
			out = append(out, s.Subnet.Prefix)
		}
	}
	return out
}

// startDHCP starts the DHCP server, with its leases in db.
func startDHCP(cfg config.Config, db *store.SQLite, inv func() *boot.Inventory, clients *menufs.Clients, events audit.Sink, log *slog.Logger) (*dhcp.Server, error) {
	d := cfg.DHCP
	h := &dhcp.Handler{
		Mode:      d.Mode,
		Resolver:  resolverFor(cfg),
		Inventory: inv,
		OfferHold: d.OfferHold.D(),
		Log:       log,
		Observe: func(c boot.Client, ip netip.Addr) {
			fw, _ := c.Arch.Firmware()
			if !c.HasArch {
				fw = boot.FirmwareUnknown
			}
			clients.Seen(c.MAC, ip, fw)
		},
	}
	h.ServerAddress = d.ServerAddress
	if d.Mode == dhcp.ModeAuthoritative {
		existing, err := db.LoadLeases()
		if err != nil {
			return nil, fmt.Errorf("loading leases: %w", err)
		}
		for _, sc := range d.Subnets {
			sub, err := subnetFor(sc, d, db, existing)
			if err != nil {
				return nil, err
			}
			h.Subnets = append(h.Subnets, sub)
		}
	}
	allow := make([]netip.Prefix, len(d.Allow))
	for i, p := range d.Allow {
		allow[i] = p.Prefix
	}
	srv := dhcp.NewServer(h, dhcp.Config{
		Interfaces: d.Interfaces,
		Allow:      allow,
		RateLimit:  d.RateLimit,
		BootServer: d.Mode == dhcp.ModeProxy,
	}, log)
	srv.Events = events
	if err := srv.Start(); err != nil {
		return nil, err
	}
	return srv, nil
}

func subnetFor(sc config.Subnet, d config.DHCP, db lease.Store, existing []lease.Lease) (*dhcp.Subnet, error) {
	var ranges []lease.Range
	for _, p := range sc.Pools {
		ranges = append(ranges, lease.Range{First: p.First, Last: p.Last})
	}
	var resv []lease.Reservation
	for _, r := range sc.Reservations {
		resv = append(resv, lease.Reservation{IP: r.IP, MAC: net.HardwareAddr(r.MAC), ClientID: r.ClientID, Hostname: r.Hostname})
	}
	sub := &dhcp.Subnet{
		Pool:      lease.NewPool(sc.Subnet.Prefix, ranges, resv, db, existing),
		Domain:    sc.Domain,
		LeaseTime: d.LeaseTime.D(),
	}
	if sc.LeaseTime != 0 {
		sub.LeaseTime = sc.LeaseTime.D()
	}
	sub.Router, sub.DNS, sub.NTP = sc.Router, sc.DNS, sc.NTP
	return sub, nil
}
