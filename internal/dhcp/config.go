package dhcp

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/boot"
	"bootforge/internal/config"
	"bootforge/internal/dhcp/lease"
)

// This file turns the validated config into a resolver, a handler and a
// server. The config already holds typed values (addresses, ranges, MACs),
// so nothing here parses, and nothing here can fail but loading leases.

// NewResolver builds the boot resolver that cfg describes: the loaders by
// firmware, the iPXE script, the port of HTTP URLs and the Secure Boot
// subnets.
func NewResolver(cfg config.Config) *boot.Resolver {
	l := cfg.DHCP.Loaders
	r := &boot.Resolver{
		Loaders:          l.TFTP(),
		HTTPLoaders:      l.HTTP(),
		Script:           cfg.DHCP.IPXEScript,
		HTTPPort:         cfg.URLPort(),
		HTTPSPort:        cfg.BootURLPort(),
		IPXEHTTPS:        cfg.HTTP.TLS.IPXETrust,
		SecureBootLoader: l.SecureBootX64,
	}
	for _, s := range cfg.DHCP.Subnets {
		if s.SecureBoot {
			r.SecureBootSubnets = append(r.SecureBootSubnets, s.Subnet.Prefix)
		}
	}
	return r
}

// FromConfig builds the server that cfg.DHCP describes, ready to Start. In
// authoritative mode its pools start from the leases in leases, where they
// keep them. inv gives the current profiles and hosts; seen, if not nil,
// learns every client; events, if not nil, gets the boot log.
func FromConfig(cfg config.Config, leases lease.Store, inv func() *boot.Inventory, seen boot.Sightings,
	events audit.Sink, log *slog.Logger) (*Server, error) {
	h, err := NewHandler(cfg, leases, inv, seen, log)
	if err != nil {
		return nil, err
	}
	srv := NewServer(h, serverConfig(cfg), log)
	srv.Events = events
	return srv, nil
}

// serverConfig is what the server needs besides the handler. The
// allow-list is dhcp.allow, else the top-level allow.
func serverConfig(cfg config.Config) Config {
	d := cfg.DHCP
	return Config{
		Interfaces: d.Interfaces,
		Allow:      cfg.AllowList("dhcp"),
		RateLimit:  d.RateLimit,
		BootServer: d.Mode == ModeProxy,
	}
}

// NewHandler builds the handler that cfg.DHCP describes; see FromConfig.
func NewHandler(cfg config.Config, leases lease.Store, inv func() *boot.Inventory, seen boot.Sightings, log *slog.Logger) (*Handler, error) {
	d := cfg.DHCP
	h := &Handler{
		Mode:          d.Mode,
		Resolver:      NewResolver(cfg),
		Inventory:     inv,
		OfferHold:     d.OfferHold.D(),
		ServerAddress: d.ServerAddress,
		Log:           log,
		Sightings:     seen,

		BootServerDiscovery: d.BootServerDiscovery,
		TFTPAllow:           cfg.AllowList("tftp"),
	}
	if d.Mode != ModeAuthoritative {
		return h, nil
	}
	existing, err := leases.LoadLeases()
	if err != nil {
		return nil, fmt.Errorf("loading leases: %w", err)
	}
	for _, sc := range d.Subnets {
		h.Subnets = append(h.Subnets, NewSubnet(sc, d.LeaseTime.D(), leases, existing))
	}
	return h, nil
}

// NewSubnet builds one served subnet: its pool, holding those of existing
// that are its own, and its options. leaseTime applies unless the subnet
// sets its own.
func NewSubnet(sc config.Subnet, leaseTime time.Duration, leases lease.Store, existing []lease.Lease) *Subnet {
	resv := make([]lease.Reservation, len(sc.Reservations))
	for i, r := range sc.Reservations {
		resv[i] = lease.Reservation{IP: r.IP, MAC: net.HardwareAddr(r.MAC), ClientID: r.ClientID, Hostname: r.Hostname}
	}
	if sc.LeaseTime != 0 {
		leaseTime = sc.LeaseTime.D()
	}
	return &Subnet{
		Pool:      lease.NewPool(sc.Subnet.Prefix, sc.Pools, resv, leases, existing),
		Router:    sc.Router,
		DNS:       sc.DNS,
		NTP:       sc.NTP,
		Domain:    sc.Domain,
		LeaseTime: leaseTime,
	}
}
