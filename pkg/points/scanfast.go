package points

import (
	"bytes"
	"encoding/binary"
	"math"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// This file is the Scanner's fast path: a line as agents nearly always
// send it (plain ASCII names, no escapes, values already in the form the
// spool keeps) is split and written here in one walk over its bytes, which
// costs a fraction of what driving the Decoder token by token and then
// checking each token does. The fast path only ever accepts: a line it
// does not understand, or one a check would refuse, is left untouched for
// the Decoder-based path (line), which decides it exactly as before, so
// refusals and their messages cannot differ. FuzzScannerFastPath compares
// the two paths on random bodies.

// plainByte marks the bytes a fast line's names and tag values may hold:
// printable ASCII that no part of a line escapes or treats specially, so
// that the bytes in the body are the token the Decoder would return and
// the bytes Encode would write.
var plainByte = func() (t [256]bool) {
	for c := 0x21; c < 0x7f; c++ {
		t[c] = true
	}
	for _, c := range []byte(",= \\\"") {
		t[c] = false
	}
	return t
}()

// plainRun returns the end of the run of plain bytes in b from i.
func plainRun(b []byte, i int) int {
	for i < len(b) && plainByte[b[i]] {
		i++
	}
	return i
}

// fastLine writes line, a body's line from its first byte to before its
// newline, as the Decoder-based path would write it, and reports whether
// it did; it returns false, having written nothing, for a line the fast
// path does not vouch for. Its error is opts.Grow's, as charge returns it.
func (s *Scanner) fastLine(line []byte) (bool, error) {
	if s.opts.MaxPoints > 0 && s.lines.Points >= s.opts.MaxPoints || len(line) == 0 || line[0] == '#' {
		return false, nil // too many points or no entry: the Decoder says which
	}
	if line[len(line)-1] == '\r' {
		line = line[:len(line)-1] // the Decoder ends a line at "\r\n" too, or at a last '\r'
	}
	if s.useKnown {
		if sp := bytes.IndexByte(line, ' '); sp > 0 {
			if e := s.lookupKnown(line, sp); e != nil {
				if ok, err := s.knownLine(line, sp, e); ok || err != nil {
					return ok, err
				}
			}
		}
	}
	i := plainRun(line, 0)
	m := line[:i]
	sp, ok := s.fastTags(line, i, len(m))
	if !ok || len(m) == 0 {
		return false, nil
	}
	i = skipSpaces(line, sp)
	out := s.lines.Data
	start := len(out)
	out = append(out, m...)
	if out, ok = s.appendFastTags(out); !ok {
		return s.undo(out, start), nil
	}
	seriesEnd := len(out)
	series := SeriesHash(out[start:])
	s.shape = append(append(s.shape[:0], m...), 0)
	out, i, ok = s.fastFields(out, line, i)
	if !ok {
		return s.undo(out, start), nil
	}
	if out, ok = s.fastTime(append(out, ' '), line, i); !ok {
		return s.undo(out, start), nil
	}
	newShape := s.lines.newShape(s.shape)
	if newShape && !s.shapeOK(m) {
		return s.undo(out, start), nil
	}
	s.lines.Data = append(out, '\n')
	if newShape {
		s.lines.addShape(s.shape, len(m), s.lineOf(m))
	}
	if s.useKnown {
		s.remember(line, sp, start, seriesEnd, series)
	}
	s.lines.addPoint(len(s.fieldKeys), series)
	err := s.charge(int64(len(s.lines.Data)-start) + 8)
	yieldEvery(s.lines.Points)
	return true, err
}

// skipSpaces returns the offset of the first byte of line from i that is
// not a space.
func skipSpaces(line []byte, i int) int {
	for i < len(line) && line[i] == ' ' {
		i++
	}
	return i
}

// undo drops what fastLine wrote of a line it gives up, keeping the
// buffer, which may have grown; it returns false for fastLine to return.
func (s *Scanner) undo(out []byte, start int) bool {
	s.lines.Data = out[:start]
	return false
}

// fastTag is a tag of a fast line: its key, and the tag as the line has
// it, ",key=value", which is how the spool's line has it too, so that it
// is written with one copy.
type fastTag struct{ key, tok []byte }

// fastTags reads the tags of line, which starts with a measurement of
// mLen bytes ending at i, into s.plainTags, checking each as readTags does,
// and returns the offset of the space after them, the line's first. A
// host tag the client sent is checked and counted, but left out: the
// gateway's takes its place.
func (s *Scanner) fastTags(line []byte, i, mLen int) (int, bool) {
	s.plainTags = s.plainTags[:0]
	keyLen, n, hostSent := mLen, 0, false
	for i < len(line) && line[i] == ',' {
		k0 := i + 1
		i = plainRun(line, k0)
		if i == k0 || i >= len(line) || line[i] != '=' {
			return 0, false
		}
		v0 := i + 1
		i = plainRun(line, v0)
		k, v := line[k0:v0-1], line[v0:i]
		if keyLen += 2 + len(k) + len(v); keyLen > maxSeriesKeyLen {
			return 0, false
		}
		if s.lim.MaxTags > 0 && n >= s.lim.MaxTags ||
			!nameOK(k, s.lim.MaxNameLen, true) || !tagValueOK(v, s.lim.MaxValueLen) {
			return 0, false
		}
		n++
		if string(k) == s.opts.HostTag { // replaced by the gateway's
			if hostSent {
				return 0, false // a repeated tag, which readTags refuses
			}
			hostSent = true
			continue
		}
		s.plainTags = append(s.plainTags, fastTag{k, line[k0-1 : i]})
	}
	if i >= len(line) || line[i] != ' ' {
		return 0, false
	}
	return i, true
}

// appendFastTags writes s.plainTags as appendTags does, sorted by key with
// the gateway's host tag among them. Sorting puts a repeated key next to
// itself, which is how the fast path finds one (fastTags finds a repeated
// host tag): it gives such a line up, and readTags refuses it.
func (s *Scanner) appendFastTags(out []byte) ([]byte, bool) {
	tags := s.plainTags
	for i := 1; i < len(tags); i++ { // few, and mostly sorted already
		for j := i; j > 0 && !keyBefore(tags[j-1].key, tags[j].key); j-- {
			if string(tags[j-1].key) == string(tags[j].key) {
				return out, false
			}
			tags[j-1], tags[j] = tags[j], tags[j-1]
		}
	}
	host := s.opts.HostTag
	hostDone := false
	for _, t := range tags {
		if !hostDone && (t.key[0] > host[0] || t.key[0] == host[0] && string(t.key) > host) {
			out = append(out, s.hostTok...)
			hostDone = true
		}
		out = append(out, t.tok...)
	}
	if !hostDone {
		out = append(out, s.hostTok...)
	}
	return out, true
}

// keyBefore reports whether tag key a sorts before b; both are not empty.
// Most keys differ in their first byte, which spares the call that compares
// them whole.
func keyBefore(a, b []byte) bool {
	if a[0] != b[0] {
		return a[0] < b[0]
	}
	return string(a) < string(b)
}

// fastFields writes the fields of line from offset i, each value as
// appendValue would, collecting their keys in s.fieldKeys and the shape in
// s.shape, and returns the offset past them. Keys are checked later, and
// only for a shape not seen before (shapeOK): the same shape has the same
// keys, already checked. Values are nearly always written as the line has
// them, so the fields are checked first and then copied in one piece, with
// the few values that take another form (s.rewrites) put in its place.
func (s *Scanner) fastFields(out, line []byte, i int) ([]byte, int, bool) {
	s.fieldKeys, s.fieldKinds, s.rewrites = s.fieldKeys[:0], s.fieldKinds[:0], s.rewrites[:0]
	f0 := i
	for {
		k0 := i
		i = plainRun(line, k0)
		if i == k0 || i+1 >= len(line) || line[i] != '=' {
			return out, 0, false
		}
		k := line[k0:i]
		var kind byte
		var ok bool
		if i, kind, ok = s.fastValue(line, i+1); !ok {
			return out, 0, false
		}
		s.fieldKeys, s.fieldKinds = append(s.fieldKeys, k), append(s.fieldKinds, kind)
		s.shape = append(append(append(s.shape, k...), 0), kind)
		if i == len(line) || line[i] == ' ' {
			break
		}
		if line[i] != ',' {
			return out, 0, false
		}
		i++
	}
	return s.copyFields(out, line, f0, i), i, true
}

// copyFields writes a space and line[f0:end], fields whose values
// fastValue checked, with the values it gave another form (s.rewrites) in
// that form.
func (s *Scanner) copyFields(out, line []byte, f0, end int) []byte {
	out = append(out, ' ')
	for _, r := range s.rewrites {
		out = append(append(out, line[f0:r.at]...), r.with...)
		f0 = r.end
	}
	return append(out, line[f0:end]...)
}

// rewrite is a value of a fast line written in another form than the
// line's: line[at:end] becomes with.
type rewrite struct {
	at, end int
	with    string
}

// fastValue checks the field value at line[i:] and returns the offset past
// it and the kind byte the shape records, when it is one the fast path
// knows: a number already in canonical form, a boolean, or a string of
// printable ASCII that needs no escape. A value written in another form
// than the line's (a boolean as "t", an unsigned integer) is added to
// s.rewrites.
func (s *Scanner) fastValue(line []byte, i int) (int, byte, bool) {
	switch c := line[i]; {
	case c == '"':
		j := i + 1
		for j < len(line) && line[j] >= ' ' && line[j] < 0x7f && line[j] != '"' && line[j] != '\\' {
			j++
		}
		if j >= len(line) || line[j] != '"' || j-i-1 > s.lim.MaxValueLen {
			return 0, 0, false
		}
		return j + 1, byte(lineprotocol.String), true
	case c == 't' || c == 'T' || c == 'f' || c == 'F':
		j := i
		for j < len(line) && line[j] != ',' && line[j] != ' ' {
			j++
		}
		var with string
		switch string(line[i:j]) {
		case "true", "false":
			return j, byte(lineprotocol.Bool), true
		case "t", "T", "True", "TRUE":
			with = "true"
		case "f", "F", "False", "FALSE":
			with = "false"
		default:
			return 0, 0, false
		}
		s.rewrites = append(s.rewrites, rewrite{i, j, with})
		return j, byte(lineprotocol.Bool), true
	}
	j, kind, ok := numberEnd(line, i)
	if !ok || j < len(line) && line[j] != ',' && line[j] != ' ' {
		return 0, 0, false
	}
	if line[j-1] == 'u' {
		s.rewrites = append(s.rewrites, rewrite{j - 1, j, "i"}) // stored as an integer
	}
	return j, kind, true
}

// numberEnd reads the number at b[i:] when it is written as Encode writes
// its value: an integer as canonicalInt has it followed by 'i' (or 'u'), or
// a float as canonicalFloat has it. It returns the offset past it and its
// kind as the shape records it.
func numberEnd(b []byte, i int) (int, byte, bool) {
	d := i
	if d < len(b) && b[d] == '-' {
		d++
	}
	j := digitsEnd(b, d)
	if j < len(b) && (b[j] == 'i' || b[j] == 'u') {
		return j + 1, byte(lineprotocol.Int), intForm(d > i, b[d:j], b[j] == 'u')
	}
	j, ok := fractionEnd(b, d, j)
	return j, byte(lineprotocol.Float), ok
}

// fastTime writes the timestamp that ends line from offset i, after the
// spaces before it, as appendTime does: none, or 1 to 19 digits with an
// optional minus sign, then nothing but spaces. It reads the number as it
// finds its end; anything else is left to appendTime.
func (s *Scanner) fastTime(out, line []byte, i int) ([]byte, bool) {
	if i = skipSpaces(line, i); i == len(line) {
		out, err := s.appendTime(out, nil)
		return out, err == nil
	}
	t0 := i
	if line[i] == '-' {
		i++
	}
	d0 := i
	var u uint64 // 19 digits fit
	// Eight digits at a time while eight more fit in 19: nanoseconds since
	// 2001 are 19 digits.
	for i+8 <= len(line) && i-d0+8 <= 19 {
		v, ok := eightDigits(line[i:])
		if !ok {
			break
		}
		u = u*1e8 + v
		i += 8
	}
	for i < len(line) && line[i] >= '0' && line[i] <= '9' && i-d0 < 19 {
		u = u*10 + uint64(line[i]-'0')
		i++
	}
	ts := line[t0:i]
	if i == d0 || u > math.MaxInt64 || skipSpaces(line, i) < len(line) {
		return out, false
	}
	n := int64(u)
	if d0 > t0 {
		n = -n
	}
	out, err := s.appendTimeOf(out, ts, n, true)
	return out, err == nil
}

// eightDigits reads b[:8] as a number of eight decimal digits, all eight
// at once (SWAR: each step works on every byte of a word); ok is false
// when one of them is not a digit.
func eightDigits(b []byte) (n uint64, ok bool) {
	x := binary.LittleEndian.Uint64(b) // the first digit in the lowest byte
	const threes, sixes, highNibbles = 0x3030303030303030, 0x0606060606060606, 0xf0f0f0f0f0f0f0f0
	if x&highNibbles != threes || (x+sixes)&highNibbles != threes { // '0' to '9' are 0x30 to 0x39
		return 0, false
	}
	x -= threes
	x = x*10 + x>>8 // bytes 0, 2, 4, 6: the pairs of digits, 0 to 99
	x = ((x&0x000000ff000000ff)*(100+1000000<<32) + (x>>16&0x000000ff000000ff)*(1+10000<<32)) >> 32
	return x, true
}

// shapeOK checks what a new shape's line holds beyond its tags and values,
// as line and appendFields do: the measurement m, and each field key in
// s.fieldKeys, their number and that none repeats.
func (s *Scanner) shapeOK(m []byte) bool {
	keys := s.fieldKeys
	if !nameOK(m, s.lim.MaxNameLen, false) || s.lim.MaxFields > 0 && len(keys) > s.lim.MaxFields {
		return false
	}
	for j, k := range keys {
		if string(k) == s.opts.HostTag || !nameOK(k, s.lim.MaxNameLen, true) || seenBytes(&s.keySet, keys[:j], k) {
			return false
		}
	}
	return true
}
