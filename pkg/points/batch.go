package points

import (
	"fmt"
	"unsafe"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// maxSeriesKeyLen is the longest series key (measurement and tags) InfluxDB
// stores; it refuses a longer point as "max key length exceeded".
const maxSeriesKeyLen = 65535

// manyKeys is the number of tags or fields past which a point's check for
// a repeated key uses a map rather than comparing with each key before.
const manyKeys = 16

// batch is what the points of one body share while they are parsed.
//
// A batch repeats its measurement, field names and tag keys on nearly
// every point, so each name is copied out of the parser's buffer (which the
// next body or line reuses) and checked only when it differs from the one
// in the same place on the point before. The points' tags and fields are
// cut from two shared arrays. In a large JSON batch the copies and checks
// were most of the parse's allocations and much of its time.
type batch struct {
	lim     Limits
	hostTag string

	// The parse's own memory, counted as it grows, and what grow has
	// granted of it; growErr is grow's refusal, which ends the parse.
	used, granted int64
	grow          func(int64) error
	growErr       error

	measurement string   // the last measurement, copied and checked
	fieldNames  []string // the last field names, by position
	tagKeys     []string // the last tag keys, by position
	tagValues   []string // the last tag values, by position

	tags   []Tag
	fields []Field

	// The point being parsed: where its tags and fields start, the length
	// of its series key so far, and the keys of its tags and fields once it
	// has many.
	tagStart   int
	fieldStart int
	keyLen     int
	tagSet     map[string]struct{}
	fieldSet   map[string]struct{}
}

// newBatch returns a batch for a body parsed with opts, with room for
// fields fields at first.
func newBatch(opts *Options, fields int) *batch {
	b := new(batch)
	b.reset(opts, fields)
	return b
}

// keptChunk is the largest tags or fields array reset keeps for the next
// body: a small body's, not a batch's.
const keptChunk = 256

// reset readies b for a new body parsed with opts, with room for fields
// fields at first. It keeps the names b last saw, which the next body of
// the same client most often repeats, and its arrays unless they are large:
// the points of the body before must no longer be in use.
func (b *batch) reset(opts *Options, fields int) {
	b.lim, b.hostTag, b.grow = opts.Limits.withDefaults(), opts.HostTag, opts.Grow
	b.used, b.granted, b.growErr = 0, GrowStep, nil
	b.tagStart, b.fieldStart, b.keyLen = 0, 0, 0
	if cap(b.fields) < fields || cap(b.fields) > keptChunk {
		b.fields = make([]Field, 0, fields)
	} else {
		clear(b.fields[:cap(b.fields)])
		b.fields = b.fields[:0]
	}
	if cap(b.tags) > keptChunk {
		b.tags = nil
	} else {
		clear(b.tags[:cap(b.tags)])
		b.tags = b.tags[:0]
	}
}

// Sizes counted by charge: what a point, a tag and a field take in memory.
const (
	pointBytes = int64(unsafe.Sizeof(Point{}))
	tagBytes   = int64(unsafe.Sizeof(Tag{}))
	fieldBytes = int64(unsafe.Sizeof(Field{}))
)

// charge counts n more bytes of the parse's memory and asks grow for room
// once they pass what it granted: the first GrowStep bytes are free, as a
// small body's are, and each request doubles the grant, so a large body
// asks a few times. It returns grow's refusal, kept in growErr so that the
// parse returns it as it is.
func (b *batch) charge(n int64) error {
	b.used += n
	if b.used <= b.granted || b.grow == nil {
		return nil
	}
	step := max(b.used-b.granted, b.granted)
	if err := b.grow(step); err != nil {
		b.growErr = err
		return err
	}
	b.granted += step
	return nil
}

// failure is the error a parse ends with when a point failed with err:
// grow's refusal as it is, else err.
func (b *batch) failure(err error) error {
	if b.growErr != nil {
		return b.growErr
	}
	return err
}

// name returns b as a string checked by checkName, reusing *last when it is
// the same.
func name[T string | []byte](bt *batch, last *string, what string, b T) (string, error) {
	if len(b) > 0 && string(b) == *last {
		return *last, nil
	}
	s := string(b)
	if err := checkName(what, s, bt.lim.MaxNameLen); err != nil {
		return "", err
	}
	*last = s
	return s, bt.charge(int64(len(s)))
}

// startPoint begins a point with measurement m: it checks m and returns
// it as a string.
func startPoint[T string | []byte](b *batch, m T) (string, error) {
	s, err := name(b, &b.measurement, "measurement", m)
	if err != nil {
		return "", err
	}
	if err := b.charge(pointBytes); err != nil {
		return "", err
	}
	b.tagStart, b.fieldStart = len(b.tags), len(b.fields)
	b.keyLen = len(s)
	return s, nil
}

// addTag adds the tag k=v to the current point. It refuses a repeated key
// and a series key longer than InfluxDB stores.
func (b *batch) addTag(k, v []byte) error {
	before := b.tags[b.tagStart:]
	if b.keyLen += 2 + len(k) + len(v); b.keyLen > maxSeriesKeyLen {
		return fmt.Errorf("the measurement and tags are more than %d bytes, the longest series key InfluxDB stores", maxSeriesKeyLen)
	}
	if b.lim.MaxTags > 0 && len(before) >= b.lim.MaxTags {
		return fmt.Errorf("a point may have at most %d tags", b.lim.MaxTags)
	}
	if seenKey(&b.tagSet, before, func(t Tag) string { return t.Key }, k) {
		return fmt.Errorf("tag key %q appears twice", truncate(string(k)))
	}
	pos := len(before)
	if pos == len(b.tagKeys) {
		b.tagKeys = append(b.tagKeys, "")
		b.tagValues = append(b.tagValues, "")
	}
	var t Tag
	var err error
	if t.Key, err = name(b, &b.tagKeys[pos], "tag key", k); err != nil {
		return err
	}
	if len(v) > 0 && string(v) == b.tagValues[pos] {
		t.Value = b.tagValues[pos]
	} else {
		t.Value = string(v)
		if err := checkTagValue(t.Key, t.Value, b.lim.MaxValueLen); err != nil {
			return err
		}
		b.tagValues[pos] = t.Value
		if err := b.charge(int64(len(t.Value))); err != nil {
			return err
		}
	}
	if grown := appendChunked(&b.tags, &b.tagStart, t); grown > 0 {
		return b.charge(int64(grown) * tagBytes)
	}
	return nil
}

// appendChunked appends e to *s, a chunk of a shared array whose current
// point starts at *start. A full chunk is not grown in place: the current
// point's elements move to a new chunk, and the earlier points keep theirs.
// Chunks double from 8 to 256 elements (more only for a point that needs
// it), so one point costs a small allocation and a 5000-point body does not
// pay for a doubled array's discarded halves. It returns the capacity of
// the chunk it allocated, or 0.
func appendChunked[E any](s *[]E, start *int, e E) (grown int) {
	if len(*s) == cap(*s) {
		cur := (*s)[*start:]
		next := make([]E, 0, max(min(2*cap(*s), 256), 8, 2*len(cur)))
		*s = append(next, cur...)
		*start = 0
		grown = cap(next)
	}
	*s = append(*s, e)
	return grown
}

// seenKey reports whether k is the key of one of the elements before it:
// by comparison while there are few, through set once there are many, so
// that a line of tens of thousands of keys costs no more per key than a
// line of ten, where comparing each key with every one before it takes
// time in the square of their number. It adds k to set once set is in use.
func seenKey[E any, K string | []byte](set *map[string]struct{}, before []E, key func(E) K, k []byte) bool {
	if len(before) < manyKeys {
		for _, e := range before {
			if string(key(e)) == string(k) {
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
		for _, e := range before {
			(*set)[string(key(e))] = struct{}{}
		}
	}
	if _, ok := (*set)[string(k)]; ok {
		return true
	}
	(*set)[string(k)] = struct{}{}
	return false
}

// pointTags returns the current point's tags, nil when it has none.
func (b *batch) pointTags() []Tag {
	end := len(b.tags)
	if end == b.tagStart {
		return nil
	}
	return b.tags[b.tagStart:end:end]
}

// fieldKey checks k, the key of a field of the current point, and returns
// it as a string. It refuses a repeated key, one named like the host tag,
// and a field past the point's budget.
func (b *batch) fieldKey(k []byte) (string, error) {
	before := b.fields[b.fieldStart:]
	if b.lim.MaxFields > 0 && len(before) >= b.lim.MaxFields {
		return "", fmt.Errorf("a point may have at most %d fields", b.lim.MaxFields)
	}
	if b.hostTag != "" && string(k) == b.hostTag {
		return "", fmt.Errorf("field %q has the name of the tag the gateway sets on every point", truncate(string(k)))
	}
	if seenKey(&b.fieldSet, before, func(f Field) string { return f.Key }, k) {
		return "", fmt.Errorf("field %q appears twice", truncate(string(k)))
	}
	for len(b.fieldNames) <= len(before) {
		b.fieldNames = append(b.fieldNames, "")
	}
	return name(b, &b.fieldNames[len(before)], "field", k)
}

// addField adds f to the current point and returns its fields so far.
func (b *batch) addField(f Field) ([]Field, error) {
	var n int64
	if f.Value.Kind() == lineprotocol.String {
		n = int64(len(f.Value.BytesV()))
	}
	n += int64(appendChunked(&b.fields, &b.fieldStart, f)) * fieldBytes
	end := len(b.fields)
	return b.fields[b.fieldStart:end:end], b.charge(n)
}
