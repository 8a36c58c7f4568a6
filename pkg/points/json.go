package points

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
	"github.com/valyala/fastjson"
)

// parsers are reused across requests: github.com/valyala/fastjson parses
// into a tree it keeps for the next body, without reflection. The profile
// of a large batch showed encoding/json taking most of the request's CPU;
// fastjson parses the same batch several times faster, and the schema is
// small enough to walk by hand, which also gives exact messages.
//
// They are kept in a small free list rather than a sync.Pool: a sync.Pool is
// emptied at every garbage collection, and under a batch load (many
// collections a second) the profile showed re-growing fresh parsers as the
// largest allocation.
var parsers = make(chan *fastjson.Parser, 8)

func getParser() *fastjson.Parser {
	select {
	case p := <-parsers:
		return p
	default:
		return new(fastjson.Parser)
	}
}

func putParser(p *fastjson.Parser) {
	select {
	case parsers <- p:
	default:
	}
}

// bodies are reused read buffers, so a batch does not cost a fresh,
// repeatedly doubled, megabyte of garbage.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// bigParses admits one large body's parse per CPU at a time. A parse is
// CPU-bound, so more at once finish no sooner, but each holds its parser's
// tree, megabytes for a large batch, and grows it while it runs. Without the
// gate, the gateway's peak resident memory grew with the connections
// sending batches, and the collector's struggle cut the points accepted;
// with it, memory stays about flat and more points get in.
var bigParses = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

// bigBody is the size from which a body's parse waits for bigParses; a
// one-point body never does.
const bigBody = 64 << 10

// ParseJSON reads a submission: one point object or an array of them. It
// returns the points or an error wrapping ErrInvalid, ErrEmpty or
// ErrTooManyPoints whose message names the point and key at fault. An error
// reading r (a body over its size limit, a broken gzip stream) is wrapped
// too, so callers can tell it apart with errors.As.
func ParseJSON(r io.Reader, opts Options) ([]Point, error) {
	return parseJSON(r, opts, new(batch), nil)
}

// JSONScanner reads JSON submissions into Lines, as Scanner does line
// protocol, keeping from one body to the next what their parse and
// encoding work in: the batch with the names it last saw, the points, the
// encoder and the lines. A one-point body then costs a few allocations
// fewer than ParseJSON and EncodeLines, and its names are not copied again
// when they are the last body's. The zero value is ready to use; it is not
// safe for concurrent use.
type JSONScanner struct {
	b     batch
	pts   []Point
	enc   encoding
	lines Lines
	// For plain: the points of a body, and Options.DefaultMeasurement.
	plainPts []plainPoint
	defaultM []byte
}

// Scan reads the points of body as ParseJSON does with opts, and writes
// them as EncodeLines does, with the tag opts.HostTag set to host and now
// as the time of points without one. It returns ParseJSON's and
// EncodeLines' errors. The Lines are the scanner's until the next Scan.
func (j *JSONScanner) Scan(body io.Reader, opts Options, host string, now time.Time) (*Lines, error) {
	buf, err := readJSON(body, opts)
	defer putBody(buf)
	if err != nil {
		return nil, err
	}
	j.lines.Reset()
	if j.plain(buf.Bytes(), &opts, host, now) {
		return &j.lines, nil
	}
	pts, err := parseJSONBytes(buf.Bytes(), opts, &j.b, j.pts)
	if cap(pts) <= keptChunk {
		j.pts = pts[:0]
	} else {
		j.pts = nil
	}
	if err != nil {
		return nil, err
	}
	return &j.lines, j.enc.lines(&j.lines, pts, opts.HostTag, host, now)
}

// parseJSON is ParseJSON with the batch b, reset here, and the points
// appended to pts[:0].
func parseJSON(r io.Reader, opts Options, b *batch, pts []Point) ([]Point, error) {
	buf, err := readJSON(r, opts)
	defer putBody(buf)
	if err != nil {
		return nil, err
	}
	return parseJSONBytes(buf.Bytes(), opts, b, pts)
}

// readJSON reads r into a buffer of bodies, which the caller gives back
// with putBody once done with its bytes, error or not.
func readJSON(r io.Reader, opts Options) (*bytes.Buffer, error) {
	buf := bodies.Get().(*bytes.Buffer)
	if opts.BodySize > 0 {
		buf.Grow(int(opts.BodySize) + bytes.MinRead) // ReadFrom needs MinRead spare to see the end
	}
	if _, err := buf.ReadFrom(r); err != nil {
		return buf, fmt.Errorf("%w: reading body: %w", ErrInvalid, err)
	}
	return buf, nil
}

// putBody gives buf back to bodies, unless it grew too large to keep.
func putBody(buf *bytes.Buffer) {
	if buf.Cap() <= 4<<20 { // keep the pool from holding on to outsized bodies
		buf.Reset()
		bodies.Put(buf)
	}
}

// parseJSONBytes is parseJSON of the body read.
func parseJSONBytes(body []byte, opts Options, b *batch, pts []Point) ([]Point, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, fmt.Errorf("%w: body is empty", ErrInvalid)
	}
	if len(body) >= bigBody {
		bigParses <- struct{}{}
		defer func() { <-bigParses }()
	}
	p := getParser()
	defer putParser(p)
	v, err := p.ParseBytes(body)
	if err != nil {
		return nil, syntaxError(err)
	}
	return jsonPoints(b, pts, v, opts)
}

// jsonPoints reads the points of a parsed body into b, reset here, and
// pts[:0], charging their memory to opts.Grow.
func jsonPoints(b *batch, pts []Point, v *fastjson.Value, opts Options) ([]Point, error) {
	switch v.Type() {
	case fastjson.TypeObject:
		b.reset(&opts, 1)
		pt, err := jsonPoint(b, v, 0, opts)
		if err != nil {
			return nil, b.failure(err)
		}
		return append(pts[:0], pt), nil
	case fastjson.TypeArray:
		items, _ := v.Array()
		if len(items) == 0 {
			return nil, fmt.Errorf("%w: the array is empty", ErrEmpty)
		}
		if opts.MaxPoints > 0 && len(items) > opts.MaxPoints {
			return nil, fmt.Errorf("%w: a batch may hold at most %d points, got %d", ErrTooManyPoints, opts.MaxPoints, len(items))
		}
		b.reset(&opts, len(items))
		if err := b.charge(int64(len(items)) * fieldBytes); err != nil {
			return nil, err
		}
		pts = slices.Grow(pts[:0], len(items))[:len(items)]
		var err error
		for i, item := range items {
			if pts[i], err = jsonPoint(b, item, i, opts); err != nil {
				return nil, b.failure(err)
			}
			yieldEvery(i)
		}
		return pts, nil
	}
	return nil, fmt.Errorf("%w: body must be a JSON object or an array of objects, got %s", ErrInvalid, v.Type())
}

// jsonPoint reads point i of a body into b.
func jsonPoint(b *batch, v *fastjson.Value, i int, opts Options) (Point, error) {
	keys, err := pointKeys(v)
	if err != nil {
		return Point{}, pointError(i, err)
	}
	var p Point
	if keys.measurement != nil {
		m, serr := keys.measurement.StringBytes()
		if serr != nil {
			return Point{}, pointError(i, fmt.Errorf(`"measurement" must be a string, got %s`, keys.measurement.Type()))
		}
		p.Measurement, err = startPoint(b, m)
	} else {
		p.Measurement, err = startPoint(b, opts.DefaultMeasurement)
	}
	if err != nil {
		return Point{}, pointError(i, err)
	}
	if keys.field == nil {
		return Point{}, pointError(i, errors.New(`"field" is required`))
	}
	f, err := keys.field.StringBytes()
	if err != nil {
		return Point{}, pointError(i, fmt.Errorf(`"field" must be a string, got %s`, keys.field.Type()))
	}
	fieldName, err := b.fieldKey(f)
	if err != nil {
		return Point{}, pointError(i, err)
	}
	if keys.tags != nil {
		if err := jsonTags(b, keys.tags); err != nil {
			return Point{}, pointError(i, err)
		}
		p.Tags = b.pointTags()
	}
	val, err := jsonValue(keys.value, b.lim.MaxValueLen)
	if err != nil {
		return Point{}, pointError(i, err)
	}
	if p.Fields, err = b.addField(Field{Key: fieldName, Value: val}); err != nil {
		return Point{}, pointError(i, err)
	}
	if p.Time, err = jsonTime(keys.timestamp, &b.lim, opts.Now); err != nil {
		return Point{}, pointError(i, err)
	}
	return p, nil
}

// jsonKeys holds the values of a point object's keys, nil where absent.
type jsonKeys struct {
	measurement, field, value, timestamp, tags *fastjson.Value
}

// pointKeys reads the keys of a point object, refusing one that is not an
// object, an unknown key and a repeated one.
func pointKeys(v *fastjson.Value) (jsonKeys, error) {
	o, err := v.Object()
	if err != nil {
		return jsonKeys{}, fmt.Errorf("each point must be a JSON object, got %s", v.Type())
	}
	var keys jsonKeys
	seen := 0
	o.Visit(func(k []byte, v *fastjson.Value) {
		if err != nil {
			return
		}
		var bit int
		switch string(k) {
		case "measurement":
			bit, keys.measurement = 1, v
		case "field":
			bit, keys.field = 2, v
		case "value":
			bit, keys.value = 4, v
		case "timestamp":
			bit, keys.timestamp = 8, v
		case "tags":
			bit, keys.tags = 16, v
		default:
			err = fmt.Errorf("unknown key %q", truncate(string(k)))
			return
		}
		if seen&bit != 0 {
			err = fmt.Errorf("duplicate key %q", k)
		}
		seen |= bit
	})
	return keys, err
}

// jsonTime reads a point's timestamp, nanoseconds since the epoch, and
// checks it against the range InfluxDB stores and lim's window around now
// (time.Now when zero); absent or null, it is the zero time, for Encode to
// stamp.
func jsonTime(v *fastjson.Value, lim *Limits, now time.Time) (time.Time, error) {
	if v == nil || v.Type() == fastjson.TypeNull {
		return time.Time{}, nil
	}
	// Int64 refuses a fraction, an exponent and anything out of range.
	ns, err := v.Int64()
	if err != nil {
		var buf [32]byte
		raw := v.MarshalTo(buf[:0])
		return time.Time{}, fmt.Errorf(`"timestamp" must be an integer number of nanoseconds since the epoch, got %s`, truncate(string(raw)))
	}
	if ns < minNanoTime || ns > maxNanoTime {
		return time.Time{}, fmt.Errorf(`"timestamp" %d is outside the range InfluxDB stores`, ns)
	}
	t := time.Unix(0, ns)
	if lim.MaxFuture > 0 || lim.MaxPast > 0 {
		if now.IsZero() {
			now = time.Now()
		}
		return t, lim.checkTime(t, now)
	}
	return t, nil
}

// jsonTags adds a point's tags object to b.
func jsonTags(b *batch, v *fastjson.Value) error {
	o, err := v.Object()
	if err != nil {
		return fmt.Errorf(`"tags" must be an object of strings, got %s`, v.Type())
	}
	o.Visit(func(k []byte, v *fastjson.Value) {
		if err != nil {
			return
		}
		val, serr := v.StringBytes()
		if serr != nil {
			err = fmt.Errorf(`"tags.%s" must be a string, got %s`, truncate(string(k)), v.Type())
			return
		}
		err = b.addTag(k, val)
	})
	return err
}

// jsonValue keeps a JSON integer an integer and any other number a float,
// so the field type in InfluxDB is what the client wrote.
func jsonValue(v *fastjson.Value, maxLen int) (lineprotocol.Value, error) {
	if v == nil {
		return lineprotocol.Value{}, errors.New(`"value" is required`)
	}
	switch v.Type() {
	case fastjson.TypeTrue, fastjson.TypeFalse:
		return lineprotocol.BoolValue(v.Type() == fastjson.TypeTrue), nil
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		if len(b) > maxLen {
			return lineprotocol.Value{}, fmt.Errorf(`"value" is longer than %d bytes`, maxLen)
		}
		val, ok := lineprotocol.StringValue(string(b))
		if !ok {
			return lineprotocol.Value{}, errors.New(`"value" is not valid UTF-8`)
		}
		return val, nil
	case fastjson.TypeNumber:
		// Int64 takes exactly the integers in range; the rest is a float
		// or an integer too large.
		if n, err := v.Int64(); err == nil {
			return lineprotocol.IntValue(n), nil
		}
		var buf [32]byte
		raw := v.MarshalTo(buf[:0])
		if !bytes.ContainsAny(raw, ".eE") {
			return lineprotocol.Value{}, fmt.Errorf(`"value" %s is out of the range of a 64-bit integer`, truncate(string(raw)))
		}
		f, err := v.Float64()
		val, ok := lineprotocol.FloatValue(f)
		if err != nil || !ok {
			return lineprotocol.Value{}, fmt.Errorf(`"value" %s is not a finite number`, truncate(string(raw)))
		}
		return val, nil
	}
	return lineprotocol.Value{}, fmt.Errorf(`"value" must be a number, a boolean or a string, got %s`, v.Type())
}

// syntaxError words fastjson's parse errors for a client.
func syntaxError(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "unexpected end"), strings.HasSuffix(msg, `unparsed tail: ""`):
		return fmt.Errorf("%w: body ends in the middle of a JSON value", ErrInvalid)
	case strings.Contains(msg, "unexpected tail"):
		return fmt.Errorf("%w: unexpected data after the JSON value", ErrInvalid)
	}
	return fmt.Errorf("%w: malformed JSON: %s", ErrInvalid, strings.TrimPrefix(msg, "cannot parse JSON: "))
}
