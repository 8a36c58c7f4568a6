package points

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// The range of timestamps InfluxDB stores; the two values at each end of
// int64 are reserved by it.
const (
	minNanoTime = math.MinInt64 + 2
	maxNanoTime = math.MaxInt64 - 1
)

// LineError is a line-protocol body's first bad line. It matches ErrInvalid
// with errors.Is.
type LineError struct {
	Line   int   // 1-based line of the body
	Column int   // 1-based byte column, or 0 when the whole line is at fault
	Err    error // what is wrong
}

// Error returns "line 3: reason" or "line 3, column 7: reason".
func (e *LineError) Error() string {
	if e.Column > 0 {
		return fmt.Sprintf("line %d, column %d: %v", e.Line, e.Column, e.Err)
	}
	return fmt.Sprintf("line %d: %v", e.Line, e.Err)
}

// Unwrap returns the reason.
func (e *LineError) Unwrap() error { return e.Err }

// Is reports that a LineError is an ErrInvalid.
func (e *LineError) Is(target error) bool { return target == ErrInvalid }

// ParseLineProtocol reads InfluxDB line protocol with the decoder of
// github.com/influxdata/line-protocol/v2. Timestamps are integers in units of
// precision (time.Nanosecond, Microsecond, Millisecond, Second, Minute or
// Hour); a line without one gets now, truncated to precision, as InfluxDB
// does. Names and tags are checked as ParseJSON checks them; a tag or field
// key repeated within a line is refused; an unsigned integer (5u) becomes a
// signed one, since InfluxDB 1.x has no unsigned type.
//
// The whole body is refused at its first bad line: the error is a
// *LineError naming the line, or wraps ErrEmpty (no lines, only blank or
// comment lines), ErrTooManyPoints (more than opts.MaxPoints lines) or
// ErrInvalid (reading the body failed; the reader's error, such as an
// *http.MaxBytesError, is wrapped too). opts.DefaultMeasurement is unused:
// every line names its measurement.
func ParseLineProtocol(r io.Reader, precision time.Duration, opts Options, now time.Time) ([]Point, error) {
	if precision <= 0 {
		return nil, fmt.Errorf("%w: precision %v is not positive", ErrInvalid, precision)
	}
	lr := &lineReader{br: bufio.NewReader(r), line: 1}
	dec := lineprotocol.NewDecoder(lr)
	b := newBatch(&opts, 0)
	var pts []Point
	for dec.Next() {
		// The decoder has read up to the first byte of this entry and no
		// further, so the reader's line is the entry's first line.
		line := lr.line
		if opts.MaxPoints > 0 && len(pts) >= opts.MaxPoints {
			return nil, fmt.Errorf("%w: a batch may hold at most %d points", ErrTooManyPoints, opts.MaxPoints)
		}
		p, err := decodeLine(dec, b, precision, now)
		if err != nil {
			if b.growErr != nil {
				return nil, b.failure(err)
			}
			if rerr := dec.Err(); rerr != nil {
				return nil, readError(rerr)
			}
			var de *lineprotocol.DecodeError
			if errors.As(err, &de) {
				return nil, &LineError{Line: int(de.Line), Column: de.Column, Err: de.Err}
			}
			return nil, &LineError{Line: line, Err: err}
		}
		p.Line = line
		pts = append(pts, p)
		yieldEvery(len(pts))
	}
	if err := dec.Err(); err != nil {
		return nil, readError(err)
	}
	if len(pts) == 0 {
		return nil, fmt.Errorf("%w: the body holds no lines of line protocol", ErrEmpty)
	}
	return pts, nil
}

// decodeLine reads the entry at the decoder's position into b.
func decodeLine(dec *lineprotocol.Decoder, b *batch, precision time.Duration, now time.Time) (Point, error) {
	m, err := dec.Measurement()
	if err != nil {
		return Point{}, err
	}
	var p Point
	if p.Measurement, err = startPoint(b, m); err != nil {
		return Point{}, err
	}
	for {
		k, v, err := dec.NextTag()
		if err != nil {
			return Point{}, err
		}
		if k == nil {
			break
		}
		if err := b.addTag(k, v); err != nil {
			return Point{}, err
		}
	}
	p.Tags = b.pointTags()
	for {
		k, v, err := dec.NextField()
		if err != nil {
			return Point{}, err
		}
		if k == nil {
			break
		}
		key, err := b.fieldKey(k)
		if err != nil {
			return Point{}, err
		}
		if v, err = ownValue(key, v, b.lim.MaxValueLen); err != nil {
			return Point{}, err
		}
		if p.Fields, err = b.addField(Field{Key: key, Value: v}); err != nil {
			return Point{}, err
		}
	}
	if len(p.Fields) == 0 {
		return Point{}, errors.New("a line needs at least one field")
	}
	ts, err := dec.TimeBytes()
	if err != nil {
		return Point{}, err
	}
	if p.Time, err = timestamp(ts, precision, now); err != nil {
		return Point{}, err
	}
	return p, b.lim.checkTime(p.Time, now)
}

// ownValue returns v detached from the decoder's buffer, which the next
// call reuses, with unsigned integers made signed.
func ownValue(key string, v lineprotocol.Value, maxLen int) (lineprotocol.Value, error) {
	switch v.Kind() {
	case lineprotocol.String:
		if len(v.BytesV()) > maxLen {
			return v, fmt.Errorf("field %q is longer than %d bytes", truncate(key), maxLen)
		}
		s, ok := lineprotocol.StringValueFromBytes(v.BytesV())
		if !ok {
			return v, fmt.Errorf("field %q is not valid UTF-8", truncate(key))
		}
		return s, nil
	case lineprotocol.Uint:
		if v.UintV() > math.MaxInt64 {
			return v, fmt.Errorf("field %q: unsigned integer %d is larger than the largest signed 64-bit integer", truncate(key), v.UintV())
		}
		return lineprotocol.IntValue(int64(v.UintV())), nil
	}
	return v, nil
}

// timestamp converts a line's timestamp, in units of precision, to a time;
// a line without one gets now truncated to precision.
func timestamp(ts []byte, precision time.Duration, now time.Time) (time.Time, error) {
	if ts == nil {
		return now.Truncate(precision), nil
	}
	n, err := strconv.ParseInt(string(ts), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid timestamp %q", truncate(string(ts)))
	}
	p := int64(precision)
	if n > maxNanoTime/p || n < minNanoTime/p {
		return time.Time{}, fmt.Errorf("timestamp %d is outside the range InfluxDB stores at precision %v", n, precision)
	}
	return time.Unix(0, n*p), nil
}

func readError(err error) error {
	return fmt.Errorf("%w: reading body: %w", ErrInvalid, err)
}

// lineReader hands its reader's bytes out at most one line per Read, and
// counts the lines. The decoder reads only when it needs a byte it does not
// have, so when it starts an entry, the line of the last byte it was given
// is the entry's first line. (The decoder reports the line of a syntax
// error itself; this is for errors found in a well-formed entry.)
type lineReader struct {
	br    *bufio.Reader
	line  int  // the line of the last byte handed out
	atEOL bool // the last byte handed out ended a line
}

// Read hands out the reader's next bytes, never past the next newline, and
// counts the lines.
func (lr *lineReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if lr.atEOL {
		lr.line++
		lr.atEOL = false
	}
	if lr.br.Buffered() == 0 {
		if _, err := lr.br.Peek(1); err != nil {
			return 0, err
		}
	}
	buf, _ := lr.br.Peek(min(lr.br.Buffered(), len(p)))
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		buf = buf[:i+1]
		lr.atEOL = true
	}
	n := copy(p, buf)
	lr.br.Discard(n)
	return n, nil
}
