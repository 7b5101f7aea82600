package store

import (
	"fmt"
	"strings"
	"time"

	"bootforge/internal/audit"
)

// PutEvents appends boot-log events in one transaction.
func (s *core) PutEvents(events []audit.Event) error {
	ws := make([]write, len(events))
	for i, e := range events {
		ws[i] = write{query: `INSERT INTO events (time, mac, ip, arch, stage, protocol, file, bytes, duration, result, reason, profile, image, server)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			args: []any{e.Time.UnixNano(), strings.ToLower(e.MAC), e.IP, e.Arch, e.Stage, e.Protocol, e.File,
				e.Bytes, int64(e.Duration), e.Result, e.Reason, e.Profile, e.Image, e.Server}}
	}
	return s.execAll(ws)
}

// EventFilter selects events; zero fields select everything.
type EventFilter struct {
	MAC   string
	IP    string
	Stage string
	Since time.Time
	After int64 // only events with a larger ID (for following)
	Limit int   // 0: 1000
}

// CheckQuery is the one rule for what a reader may ask of the boot log,
// for `bootforge log` and the API alike: a look-back (since) that is not
// negative — a negative one would ask for events from the future and
// silently get none — and a limit of at least 1.
func CheckQuery(since time.Duration, limit int) error {
	if since < 0 {
		return fmt.Errorf("since %s is negative; give how far back to look, e.g. 1h", since)
	}
	if limit < 1 {
		return fmt.Errorf("limit %d is not a positive number", limit)
	}
	return nil
}

// Events returns matching events, oldest first.
func (s *core) Events(f EventFilter) ([]audit.Event, error) {
	var where []string
	var args []any
	if f.MAC != "" {
		where, args = append(where, "mac = ?"), append(args, strings.ToLower(f.MAC))
	}
	if f.IP != "" {
		where, args = append(where, "ip = ?"), append(args, f.IP)
	}
	if f.Stage != "" {
		where, args = append(where, "stage = ?"), append(args, f.Stage)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "time >= ?"), append(args, f.Since.UnixNano())
	}
	if f.After > 0 {
		where, args = append(where, "id > ?"), append(args, f.After)
	}
	q := `SELECT id, time, mac, ip, arch, stage, protocol, file, bytes, duration, result, reason, profile, image, server FROM events`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	// The newest N, returned oldest first.
	q = `SELECT * FROM (` + q + ` ORDER BY id DESC LIMIT ?) AS newest ORDER BY time, id`
	args = append(args, limit)
	rows, err := s.query(q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []audit.Event
	for rows.Next() {
		var e audit.Event
		var t, d int64
		if err := rows.Scan(&e.ID, &t, &e.MAC, &e.IP, &e.Arch, &e.Stage, &e.Protocol, &e.File, &e.Bytes, &d,
			&e.Result, &e.Reason, &e.Profile, &e.Image, &e.Server); err != nil {
			return nil, err
		}
		e.Time, e.Duration = time.Unix(0, t), time.Duration(d)
		out = append(out, e)
	}
	return out, rows.Err()
}

// DeleteEventsBefore removes events older than t (retention).
func (s *core) DeleteEventsBefore(t time.Time) error {
	return s.exec(`DELETE FROM events WHERE time < ?`, t.UnixNano())
}
