package store

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"bootforge/internal/audit"
)

// PutEvents appends boot-log events. Rows go in multi-row INSERTs of
// eventChunks rows, so that a batch costs a few statements rather than one
// per event: a busy HTTP server records thousands of events a second, and
// each statement costs more to bind and run than its row costs to store.
// They are committed as runLog says: after the writes clients wait on, and
// without a disk sync of their own.
func (s *core) PutEvents(events []audit.Event) error {
	return s.runLog(eventWrites(events))
}

// eventWrites are the INSERTs of events. The writes that change the
// store through the one write path (images, hosts, one-shots) append
// them to their own, so that a change and its boot-log events commit in
// one transaction: both or neither.
//
// Binding a value costs more than storing it: database/sql converts it,
// and modernc.org/sqlite copies a text into C memory, binds it under
// SQLite's mutex and frees it after the statement. Most events leave some
// text empty (a download names no architecture, reason or profile, and no
// MAC if the server never leased its client an address), so events go in
// groups by which of the optional columns they leave empty, and each
// group's INSERTs write those columns as an empty string constant rather
// than bind them. BenchmarkBootLogWrites/ip-only, whose events leave five
// of them empty, went from 6.7 to 5.7 CPU µs an event (medians of four
// runs, old and new taking turns).
//
// A batch's events may so get IDs in another order than they came in.
// IDs never followed the events' times (a download's event is recorded
// when it ends, with the time it began), and the log is read in the order
// of time.
func eventWrites(events []audit.Event) []write {
	var ws []write
	for _, group := range byEmpty(events) {
		for rows := group.rows; len(rows) > 0; {
			n := eventChunk(len(rows))
			args := make([]any, 0, n*len(eventColumns))
			for _, i := range rows[:n] {
				args = appendEventValues(args, &events[i], group.empty)
			}
			ws = append(ws, write{query: insertEvents(group.empty, n), args: args})
			rows = rows[n:]
		}
	}
	return ws
}

// eventColumns are the columns of an event row, in the order of the
// INSERTs and of appendEventValues.
var eventColumns = []string{"time", "bytes", "duration", "ip", "stage", "protocol", "result", "server",
	"mac", "arch", "file", "reason", "profile", "image"}

// optionalColumns is the number of text columns, last in eventColumns,
// that an INSERT writes as an empty string constant where all its rows
// leave them empty. The rest are bound in every row: an event has a time,
// a stage, a protocol and a result, the recorder stamps its server, and a
// network event has its client's IP.
const optionalColumns = 6

// emptyColumns says which of an event's optional columns are empty: bit i
// is the i-th of them.
type emptyColumns uint8

// optionalValues are an event's optional columns, in eventColumns' order.
func optionalValues(e *audit.Event) [optionalColumns]string {
	return [optionalColumns]string{strings.ToLower(e.MAC), e.Arch, e.File, e.Reason, e.Profile, e.Image}
}

// emptyOf is the optional columns e leaves empty.
func emptyOf(e *audit.Event) emptyColumns {
	var m emptyColumns
	for i, v := range optionalValues(e) {
		if v == "" {
			m |= 1 << i
		}
	}
	return m
}

// appendEventValues appends e's values to args, leaving out the
// optional columns in empty.
func appendEventValues(args []any, e *audit.Event, empty emptyColumns) []any {
	args = append(args, e.Time.UnixNano(), e.Bytes, int64(e.Duration), e.IP, e.Stage, e.Protocol, e.Result, e.Server)
	for i, v := range optionalValues(e) {
		if empty&(1<<i) == 0 {
			args = append(args, v)
		}
	}
	return args
}

// eventGroup is the events, by index, that leave the same optional
// columns empty.
type eventGroup struct {
	empty emptyColumns
	rows  []int
}

// byEmpty groups events by the optional columns they leave empty, in the
// order each group's first event came.
func byEmpty(events []audit.Event) []eventGroup {
	var groups []eventGroup
	for i := range events {
		m := emptyOf(&events[i])
		g := 0
		for g < len(groups) && groups[g].empty != m {
			g++
		}
		if g == len(groups) {
			groups = append(groups, eventGroup{empty: m, rows: make([]int, 0, len(events)-i)})
		}
		groups[g].rows = append(groups[g].rows, i)
	}
	return groups
}

// eventChunks are the row counts of the INSERTs PutEvents makes, largest
// first; few sizes keep the prepared statements few.
var eventChunks = []int{64, 16, 4, 1}

// eventChunk is the rows of the next INSERT for n events left.
func eventChunk(n int) int {
	for _, c := range eventChunks {
		if n >= c {
			return c
		}
	}
	return n
}

// inserts holds the INSERT of each group and chunk size made so far: at
// most 2^optionalColumns groups times len(eventChunks) sizes.
var inserts struct {
	sync.Mutex
	m map[insertKey]string
}

type insertKey struct {
	empty emptyColumns
	rows  int
}

// insertEvents is the INSERT of rows events that leave the columns in
// empty empty.
func insertEvents(empty emptyColumns, rows int) string {
	inserts.Lock()
	defer inserts.Unlock()
	k := insertKey{empty, rows}
	if q, ok := inserts.m[k]; ok {
		return q
	}
	row := "(?" + strings.Repeat(", ?", len(eventColumns)-optionalColumns-1)
	for opt := range optionalColumns {
		if empty&(1<<opt) != 0 {
			row += ", ''"
		} else {
			row += ", ?"
		}
	}
	row += ")"
	q := "INSERT INTO events (" + strings.Join(eventColumns, ", ") + ") VALUES " + row + strings.Repeat(", "+row, rows-1)
	if inserts.m == nil {
		inserts.m = map[insertKey]string{}
	}
	inserts.m[k] = q
	return q
}

// EventFilter selects events; zero fields select everything.
type EventFilter struct {
	MAC    string
	IP     string
	Stage  string
	Since  time.Time
	After  int64 // only events with a larger ID (for following)
	Before int64 // only events with a smaller ID (for paging back)
	Limit  int   // 0: 1000
}

// MaxEvents bounds the events one read returns. A reader pages back
// through more with Before; a limit as large as the log would make the
// server build all of it in memory at once.
const MaxEvents = 10000

// CheckQuery is the one rule for what a reader may ask of the boot log,
// for `bootforge log` and the API alike: a look-back (since) that is not
// negative — a negative one would ask for events from the future and
// silently get none — a limit from 1 to MaxEvents, and no negative ID to
// page back from. param names a parameter as the reader wrote it: the
// API's query "before", the command's flag "--before".
func CheckQuery(since time.Duration, limit int, before int64, param func(name string) string) error {
	if since < 0 {
		return fmt.Errorf("%s %s is negative; give how far back to look, e.g. 1h", param("since"), since)
	}
	if limit < 1 {
		return fmt.Errorf("%s %d is not a positive number", param("limit"), limit)
	}
	if limit > MaxEvents {
		return fmt.Errorf("%s %d is over %d, the most one read returns; page back with %s, the smallest ID read", param("limit"), limit, MaxEvents, param("before"))
	}
	if before < 0 {
		return fmt.Errorf("%s %d is not an event ID", param("before"), before)
	}
	return nil
}

// Events returns matching events, oldest first.
func (s *core) Events(f EventFilter) ([]audit.Event, error) {
	q, args, ok, err := s.eventsQuery(f)
	if err != nil || !ok {
		return nil, err
	}
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

// eventsQuery is the query of Events for f; ok is false if no event can
// match (the log is empty, or holds no event between f.After and
// f.Before).
func (s *core) eventsQuery(f EventFilter) (q string, args []any, ok bool, err error) {
	var where []string
	if f.MAC != "" || f.IP != "" {
		// The indexes by MAC and by IP lead with the event's segment
		// (eventSegment): name the segments the log holds.
		segs, found, err := s.eventSegments(f.After, f.Before)
		if err != nil || !found {
			return "", nil, false, err
		}
		if segs != "" {
			where = append(where, eventSegment+" IN ("+segs+")")
		}
	}
	if f.MAC != "" {
		// The index by MAC leaves out the events that name none: a
		// query uses it only if its WHERE says so too.
		where, args = append(where, "mac = ?", "mac != ''"), append(args, strings.ToLower(f.MAC))
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
	if f.Before > 0 {
		where, args = append(where, "id < ?"), append(args, f.Before)
	}
	q = `SELECT id, time, mac, ip, arch, stage, protocol, file, bytes, duration, result, reason, profile, image, server FROM events`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	// The newest N, returned oldest first.
	q = `SELECT * FROM (` + q + ` ORDER BY id DESC LIMIT ?) AS newest ORDER BY time, id`
	return q, append(args, limit), true, nil
}

// eventSegment is an event's segment: its ID divided by segmentEvents.
// The indexes by MAC and by IP lead with it, so that a new event goes
// into the newest segment's part of them, a few pages that the boot
// log's commits write again and again. Led by the client alone (or by
// the day, which holds a whole storm's clients), every event landed at a
// random place in a large index, and each cost a page written of its
// own: BenchmarkBootLogWrites took 40–44 CPU µs an event with the day
// first, 16–17 with the segment. The expression must read exactly as in
// the indexes for a query to use them.
const eventSegment = "(id / 1024)"

// segmentEvents is the events in a segment, as eventSegment divides.
const segmentEvents = 1024

// maxEventSegments bounds the segments a lookup names, one index seek
// each; a larger log (more than 20 million events) is searched without
// them.
const maxEventSegments = 20000

// eventSegments lists the segments, as eventSegment numbers them, from
// that of the oldest event (or of the event after after) to the newest
// event's (or that of the event before before, if before is not 0). ok
// is false if the log holds no such event; segs is empty if there are
// more than maxEventSegments. It does not narrow the segments by a
// look-back in time: IDs follow the order events were stored in,
// not their timestamps, so no ID bounds the events newer than a time.
func (s *core) eventSegments(after, before int64) (segs string, ok bool, err error) {
	// Two subqueries, not MIN and MAX in one: SQLite reads one end of
	// the table for a lone MIN or MAX.
	var lo, hi sql.NullInt64
	if err := s.queryRow(`SELECT (SELECT MIN(id) FROM events), (SELECT MAX(id) FROM events)`).Scan(&lo, &hi); err != nil {
		return "", false, err
	}
	if !lo.Valid {
		return "", false, nil
	}
	first, last := max(lo.Int64, after+1), hi.Int64
	if before > 0 {
		last = min(last, before-1)
	}
	if first > last {
		return "", false, nil
	}
	if last/segmentEvents-first/segmentEvents >= maxEventSegments {
		return "", true, nil
	}
	var b strings.Builder
	for n := first / segmentEvents; n <= last/segmentEvents; n++ {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatInt(n, 10))
	}
	return b.String(), true, nil
}

// DeleteEventsBefore removes events older than t (retention).
func (s *core) DeleteEventsBefore(t time.Time) error {
	return s.exec(`DELETE FROM events WHERE time < ?`, t.UnixNano())
}
