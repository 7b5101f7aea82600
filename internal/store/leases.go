package store

import (
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"bootforge/internal/dhcp/lease"
)

// PutLease stores a lease durably, whoever held its address.
func (s *core) PutLease(l lease.Lease) error {
	return s.exec(`INSERT INTO leases (ip, mac, client_id, hostname, expires, state) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (ip) DO UPDATE SET mac = excluded.mac, client_id = excluded.client_id,
		hostname = excluded.hostname, expires = excluded.expires, state = excluded.state`,
		l.IP.String(), nilBytes(l.MAC), nilBytes(l.ClientID), l.Hostname, l.Expires.UnixNano(), string(l.State))
}

// ClaimLease stores l only if its address is free in the store: no row,
// an expired row, or a row of the same client that is not declined. It is
// one statement, so that of two servers claiming one address for two
// clients, exactly one wins; the loser gets the row that beat it (won
// false) and tries another address. A bound lease is durable when it
// returns; an offer (state offered) is only visible to every server, as it
// need not outlive a crash of the database.
func (s *core) ClaimLease(l lease.Lease) (lease.Lease, bool, error) {
	var n int64
	now := time.Now().UnixNano()
	run := s.run
	if l.State == lease.Offered {
		run = s.runBrief
	}
	err := run([]write{{affected: &n, query: `INSERT INTO leases (ip, mac, client_id, hostname, expires, state) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (ip) DO UPDATE SET mac = excluded.mac, client_id = excluded.client_id,
			hostname = excluded.hostname, expires = excluded.expires, state = excluded.state
			WHERE leases.expires <= ? OR (leases.state != 'declined' AND (
				(leases.client_id IS NOT NULL AND excluded.client_id IS NOT NULL AND leases.client_id = excluded.client_id) OR
				((leases.client_id IS NULL OR excluded.client_id IS NULL) AND leases.mac = excluded.mac)))`,
		args: []any{l.IP.String(), nilBytes(l.MAC), nilBytes(l.ClientID), l.Hostname, l.Expires.UnixNano(), string(l.State), now}}})
	won := n > 0
	if err != nil || won {
		return l, won, err
	}
	row := s.queryRow(`SELECT ip, mac, client_id, hostname, expires, state FROM leases WHERE ip = ?`, l.IP.String())
	held, err := scanLease(row.Scan)
	return held, false, err
}

// ReleaseOffer deletes l's row if it is still the offer claimed for l:
// offered, of l's MAC, with l's expiry to the nanosecond, which no other
// claim shares.
func (s *core) ReleaseOffer(l lease.Lease) error {
	return s.runBrief([]write{{query: `DELETE FROM leases WHERE ip = ? AND state = 'offered' AND mac = ? AND expires = ?`,
		args: []any{l.IP.String(), nilBytes(l.MAC), l.Expires.UnixNano()}}})
}

// LeaseOf returns the client's bound, unexpired lease, whichever server
// made it (the latest if there are several), or false. The client is
// matched as the pool matches it: by client id where both have one,
// else by MAC. The pool asks only a shared store (PostgreSQL, where
// leases_mac serves it); on SQLite it would read the whole table.
func (s *core) LeaseOf(mac net.HardwareAddr, clientID []byte) (lease.Lease, bool, error) {
	where, args := `mac = ?`, []any{nilBytes(mac)}
	if len(clientID) > 0 {
		where, args = `(client_id = ? OR (client_id IS NULL AND mac = ?))`, []any{clientID, nilBytes(mac)}
	}
	row := s.queryRow(`SELECT ip, mac, client_id, hostname, expires, state FROM leases
		WHERE state = 'bound' AND expires > ? AND `+where+` ORDER BY expires DESC LIMIT 1`,
		append([]any{time.Now().UnixNano()}, args...)...)
	l, err := scanLease(row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return lease.Lease{}, false, nil
	}
	return l, err == nil, err
}

// DeleteLease forgets the lease of ip.
func (s *core) DeleteLease(ip netip.Addr) error {
	return s.exec(`DELETE FROM leases WHERE ip = ?`, ip.String())
}

// LoadLeases returns every stored lease.
func (s *core) LoadLeases() ([]lease.Lease, error) {
	rows, err := s.query(`SELECT ip, mac, client_id, hostname, expires, state FROM leases`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []lease.Lease
	for rows.Next() {
		l, err := scanLease(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

func scanLease(scan func(...any) error) (lease.Lease, error) {
	var ip, host, state string
	var mac, id []byte
	var exp int64
	if err := scan(&ip, &mac, &id, &host, &exp, &state); err != nil {
		return lease.Lease{}, err
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return lease.Lease{}, fmt.Errorf("lease with bad address %q: %w", ip, err)
	}
	l := lease.Lease{IP: addr, Hostname: host, Expires: time.Unix(0, exp), State: lease.State(state)}
	if len(mac) > 0 {
		l.MAC = net.HardwareAddr(mac)
	}
	if len(id) > 0 {
		l.ClientID = id
	}
	return l, nil
}

// nilBytes stores an empty value as NULL, as both backends read it back.
func nilBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}
