package points

import (
	"bytes"
	"unsafe"
)

// This file lets the fast path skip what an earlier line of the same body
// settled. An agent's batch repeats its series: every interval it gathers
// writes the same measurements with the same tags and the same fields, so
// a 5000-line flush from one host holds a few hundred series at most. The
// first line of a series goes through fastLine as any other and, once
// accepted, is remembered by its series as the body has it (measurement
// and tags, up to the first space) with what that line made of it: the
// series as written, its hash, and its field keys and kinds. A later line
// whose first space ends the same bytes has the same series (those bytes
// hold no escape, or fastLine would not have taken them), so its series is
// copied as written, not read, sorted and hashed again; and when its
// fields have the same keys in the same order with values of the same
// kinds, its shape is one the summary holds already, checked when it was
// new. Its values and timestamp are checked as any line's are. A line
// that differs in any of this goes the whole way through fastLine, which
// then remembers its fields for the next one.

// maxKnown bounds the series a body's lines are remembered by; past it, a
// new series is read as if it were the first of its kind.
const maxKnown = 1024

// knownSeries is what an accepted line made of its series and fields.
type knownSeries struct {
	start, end int    // the series as written, s.lines.Data[start:end]
	hash       uint64 // SeriesHash of it
	fields     []knownField
}

// knownField is a field of a known series' last line: its key, in the body,
// and its kind as the shape records it.
type knownField struct {
	key  []byte
	kind byte
}

// startKnown readies the remembered series for body: none yet, and none at
// all for a body of one line, which could not use them.
func (s *Scanner) startKnown(body []byte) {
	if len(s.known) > 0 {
		clear(s.known) // their keys are in the last body's bytes
	}
	s.knownList = s.knownList[:0]
	s.useKnown = len(body) > 1 && bytes.IndexByte(body[:len(body)-1], '\n') >= 0
}

// lookupKnown returns the remembered series of line, whose series as the
// body has it ends at its first space, sp.
func (s *Scanner) lookupKnown(line []byte, sp int) *knownSeries {
	i, ok := s.known[unsafe.String(&line[0], sp)]
	if !ok {
		return nil
	}
	return &s.knownList[i]
}

// remember records what fastLine made of line, just accepted: its series
// as the body has it, line[:sp]; the series as written, at Data[start:end],
// and its hash; and its fields, in s.fieldKeys and s.fieldKinds.
func (s *Scanner) remember(line []byte, sp, start, end int, hash uint64) {
	k := unsafe.String(&line[0], sp) // in the body, which outlives the scan
	var e *knownSeries
	if i, ok := s.known[k]; ok {
		e = &s.knownList[i] // another shape of a known series: the last one is kept
	} else {
		if len(s.knownList) >= maxKnown {
			return
		}
		if s.known == nil {
			s.known = make(map[string]int32)
		}
		s.known[k] = int32(len(s.knownList))
		if n := len(s.knownList); n < cap(s.knownList) {
			s.knownList = s.knownList[:n+1] // the entry's fields keep their memory
		} else {
			s.knownList = append(s.knownList, knownSeries{})
		}
		e = &s.knownList[len(s.knownList)-1]
	}
	e.start, e.end, e.hash = start, end, hash
	e.fields = e.fields[:0]
	for j, key := range s.fieldKeys {
		e.fields = append(e.fields, knownField{key, s.fieldKinds[j]})
	}
}

// knownLine writes line, whose series as the body has it, line[:sp], is e's,
// as fastLine would, and reports whether it did: it returns false, having
// written nothing, unless the line's fields have e's keys in e's order with
// values of e's kinds, each one the fast path takes, and a time it takes.
func (s *Scanner) knownLine(line []byte, sp int, e *knownSeries) (bool, error) {
	out := s.lines.Data
	start := len(out)
	out = append(out, out[e.start:e.end]...)
	out, i, ok := s.knownFields(out, line, skipSpaces(line, sp), e.fields)
	if !ok {
		return s.undo(out, start), nil
	}
	if out, ok = s.fastTime(append(out, ' '), line, i); !ok {
		return s.undo(out, start), nil
	}
	s.lines.Data = append(out, '\n')
	s.lines.addPoint(len(e.fields), e.hash)
	err := s.charge(int64(len(s.lines.Data)-start) + 8)
	yieldEvery(s.lines.Points)
	return true, err
}

// knownFields is fastFields for a line whose fields must have the keys
// and kinds of fields, in that order: it compares each key in place
// rather than reading it, and checks each value as fastFields does.
func (s *Scanner) knownFields(out, line []byte, i int, fields []knownField) ([]byte, int, bool) {
	s.rewrites = s.rewrites[:0]
	f0 := i
	for j, f := range fields {
		v := i + len(f.key) + 1
		if v >= len(line) || line[v-1] != '=' || string(line[i:v-1]) != string(f.key) {
			return out, 0, false
		}
		var kind byte
		var ok bool
		if i, kind, ok = s.fastValue(line, v); !ok || kind != f.kind {
			return out, 0, false
		}
		switch {
		case j+1 < len(fields):
			if i == len(line) || line[i] != ',' {
				return out, 0, false
			}
			i++
		case i < len(line) && line[i] != ' ':
			return out, 0, false // more fields than the known shape
		}
	}
	return s.copyFields(out, line, f0, i), i, true
}
