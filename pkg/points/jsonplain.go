package points

import (
	"strconv"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
	"github.com/valyala/fastjson/fastfloat"
)

// plainPoint is a submission as most clients send it: one object with a
// field, a number or boolean value, and perhaps a measurement and a
// timestamp, its names needing no escape in line protocol. Its parts are
// the body's bytes.
type plainPoint struct {
	measurement []byte // nil for the default
	field       []byte
	value       lineprotocol.Value
	time        []byte // an integer; nil when absent
}

// plain writes body into j.lines, when it is a plainPoint whose names,
// value and time pass every check the whole parse makes, as that parse
// and EncodeLines would: the same line, series, measurement and field.
// It reports false for anything else, a body it cannot judge included,
// having written nothing; the whole parse then answers the body, with
// its precise error when there is one.
//
// A one-point body spent most of its parse building fastjson's tree, a
// Point and the line-protocol encoder's checks of names it then wrote
// unescaped; this reads the object in one pass instead.
// FuzzJSONScanner holds the two paths to the same answers.
func (j *JSONScanner) plain(body []byte, opts *Options, host string, now time.Time) bool {
	if len(body) > maxPlainBody {
		return false
	}
	p, ok := scanPlain(body)
	if !ok || now.IsZero() || !plainText(host) || !plainText(opts.HostTag) {
		return false
	}
	lim := opts.Limits.withDefaults()
	m := p.measurement
	if m == nil {
		if string(j.defaultM) != opts.DefaultMeasurement {
			j.defaultM = []byte(opts.DefaultMeasurement)
		}
		if m = j.defaultM; !plainText(m) {
			return false
		}
	}
	if !plainName(m, lim.MaxNameLen) || !plainName(p.field, lim.MaxNameLen) ||
		string(p.field) == "time" || string(p.field) == opts.HostTag {
		return false
	}
	t := now
	if p.time != nil {
		ns, err := fastfloat.ParseInt64(string(p.time))
		if err != nil || ns < minNanoTime || ns > maxNanoTime {
			return false
		}
		t = time.Unix(0, ns)
		if lim.MaxFuture > 0 || lim.MaxPast > 0 {
			if opts.Now.IsZero() {
				// A clock read here could differ from the one the whole
				// parse would read: leave the body to it.
				return false
			}
			if lim.checkTime(t, opts.Now) != nil {
				return false
			}
		}
	}
	l := &j.lines
	start := len(l.Data)
	l.Data = append(l.Data, m...)
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
	l.Data = strconv.AppendInt(l.Data, t.UnixNano(), 10)
	l.Data = append(l.Data, '\n')
	shape := append(append(append(append(j.enc.shape[:0], m...), 0), p.field...), 0, shapeKind(p.value.Kind()))
	j.enc.shape = shape
	if l.newShape(shape) {
		l.addShape(shape, len(m), 0)
	}
	l.addPoint(1, series)
	return true
}

// maxPlainBody is the largest body plain takes: its names are then far
// below GrowStep, as the whole parse charges them, so Options.Grow is
// never asked.
const maxPlainBody = 4 << 10

// scanPlain reads body as a plainPoint, reporting false for anything else:
// another key, a repeated one, a string with an escape or a byte plainText
// refuses, a value of another type, a number that is not JSON's.
func scanPlain(body []byte) (p plainPoint, ok bool) {
	i := skipJSONSpace(body, 0)
	if i == len(body) || body[i] != '{' {
		return p, false
	}
	seen := 0
	for {
		var key []byte
		if key, i, ok = plainString(body, skipJSONSpace(body, i+1)); !ok {
			return p, false
		}
		if i = skipJSONSpace(body, i); i == len(body) || body[i] != ':' {
			return p, false
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
			var frac bool
			start := i
			if i, frac = jsonNumber(body, i); i == start || frac {
				return p, false
			}
			p.time = body[start:i]
		default:
			return p, false
		}
		if !ok || seen&bit != 0 {
			return p, false
		}
		seen |= bit
		if i = skipJSONSpace(body, i); i == len(body) {
			return p, false
		}
		if body[i] == '}' {
			break
		}
		if body[i] != ',' {
			return p, false
		}
	}
	return p, seen&6 == 6 && skipJSONSpace(body, i+1) == len(body)
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
	raw := string(body[i:end])
	if n, err := fastfloat.ParseInt64(raw); err == nil {
		return lineprotocol.IntValue(n), end, true
	}
	if !frac {
		return lineprotocol.Value{}, i, false // an integer out of range
	}
	f, err := fastfloat.Parse(raw)
	v, ok := lineprotocol.FloatValue(f)
	return v, end, err == nil && ok
}

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
		j = digits(body, j)
	default:
		return i, false
	}
	if j < len(body) && body[j] == '.' {
		if k := digits(body, j+1); k > j+1 {
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
		if e := digits(body, k); e > k {
			j, frac = e, true
		} else {
			return i, false
		}
	}
	return j, frac
}

// digits returns the index after the run of decimal digits at b[i:].
func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
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

// plainName reports whether s is a name checkName takes that is all
// plainByte.
func plainName(s []byte, maxLen int) bool {
	return plainText(s) && len(s) <= maxLen && s[0] != '_'
}
