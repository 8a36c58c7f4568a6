package points

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"time"
	"unsafe"

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
// same pass records what the isolation checks read (Lines). A line as
// agents nearly always send it, plain ASCII with values already in that
// form, skips the Decoder: fastLine writes it in one walk of its bytes, at
// under half the cost, and leaves every other line, and every line it
// would refuse, to the Decoder, so the two paths cannot disagree on what
// is refused or why. A line of a series an earlier line of the body had
// costs less again: what that line settled is not worked out twice (see
// scanknown.go).
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
	// its kind (the shape Lines records); its tags and its field keys,
	// where the decoder returned them in the body, or copied into ownBuf.
	shape     []byte
	ownBuf    []byte
	tags      []tagTok
	plainTags []fastTag
	rewrites  []rewrite
	tagKeys   [][]byte
	fieldKeys [][]byte
	keySet    map[string]struct{}
	// fieldKinds are the kinds of a fast line's fields, in the order of
	// fieldKeys.
	fieldKinds []byte

	// The series of the body's accepted lines, by their bytes in the body
	// (see scanknown.go): known maps each to its place in knownList.
	known     map[string]int32
	knownList []knownSeries
	useKnown  bool

	cursor   lineCursor
	unplaced bool // lineOf could not place a point; see fillLines

	// hostTok is the host tag as written, ",host=value", made once per
	// body for the fast path.
	hostTok []byte
	// decoderOnly turns the fast path off, so that tests and benchmarks
	// can hold the Decoder-based path, the reference the fast path must
	// match, against it.
	decoderOnly bool
}

type tagTok struct{ key, value []byte }

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

// scan writes body's points into s.lines: each line the fast path
// (fastLine) vouches for is written there, and from any other line on, the
// Decoder takes over (decodeFrom) until a line the fast path takes again.
func (s *Scanner) scan(body []byte) error {
	s.body, s.cursor, s.unplaced = body, lineCursor{line: 1}, false
	// Timestamps, the host tag and canonical values make the output a
	// little longer than the input, as a rule.
	s.lines.Data = slices.Grow(s.lines.Data, len(body)+len(body)/4)
	s.hostTok = appendTag(s.hostTok[:0], s.opts.HostTag, s.host)
	s.startKnown(body)
	for pos := 0; pos < len(body); {
		end := bytes.IndexByte(body[pos:], '\n')
		if end < 0 {
			end = len(body) - pos
		}
		if end == 0 { // a blank line, which the Decoder skips too
			pos++
			continue
		}
		ok, err := false, error(nil)
		if !s.decoderOnly {
			ok, err = s.fastLine(body[pos : pos+end])
		}
		switch {
		case err != nil:
			return err
		case ok:
			pos += end + 1
		default:
			if pos, err = s.decodeFrom(body, pos); err != nil {
				return err
			}
		}
	}
	if s.lines.Points == 0 {
		return fmt.Errorf("%w: the body holds no lines of line protocol", ErrEmpty)
	}
	if s.unplaced {
		s.fillLines()
	}
	return nil
}

// decodeFrom writes the points of body from offset pos, the start of a
// line, with a Decoder, and returns the offset where the fast path can
// take over again: the start of the first entry after the first one whose
// measurement the Decoder returned in place, and which fastLine took, or
// the end of the body. The Decoder alone finds where an entry whose string
// spans lines ends, and skips comments and blank lines as it always did.
func (s *Scanner) decodeFrom(body []byte, pos int) (int, error) {
	dec := lineprotocol.NewDecoderWithBytes(body[pos:])
	for first := true; dec.Next(); first = false {
		m, merr := dec.Measurement()
		if off, ok := offsetIn(body, m); ok && !first && merr == nil && !s.decoderOnly {
			end := bytes.IndexByte(body[off:], '\n')
			if end < 0 {
				end = len(body) - off
			}
			if ok, err := s.fastLine(body[off : off+end]); ok || err != nil {
				return off + end + 1, err
			}
		}
		if s.opts.MaxPoints > 0 && s.lines.Points >= s.opts.MaxPoints {
			return 0, fmt.Errorf("%w: a batch may hold at most %d points", ErrTooManyPoints, s.opts.MaxPoints)
		}
		before := len(s.lines.Data)
		if err := s.line(dec, m, merr); err != nil {
			return 0, err
		}
		if err := s.charge(int64(len(s.lines.Data)-before) + 8); err != nil {
			return 0, err
		}
		yieldEvery(s.lines.Points)
	}
	return len(body), nil
}

// lineCursor counts a body's lines up to an offset, going forward only.
type lineCursor struct {
	off, line int
}

// lineOf returns the line of the entry whose measurement is m, the
// Scanner's point s.lines.Points: only the first point of a new
// measurement or field needs it, for messages. A measurement the decoder
// returned in place is found in the body by its address, and the lines
// before it counted from the last one asked for. For one it unescaped into
// a buffer of its own, lineOf returns -1 and notes the point, whose line
// fillLines finds once the scan is done.
func (s *Scanner) lineOf(m []byte) int {
	off, ok := offsetIn(s.body, m)
	if !ok || off < s.cursor.off {
		s.unplaced = true
		return -1
	}
	s.cursor.line += bytes.Count(s.body[s.cursor.off:off], []byte{'\n'})
	s.cursor.off = off
	return s.cursor.line
}

// fillLines gives the measurements and fields that lineOf could not place
// their lines, by decoding the body once more as ParseLineProtocol does:
// once per request, however many there are.
func (s *Scanner) fillLines() {
	lr := &lineReader{br: bufio.NewReader(bytes.NewReader(s.body)), line: 1}
	dec := lineprotocol.NewDecoder(lr)
	lines := make(map[int]int) // point index -> line
	for _, m := range s.lines.Measurements {
		if m.Line < 0 {
			lines[m.Point] = 0
		}
	}
	for _, f := range s.lines.Fields {
		if f.Line < 0 {
			lines[f.Point] = 0
		}
	}
	for i := 0; dec.Next(); i++ {
		if _, ok := lines[i]; ok {
			lines[i] = lr.line
		}
	}
	for i, m := range s.lines.Measurements {
		if m.Line < 0 {
			s.lines.Measurements[i].Line = lines[m.Point]
		}
	}
	for i, f := range s.lines.Fields {
		if f.Line < 0 {
			s.lines.Fields[i].Line = lines[f.Point]
		}
	}
}

// offsetIn returns the offset in body of tok, a token the decoder returned,
// when tok is in body rather than in the decoder's buffer of unescaped
// tokens. The decoder of a whole body in memory returns a token in place
// when it had nothing to unescape, so such a token holds no byte its part
// of a line escapes.
func offsetIn(body, tok []byte) (int, bool) {
	if len(tok) == 0 || len(body) == 0 {
		return 0, false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(body)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(tok)))
	if p < start || p-start >= uintptr(len(body)) {
		return 0, false
	}
	return int(p - start), true
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

// line writes the entry at the decoder's position, whose measurement the
// caller read as m and err, or refuses it.
func (s *Scanner) line(dec *lineprotocol.Decoder, m []byte, err error) error {
	if err != nil || !nameOK(m, s.lim.MaxNameLen, false) {
		return errRefused
	}
	out := s.lines.Data
	start := len(out)
	out = s.appendToken(out, m, &measurementEscapes)
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
	if out, err = s.appendTime(append(out, ' '), ts); err != nil {
		return err
	}
	s.lines.Data = append(out, '\n')
	if s.lines.newShape(s.shape) {
		s.lines.addShape(s.shape, len(m), s.lineOf(m))
	}
	s.lines.addPoint(n, series)
	return nil
}

// appendTime writes the entry's time, ts in units of the precision, in
// nanoseconds, and refuses one timestamp and Limits.checkTime refuse. A
// timestamp of up to 19 digits is read and checked here, in integers;
// anything else by timestamp and checkTime.
func (s *Scanner) appendTime(out, ts []byte) ([]byte, error) {
	n, ok := smallInt(ts)
	return s.appendTimeOf(out, ts, n, ok)
}

// appendTimeOf is appendTime for ts read already as smallInt reads it: n,
// when ok.
func (s *Scanner) appendTimeOf(out, ts []byte, n int64, ok bool) ([]byte, error) {
	p := int64(s.precision)
	if !ok || n > maxNanoTime/p || n < minNanoTime/p {
		t, err := timestamp(ts, s.precision, s.now)
		if err != nil || s.lim.checkTime(t, s.now) != nil {
			return out, errRefused
		}
		return strconv.AppendInt(out, t.UnixNano(), 10), nil
	}
	ns := n * p
	now := s.now.UnixNano()
	if s.lim.MaxFuture > 0 && ns > addSat(now, int64(s.lim.MaxFuture)) ||
		s.lim.MaxPast > 0 && ns < addSat(now, -int64(s.lim.MaxPast)) {
		return out, errRefused
	}
	if p == 1 && (ts[0] != '0' || len(ts) == 1) && (ts[0] != '-' || ts[1] != '0') {
		return append(out, ts...), nil // as AppendInt would write it
	}
	return strconv.AppendInt(out, ns, 10), nil
}

// smallInt reads b as a decimal integer of 1 to 19 digits with an optional
// minus sign, as strconv.ParseInt does; ok is false for anything else,
// such as a value out of int64's range.
func smallInt(b []byte) (n int64, ok bool) {
	d := b
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 19 {
		return 0, false
	}
	var u uint64 // 19 digits fit
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	if u > math.MaxInt64 {
		return 0, false // ParseInt takes -2^63; the range check refuses it anyway
	}
	if len(d) < len(b) {
		return -int64(u), true
	}
	return int64(u), true
}

// addSat returns a+b, held at the ends of int64 rather than wrapping.
func addSat(a, b int64) int64 {
	c := a + b
	switch {
	case b > 0 && c < a:
		return math.MaxInt64
	case b < 0 && c > a:
		return math.MinInt64
	}
	return c
}

// readTags reads the entry's tags into s.tags, checking each as
// batch.addTag does; mLen is the measurement's length.
func (s *Scanner) readTags(dec *lineprotocol.Decoder, mLen int) error {
	s.tags, s.tagKeys, s.ownBuf = s.tags[:0], s.tagKeys[:0], s.ownBuf[:0]
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
		if !nameOK(k, s.lim.MaxNameLen, true) || !tagValueOK(v, s.lim.MaxValueLen) || seenBytes(&s.keySet, s.tagKeys, k) {
			return errRefused
		}
		t := tagTok{s.own(k), s.own(v)}
		s.tags = append(s.tags, t)
		s.tagKeys = append(s.tagKeys, t.key)
	}
}

// own returns tok, a token the decoder returned, where it stays until the
// next entry: in place in the body, or copied.
func (s *Scanner) own(tok []byte) []byte {
	if _, ok := offsetIn(s.body, tok); ok {
		return tok
	}
	start := len(s.ownBuf)
	s.ownBuf = append(s.ownBuf, tok...)
	return s.ownBuf[start:len(s.ownBuf):len(s.ownBuf)]
}

// appendTags writes the tags, sorted by key, without the client's host tag
// and with the gateway's among them, as Encode does.
func (s *Scanner) appendTags(out []byte) []byte {
	tags := s.tags
	for i := 1; i < len(tags); i++ { // few, and mostly sorted already
		for j := i; j > 0 && string(tags[j-1].key) > string(tags[j].key); j-- {
			tags[j-1], tags[j] = tags[j], tags[j-1]
		}
	}
	hostTag := s.opts.HostTag
	hostDone := false
	for _, t := range tags {
		if !hostDone && string(t.key) >= hostTag {
			out = appendTag(out, hostTag, s.host)
			hostDone = true
		}
		if string(t.key) != hostTag {
			out = append(s.appendToken(append(out, ','), t.key, &tagKeyEscapes), '=')
			out = s.appendToken(out, t.value, &tagValueEscapes)
		}
	}
	if !hostDone {
		out = appendTag(out, hostTag, s.host)
	}
	return out
}

func appendTag(out []byte, k, v string) []byte {
	out = append(out, ',')
	out = appendEscaped(out, k, &tagKeyEscapes)
	out = append(out, '=')
	return appendEscaped(out, v, &tagValueEscapes)
}

// appendFields writes the entry's fields, checking each as batch.fieldKey
// and ownValue do, and returns how many it wrote.
func (s *Scanner) appendFields(dec *lineprotocol.Decoder, out []byte) ([]byte, int, error) {
	s.fieldKeys = s.fieldKeys[:0]
	for {
		k, kind, raw, err := dec.NextFieldBytes()
		if err != nil {
			return out, 0, errRefused
		}
		if k == nil {
			break
		}
		n := len(s.fieldKeys)
		if s.lim.MaxFields > 0 && n >= s.lim.MaxFields || string(k) == s.opts.HostTag ||
			!nameOK(k, s.lim.MaxNameLen, true) || seenBytes(&s.keySet, s.fieldKeys, k) {
			return out, 0, errRefused
		}
		if n == 0 {
			out = append(out, ' ')
		} else {
			out = append(out, ',')
		}
		out = append(s.appendToken(out, k, &fieldKeyEscapes), '=')
		if out, err = appendValue(out, kind, raw, s.lim.MaxValueLen); err != nil {
			return out, 0, err
		}
		s.fieldKeys = append(s.fieldKeys, s.own(k))
		s.shape = append(append(append(s.shape, k...), 0), shapeKind(kind))
	}
	if len(s.fieldKeys) == 0 {
		return out, 0, errRefused
	}
	return out, len(s.fieldKeys), nil
}

// seenBytes is seenKey for keys held as they are.
func seenBytes(set *map[string]struct{}, before [][]byte, k []byte) bool {
	return seenKey(set, before, func(b []byte) []byte { return b }, k)
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
		d = d[1:]
	}
	return digitsEnd(d, 0) == len(d) && intForm(len(d) < len(raw), d, unsigned)
}

// intForm reports whether digits, all decimal digits, with a minus sign
// before them when neg, are an integer as canonicalInt has it.
func intForm(neg bool, digits []byte, unsigned bool) bool {
	return !(neg && unsigned) && len(digits) > 0 && len(digits) <= 18 &&
		(digits[0] != '0' || len(digits) == 1 && !neg)
}

// digitsEnd returns the end of the run of decimal digits in b from i. It
// looks at eight bytes at a time while eight are left, which in a line
// they nearly always are (a value is followed by its timestamp).
func digitsEnd(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		if n := nonDigits(binary.LittleEndian.Uint64(b[i:])); n != 0 {
			return i + bits.TrailingZeros64(n)>>3
		}
	}
	return digitsTail(b, i)
}

// digitsTail is digitsEnd a byte at a time, for fewer than eight bytes.
func digitsTail(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// nonDigits returns x, eight bytes, with the high bit set of each byte
// that is not an ASCII digit and every other bit clear. Xor with '0' makes
// the digits the bytes 0 to 9 and no other byte one of them; adding 0x76
// to the low seven bits sets the high bit of those 10 and over, and
// carries into no other byte.
func nonDigits(x uint64) uint64 {
	const zeros, low7, high = 0x3030303030303030, 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	t := x ^ zeros
	return (t | (t&low7 + 0x7676767676767676)) & high
}

// canonicalFloat reports, conservatively, whether raw is a float written
// as strconv.FormatFloat(x, 'g', -1, 64) writes it, the form Encode gives
// a float: decimal digits without a leading or trailing zero, at most 15
// significant ones (so they are the shortest that read back to the same
// float), and a value that 'g' writes without an exponent (from 1e-4 to
// below 1e6). It may say no to such a float; never yes to another.
func canonicalFloat(raw []byte) bool {
	end, ok := floatEnd(raw, 0)
	return ok && end == len(raw)
}

// floatEnd reads the float at b[i:] as canonicalFloat has one, and returns
// the offset past it; it stops at the first byte that cannot continue it.
func floatEnd(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	return fractionEnd(b, i, digitsEnd(b, i))
}

// fractionEnd is floatEnd for a float whose integer digits, after its
// sign, are b[intStart:i].
func fractionEnd(b []byte, intStart, i int) (int, bool) {
	intDigits := i - intStart
	if intDigits == 0 || intDigits > 6 || intDigits > 1 && b[intStart] == '0' {
		return 0, false
	}
	if i == len(b) || b[i] != '.' {
		return i, true
	}
	i++
	fracStart := i
	i = digitsEnd(b, i)
	frac := i - fracStart
	if frac == 0 || b[i-1] == '0' {
		return 0, false
	}
	significant := intDigits + frac
	if b[intStart] == '0' {
		zeros := 0
		for b[fracStart+zeros] == '0' {
			zeros++
		}
		if zeros > 3 {
			return 0, false
		}
		significant = frac - zeros
	}
	return i, significant <= 15
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

// appendToken appends tok, a name or tag value the decoder returned, as
// Encode escapes it: as it is when the decoder returned it in place, when
// it has nothing to escape (see offsetIn).
func (s *Scanner) appendToken(out, tok []byte, e *escapes) []byte {
	if _, ok := offsetIn(s.body, tok); ok {
		return append(out, tok...)
	}
	return appendEscaped(out, tok, e)
}

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
