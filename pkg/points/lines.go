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

	// shapeList holds the shapes (a line's measurement, field keys and
	// types) seen, in the order seen; shapes holds them too once there are
	// many. A request of a few shapes, a one-point request above all, is
	// checked by comparison and costs no map work: with three maps to
	// clear and fill, that was half of a one-line scan.
	shapeList []string
	shapes    map[string]struct{}
	fieldSeen map[string]struct{} // Fields, by measurement, field and type, once there are many
	mSeen     map[string]string   // Measurements, once there are many
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
	clear(l.shapeList)
	l.shapeList = l.shapeList[:0]
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
// repeats a few shapes, so a point whose shape was seen costs this one
// look-up; a new one is recorded with addShape.
func (l *Lines) newShape(shape []byte) bool {
	if len(l.shapeList) < manyKeys {
		for _, s := range l.shapeList {
			if s == string(shape) {
				return false
			}
		}
		return true
	}
	_, seen := l.shapes[string(shape)]
	return !seen
}

// addShape records a new shape, whose measurement is its first m bytes,
// for the point about to be added, which starts on line (0 for JSON): its
// measurement and fields, where they are new.
func (l *Lines) addShape(shape []byte, m, line int) {
	l.shapeList = addSeen(&l.shapes, l.shapeList, l.intern(shape))
	index := l.Points
	measurement := l.addMeasurement(shape[:m], index, line)
	rest := shape[m+1:]
	for len(rest) > 0 {
		k := bytes.IndexByte(rest, 0)
		key, kind := rest[:k], rest[k+1]
		rest = rest[k+2:]
		if l.fieldKnown(measurement, key, kind) {
			continue
		}
		l.Fields = append(l.Fields, FieldType{Measurement: measurement, Field: l.intern(key),
			Kind: lineprotocol.ValueKind(kind), Point: index, Line: line})
	}
}

// fieldKey returns the key of a field in fieldSeen, in l.key.
func (l *Lines) fieldKey(measurement string, key []byte, kind byte) []byte {
	l.key = append(append(append(append(l.key[:0], measurement...), 0), key...), 0, kind)
	return l.key
}

// addSeen appends s, not in list, to list, and to set once list holds
// manyKeys or more, filling set from list when it reaches manyKeys.
func addSeen(set *map[string]struct{}, list []string, s string) []string {
	list = append(list, s)
	switch {
	case len(list) < manyKeys:
	case len(list) == manyKeys:
		if *set == nil {
			*set = make(map[string]struct{})
		}
		for _, s := range list {
			(*set)[s] = struct{}{}
		}
	default:
		(*set)[s] = struct{}{}
	}
	return list
}

// fieldKnown reports whether l.Fields has field key of kind in
// measurement, and records it as known when it has not, in fieldSeen
// once there are many: by comparison while there are few.
func (l *Lines) fieldKnown(measurement string, key []byte, kind byte) bool {
	n := len(l.Fields)
	if n < manyKeys {
		for _, f := range l.Fields {
			if f.Field == string(key) && f.Kind == lineprotocol.ValueKind(kind) && f.Measurement == measurement {
				return true
			}
		}
		return false
	}
	if n == manyKeys && len(l.fieldSeen) == 0 {
		if l.fieldSeen == nil {
			l.fieldSeen = make(map[string]struct{})
		}
		for _, f := range l.Fields {
			l.fieldSeen[l.intern(l.fieldKey(f.Measurement, []byte(f.Field), byte(f.Kind)))] = struct{}{}
		}
	}
	if _, ok := l.fieldSeen[string(l.fieldKey(measurement, key, kind))]; ok {
		return true
	}
	l.fieldSeen[l.intern(l.key)] = struct{}{}
	return false
}

// addPoint records a point written to Data, of fields fields and series
// hash series, after its shape.
func (l *Lines) addPoint(fields int, series uint64) {
	l.Series = append(l.Series, series)
	l.Values += fields
	l.Points++
}

// addMeasurement records m unless it was seen: by comparison while there
// are few, through a set once there are many. It returns m as a string.
func (l *Lines) addMeasurement(m []byte, index, line int) string {
	if len(l.Measurements) < manyKeys {
		for _, p := range l.Measurements {
			if p.Measurement == string(m) {
				return p.Measurement
			}
		}
	} else {
		if l.mSeen == nil {
			l.mSeen = make(map[string]string)
		}
		if len(l.mSeen) == 0 {
			for _, p := range l.Measurements {
				l.mSeen[p.Measurement] = p.Measurement
			}
		}
		if s, ok := l.mSeen[string(m)]; ok {
			return s
		}
	}
	s := l.intern(m)
	if l.mSeen != nil && len(l.Measurements) >= manyKeys {
		l.mSeen[s] = s
	}
	l.Measurements = append(l.Measurements, Place{Measurement: s, Point: index, Line: line})
	return s
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
