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

// part is the lines of a batch bound for one bucket ("" for the gateway's
// own), with the keys that wrote them: the forwarder writes each bucket's
// lines in a write of their own, so a key with its own bucket cannot touch
// the shards of another's.
type part struct {
	bucket string
	data   []byte
	points int
	keys   []spool.KeySpan // within data
}

// partsOf divides b by bucket, in the order the buckets first appear. A
// batch for one bucket, the usual case, is one part sharing b's data.
func partsOf(b *spool.Batch) []part {
	one := true
	for _, s := range b.Keys {
		one = one && s.Bucket == b.Keys[0].Bucket
	}
	if one {
		p := part{data: b.Data, points: b.Points, keys: b.Keys}
		if len(b.Keys) > 0 {
			p.bucket = b.Keys[0].Bucket
		}
		return []part{p}
	}
	var parts []part
	index := map[string]int{}
	start := 0
	for _, s := range b.Keys {
		i, ok := index[s.Bucket]
		if !ok {
			i = len(parts)
			index[s.Bucket] = i
			parts = append(parts, part{bucket: s.Bucket})
		}
		p := &parts[i]
		lines := b.Data[start:s.End]
		p.data = append(p.data, lines...)
		p.points += bytes.Count(lines, []byte("\n"))
		p.keys = append(p.keys, spool.KeySpan{End: len(p.data), Key: s.Key, Bucket: s.Bucket})
		start = s.End
	}
	return parts
}

// line is one line of a refused part and the key that wrote it.
type line struct {
	data []byte // with its newline
	key  int64
	from int // the letter it was read from, when sent again (Resend)
}

// lines cuts p's data into its lines, each with its key.
func (p *part) lines() []line {
	out := make([]line, 0, p.points)
	span := 0
	for off := 0; off < len(p.data); {
		end := len(p.data)
		if i := bytes.IndexByte(p.data[off:], '\n'); i >= 0 {
			end = off + i + 1
		}
		for span < len(p.keys) && off >= p.keys[span].End {
			span++
		}
		var key int64
		if span < len(p.keys) {
			key = p.keys[span].Key
		}
		out = append(out, line{data: p.data[off:end], key: key})
		off = end
	}
	return out
}

// settlement is the search, within one refused part, for the lines
// InfluxDB dropped. Resending a line InfluxDB wrote writes the same point
// again, which it stores once, so a piece may be sent again to learn what
// InfluxDB makes of it alone.
//
// InfluxDB writes what it can and says how many lines it dropped and, for
// a field type conflict, which field of which measurement, with which
// type. When it dropped every line, they all go to the dead letters at
// once: an all-conflicting batch costs no write beyond its first. When it
// names a conflict, the lines split in two: those writing that field with
// that type, which are sent again alone and come back all dropped, and
// the rest, sent again to find any other conflict. Only where InfluxDB
// gives no detail is a piece halved, and every write beyond the first
// takes one from a budget; when it is spent, what is unresolved goes to
// the dead letters whole, saying so. A bucket InfluxDB does not have
// refuses every line alike: they all go at once.
type settlement struct {
	ctx    context.Context
	bucket string
	// send writes lines, returning nil, an error wrapping
	// influx.ErrRejected or influx.ErrNoBucket for a refusal, or any
	// other error to give up on.
	send func(ctx context.Context, lines []byte, n int) error
	// conflict, if set, is told of each field type conflict InfluxDB
	// names.
	conflict func(bucket, measurement, field, typ string)
	budget   int
	max      int // the budget at the start
	now      time.Time
	dead     []DeadLetter
	buried   []line // the lines of dead, in order
}

// resolve settles lines, which InfluxDB refused with cause.
func (s *settlement) resolve(lines []line, cause error) error {
	r := parseRefusal(cause.Error())
	if r.conflict != nil && s.conflict != nil {
		s.conflict(s.bucket, r.conflict.measurement, r.conflict.field, r.conflict.existing)
	}
	if len(lines) == 1 || r.dropped >= len(lines) || errors.Is(cause, influx.ErrNoBucket) {
		s.bury(lines, cause.Error(), false)
		return nil
	}
	for _, piece := range pieces(lines, r) {
		if s.budget <= 0 {
			s.bury(piece, fmt.Sprintf("%s (not resolved further: %d extra writes spent on this batch; InfluxDB may have written some of these lines)",
				cause, s.max), true)
			continue
		}
		s.budget--
		err := s.send(s.ctx, join(piece), len(piece))
		if err == nil {
			continue
		}
		if !refused(err) {
			return err
		}
		if err := s.resolve(piece, err); err != nil {
			return err
		}
	}
	return nil
}

// refused reports whether err is InfluxDB refusing lines for good, rather
// than failing to take them now.
func refused(err error) bool {
	return errors.Is(err, influx.ErrRejected) || errors.Is(err, influx.ErrNoBucket)
}

// pieces splits lines, refused as r says, into the pieces to send again:
// the lines of the conflict r names and the rest, or two halves when that
// does not divide them.
func pieces(lines []line, r refusal) [][]line {
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
func (s *settlement) bury(lines []line, reason string, unresolved bool) {
	for _, l := range lines {
		s.dead = append(s.dead, DeadLetter{Time: s.now, KeyID: l.key, Bucket: s.bucket, Reason: reason,
			Line: string(bytes.TrimSuffix(l.data, []byte("\n"))), Unresolved: unresolved})
	}
	s.buried = append(s.buried, lines...)
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
