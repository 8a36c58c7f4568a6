// Package points turns what clients submit into InfluxDB line protocol: it
// parses and validates the JSON body of /api/submit and the line protocol
// of the InfluxDB-compatible write endpoints into one Point type, enforces
// the host tag, and encodes the result with
// github.com/influxdata/line-protocol/v2, so every later stage (the spool,
// the forwarder, InfluxDB) sees one format.
package points

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
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
	Tags        map[string]string
	Fields      []Field   // at least one; a JSON point has exactly one
	Time        time.Time // zero when a JSON point gave none: Encode stamps it
	// Line is the line of a line-protocol body the point starts on, for
	// messages; 0 for points from JSON.
	Line int
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
}

// jsonPoint is the wire form of one point.
type jsonPoint struct {
	Measurement *string           `json:"measurement"`
	Field       *string           `json:"field"`
	Value       json.RawMessage   `json:"value"`
	Timestamp   json.RawMessage   `json:"timestamp"`
	Tags        map[string]string `json:"tags"`
}

// ParseJSON reads a submission: one point object or an array of them. It
// returns the points or an error wrapping ErrInvalid, ErrEmpty or
// ErrTooManyPoints whose message names the point and field at fault.
func ParseJSON(r io.Reader, opts Options) ([]Point, error) {
	br := bufio.NewReader(r)
	first, err := peekNonSpace(br)
	if err == io.EOF {
		return nil, fmt.Errorf("%w: body is empty", ErrInvalid)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading body: %w", ErrInvalid, err)
	}
	dec := json.NewDecoder(br)
	dec.DisallowUnknownFields()
	var pts []Point
	switch first {
	case '{':
		p, err := decodePoint(dec, 0, opts)
		if err != nil {
			return nil, err
		}
		pts = []Point{p}
	case '[':
		if _, err := dec.Token(); err != nil {
			return nil, jsonError(-1, err)
		}
		for i := 0; dec.More(); i++ {
			if opts.MaxPoints > 0 && i >= opts.MaxPoints {
				return nil, fmt.Errorf("%w: a batch may hold at most %d points", ErrTooManyPoints, opts.MaxPoints)
			}
			p, err := decodePoint(dec, i, opts)
			if err != nil {
				return nil, err
			}
			pts = append(pts, p)
		}
		if _, err := dec.Token(); err != nil {
			return nil, jsonError(len(pts), err)
		}
		if len(pts) == 0 {
			return nil, fmt.Errorf("%w: the array is empty", ErrEmpty)
		}
	default:
		return nil, fmt.Errorf("%w: body must be a JSON object or an array of objects", ErrInvalid)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: unexpected data after the JSON value", ErrInvalid)
	}
	return pts, nil
}

// peekNonSpace skips JSON white space and returns the next byte unread.
func peekNonSpace(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		if b != ' ' && b != '\t' && b != '\n' && b != '\r' {
			return b, br.UnreadByte()
		}
	}
}

// decodePoint decodes the object at the decoder's position.
func decodePoint(dec *json.Decoder, i int, opts Options) (Point, error) {
	var jp jsonPoint
	if err := dec.Decode(&jp); err != nil {
		return Point{}, jsonError(i, err)
	}
	return jp.point(i, opts)
}

func (jp *jsonPoint) point(i int, opts Options) (Point, error) {
	p := Point{Measurement: opts.DefaultMeasurement, Tags: jp.Tags}
	if jp.Measurement != nil {
		p.Measurement = *jp.Measurement
	}
	if err := checkName("measurement", p.Measurement); err != nil {
		return Point{}, pointError(i, err)
	}
	if jp.Field == nil {
		return Point{}, pointError(i, errors.New(`"field" is required`))
	}
	if err := checkName("field", *jp.Field); err != nil {
		return Point{}, pointError(i, err)
	}
	for k, v := range p.Tags {
		if err := checkTag(k, v); err != nil {
			return Point{}, pointError(i, err)
		}
	}
	v, err := parseValue(jp.Value)
	if err != nil {
		return Point{}, pointError(i, err)
	}
	p.Fields = []Field{{Key: *jp.Field, Value: v}}
	if t := jp.Timestamp; len(t) > 0 && string(t) != "null" {
		ns, err := strconv.ParseInt(string(t), 10, 64)
		if err != nil {
			return Point{}, pointError(i, fmt.Errorf(`"timestamp" must be an integer number of nanoseconds since the epoch, got %s`, truncate(string(t))))
		}
		p.Time = time.Unix(0, ns)
	}
	return p, nil
}

// parseValue keeps a JSON integer an integer and any other number a float,
// so the field type in InfluxDB is what the client wrote.
func parseValue(raw json.RawMessage) (lineprotocol.Value, error) {
	s := string(raw)
	switch {
	case len(raw) == 0:
		return lineprotocol.Value{}, errors.New(`"value" is required`)
	case s == "null":
		return lineprotocol.Value{}, errors.New(`"value" must be a number, a boolean or a string, got null`)
	case s == "true" || s == "false":
		return lineprotocol.BoolValue(s == "true"), nil
	case raw[0] == '"':
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			return lineprotocol.Value{}, fmt.Errorf(`"value" is not a valid string: %v`, err)
		}
		if len(str) > maxStringValueLen {
			return lineprotocol.Value{}, fmt.Errorf(`"value" is longer than %d bytes`, maxStringValueLen)
		}
		v, ok := lineprotocol.StringValue(str)
		if !ok {
			return lineprotocol.Value{}, errors.New(`"value" is not valid UTF-8`)
		}
		return v, nil
	case raw[0] == '{' || raw[0] == '[':
		return lineprotocol.Value{}, fmt.Errorf(`"value" must be a number, a boolean or a string, got %s`, truncate(s))
	}
	if !strings.ContainsAny(s, ".eE") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return lineprotocol.Value{}, fmt.Errorf(`"value" %s is out of the range of a 64-bit integer`, truncate(s))
		}
		return lineprotocol.IntValue(n), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return lineprotocol.Value{}, fmt.Errorf(`"value" %s is not a finite number`, truncate(s))
	}
	v, ok := lineprotocol.FloatValue(f)
	if !ok {
		return lineprotocol.Value{}, fmt.Errorf(`"value" %s is not a finite number`, truncate(s))
	}
	return v, nil
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
	keys := make([]string, 0, 8)
	for i, p := range pts {
		keys = keys[:0]
		for k := range p.Tags {
			if k != hostTag {
				keys = append(keys, k)
			}
		}
		keys = append(keys, hostTag)
		sort.Strings(keys)
		enc.StartLine(p.Measurement)
		for _, k := range keys {
			if k == hostTag {
				enc.AddTag(k, host)
			} else {
				enc.AddTag(k, p.Tags[k])
			}
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

// jsonError turns a decoding error into one that says where and what.
func jsonError(i int, err error) error {
	where := ""
	if i >= 0 {
		where = fmt.Sprintf("point %d: ", i)
	}
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: %sbody is empty or ends too early", ErrInvalid, where)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %sbody ends in the middle of a JSON value", ErrInvalid, where)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return fmt.Errorf("%w: %seach point must be a JSON object, got %s", ErrInvalid, where, typeErr.Value)
		}
		want := map[string]string{"measurement": "a string", "field": "a string", "tags": "an object of strings"}[strings.SplitN(field, ".", 2)[0]]
		if want == "" {
			want = "a string"
		}
		return fmt.Errorf("%w: %s%q must be %s, got %s", ErrInvalid, where, field, want, typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("%w: %smalformed JSON at byte %d: %v", ErrInvalid, where, syntaxErr.Offset, syntaxErr)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Errorf("%w: %sunknown key %s", ErrInvalid, where, strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	// Keep the cause (a body size limit, a bad gzip stream) for errors.As.
	return fmt.Errorf("%w: %s%w", ErrInvalid, where, err)
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
