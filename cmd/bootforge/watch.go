package main

import (
	"log/slog"
	"net/netip"
	"time"

	"bootforge/internal/audit"
	"bootforge/internal/check"
	"bootforge/internal/config"
	"bootforge/internal/dhcp"
)

// startWatch starts the watch for other DHCP servers on the served
// interfaces; without the privilege for packet sockets it stays off and
// says so, since serving matters more than watching.
func startWatch(c config.DHCP, events audit.Sink, log *slog.Logger) *dhcp.Watch {
	w := &dhcp.Watch{Log: log, Events: events, Authoritative: c.Mode == dhcp.ModeAuthoritative, ProbeEvery: c.Watch.Probe.D()}
	if w.ProbeEvery > 0 {
		w.Probe = probeForeign
	}
	if err := w.Start(c.Interfaces); err != nil {
		log.Warn("dhcp watch: off", "err", err)
		return nil
	}
	log.Info("dhcp watch: looking for other DHCP servers", "interfaces", c.Interfaces, "probe", c.Watch.Probe.D().String())
	return w
}

// probeForeign is the watch's active probe: the DISCOVER of `check dhcp`.
func probeForeign(iface string) ([]dhcp.Foreign, error) {
	res, err := check.ProbeDHCP(iface, 3*time.Second)
	if err != nil {
		return nil, err
	}
	var out []dhcp.Foreign
	for _, s := range res.Servers {
		f := dhcp.Foreign{Kind: s.Kind}
		f.Source, _ = netip.ParseAddr(s.Source)
		f.ServerID, _ = netip.ParseAddr(s.ServerID)
		if !f.ServerID.IsValid() {
			f.ServerID = f.Source
		}
		f.Offered, _ = netip.ParseAddr(s.OfferedIP)
		out = append(out, f)
	}
	return out, nil
}
