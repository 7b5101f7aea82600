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
		Loaders: map[boot.Firmware]string{
			boot.FirmwareBIOS:     l.BIOS,
			boot.FirmwareEFIx64:   l.EFIx64,
			boot.FirmwareEFIia32:  l.EFIia32,
			boot.FirmwareEFIarm64: l.EFIarm64,
			boot.FirmwareEFIarm32: l.EFIarm32,
		},
		HTTPLoaders: map[boot.Firmware]string{
			boot.FirmwareEFIx64:   l.HTTPx64,
			boot.FirmwareEFIarm64: l.HTTParm64,
		},
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
func startDHCP(cfg config.Config, db *store.SQLite, inv func() *boot.Inventory, sightings boot.Sightings, events audit.Sink, log *slog.Logger) (*dhcp.Server, error) {
	d := cfg.DHCP
	h := &dhcp.Handler{
		Mode:      d.Mode,
		Resolver:  resolverFor(cfg),
		Inventory: inv,
		OfferHold: d.OfferHold.D(),
		Log:       log,
		Sightings: sightings,
	}
	if d.ServerAddress != "" {
		h.ServerAddress = netip.MustParseAddr(d.ServerAddress) // validated
	}
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
		first, last, err := config.ParseRange(p) // validated
		if err != nil {
			return nil, err
		}
		ranges = append(ranges, lease.Range{First: first, Last: last})
	}
	var resv []lease.Reservation
	for _, r := range sc.Reservations {
		lr := lease.Reservation{IP: netip.MustParseAddr(r.IP), Hostname: r.Hostname}
		if r.MAC != "" {
			lr.MAC, _ = net.ParseMAC(r.MAC)
		}
		if r.ClientID != "" {
			lr.ClientID, _ = config.ParseClientID(r.ClientID)
		}
		resv = append(resv, lr)
	}
	sub := &dhcp.Subnet{
		Pool:      lease.NewPool(sc.Subnet.Prefix, ranges, resv, db, existing),
		Domain:    sc.Domain,
		LeaseTime: d.LeaseTime.D(),
	}
	if sc.LeaseTime != 0 {
		sub.LeaseTime = sc.LeaseTime.D()
	}
	if sc.Router != "" {
		sub.Router = netip.MustParseAddr(sc.Router)
	}
	for _, a := range sc.DNS {
		sub.DNS = append(sub.DNS, netip.MustParseAddr(a))
	}
	for _, a := range sc.NTP {
		sub.NTP = append(sub.NTP, netip.MustParseAddr(a))
	}
	return sub, nil
}
