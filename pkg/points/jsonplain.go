package points

import (
	"strconv"
	"time"
	"unsafe"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
	"github.com/valyala/fastjson/fastfloat"
)

// plainPoint is a point as most clients send it: an object with a field,
// a number or boolean value, and perhaps a measurement and a timestamp,
// its names needing no escape in line protocol. Its names are the body's
// bytes.
type plainPoint struct {
	measurement []byte // nil for the default
	field       []byte
	value       lineprotocol.Value
	time        int64 // nanoseconds, when timed
	timed       bool
}

// plain writes body into j.lines, when it is a plainPoint or a small
// array of them whose names, values and times pass every check the whole
// parse makes, as that parse and EncodeLines would: the same lines,
// series, measurements and fields. It reports false for anything else, a
// body it cannot judge included, having written nothing; the whole parse
// then answers the body, with its precise error when there is one.
//
// A one-point body spent most of its parse building fastjson's tree, a
// Point and the line-protocol encoder's checks of names it then wrote
// unescaped; this reads the body in one pass instead.
// FuzzJSONScanner holds the two paths to the same answers.
func (j *JSONScanner) plain(body []byte, opts *Options, host string, now time.Time) bool {
	if len(body) > maxPlainBody {
		return false
	}
	pts, ok := scanPlain(body, j.plainPts[:0])
	j.plainPts = pts[:0]
	if !ok || now.IsZero() || !plainText(host) || !plainText(opts.HostTag) ||
		opts.MaxPoints > 0 && len(pts) > opts.MaxPoints {
		return false
	}
	if string(j.defaultM) != opts.DefaultMeasurement {
		j.defaultM = []byte(opts.DefaultMeasurement)
	}
	lim := opts.Limits.withDefaults()
	defaultOK := plainText(j.defaultM)
	for i := range pts {
		p := &pts[i]
		if p.measurement == nil {
			if !defaultOK {
				return false
			}
			p.measurement = j.defaultM
		}
		// plainString took only plain bytes: what checkName has left to
		// check is nameOK's.
		if !nameOK(p.measurement, lim.MaxNameLen, false) || !nameOK(p.field, lim.MaxNameLen, true) ||
			string(p.field) == opts.HostTag {
			return false
		}
		if p.timed && (lim.MaxFuture > 0 || lim.MaxPast > 0) {
			// Without the caller's clock, one read here could differ from
			// the one the whole parse would read: leave the body to it.
			if opts.Now.IsZero() || lim.checkTime(time.Unix(0, p.time), opts.Now) != nil {
				return false
			}
		}
	}
	l := &j.lines
	untimed := now.UnixNano()
	for i := range pts {
		p := &pts[i]
		start := len(l.Data)
		l.Data = append(l.Data, p.measurement...)
		l.Data = append(l.Data, ',')
		l.Data = append(l.Data, opts.HostTag...)
		l.Data = append(l.Data, '=')
		l.Data = append(l.Data, host...)
		series := SeriesHash(l.Data[start:])
		l.Data = append(l.Data, ' ')
		l.Data = append(l.Data, p.field...)
		l.Data = append(l.Data, '=')
		l.Data = p.value.AppendBytes(l.Data)
		l.Data = append(l.Data, ' ')
		ns := untimed
		if p.timed {
			ns = p.time
		}
		l.Data = strconv.AppendInt(l.Data, ns, 10)
		l.Data = append(l.Data, '\n')
		shape := append(append(append(append(j.enc.shape[:0], p.measurement...), 0), p.field...), 0, shapeKind(p.value.Kind()))
		j.enc.shape = shape
		if l.newShape(shape) {
			l.addShape(shape, len(p.measurement), 0)
		}
		l.addPoint(1, series)
	}
	return true
}

// maxPlainBody is the largest body plain takes: the memory the whole
// parse charges for its points and names then stays below GrowStep, so
// Options.Grow is never asked, and a large batch keeps the whole parse's
// gate (bigParses) and yields.
const maxPlainBody = 4 << 10

// scanPlain reads body as one plainPoint or a non-empty array of them,
// appended to pts, reporting false for anything else.
func scanPlain(body []byte, pts []plainPoint) ([]plainPoint, bool) {
	i := skipJSONSpace(body, 0)
	if i < len(body) && body[i] == '{' {
		p, end, ok := plainObject(body, i)
		return append(pts, p), ok && skipJSONSpace(body, end) == len(body)
	}
	if i == len(body) || body[i] != '[' {
		return pts, false
	}
	for i++; ; {
		p, end, ok := plainObject(body, skipJSONSpace(body, i))
		if !ok {
			return pts, false
		}
		pts = append(pts, p)
		var done bool
		if i, done, ok = nextItem(body, end, ']'); !ok || done {
			return pts, ok && skipJSONSpace(body, i) == len(body)
		}
	}
}

// nextItem reads what follows an item of a JSON object or array, at
// body[i:] after any space: a ',' before another item, or close, which
// ends them (done). It returns the index after it, and false for anything
// else.
func nextItem(body []byte, i int, close byte) (next int, done, ok bool) {
	if i = skipJSONSpace(body, i); i < len(body) && (body[i] == ',' || body[i] == close) {
		return i + 1, body[i] == close, true
	}
	return i, false, false
}

// plainObject reads the object at body[i:] as a plainPoint and returns
// the index after it, reporting false for anything else: another key, a
// repeated one, a string with an escape or a byte plainText refuses, a
// value of another type, a number that is not JSON's, a timestamp out of
// InfluxDB's range.
func plainObject(body []byte, i int) (p plainPoint, end int, ok bool) {
	if i == len(body) || body[i] != '{' {
		return p, i, false
	}
	seen := 0
	for i++; ; {
		var key []byte
		if key, i, ok = plainString(body, skipJSONSpace(body, i)); !ok {
			return p, i, false
		}
		if i = skipJSONSpace(body, i); i == len(body) || body[i] != ':' {
			return p, i, false
		}
		i = skipJSONSpace(body, i+1)
		var bit int
		switch string(key) {
		case "measurement":
			bit = 1
			p.measurement, i, ok = plainString(body, i)
		case "field":
			bit = 2
			p.field, i, ok = plainString(body, i)
		case "value":
			bit = 4
			p.value, i, ok = plainValue(body, i)
		case "timestamp":
			bit = 8
			p.time, i, ok = plainTime(body, i)
			p.timed = true
		default:
			return p, i, false
		}
		if !ok || seen&bit != 0 {
			return p, i, false
		}
		seen |= bit
		var done bool
		if i, done, ok = nextItem(body, i, '}'); !ok || done {
			return p, i, ok && seen&6 == 6
		}
	}
}

// plainTime reads the integer at body[i:] as jsonTime would, nanoseconds
// since the epoch, and returns it and the index after it. It reports false
// for anything else and for a time out of InfluxDB's range.
func plainTime(body []byte, i int) (int64, int, bool) {
	end, frac := jsonNumber(body, i)
	if end == i || frac {
		return 0, i, false
	}
	ns, err := fastfloat.ParseInt64(transient(body[i:end]))
	return ns, end, err == nil && ns >= minNanoTime && ns <= maxNanoTime
}

// plainString reads the JSON string at body[i:] and returns its content
// and the index after it, when every byte of it is plainText's.
func plainString(body []byte, i int) ([]byte, int, bool) {
	if i == len(body) || body[i] != '"' {
		return nil, i, false
	}
	for j := i + 1; j < len(body); j++ {
		if body[j] == '"' {
			return body[i+1 : j], j + 1, true
		}
		if !plainByte[body[j]] {
			break
		}
	}
	return nil, i, false
}

// plainValue reads the number or boolean at body[i:] as jsonValue would,
// and returns it and the index after it. It reports false for any other
// value and for a number jsonValue refuses.
func plainValue(body []byte, i int) (lineprotocol.Value, int, bool) {
	for _, b := range [...]struct {
		text string
		v    bool
	}{{"true", true}, {"false", false}} {
		if len(body)-i >= len(b.text) && string(body[i:i+len(b.text)]) == b.text {
			return lineprotocol.BoolValue(b.v), i + len(b.text), true
		}
	}
	end, frac := jsonNumber(body, i)
	if end == i {
		return lineprotocol.Value{}, i, false
	}
	raw := transient(body[i:end])
	if !frac {
		// jsonValue tries an integer first; a number with a fraction or
		// an exponent never is one, and the error would cost allocations.
		n, err := fastfloat.ParseInt64(raw)
		return lineprotocol.IntValue(n), end, err == nil // else out of range
	}
	f, err := fastfloat.Parse(raw)
	v, ok := lineprotocol.FloatValue(f)
	return v, end, err == nil && ok
}

// transient returns b as a string without copying it, for the fastfloat
// parse of a number: fastjson parses its numbers so, and the two paths
// must agree on every value. The parse keeps no reference to it (its
// errors copy what they quote), and b is not changed while it runs. A copy
// cost an allocation a number, as fastfloat's errors make the string
// escape.
func transient(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// jsonNumber returns the index after the JSON number at body[i:], i when
// there is none, and whether it has a fraction or an exponent.
func jsonNumber(body []byte, i int) (end int, frac bool) {
	j := i
	if j < len(body) && body[j] == '-' {
		j++
	}
	switch {
	case j < len(body) && body[j] == '0':
		j++
	case j < len(body) && body[j] >= '1' && body[j] <= '9':
		j = digitsEnd(body, j)
	default:
		return i, false
	}
	if j < len(body) && body[j] == '.' {
		if k := digitsEnd(body, j+1); k > j+1 {
			j, frac = k, true
		} else {
			return i, false
		}
	}
	if j < len(body) && (body[j] == 'e' || body[j] == 'E') {
		k := j + 1
		if k < len(body) && (body[k] == '+' || body[k] == '-') {
			k++
		}
		if e := digitsEnd(body, k); e > k {
			j, frac = e, true
		} else {
			return i, false
		}
	}
	return j, frac
}

// skipJSONSpace returns the index of the first byte at b[i:] that is not
// JSON whitespace, as fastjson skips it.
func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainText reports whether s is not empty and all plainByte: text that
// needs no escape in a JSON string nor anywhere in line protocol.
func plainText[T string | []byte](s T) bool {
	for i := range len(s) {
		if !plainByte[s[i]] {
			return false
		}
	}
	return len(s) > 0
}
