package dhcp6

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"bootforge/internal/audit"
	"bootforge/internal/boot"
	"bootforge/internal/config"
	"bootforge/internal/dhcp/lease"
)

// FromConfig builds the server that cfg.DHCP.V6 describes, ready to
// Start, on resolver r (the one the IPv4 server uses). In authoritative
// mode its pools start from the leases in leases, where they keep them.
func FromConfig(cfg config.Config, r *boot.Resolver, leases lease.Store, inv func() *boot.Inventory, seen boot.Sightings,
	events audit.Sink, log *slog.Logger) (*Server, error) {
	h, err := NewHandler(cfg, r, leases, inv, seen, log)
	if err != nil {
		return nil, err
	}
	srv := NewServer(h, cfg.DHCP.Interfaces6(), log)
	srv.SetAllow(cfg.AllowList("dhcp"))
	srv.Events = events
	return srv, nil
}

// NewHandler builds the handler that cfg.DHCP.V6 describes.
func NewHandler(cfg config.Config, r *boot.Resolver, leases lease.Store, inv func() *boot.Inventory, seen boot.Sightings,
	log *slog.Logger) (*Handler, error) {
	d := cfg.DHCP
	duid, err := serverDUID(d.Interfaces6())
	if err != nil {
		return nil, err
	}
	h := &Handler{
		Mode:          d.V6.Mode,
		Resolver:      r,
		Inventory:     inv,
		ServerID:      duid,
		ServerAddress: d.V6.ServerAddress,
		Preference:    d.V6.Preference,
		OfferHold:     d.OfferHold.D(),
		Log:           log,
		Sightings:     seen,
	}
	if h.Mode != ModeAuthoritative {
		return h, nil
	}
	existing, err := leases.LoadLeases()
	if err != nil {
		return nil, fmt.Errorf("loading leases: %w", err)
	}
	for _, sc := range d.V6.Subnets {
		h.Subnets = append(h.Subnets, &Subnet{
			Pool:      NewPool(sc.Subnet.Prefix, sc.Pools, leases, existing),
			DNS:       sc.DNS,
			LeaseTime: d.LeaseTime6(sc),
		})
	}
	return h, nil
}

// serverDUID is our DUID-LL (RFC 8415 §11.4): the hardware address of the
// first served interface that has one, so it stays the same across
// restarts, as clients expect of a server's identifier.
func serverDUID(interfaces []string) (dhcpv6.DUID, error) {
	for _, name := range interfaces {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return nil, fmt.Errorf("dhcpv6 interface %q: %w", name, err)
		}
		if len(ifi.HardwareAddr) > 0 {
			return &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: ifi.HardwareAddr}, nil
		}
	}
	return nil, fmt.Errorf("dhcpv6: none of the interfaces %v has a hardware address for the server DUID", interfaces)
}
