package points

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// Scanner turns a line-protocol body into the line protocol the spool
// keeps, in one pass over each line and without building a value per
// point: github.com/influxdata/line-protocol/v2's Decoder hands out each
// token and checks its syntax, the Scanner checks it against the same rules
// as ParseLineProtocol, and writes it out as Encode would write the point
// ParseLineProtocol makes of it: the host tag replaced among the sorted
// tags, the timestamp in nanoseconds, values in their canonical form
// (copied as they are when they already are, which is nearly always). The
// same pass records what the isolation checks read (Lines).
//
// It accepts exactly what ParseLineProtocol accepts, and when it refuses a
// body, it returns ParseLineProtocol's error for it, so the message names
// the line and the problem in the same words; FuzzScanner checks both. A
// Scanner is reused from request to request, keeping its buffers; it is
// not safe for concurrent use.
type Scanner struct {
	lines Lines
	body  []byte

	opts      Options
	lim       Limits
	precision time.Duration
	host      string
	now       time.Time

	// The parse's own memory beyond the body, as batch counts it.
	used, granted int64

	// The current line: its measurement, then each field's key, a 0 and
	// its kind (the shape Lines records); its tags, copied, with spans into
	// tagBuf; and where its field keys are in shape.
	shape   []byte
	tagBuf  []byte
	tags    []tagSpan
	tagKeys []span
	keys    []span
	keySet  map[string]struct{}

	counter lineCounter
}

type span struct{ start, end int }

type tagSpan struct{ key, value span }

// errRefused is what a scan fails with inside; Scan replaces it with
// ParseLineProtocol's error for the body.
var errRefused = errors.New("refused")

// Scan reads r, a line-protocol body of size bytes (-1 when unknown), and
// returns its points in Lines, valid until the next Scan: timestamps are
// integers in units of precision, as ParseLineProtocol takes them; tag
// opts.HostTag is set to host on every point; a line without a time gets
// now truncated to precision. opts.Grow is asked for the memory of the
// line protocol written past GrowStep bytes, and its error is returned as
// it is. It returns ParseLineProtocol's errors for the same body: a
// *LineError naming the first bad line, or an error wrapping ErrEmpty,
// ErrTooManyPoints or ErrInvalid (reading r failed).
func (s *Scanner) Scan(r io.Reader, size int64, precision time.Duration, opts Options, host string, now time.Time) (*Lines, error) {
	if precision <= 0 {
		return nil, fmt.Errorf("%w: precision %v is not positive", ErrInvalid, precision)
	}
	if opts.HostTag == "" {
		return nil, fmt.Errorf("%w: no host tag to set", ErrInvalid)
	}
	s.lines.Reset()
	s.opts, s.lim, s.precision, s.host, s.now = opts, opts.Limits.withDefaults(), precision, host, now
	s.used, s.granted = 0, GrowStep
	body, err := s.read(r, size)
	if err != nil {
		// What a client sent before the body failed may hold a bad line
		// already, which ParseLineProtocol would have named first.
		if i := bytes.LastIndexByte(body, '\n'); i >= 0 {
			if _, lerr := ParseLineProtocol(bytes.NewReader(body[:i+1]), precision, s.explainOptions(), now); lerr != nil && !errors.Is(lerr, ErrEmpty) {
				return nil, lerr
			}
		}
		return nil, readError(err)
	}
	if err := s.scan(body); err != nil {
		if errors.Is(err, errRefused) {
			return nil, s.explain(body, err)
		}
		return nil, err
	}
	return &s.lines, nil
}

// read reads r into the scanner's body buffer, sized for size bytes when
// it is known.
func (s *Scanner) read(r io.Reader, size int64) ([]byte, error) {
	buf := bytes.NewBuffer(s.body[:0])
	if size > 0 {
		buf.Grow(int(size) + bytes.MinRead) // ReadFrom needs MinRead spare to see the end
	}
	_, err := buf.ReadFrom(r)
	s.body = buf.Bytes()
	return s.body, err
}

// explainOptions are the options ParseLineProtocol names a refusal with:
// the scanner's, without asking for memory, which was granted already.
func (s *Scanner) explainOptions() Options {
	o := s.opts
	o.Grow = nil
	return o
}

// explain returns ParseLineProtocol's error for body, which the scan
// refused with err. Should the two ever disagree, the body is refused all
// the same: nothing the scanner cannot vouch for reaches the spool.
func (s *Scanner) explain(body []byte, err error) error {
	if _, perr := ParseLineProtocol(bytes.NewReader(body), s.precision, s.explainOptions(), s.now); perr != nil {
		return perr
	}
	return fmt.Errorf("%w: point %d: %w", ErrInvalid, s.lines.Points, err)
}

// scan writes body's points into s.lines.
func (s *Scanner) scan(body []byte) error {
	// The decoder reads a body of many lines one line at a time, so the
	// line of each entry is known, as ParseLineProtocol knows it; a body of
	// one line is decoded in place, without the reader's buffer.
	var dec *lineprotocol.Decoder
	var lc *lineCounter
	if i := bytes.IndexByte(body, '\n'); i < 0 || i == len(body)-1 {
		dec = lineprotocol.NewDecoderWithBytes(body)
	} else {
		s.counter = lineCounter{b: body, line: 1}
		lc = &s.counter
		dec = lineprotocol.NewDecoder(lc)
	}
	// Timestamps, the host tag and canonical values make the output a
	// little longer than the input, as a rule.
	s.lines.Data = slices.Grow(s.lines.Data, len(body)+len(body)/4)
	for dec.Next() {
		if s.opts.MaxPoints > 0 && s.lines.Points >= s.opts.MaxPoints {
			return fmt.Errorf("%w: a batch may hold at most %d points", ErrTooManyPoints, s.opts.MaxPoints)
		}
		line := 1
		if lc != nil {
			line = lc.line
		}
		before := len(s.lines.Data)
		if err := s.line(dec, line); err != nil {
			return err
		}
		if err := s.charge(int64(len(s.lines.Data)-before) + 8); err != nil {
			return err
		}
		yieldEvery(s.lines.Points)
	}
	if s.lines.Points == 0 {
		return fmt.Errorf("%w: the body holds no lines of line protocol", ErrEmpty)
	}
	return nil
}

// lineCounter hands out a body's bytes at most one line per Read, and
// counts the lines, as lineReader does for a reader.
type lineCounter struct {
	b     []byte
	line  int  // the line of the last byte handed out
	atEOL bool // the last byte handed out ended a line
}

// Read hands out the next bytes of the body, never past the next newline.
func (lc *lineCounter) Read(p []byte) (int, error) {
	if len(lc.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if lc.atEOL {
		lc.line++
		lc.atEOL = false
	}
	chunk := lc.b[:min(len(p), len(lc.b))]
	if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
		chunk = chunk[:i+1]
		lc.atEOL = true
	}
	n := copy(p, chunk)
	lc.b = lc.b[n:]
	return n, nil
}

// charge counts n more bytes of the parse's memory and asks opts.Grow for
// room past what it granted, as batch.charge does.
func (s *Scanner) charge(n int64) error {
	s.used += n
	if s.used <= s.granted || s.opts.Grow == nil {
		return nil
	}
	step := max(s.used-s.granted, s.granted)
	if err := s.opts.Grow(step); err != nil {
		return err
	}
	s.granted += step
	return nil
}

// line writes the entry at the decoder's position, or refuses it.
func (s *Scanner) line(dec *lineprotocol.Decoder, line int) error {
	m, err := dec.Measurement()
	if err != nil || !nameOK(m, s.lim.MaxNameLen, false) {
		return errRefused
	}
	out := s.lines.Data
	start := len(out)
	out = appendEscaped(out, m, &measurementEscapes)
	s.shape = append(append(s.shape[:0], m...), 0)
	if err := s.readTags(dec, len(m)); err != nil {
		return err
	}
	out = s.appendTags(out)
	series := SeriesHash(out[start:])
	out, n, err := s.appendFields(dec, out)
	if err != nil {
		return err
	}
	ts, err := dec.TimeBytes()
	if err != nil {
		return errRefused
	}
	t, err := timestamp(ts, s.precision, s.now)
	if err != nil || s.lim.checkTime(t, s.now) != nil {
		return errRefused
	}
	out = append(out, ' ')
	out = strconv.AppendInt(out, t.UnixNano(), 10)
	s.lines.Data = append(out, '\n')
	s.lines.addPoint(s.shape, len(m), n, series, line)
	return nil
}

// readTags copies the entry's tags into s.tags, checking each as
// batch.addTag does; mLen is the measurement's length.
func (s *Scanner) readTags(dec *lineprotocol.Decoder, mLen int) error {
	s.tags, s.tagKeys, s.tagBuf = s.tags[:0], s.tagKeys[:0], s.tagBuf[:0]
	keyLen := mLen
	for {
		k, v, err := dec.NextTag()
		if err != nil {
			return errRefused
		}
		if k == nil {
			return nil
		}
		if keyLen += 2 + len(k) + len(v); keyLen > maxSeriesKeyLen {
			return errRefused
		}
		if s.lim.MaxTags > 0 && len(s.tags) >= s.lim.MaxTags {
			return errRefused
		}
		if !nameOK(k, s.lim.MaxNameLen, true) || !tagValueOK(v, s.lim.MaxValueLen) {
			return errRefused
		}
		if seenSpan(&s.keySet, s.tagKeys, s.tagBuf, k) {
			return errRefused
		}
		var t tagSpan
		t.key.start = len(s.tagBuf)
		s.tagBuf = append(s.tagBuf, k...)
		t.key.end = len(s.tagBuf)
		s.tagBuf = append(s.tagBuf, v...)
		t.value = span{t.key.end, len(s.tagBuf)}
		s.tags = append(s.tags, t)
		s.tagKeys = append(s.tagKeys, t.key)
	}
}

// appendTags writes the tags, sorted by key, without the client's host tag
// and with the gateway's among them, as Encode does.
func (s *Scanner) appendTags(out []byte) []byte {
	key := func(t tagSpan) []byte { return s.tagBuf[t.key.start:t.key.end] }
	if !slices.IsSortedFunc(s.tags, func(a, b tagSpan) int { return bytes.Compare(key(a), key(b)) }) {
		slices.SortFunc(s.tags, func(a, b tagSpan) int { return bytes.Compare(key(a), key(b)) })
	}
	hostTag := s.opts.HostTag
	hostDone := false
	for _, t := range s.tags {
		k := key(t)
		if !hostDone && string(k) >= hostTag {
			out = appendTag(out, hostTag, s.host)
			hostDone = true
		}
		if string(k) != hostTag {
			out = appendTag(out, k, s.tagBuf[t.value.start:t.value.end])
		}
	}
	if !hostDone {
		out = appendTag(out, hostTag, s.host)
	}
	return out
}

func appendTag[T string | []byte](out []byte, k, v T) []byte {
	out = append(out, ',')
	out = appendEscaped(out, k, &tagKeyEscapes)
	out = append(out, '=')
	return appendEscaped(out, v, &tagValueEscapes)
}

// appendFields writes the entry's fields, checking each as batch.fieldKey
// and ownValue do, and returns how many it wrote.
func (s *Scanner) appendFields(dec *lineprotocol.Decoder, out []byte) ([]byte, int, error) {
	s.keys = s.keys[:0]
	for {
		k, kind, raw, err := dec.NextFieldBytes()
		if err != nil {
			return out, 0, errRefused
		}
		if k == nil {
			break
		}
		n := len(s.keys)
		if s.lim.MaxFields > 0 && n >= s.lim.MaxFields || s.opts.HostTag != "" && string(k) == s.opts.HostTag ||
			!nameOK(k, s.lim.MaxNameLen, true) || seenSpan(&s.keySet, s.keys, s.shape, k) {
			return out, 0, errRefused
		}
		if n == 0 {
			out = append(out, ' ')
		} else {
			out = append(out, ',')
		}
		out = appendEscaped(out, k, &fieldKeyEscapes)
		out = append(out, '=')
		if out, err = appendValue(out, kind, raw, s.lim.MaxValueLen); err != nil {
			return out, 0, err
		}
		s.keys = append(s.keys, span{len(s.shape), len(s.shape) + len(k)})
		s.shape = append(append(append(s.shape, k...), 0), shapeKind(kind))
	}
	if len(s.keys) == 0 {
		return out, 0, errRefused
	}
	return out, len(s.keys), nil
}

// seenSpan reports whether k is one of the keys before it, at spans of
// buf: by comparison while there are few, through set once there are many,
// as seenKey does, so a line of many keys does not take their square. It
// adds k to set once set is in use.
func seenSpan(set *map[string]struct{}, before []span, buf, k []byte) bool {
	if len(before) < manyKeys {
		for _, sp := range before {
			if string(buf[sp.start:sp.end]) == string(k) {
				return true
			}
		}
		return false
	}
	if len(before) == manyKeys {
		if *set == nil {
			*set = make(map[string]struct{})
		}
		clear(*set)
		for _, sp := range before {
			(*set)[string(buf[sp.start:sp.end])] = struct{}{}
		}
	}
	if _, ok := (*set)[string(k)]; ok {
		return true
	}
	(*set)[string(k)] = struct{}{}
	return false
}

// nameOK reports whether checkName accepts b, a name the decoder returned:
// the decoder has checked that it is UTF-8 without control characters and
// not empty, so what is left is checked here without making a string.
// notTime is set for names that must not be "time" (all but measurements).
func nameOK(b []byte, maxLen int, notTime bool) bool {
	return len(b) > 0 && len(b) <= maxLen && b[0] != '_' && b[len(b)-1] != '\\' && !(notTime && string(b) == "time")
}

// tagValueOK reports whether checkTagValue accepts v, a tag value the
// decoder returned, on the same grounds as nameOK.
func tagValueOK(v []byte, maxLen int) bool {
	return len(v) > 0 && len(v) <= maxLen && v[len(v)-1] != '\\'
}

// appendValue writes a field's value as Encode writes the value
// ParseLineProtocol makes of it: an integer or a float already in that
// form is copied; anything else is parsed and formatted again. It returns
// errRefused for a value ParseLineProtocol refuses.
func appendValue(out []byte, kind lineprotocol.ValueKind, raw []byte, maxLen int) ([]byte, error) {
	switch kind {
	case lineprotocol.Float:
		if canonicalFloat(raw) {
			return append(out, raw...), nil
		}
	case lineprotocol.Int, lineprotocol.Uint:
		if canonicalInt(raw, kind == lineprotocol.Uint) {
			return append(append(out, raw...), 'i'), nil
		}
	case lineprotocol.String:
		if len(raw) > maxLen {
			return out, errRefused
		}
		out = append(out, '"')
		return append(appendEscaped(out, raw, &stringEscapes), '"'), nil
	}
	v, err := lineprotocol.NewValueFromBytes(kind, raw)
	if err != nil {
		return out, errRefused
	}
	if kind == lineprotocol.Uint {
		if v.UintV() > math.MaxInt64 {
			return out, errRefused
		}
		v = lineprotocol.IntValue(int64(v.UintV()))
	}
	return v.AppendBytes(out), nil
}

// canonicalInt reports whether raw, the digits of an integer field, is a
// value in range written as strconv.FormatInt writes it: no leading zero,
// no "-0", at most 18 digits. An unsigned one must not be negative.
func canonicalInt(raw []byte, unsigned bool) bool {
	d := raw
	if len(d) > 0 && d[0] == '-' {
		if unsigned {
			return false
		}
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 18 || d[0] == '0' && (len(d) > 1 || len(raw) > 1) {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// canonicalFloat reports, conservatively, whether raw is a float written
// as strconv.FormatFloat(x, 'g', -1, 64) writes it, the form Encode gives
// a float: decimal digits without a leading or trailing zero, at most 15
// significant ones (so they are the shortest that read back to the same
// float), and a value that 'g' writes without an exponent (from 1e-4 to
// below 1e6). It may say no to such a float; never yes to another.
func canonicalFloat(raw []byte) bool {
	i := 0
	if len(raw) > 0 && raw[0] == '-' {
		i++
	}
	intStart := i
	for i < len(raw) && raw[i] >= '0' && raw[i] <= '9' {
		i++
	}
	intDigits := i - intStart
	if intDigits == 0 || intDigits > 6 || intDigits > 1 && raw[intStart] == '0' {
		return false
	}
	if i == len(raw) {
		return true
	}
	if raw[i] != '.' {
		return false
	}
	i++
	fracStart := i
	for i < len(raw) && raw[i] >= '0' && raw[i] <= '9' {
		i++
	}
	frac := i - fracStart
	if i != len(raw) || frac == 0 || raw[i-1] == '0' {
		return false
	}
	significant := intDigits + frac
	if raw[intStart] == '0' {
		zeros := 0
		for raw[fracStart+zeros] == '0' {
			zeros++
		}
		if zeros > 3 {
			return false
		}
		significant = frac - zeros
	}
	return significant <= 15
}

// escapes is a table of the bytes a token escapes with a backslash, and
// the byte written after it.
type escapes [256]byte

func newEscapes(pairs string) (e escapes) {
	for i := 0; i+1 < len(pairs); i += 2 {
		e[pairs[i]] = pairs[i+1]
	}
	return e
}

// The escapes Encode writes in each part of a line.
var (
	measurementEscapes = newEscapes("  ,,")
	tagKeyEscapes      = newEscapes(",,==  ")
	tagValueEscapes    = tagKeyEscapes
	fieldKeyEscapes    = tagKeyEscapes
	stringEscapes      = newEscapes("\\\\\"\"\nn\rr\tt")
)

// appendEscaped appends b with the bytes e escapes escaped.
func appendEscaped[T string | []byte](out []byte, b T, e *escapes) []byte {
	start := 0
	for i := 0; i < len(b); i++ {
		if r := e[b[i]]; r != 0 {
			out = append(out, b[start:i]...)
			out = append(out, '\\', r)
			start = i + 1
		}
	}
	return append(out, b[start:]...)
}
