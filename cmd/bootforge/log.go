package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"bootforge/internal/audit"
	"bootforge/internal/store"
)

func newLogCmd(g *globalFlags) *cobra.Command {
	var macStr, ip string
	var since time.Duration
	var follow, asJSON bool
	var limit int
	var before int64
	cmd := &cobra.Command{
		Use:   "log [--mac M] [--ip IP] [--since 1h] [--limit N] [--before ID] [--follow] [--json]",
		Short: "Show the boot log: every DHCP, TFTP, HTTP and menu step, with MAC and IP",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := store.CheckQuery(since, limit, before, func(name string) string { return "--" + name }); err != nil {
				return err
			}
			_, db, err := openConfiguredStore(cmd, g)
			if err != nil {
				return err
			}
			defer db.Close()
			if follow && before > 0 {
				return fmt.Errorf("--before pages back through the log, --follow waits for new events: give one")
			}
			f := store.EventFilter{IP: ip, Limit: limit, Before: before}
			if macStr != "" {
				mac, err := net.ParseMAC(macStr)
				if err != nil {
					return fmt.Errorf("--mac %q is not a MAC address", macStr)
				}
				f.MAC = mac.String()
			}
			if ip != "" {
				if _, err := netip.ParseAddr(ip); err != nil {
					return fmt.Errorf("--ip %q is not an IP address", ip)
				}
				f.IP = audit.ClientIP(ip) // as the log keeps it: 2001:DB8:0::5 finds 2001:db8::5
			}
			if since > 0 {
				f.Since = time.Now().Add(-since)
			}
			return showLog(cmd.Context(), db, f, follow, asJSON, cmd.OutOrStdout(), g.stderr(cmd), time.Second)
		},
	}
	cmd.Flags().StringVar(&macStr, "mac", "", "only this client MAC")
	cmd.Flags().StringVar(&ip, "ip", "", "only this client IP")
	cmd.Flags().DurationVar(&since, "since", 0, "only events newer than this (e.g. 1h)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	cmd.Flags().IntVar(&limit, "limit", 1000, fmt.Sprintf("at most this many (the newest), up to %d", store.MaxEvents))
	cmd.Flags().Int64Var(&before, "before", 0, "only events with a smaller ID: page back from the oldest one shown")
	return cmd
}

// eventLister is the part of the store the log command reads.
type eventLister interface {
	Events(store.EventFilter) ([]audit.Event, error)
}

// showLog prints the events f selects; with follow, it then polls every
// interval and prints new events until ctx is done.
//
// Following goes by event ID, but IDs need not become visible in order:
// on PostgreSQL two servers' recorders commit concurrently, and an ID
// taken first may commit last. So each poll reads again from the largest
// ID printed at least followLookback ago (never below the first page's),
// and skips the IDs it has printed since.
//
// A page that may not be the whole log (as many events as the limit) ends
// with a line on hint, if set, naming the --before that shows the page
// before it.
func showLog(ctx context.Context, db eventLister, f store.EventFilter, follow, asJSON bool, out, hint io.Writer, interval time.Duration) error {
	type mark struct {
		at    time.Time
		maxID int64
	}
	var (
		marks   []mark
		printed = map[int64]bool{}
		first   = true
		floor   int64 // every ID up to here is settled
		maxID   int64
	)
	for {
		events, err := db.Events(f)
		if err != nil {
			return err
		}
		fresh := events[:0:0]
		for _, e := range events {
			if !printed[e.ID] {
				fresh = append(fresh, e)
			}
			maxID = max(maxID, e.ID) // pages are ordered by time: take the largest
		}
		if err := printEvents(out, fresh, asJSON); err != nil {
			return err
		}
		if !follow {
			if limit := cmp.Or(f.Limit, 1000); hint != nil && len(events) >= limit {
				oldest := events[0].ID
				for _, e := range events {
					oldest = min(oldest, e.ID)
				}
				fmt.Fprintf(hint, "older events: --before %d\n", oldest)
			}
			return nil
		}
		now := time.Now()
		if first {
			// The history before following is what the first page
			// showed; only later events are looked for again.
			floor, first = maxID, false
		}
		for _, e := range fresh {
			printed[e.ID] = true
		}
		marks = append(marks, mark{now, maxID})
		for len(marks) > 0 && now.Sub(marks[0].at) >= followLookback {
			floor = max(floor, marks[0].maxID)
			marks = marks[1:]
		}
		for id := range printed {
			if id <= floor {
				delete(printed, id)
			}
		}
		// The other conditions stay, --since included: if nothing matched
		// yet (floor is still 0), the next poll must not fall back to
		// older history.
		f.After = floor
		f.Limit = 0
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// followLookback is how long after an event ID is printed a later poll
// still looks for smaller IDs committed late.
const followLookback = 2 * time.Second

func printEvents(w io.Writer, events []audit.Event, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, e := range events {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	if len(events) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, e := range events {
		extra := ""
		if e.Bytes > 0 {
			extra = fmt.Sprintf("%d B in %s", e.Bytes, e.Duration.Round(time.Millisecond))
		}
		if e.Profile != "" {
			extra += " profile=" + e.Profile
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format("2006-01-02 15:04:05.000"),
			printable(orDash(e.MAC)), printable(orDash(e.IP)), printable(e.Protocol), printable(e.Stage),
			printable(orDash(e.File)), printable(e.Result), printable(extra))
	}
	return tw.Flush()
}

// printable returns s fit for a terminal: control characters, other
// runes that do not print and bytes that are not UTF-8 are escaped as Go
// writes them (\x1b, \t, \u0085, \xff); the rest is kept. Host names,
// labels, DHCP host names and vendor classes, paths and results come from
// clients and API callers: printed raw, an escape sequence among them
// could recolour, move or rewrite what the operator sees. Every table the
// CLI prints passes its text through here; JSON output is escaped by its
// encoder.
func printable(s string) string {
	clean := utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) })
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case !unicode.IsPrint(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
		i += n
	}
	return b.String()
}
