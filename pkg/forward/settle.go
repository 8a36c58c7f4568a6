package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/metricgate/metricgate/pkg/influx"
	"github.com/metricgate/metricgate/pkg/spool"
)

// line is one line of a refused batch and the key that wrote it.
type line struct {
	data []byte // with its newline
	key  int64
}

// splitLines cuts b's data into its lines, each with its key.
func splitLines(b *spool.Batch) []line {
	lines := make([]line, 0, b.Points)
	for off := 0; off < len(b.Data); {
		end := len(b.Data)
		if i := bytes.IndexByte(b.Data[off:], '\n'); i >= 0 {
			end = off + i + 1
		}
		lines = append(lines, line{data: b.Data[off:end], key: b.KeyAt(off)})
		off = end
	}
	return lines
}

// settlement is the search, within one refused batch, for the lines
// InfluxDB dropped. Resending a line InfluxDB wrote writes the same point
// again, which it stores once, so a part may be sent again to learn what
// InfluxDB makes of it alone.
//
// InfluxDB writes what it can and says how many lines it dropped and, for
// a field type conflict, which field of which measurement, with which
// type. When it dropped every line, they all go to the dead letters at
// once: an all-conflicting batch costs no write beyond its first. When it
// names a conflict, the batch splits in two: the lines writing that field
// with that type, which are sent again alone and come back all dropped,
// and the rest, sent again to find any other conflict. Only where InfluxDB
// gives no detail is a part halved, and every write beyond the batch's
// first takes one from a budget; when it is spent, what is unresolved
// goes to the dead letters whole, saying so.
type settlement struct {
	f      *Forwarder
	ctx    context.Context
	budget int
	now    time.Time
	dead   []DeadLetter
}

// resolve settles lines, which InfluxDB refused with cause.
func (s *settlement) resolve(lines []line, cause error) error {
	r := parseRefusal(cause.Error())
	if r.conflict != nil && s.f.opts.Conflict != nil {
		s.f.opts.Conflict(r.conflict.measurement, r.conflict.field, r.conflict.existing)
	}
	if len(lines) == 1 || r.dropped >= len(lines) {
		s.bury(lines, cause.Error())
		return nil
	}
	for _, part := range parts(lines, r) {
		if s.budget <= 0 {
			s.bury(part, fmt.Sprintf("%s (not resolved further: %d extra writes spent on this batch; InfluxDB may have written some of these lines)",
				cause, s.f.opts.MaxExtraWrites))
			continue
		}
		s.budget--
		err := s.f.send(s.ctx, join(part), len(part))
		if err == nil {
			continue
		}
		if !errors.Is(err, influx.ErrRejected) {
			return err
		}
		if err := s.resolve(part, err); err != nil {
			return err
		}
	}
	return nil
}

// parts splits lines, refused as r says, into the parts to send again:
// the lines of the conflict r names and the rest, or two halves when that
// does not divide them.
func parts(lines []line, r refusal) [][]line {
	if c := r.conflict; c != nil {
		var hit, rest []line
		for _, l := range lines {
			if c.matches(l.data) {
				hit = append(hit, l)
			} else {
				rest = append(rest, l)
			}
		}
		if len(hit) > 0 && len(rest) > 0 {
			return [][]line{rest, hit}
		}
	}
	mid := len(lines) / 2
	return [][]line{lines[:mid], lines[mid:]}
}

// bury adds lines to the dead letters with reason.
func (s *settlement) bury(lines []line, reason string) {
	for _, l := range lines {
		s.dead = append(s.dead, DeadLetter{Time: s.now, KeyID: l.key, Reason: reason, Line: string(bytes.TrimSuffix(l.data, []byte("\n")))})
	}
}

// keys returns the keys of the dead letters, each once, for the log.
func (s *settlement) keys() []int64 {
	var ids []int64
	for _, d := range s.dead {
		ids = append(ids, d.KeyID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// join returns the lines as one body.
func join(lines []line) []byte {
	n := 0
	for _, l := range lines {
		n += len(l.data)
	}
	out := make([]byte, 0, n+1)
	for _, l := range lines {
		out = append(out, l.data...)
	}
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return out
}
