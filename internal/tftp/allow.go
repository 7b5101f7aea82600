package tftp

import (
	"time"

	"bootforge/internal/allow"
	"bootforge/internal/audit"
	"bootforge/internal/bootfs"
)

// notAllowed drops a request from a client outside the allow-list without
// a word (see the package comment), and says so in the log and the boot
// log, sparingly.
func (s *Server) notAllowed(in inbound, req request, d allow.Decision) {
	s.Stats.Refused.Add(1)
	s.Stats.Refusals.NotAllowed.Add(1)
	now := time.Now()
	ok, since := s.quiet.Admit(d.Client, now)
	if !ok {
		return
	}
	name := req.filename
	if c, err := bootfs.Clean(name); err == nil {
		name = c
	}
	s.log.Warn("tftp: refused, not answered", "client", in.src, "file", name, "reason", d.Reason, "refused_since_last", since)
	if s.Events != nil {
		s.Events.Record(audit.Event{Time: now, IP: d.Client.String(), Stage: audit.StageOf(name), Protocol: "tftp",
			File: name, Result: "refused", Reason: d.Reason})
	}
}
