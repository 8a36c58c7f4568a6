package points

import "github.com/influxdata/line-protocol/v2/lineprotocol"

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
	i := plainRun(line, 0)
	m := line[:i]
	i, ok := s.fastTags(line, i, len(m))
	if !ok || len(m) == 0 {
		return false, nil
	}
	out := s.lines.Data
	start := len(out)
	out = append(out, m...)
	if out, ok = s.appendFastTags(out); !ok {
		return s.undo(out, start), nil
	}
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
	s.lines.addPoint(len(s.fieldKeys), series)
	err := s.charge(int64(len(s.lines.Data)-start) + 8)
	yieldEvery(s.lines.Points)
	return true, err
}

// undo drops what fastLine wrote of a line it gives up, keeping the
// buffer, which may have grown; it returns false for fastLine to return.
func (s *Scanner) undo(out []byte, start int) bool {
	s.lines.Data = out[:start]
	return false
}

// fastTags reads the tags of line, which starts with a measurement of
// mLen bytes ending at i, into s.tags, checking each as readTags does,
// and returns the offset of the first field.
func (s *Scanner) fastTags(line []byte, i, mLen int) (int, bool) {
	s.tags = s.tags[:0]
	keyLen := mLen
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
		if s.lim.MaxTags > 0 && len(s.tags) >= s.lim.MaxTags ||
			!nameOK(k, s.lim.MaxNameLen, true) || !tagValueOK(v, s.lim.MaxValueLen) {
			return 0, false
		}
		s.tags = append(s.tags, tagTok{k, v})
	}
	if i >= len(line) || line[i] != ' ' {
		return 0, false
	}
	for i < len(line) && line[i] == ' ' {
		i++
	}
	return i, true
}

// appendFastTags writes s.tags as appendTags does, sorted by key with the
// gateway's host tag among them in place of the client's. Sorting puts a
// repeated key next to itself, which is how the fast path finds one: it
// gives such a line up, and readTags refuses it.
func (s *Scanner) appendFastTags(out []byte) ([]byte, bool) {
	tags := s.tags
	for i := 1; i < len(tags); i++ { // few, and mostly sorted already
		for j := i; j > 0 && string(tags[j-1].key) >= string(tags[j].key); j-- {
			if string(tags[j-1].key) == string(tags[j].key) {
				return out, false
			}
			tags[j-1], tags[j] = tags[j], tags[j-1]
		}
	}
	hostTag := s.opts.HostTag
	hostDone := false
	for _, t := range tags {
		if !hostDone && string(t.key) >= hostTag {
			out = append(out, s.hostTok...)
			hostDone = true
		}
		if string(t.key) != hostTag {
			out = append(append(append(append(out, ','), t.key...), '='), t.value...)
		}
	}
	if !hostDone {
		out = append(out, s.hostTok...)
	}
	return out, true
}

// fastFields writes the fields of line from offset i, each value as
// appendValue would, collecting their keys in s.fieldKeys and the shape in
// s.shape, and returns the offset past them. Keys are checked later, and
// only for a shape not seen before (shapeOK): the same shape has the same
// keys, already checked.
func (s *Scanner) fastFields(out, line []byte, i int) ([]byte, int, bool) {
	s.fieldKeys = s.fieldKeys[:0]
	sep := byte(' ')
	for {
		k0 := i
		i = plainRun(line, k0)
		if i == k0 || i+1 >= len(line) || line[i] != '=' {
			return out, 0, false
		}
		k := line[k0:i]
		out = append(append(append(out, sep), k...), '=')
		var kind byte
		var ok bool
		if out, i, kind, ok = s.fastValue(out, line, i+1); !ok {
			return out, 0, false
		}
		s.fieldKeys = append(s.fieldKeys, k)
		s.shape = append(append(append(s.shape, k...), 0), kind)
		if i == len(line) || line[i] == ' ' {
			return out, i, true
		}
		if line[i] != ',' {
			return out, 0, false
		}
		i++
		sep = ','
	}
}

// fastValue writes the field value at line[i:] when it is one the fast
// path knows: a number already in canonical form, a boolean, or a string
// of printable ASCII that needs no escape. It returns the offset past the
// value and the kind byte the shape records.
func (s *Scanner) fastValue(out, line []byte, i int) ([]byte, int, byte, bool) {
	if line[i] == '"' {
		j := i + 1
		for j < len(line) && line[j] >= ' ' && line[j] < 0x7f && line[j] != '"' && line[j] != '\\' {
			j++
		}
		if j >= len(line) || line[j] != '"' || j-i-1 > s.lim.MaxValueLen {
			return out, 0, 0, false
		}
		return append(out, line[i:j+1]...), j + 1, byte(lineprotocol.String), true
	}
	j := i
	for j < len(line) && line[j] != ',' && line[j] != ' ' {
		j++
	}
	raw := line[i:j]
	if len(raw) == 0 {
		return out, 0, 0, false
	}
	switch c := raw[0]; {
	case c == 't' || c == 'T' || c == 'f' || c == 'F':
		switch string(raw) {
		case "t", "T", "true", "True", "TRUE":
			return append(out, "true"...), j, byte(lineprotocol.Bool), true
		case "f", "F", "false", "False", "FALSE":
			return append(out, "false"...), j, byte(lineprotocol.Bool), true
		}
	case raw[len(raw)-1] == 'i':
		if canonicalInt(raw[:len(raw)-1], false) {
			return append(out, raw...), j, byte(lineprotocol.Int), true
		}
	case raw[len(raw)-1] == 'u':
		if canonicalInt(raw[:len(raw)-1], true) {
			return append(append(out, raw[:len(raw)-1]...), 'i'), j, byte(lineprotocol.Int), true
		}
	case canonicalFloat(raw):
		return append(out, raw...), j, byte(lineprotocol.Float), true
	}
	return out, 0, 0, false
}

// fastTime writes the timestamp that ends line from offset i, after the
// spaces before it, as appendTime does: none, or digits with an optional
// minus sign, then nothing but spaces.
func (s *Scanner) fastTime(out, line []byte, i int) ([]byte, bool) {
	for i < len(line) && line[i] == ' ' {
		i++
	}
	var ts []byte
	if i < len(line) {
		t0 := i
		for i < len(line) && (line[i] >= '0' && line[i] <= '9' || line[i] == '-') {
			i++
		}
		ts = line[t0:i]
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if len(ts) == 0 || i < len(line) {
			return out, false
		}
	}
	out, err := s.appendTime(out, ts)
	return out, err == nil
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
