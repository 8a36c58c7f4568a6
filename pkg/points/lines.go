package points

import (
	"bytes"
	"strconv"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// Lines is a request's points as the gateway keeps them: line protocol with
// the host tag set, ready for the spool, and what the isolation checks read
// of them (their series, measurements, field names and types), gathered in
// the same pass that wrote the bytes so that no check walks the points
// again or needs a value per point. A Scanner or EncodeLines fills it;
// Reset empties it for the next request, keeping its memory.
type Lines struct {
	// Data is the points' line protocol, one newline-terminated line per
	// point, nanosecond timestamps, tags sorted with the host tag among
	// them: the bytes points.Encode writes for the same points.
	Data []byte
	// Points is the number of lines in Data.
	Points int
	// Values is the number of field values in all, what a key's rate
	// counts.
	Values int
	// Series holds each point's series hash (see SeriesHash), in order.
	Series []uint64
	// Measurements are the distinct measurements, each with the first
	// point that names it, in the order they first appear.
	Measurements []Place
	// Fields are the distinct (measurement, field, type) triples, each with
	// the first point that writes it, in the order they first appear.
	Fields []FieldType

	shapes    map[string]struct{} // lines' measurement, field keys and types seen
	fieldSeen map[string]struct{} // Fields, by measurement, field and type
	mSeen     map[string]struct{} // Measurements, once there are many
	key       []byte              // scratch for map keys
	// names holds the strings made for earlier requests' shapes,
	// measurements and fields, so that a request like the ones before
	// (a one-point request above all) makes none. Reset keeps it, up to
	// maxNameBytes.
	names      map[string]string
	namesBytes int
}

// maxNameBytes bounds the strings Lines.names holds: past it, the table
// starts again.
const maxNameBytes = 256 << 10

// intern returns b as a string, made once for all requests.
func (l *Lines) intern(b []byte) string {
	if s, ok := l.names[string(b)]; ok {
		return s
	}
	if l.names == nil || l.namesBytes+len(b) > maxNameBytes {
		l.names, l.namesBytes = make(map[string]string), 0
	}
	l.namesBytes += len(b)
	s := string(b)
	l.names[s] = s
	return s
}

// Place names a measurement and the first point that has it.
type Place struct {
	Measurement string
	Point       int // index of the point in the request, from 0
	Line        int // line of a line-protocol body, from 1; 0 for JSON
}

// Where names the point for messages: "line 3" for line protocol, "point
// 2" for JSON.
func (p Place) Where() string { return where(p.Point, p.Line) }

// FieldType is one field of a measurement written with one type, and the
// first point that writes it so.
type FieldType struct {
	Measurement, Field string
	// Kind is the field's type; an unsigned integer is Int, as it is
	// stored.
	Kind  lineprotocol.ValueKind
	Point int // index of the point in the request, from 0
	Line  int // line of a line-protocol body, from 1; 0 for JSON
}

// Where names the point for messages, as Place.Where does.
func (f FieldType) Where() string { return where(f.Point, f.Line) }

func where(point, line int) string {
	if line > 0 {
		return "line " + strconv.Itoa(line)
	}
	return "point " + strconv.Itoa(point)
}

// SeriesHash returns the hash of a series as the gateway writes it: the
// bytes of a line up to the space before its fields, so the escaped
// measurement and its sorted tags, host tag included. Every point of one
// key gets the same host tag, so its series differ only in what the client
// sent.
func SeriesHash(series []byte) uint64 { return xxhash.Sum64(series) }

// Reset empties l for another request, keeping its memory.
func (l *Lines) Reset() {
	l.Data = l.Data[:0]
	l.Points, l.Values = 0, 0
	l.Series = l.Series[:0]
	clear(l.Measurements)
	l.Measurements = l.Measurements[:0]
	clear(l.Fields)
	l.Fields = l.Fields[:0]
	clear(l.shapes)
	clear(l.fieldSeen)
	clear(l.mSeen)
}

// shapeKind is the byte a field's kind takes in a shape: its type as
// stored, so an unsigned integer is an integer.
func shapeKind(k lineprotocol.ValueKind) byte {
	if k == lineprotocol.Uint {
		return byte(lineprotocol.Int)
	}
	return byte(k)
}

// newShape reports whether no point before had shape, the measurement
// (then a 0) followed by each field's key, a 0 and its kind byte. A request
// repeats a few shapes, so a point whose shape was seen costs this one map
// look-up; a new one is recorded with addShape.
func (l *Lines) newShape(shape []byte) bool {
	if l.shapes == nil {
		l.shapes = make(map[string]struct{})
		l.fieldSeen = make(map[string]struct{})
	}
	_, seen := l.shapes[string(shape)]
	return !seen
}

// addShape records a new shape, whose measurement is its first m bytes,
// for the point about to be added, which starts on line (0 for JSON): its
// measurement and fields, where they are new.
func (l *Lines) addShape(shape []byte, m, line int) {
	l.shapes[l.intern(shape)] = struct{}{}
	index := l.Points
	measurement := shape[:m]
	l.addMeasurement(measurement, index, line)
	rest := shape[m+1:]
	for len(rest) > 0 {
		k := bytes.IndexByte(rest, 0)
		key, kind := rest[:k], rest[k+1]
		rest = rest[k+2:]
		l.key = append(append(append(append(l.key[:0], measurement...), 0), key...), 0, kind)
		if _, ok := l.fieldSeen[string(l.key)]; ok {
			continue
		}
		l.fieldSeen[l.intern(l.key)] = struct{}{}
		l.Fields = append(l.Fields, FieldType{Measurement: l.intern(measurement), Field: l.intern(key),
			Kind: lineprotocol.ValueKind(kind), Point: index, Line: line})
	}
}

// addPoint records a point written to Data, of fields fields and series
// hash series, after its shape.
func (l *Lines) addPoint(fields int, series uint64) {
	l.Series = append(l.Series, series)
	l.Values += fields
	l.Points++
}

// addMeasurement records m unless it was seen: by comparison while there
// are few, through a set once there are many.
func (l *Lines) addMeasurement(m []byte, index, line int) {
	if len(l.Measurements) < manyKeys {
		for _, p := range l.Measurements {
			if p.Measurement == string(m) {
				return
			}
		}
	} else {
		if l.mSeen == nil {
			l.mSeen = make(map[string]struct{})
		}
		if len(l.mSeen) == 0 {
			for _, p := range l.Measurements {
				l.mSeen[p.Measurement] = struct{}{}
			}
		}
		if _, ok := l.mSeen[string(m)]; ok {
			return
		}
		l.mSeen[l.intern(m)] = struct{}{}
	}
	l.Measurements = append(l.Measurements, Place{Measurement: l.intern(m), Point: index, Line: line})
}

// EncodeLines is Encode into l, with what the checks read of the points:
// it appends the points to l.Data as line protocol with tag hostTag set to
// host and now as the time of points without one, and records each. It
// returns ErrInvalid for a point the encoder refuses, as Encode does.
func EncodeLines(l *Lines, pts []Point, hostTag, host string, now time.Time) error {
	var e encoding
	return e.lines(l, pts, hostTag, host, now)
}

// encoding is the memory EncodeLines works in, which a JSONScanner keeps
// from one body to the next: the encoder, a point's sorted tags and its
// shape.
type encoding struct {
	enc   lineprotocol.Encoder
	tags  []Tag
	shape []byte
}

// lines is EncodeLines in e's memory.
func (e *encoding) lines(l *Lines, pts []Point, hostTag, host string, now time.Time) error {
	enc := &e.enc
	enc.SetBuffer(l.Data)
	enc.SetPrecision(lineprotocol.Nanosecond)
	for i := range pts {
		p := &pts[i]
		start := len(enc.Bytes())
		e.tags = encodeSeries(enc, p, hostTag, host, e.tags)
		series := SeriesHash(enc.Bytes()[start:])
		e.shape = append(append(e.shape[:0], p.Measurement...), 0)
		for _, f := range p.Fields {
			enc.AddField(f.Key, f.Value)
			e.shape = append(append(append(e.shape, f.Key...), 0), shapeKind(f.Value.Kind()))
		}
		t := p.Time
		if t.IsZero() {
			t = now
		}
		enc.EndLine(t)
		if err := enc.Err(); err != nil {
			l.Data = enc.Bytes()
			enc.SetBuffer(nil)
			return pointError(i, err)
		}
		if l.newShape(e.shape) {
			l.addShape(e.shape, len(p.Measurement), p.Line)
		}
		l.addPoint(len(p.Fields), series)
	}
	l.Data = enc.Bytes()
	// The encoder must not write into l.Data again.
	enc.SetBuffer(nil)
	clear(e.tags)
	return nil
}
