package dhcp

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"bootforge/internal/allow"
	"bootforge/internal/boot"
	"bootforge/internal/config"
	"bootforge/internal/dhcp/lease"
)

// memLeases is a lease.Store in memory.
type memLeases struct {
	leases []lease.Lease
	err    error
}

func (m *memLeases) LoadLeases() ([]lease.Lease, error) { return m.leases, m.err }
func (m *memLeases) PutLease(l lease.Lease) error       { m.leases = append(m.leases, l); return nil }
func (m *memLeases) DeleteLease(netip.Addr) error       { return nil }
func (m *memLeases) Shared() bool                       { return false }
func (m *memLeases) ReleaseOffer(lease.Lease) error     { return nil }
func (m *memLeases) LeaseOf(net.HardwareAddr, []byte) (lease.Lease, bool, error) {
	return lease.Lease{}, false, nil
}
func (m *memLeases) ClaimLease(l lease.Lease) (lease.Lease, bool, error) {
	m.leases = append(m.leases, l)
	return l, true, nil
}

func parseConfig(t *testing.T, text string) config.Config {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte("data_dir: /srv/state\nroot: /srv/boot\n"+text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const authoritative = `http:
  listen: 127.0.0.1:8081
dhcp:
  mode: authoritative
  interfaces: [br0]
  server_address: 192.0.2.2
  allow: [192.0.2.0/24, 198.51.100.0/24]
  lease_time: 2h
  offer_hold: 10s
  rate_limit: 7
  loaders:
    efi_arm32: ""
  subnets:
    - subnet: 192.0.2.0/24
      pools: [192.0.2.100-192.0.2.101]
      router: 192.0.2.1
      dns: [192.0.2.53, 192.0.2.54]
      ntp: [192.0.2.123]
      domain: lab.test
      reservations:
        - {mac: "52:54:00:00:00:01", ip: 192.0.2.50, hostname: pc1}
        - {client_id: "ff:00:01", ip: 192.0.2.51}
    - subnet: 198.51.100.0/24
      pools: [198.51.100.10-198.51.100.20]
      lease_time: 20m
      secure_boot: true
`

func TestNewResolver(t *testing.T) {
	cfg := parseConfig(t, authoritative)
	r := NewResolver(cfg)
	want := &boot.Resolver{
		Loaders: map[boot.Firmware]string{
			boot.FirmwareBIOS:     "undionly.kpxe",
			boot.FirmwareEFIx64:   "snponly.efi",
			boot.FirmwareEFIia32:  "ipxe-ia32.efi",
			boot.FirmwareEFIarm64: "arm64/snponly.efi",
		},
		HTTPLoaders:       map[boot.Firmware]string{boot.FirmwareEFIx64: "ipxe.efi", boot.FirmwareEFIarm64: "arm64/ipxe.efi"},
		Script:            "boot.ipxe",
		HTTPPort:          8081,
		SecureBootLoader:  "shimx64.efi",
		SecureBootSubnets: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("NewResolver\n got %+v\nwant %+v", r, want)
	}
	// The decisions follow: a BIOS ROM gets its loader, x64 UEFI in the
	// Secure Boot subnet the shim, iPXE the script on the port of http.listen.
	server := netip.MustParseAddr("192.0.2.2")
	pxe := boot.Client{VendorClass: "PXEClient", Arch: boot.ArchBIOS, HasArch: true, Server: server}
	if p := r.Resolve(pxe, nil); p.BootFile != "undionly.kpxe" {
		t.Errorf("BIOS: %+v", p)
	}
	uefi := boot.Client{VendorClass: "PXEClient", Arch: boot.ArchEFIx64, HasArch: true, Server: server,
		Relay: netip.MustParseAddr("198.51.100.1")}
	if p := r.Resolve(uefi, nil); !p.SecureBoot || p.BootFile != "shimx64.efi" {
		t.Errorf("x64 UEFI in the Secure Boot subnet: %+v", p)
	}
	ipxe := boot.Client{VendorClass: "PXEClient", UserClass: []string{"iPXE"}, Server: server}
	if p := r.Resolve(ipxe, nil); p.BootFile != "http://192.0.2.2:8081/boot.ipxe" {
		t.Errorf("iPXE: %+v", p)
	}

	// dhcp.http_port wins over http.listen's port.
	cfg.DHCP.HTTPPort = 80
	if p := NewResolver(cfg).Resolve(ipxe, nil); p.BootFile != "http://192.0.2.2/boot.ipxe" {
		t.Errorf("iPXE with http_port 80: %+v", p)
	}
}

func TestNewHandlerAuthoritative(t *testing.T) {
	cfg := parseConfig(t, authoritative)
	mac := net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}
	store := &memLeases{leases: []lease.Lease{
		{IP: netip.MustParseAddr("192.0.2.100"), MAC: net.HardwareAddr{2, 0, 0, 0, 0, 9}, State: lease.Bound, Expires: time.Now().Add(time.Hour)},
	}}
	seen := boot.NewSightingTable()
	h, err := NewHandler(cfg, store, nil, seen, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if h.Mode != ModeAuthoritative || h.ServerAddress != netip.MustParseAddr("192.0.2.2") || h.OfferHold != 10*time.Second ||
		h.Resolver == nil || h.Log == nil {
		t.Errorf("handler %+v", h)
	}
	if len(h.Subnets) != 2 {
		t.Fatalf("%d subnets, want 2", len(h.Subnets))
	}
	a, b := h.Subnets[0], h.Subnets[1]
	addr := netip.MustParseAddr
	if a.Router != addr("192.0.2.1") || !reflect.DeepEqual(a.DNS, []netip.Addr{addr("192.0.2.53"), addr("192.0.2.54")}) ||
		!reflect.DeepEqual(a.NTP, []netip.Addr{addr("192.0.2.123")}) || a.Domain != "lab.test" || a.LeaseTime != 2*time.Hour {
		t.Errorf("subnet 0: %+v", a)
	}
	if b.Router.IsValid() || b.DNS != nil || b.LeaseTime != 20*time.Minute || b.Pool.Subnet != netip.MustParsePrefix("198.51.100.0/24") {
		t.Errorf("subnet 1: %+v", b)
	}
	if a.Pool.Size() != 2 || a.Pool.Used() != 1 {
		t.Errorf("pool 192.0.2.100-101: size %d, used %d; want 2 with the stored lease in use", a.Pool.Size(), a.Pool.Used())
	}
	// Reservations reach the pool, by MAC and by client id.
	if l, err := a.Pool.Offer(mac, nil, netip.Addr{}, time.Minute); err != nil || l.IP != addr("192.0.2.50") {
		t.Errorf("reserved MAC offered %v, %v; want 192.0.2.50", l.IP, err)
	}
	if l, err := a.Pool.Offer(net.HardwareAddr{2, 0, 0, 0, 0, 7}, []byte{0xff, 0, 1}, netip.Addr{}, time.Minute); err != nil || l.IP != addr("192.0.2.51") {
		t.Errorf("reserved client id offered %v, %v; want 192.0.2.51", l.IP, err)
	}
	if h.Sightings != boot.Sightings(seen) {
		t.Errorf("sightings not wired: %v", h.Sightings)
	}

	// A store that cannot load its leases stops the start.
	if _, err := NewHandler(cfg, &memLeases{err: errors.New("disk on fire")}, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		t.Error("NewHandler ignored a failure to load leases")
	}
}

func TestFromConfigProxy(t *testing.T) {
	cfg := parseConfig(t, "dhcp:\n  mode: proxy\n  interfaces: [br0, br1]\n  allow: [192.0.2.0/24]\n  rate_limit: 7\n")
	want := Config{Interfaces: []string{"br0", "br1"}, Allow: allow.List{Key: "dhcp.allow", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, RateLimit: 7, BootServer: true}
	if got := serverConfig(cfg); !reflect.DeepEqual(got, want) {
		t.Errorf("server config %+v, want %+v", got, want)
	}
	// The top-level allow is DHCP's when dhcp.allow is not set; dhcp.allow wins.
	top := parseConfig(t, "allow: [198.51.100.0/24]\ndhcp:\n  mode: proxy\n  interfaces: [br0]\n")
	if got := serverConfig(top).Allow; got.Key != "allow" || len(got.Prefixes) != 1 || got.Prefixes[0] != netip.MustParsePrefix("198.51.100.0/24") {
		t.Errorf("top-level allow: DHCP got %+v", got)
	}
	both := parseConfig(t, "allow: [198.51.100.0/24]\ndhcp:\n  mode: proxy\n  interfaces: [br0]\n  allow: [192.0.2.0/24]\n")
	if got := serverConfig(both).Allow; got.Key != "dhcp.allow" || len(got.Prefixes) != 1 || got.Prefixes[0] != netip.MustParsePrefix("192.0.2.0/24") {
		t.Errorf("dhcp.allow over allow: DHCP got %+v", got)
	}
	store := &memLeases{err: errors.New("a proxy must not read leases")}
	h, err := NewHandler(cfg, store, nil, nil, nil)
	if err != nil || h.Mode != ModeProxy || h.Subnets != nil || h.Sightings != nil {
		t.Errorf("proxy handler %+v, %v", h, err)
	}
	if srv, err := FromConfig(cfg, store, nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil || srv == nil || srv.Events != nil {
		t.Errorf("FromConfig: %v, %v", srv, err)
	}
}
