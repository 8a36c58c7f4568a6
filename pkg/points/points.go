// Package points turns what clients submit into InfluxDB line protocol: it
// parses and validates the JSON body of /api/submit and the line protocol
// of the InfluxDB-compatible write endpoints into one Point type, enforces
// the host tag, and encodes the result with
// github.com/influxdata/line-protocol/v2, so every later stage (the spool,
// the forwarder, InfluxDB) sees one format.
package points

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// Errors returned by the parser. Each is wrapped with the point and field
// concerned, so the message names the problem.
var (
	// ErrInvalid means the body is not a valid submission.
	ErrInvalid = errors.New("invalid submission")
	// ErrEmpty means the body holds no points.
	ErrEmpty = errors.New("no points submitted")
	// ErrTooManyPoints means a batch is larger than the configured cap.
	ErrTooManyPoints = errors.New("too many points")
)

// The default caps on names and values: InfluxDB's own for a string value
// (64 KiB), and for names one far above any real schema's that still keeps
// a series key readable.
const (
	DefaultMaxNameLen  = 256
	DefaultMaxValueLen = 64 * 1024
)

// Point is one line of line protocol: a measurement, tags, one or more
// field values and a time.
type Point struct {
	Measurement string
	Tags        []Tag     // in the client's order; keys are unique
	Fields      []Field   // at least one; a JSON point has exactly one
	Time        time.Time // zero when a JSON point gave none: Encode stamps it
	// Line is the line of a line-protocol body the point starts on, for
	// messages; 0 for points from JSON.
	Line int
}

// Tag is one tag of a point. A slice of them costs one allocation per
// point where a map cost several, which a 5000-point batch feels.
type Tag struct {
	Key, Value string
}

// Field is one field of a point.
type Field struct {
	Key   string
	Value lineprotocol.Value
}

// Limits are what one point may hold and when it may be. They are checked
// as the body is read, so a line past a budget stops the parse there rather
// than after the whole body is in memory. A zero MaxFields, MaxTags,
// MaxFuture or MaxPast means no bound; a zero MaxNameLen or MaxValueLen
// means the default.
type Limits struct {
	// MaxFields caps the fields of one point.
	MaxFields int
	// MaxTags caps the tags of one point, as the client sent them.
	MaxTags int
	// MaxNameLen caps a measurement, tag key or field key, in bytes.
	MaxNameLen int
	// MaxValueLen caps a tag value or a string field value, in bytes.
	MaxValueLen int
	// MaxFuture and MaxPast bound a point's time against the gateway's
	// clock: a point from a clock far ahead would land in a shard of its
	// own, and one older than the retention is dropped by InfluxDB.
	MaxFuture time.Duration
	MaxPast   time.Duration
}

// withDefaults returns l with its zero name and value caps set.
func (l Limits) withDefaults() Limits {
	if l.MaxNameLen <= 0 {
		l.MaxNameLen = DefaultMaxNameLen
	}
	if l.MaxValueLen <= 0 {
		l.MaxValueLen = DefaultMaxValueLen
	}
	return l
}

// Options control parsing.
type Options struct {
	// DefaultMeasurement is used for points that name none.
	DefaultMeasurement string
	// MaxPoints caps the points in one request.
	MaxPoints int
	// BodySize, when above zero, is the body's length as the request
	// declared it, so that a large body is read into a buffer of its size
	// rather than one doubled past it. The caller must have checked it
	// against its body limit.
	BodySize int64
	// Limits bound each point.
	Limits Limits
	// HostTag is the tag the gateway sets on every point; a field of that
	// name is refused, since it would stand beside the tag in InfluxDB and
	// make "SELECT *" ambiguous. Empty allows any field name.
	HostTag string
	// Now is the gateway's clock for a JSON body, against which Limits'
	// time window is checked; the zero time means time.Now. (A
	// line-protocol body takes its now as an argument.)
	Now time.Time
	// Grow, if set, is asked for room before the memory of the points the
	// parse builds (their tags and fields, the strings copied for them)
	// grows past GrowStep bytes and what Grow has granted since. An error
	// from it ends the parse and is returned as it is. (A JSON body's
	// parse tree, about 30 times the body while it is held, is bounded
	// instead by parsing one large body per CPU at a time.)
	Grow func(n int64) error
}

// GrowStep is the parse memory that needs no Grow: a small body's parse
// costs about what its connection does. Past it, each Grow asks for at
// least what was granted before, so a large body asks a few times rather
// than once per point.
const GrowStep = 64 << 10

// checkName rejects names InfluxDB would refuse or mangle: empty, too long,
// not UTF-8, with control characters, starting with '_' (reserved) or
// ending with a backslash (which line protocol cannot carry).
func checkName(what, s string, maxLen int) error {
	switch {
	case s == "":
		return fmt.Errorf("%s must not be empty", what)
	case len(s) > maxLen:
		return fmt.Errorf("%s %q is longer than %d bytes", what, truncate(s), maxLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not valid UTF-8", what)
	case strings.HasPrefix(s, "_"):
		return fmt.Errorf("%s %q must not start with '_' (reserved by InfluxDB)", what, truncate(s))
	case what != "measurement" && s == "time":
		return fmt.Errorf(`%s must not be "time" (reserved by InfluxDB)`, what)
	case strings.HasSuffix(s, `\`):
		return fmt.Errorf("%s %q must not end with a backslash", what, truncate(s))
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s %q contains a control character", what, truncate(s))
		}
	}
	return nil
}

// checkTagValue checks the value of tag k as what InfluxDB stores: 1 to
// maxLen bytes of UTF-8, no control characters (so no line breaks), no
// trailing backslash.
func checkTagValue(k, v string, maxLen int) error {
	bad := v == "" || len(v) > maxLen || !utf8.ValidString(v) || strings.HasSuffix(v, `\`) ||
		strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f })
	if bad {
		return fmt.Errorf("tag %q has an invalid value: want 1 to %d bytes of UTF-8 without control characters or a trailing backslash", truncate(k), maxLen)
	}
	return nil
}

// Encode appends the points to buf as line protocol, with tag hostTag set to
// host on every point (replacing any the client sent) and now as the time of
// points that have none. It returns ErrInvalid for a point the encoder
// refuses (one with no fields, say).
func Encode(buf []byte, pts []Point, hostTag, host string, now time.Time) ([]byte, error) {
	var enc lineprotocol.Encoder
	enc.SetBuffer(buf)
	enc.SetPrecision(lineprotocol.Nanosecond)
	tags := make([]Tag, 0, 8)
	for i := range pts {
		p := &pts[i]
		tags = encodeSeries(&enc, p, hostTag, host, tags)
		for _, f := range p.Fields {
			enc.AddField(f.Key, f.Value)
		}
		t := p.Time
		if t.IsZero() {
			t = now
		}
		enc.EndLine(t)
		if err := enc.Err(); err != nil {
			return buf, pointError(i, err)
		}
	}
	return enc.Bytes(), nil
}

// encodeSeries starts p's line in enc: its measurement and its tags, sorted,
// without the client's hostTag and with hostTag=host among them. tags is
// scratch space, returned for the next call.
func encodeSeries(enc *lineprotocol.Encoder, p *Point, hostTag, host string, tags []Tag) []Tag {
	tags = tags[:0]
	for _, t := range p.Tags {
		if t.Key != hostTag {
			tags = append(tags, t)
		}
	}
	tags = append(tags, Tag{hostTag, host})
	slices.SortFunc(tags, func(a, b Tag) int { return strings.Compare(a.Key, b.Key) })
	enc.StartLine(p.Measurement)
	for _, t := range tags {
		enc.AddTag(t.Key, t.Value)
	}
	return tags
}

func pointError(i int, err error) error {
	return fmt.Errorf("%w: point %d: %v", ErrInvalid, i, err)
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// yieldEvery lets other goroutines run after every 256th point parsed. A
// large body keeps a CPU for milliseconds, and the forwarder waits behind
// it: with the gateway's CPU saturated by batches, the forwarder delivered
// a fraction of what InfluxDB could take without yielding, and most of it
// with.
func yieldEvery(i int) {
	if i%256 == 255 {
		runtime.Gosched()
	}
}

// checkTime refuses t when it is further than the limits allow from now,
// the gateway's clock.
func (l *Limits) checkTime(t, now time.Time) error {
	if l.MaxFuture > 0 && t.Sub(now) > l.MaxFuture {
		return fmt.Errorf("timestamp %s is %s ahead of the gateway's clock (%s); at most %s ahead is accepted",
			t.UTC().Format(time.RFC3339Nano), t.Sub(now).Round(time.Second), now.UTC().Format(time.RFC3339), l.MaxFuture)
	}
	if l.MaxPast > 0 && now.Sub(t) > l.MaxPast {
		return fmt.Errorf("timestamp %s is %s behind the gateway's clock (%s); at most %s behind is accepted",
			t.UTC().Format(time.RFC3339Nano), now.Sub(t).Round(time.Second), now.UTC().Format(time.RFC3339), l.MaxPast)
	}
	return nil
}
