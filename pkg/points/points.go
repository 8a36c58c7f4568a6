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

// Limits on names and values, those InfluxDB itself enforces or chokes on.
const (
	maxNameLen        = 256
	maxStringValueLen = 64 * 1024
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
}

// checkName rejects names InfluxDB would refuse or mangle: empty, too long,
// not UTF-8, with control characters, starting with '_' (reserved) or
// ending with a backslash (which line protocol cannot carry).
func checkName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s must not be empty", what)
	case len(s) > maxNameLen:
		return fmt.Errorf("%s %q is longer than %d bytes", what, truncate(s), maxNameLen)
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

// checkTag checks a tag's key as a name and its value as what InfluxDB
// stores: 1 to maxStringValueLen bytes of UTF-8, no control characters (so
// no line breaks), no trailing backslash.
func checkTag(k, v string) error {
	if err := checkName("tag key", k); err != nil {
		return err
	}
	bad := v == "" || len(v) > maxStringValueLen || !utf8.ValidString(v) || strings.HasSuffix(v, `\`) ||
		strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f })
	if bad {
		return fmt.Errorf("tag %q has an invalid value: want 1 to %d bytes of UTF-8 without control characters or a trailing backslash", truncate(k), maxStringValueLen)
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
	for i, p := range pts {
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
