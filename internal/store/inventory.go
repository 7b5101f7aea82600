package store

import (
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"bootforge/internal/boot"
)

// Hosts managed at run time (bootforge host ...) and one-shot next boots
// live in the store, so that the CLI can change them while the server
// runs. The server notices host changes through a generation counter that
// every host write bumps, and reads one-shots on every menu it renders.

const bumpGeneration = `INSERT INTO meta (key, value) VALUES ('inventory_generation', 1)
	ON CONFLICT (key) DO UPDATE SET value = value + 1`

// Generation changes whenever stored hosts change.
func (s *SQLite) Generation() (int64, error) {
	var g int64
	err := s.db.QueryRow(`SELECT value FROM meta WHERE key = 'inventory_generation'`).Scan(&g)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return g, err
}

// PutHost adds or replaces a host.
func (s *SQLite) PutHost(h boot.Host) error {
	macs := make([]string, len(h.MACs))
	for i, m := range h.MACs {
		macs[i] = strings.ToLower(m.String())
	}
	return s.execAll([]write{
		{query: `INSERT INTO hosts (name, macs, uuid, labels, profile, secure_boot) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET macs = excluded.macs, uuid = excluded.uuid,
			labels = excluded.labels, profile = excluded.profile, secure_boot = excluded.secure_boot`,
			args: []any{h.Name, strings.Join(macs, " "), strings.ToLower(h.UUID), strings.Join(h.Labels, " "), h.Profile, boolInt(h.SecureBoot)}},
		{query: bumpGeneration},
	})
}

// DeleteHost removes a host; it is not an error if there was none.
func (s *SQLite) DeleteHost(name string) error {
	return s.execAll([]write{{query: `DELETE FROM hosts WHERE name = ?`, args: []any{name}}, {query: bumpGeneration}})
}

// Hosts returns the stored hosts.
func (s *SQLite) Hosts() ([]boot.Host, error) {
	rows, err := s.db.Query(`SELECT name, macs, uuid, labels, profile, secure_boot FROM hosts ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []boot.Host
	for rows.Next() {
		var h boot.Host
		var macs, labels string
		var secure int
		if err := rows.Scan(&h.Name, &macs, &h.UUID, &labels, &h.Profile, &secure); err != nil {
			return nil, err
		}
		h.SecureBoot = secure != 0
		for _, m := range strings.Fields(macs) {
			hw, err := net.ParseMAC(m)
			if err != nil {
				return nil, fmt.Errorf("host %q: stored MAC %q: %w", h.Name, m, err)
			}
			h.MACs = append(h.MACs, hw)
		}
		h.Labels = strings.Fields(labels)
		h.Source = "store"
		out = append(out, h)
	}
	return out, rows.Err()
}

func macKey(mac net.HardwareAddr) string { return strings.ToLower(mac.String()) }

// PutNextBoot sets a host's one-shot, replacing any other.
func (s *SQLite) PutNextBoot(mac net.HardwareAddr, nb boot.NextBoot) error {
	var exp int64
	if !nb.Expires.IsZero() {
		exp = nb.Expires.UnixNano()
	}
	return s.exec(`INSERT INTO next_boot (mac, entry, expires, always, state, updated) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (mac) DO UPDATE SET entry = excluded.entry, expires = excluded.expires,
		always = excluded.always, state = excluded.state, updated = excluded.updated`,
		macKey(mac), nb.Entry, exp, boolInt(nb.Always), string(nb.State), time.Now().UnixNano())
}

// DeleteNextBoot clears a one-shot.
func (s *SQLite) DeleteNextBoot(mac net.HardwareAddr) error {
	return s.exec(`DELETE FROM next_boot WHERE mac = ?`, macKey(mac))
}

// NextBoot returns the one-shot for mac, or nil.
func (s *SQLite) NextBoot(mac net.HardwareAddr) (*boot.NextBoot, error) {
	row := s.db.QueryRow(`SELECT entry, expires, always, state, updated FROM next_boot WHERE mac = ?`, macKey(mac))
	nb, err := scanNextBoot(row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return nb, err
}

// NextBoots returns every one-shot by MAC.
func (s *SQLite) NextBoots() (map[string]*boot.NextBoot, error) {
	rows, err := s.db.Query(`SELECT mac, entry, expires, always, state, updated FROM next_boot`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]*boot.NextBoot{}
	for rows.Next() {
		var mac string
		nb, err := scanNextBoot(func(dst ...any) error { return rows.Scan(append([]any{&mac}, dst...)...) })
		if err != nil {
			return nil, err
		}
		out[mac] = nb
	}
	return out, rows.Err()
}

// AdvanceNextBoot moves a one-shot to state to if it is in one of from.
// It reports whether it moved.
func (s *SQLite) AdvanceNextBoot(mac net.HardwareAddr, to boot.OneShotState, from ...boot.OneShotState) (bool, error) {
	if len(from) == 0 {
		return false, nil
	}
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(from)), ", ")
	args := []any{string(to), time.Now().UnixNano(), macKey(mac)}
	for _, f := range from {
		args = append(args, string(f))
	}
	before, err := s.NextBoot(mac)
	if err != nil || before == nil {
		return false, err
	}
	if err := s.exec(`UPDATE next_boot SET state = ?, updated = ? WHERE mac = ? AND state IN (`+ph+`)`, args...); err != nil {
		return false, err
	}
	after, err := s.NextBoot(mac)
	if err != nil || after == nil {
		return false, err
	}
	return before.State != after.State, nil
}

func scanNextBoot(scan func(...any) error) (*boot.NextBoot, error) {
	var nb boot.NextBoot
	var exp, updated int64
	var always int
	var state string
	if err := scan(&nb.Entry, &exp, &always, &state, &updated); err != nil {
		return nil, err
	}
	if exp != 0 {
		nb.Expires = time.Unix(0, exp)
	}
	nb.Always = always != 0
	nb.State = boot.OneShotState(state)
	nb.Updated = time.Unix(0, updated)
	return &nb, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
