// Package schema guards a shared bucket's field types. InfluxDB fixes a
// field's type per shard when it is first written there, and refuses every
// later point with another type, whoever sends it: one key writing a
// string where others write floats, timestamped in next week's shard,
// would have every other key's points refused once that shard is current.
// The Guard remembers each field's type per (bucket, measurement, field),
// from what the gateway accepted and from what InfluxDB answered, and
// refuses a conflicting point at the door instead, with a message naming
// the point and both types.
package schema

import (
	"fmt"
	"sync"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/metricgate/metricgate/pkg/points"
)

// ErrConflict means a point's field has another type than the bucket holds
// for it. The error wrapping it names the point and both types. It wraps
// points.ErrInvalid: the point is a bad request, as any other invalid one.
var ErrConflict = fmt.Errorf("%w: field type conflict", points.ErrInvalid)

// Type is a field's type as InfluxDB 1.x stores it.
type Type uint8

// The field types. An unsigned integer is stored as an integer, as the
// gateway writes it.
const (
	Unknown Type = iota
	Float
	Integer
	String
	Boolean
)

var typeNames = [...]string{"unknown", "float", "integer", "string", "boolean"}

// String returns the type's name as InfluxDB gives it.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "unknown"
}

// ParseType returns the type InfluxDB names s ("float", "integer",
// "unsigned", "string", "boolean"), or Unknown.
func ParseType(s string) Type {
	switch s {
	case "float":
		return Float
	case "integer", "unsigned":
		return Integer
	case "string":
		return String
	case "boolean":
		return Boolean
	}
	return Unknown
}

// TypeOf returns the type a value of kind k is stored as.
func TypeOf(k lineprotocol.ValueKind) Type {
	switch k {
	case lineprotocol.Float:
		return Float
	case lineprotocol.Int, lineprotocol.Uint:
		return Integer
	case lineprotocol.String:
		return String
	case lineprotocol.Bool:
		return Boolean
	}
	return Unknown
}

// Guard remembers field types per bucket, measurement and field, up to a
// number of fields: past it, new fields are let through unremembered, so
// that a key inventing field names cannot make the guard grow without
// bound. A nil *Guard checks nothing. It is safe for concurrent use.
type Guard struct {
	max int

	mu      sync.RWMutex
	types   map[string]map[string]map[string]Type // bucket, measurement, field
	n       int
	dropped int // fields not remembered for want of room
}

// New returns a guard that remembers up to max fields (0 for no bound).
func New(max int) *Guard {
	return &Guard{max: max, types: map[string]map[string]map[string]Type{}}
}

// Check refuses a request's fields, bound for bucket, when one has another
// type than the bucket holds for it or than an earlier point of the
// request gave it, with an error wrapping ErrConflict that names the first
// point that has it (by its line for line protocol, its index for JSON)
// and both types. fields are the request's distinct (measurement, field,
// type) in the order they first appear, as points.Lines gathers them.
// When it accepts, it records the types of the fields it did not know: the
// first type accepted is the one the guard holds. It records nothing of a
// refused request.
func (g *Guard) Check(bucket string, fields []points.FieldType) error {
	if g == nil {
		return nil
	}
	var c checker
	g.mu.RLock()
	err := c.check(g.types[bucket], fields)
	g.mu.RUnlock()
	if err != nil || len(c.unknown) == 0 {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	// Another request may have recorded some of them meanwhile.
	ms := g.types[bucket]
	for _, u := range c.unknown {
		if have := ms[u.Measurement][u.Field]; have != Unknown && have != TypeOf(u.Kind) {
			return conflict(u, have)
		}
	}
	for _, u := range c.unknown {
		g.set(bucket, u.Measurement, u.Field, TypeOf(u.Kind), false)
	}
	return nil
}

// Learn records that bucket holds field of measurement as typ, as InfluxDB
// said it does, in place of what the guard held.
func (g *Guard) Learn(bucket, measurement, field string, typ Type) {
	if g == nil || typ == Unknown {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.set(bucket, measurement, field, typ, true)
}

// Lookup returns the type the guard holds for field of measurement in
// bucket, or Unknown.
func (g *Guard) Lookup(bucket, measurement, field string) Type {
	if g == nil {
		return Unknown
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.types[bucket][measurement][field]
}

// Stats returns the fields remembered and those let through unremembered
// for want of room.
func (g *Guard) Stats() (fields, dropped int) {
	if g == nil {
		return 0, 0
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.n, g.dropped
}

// set records typ for the field, replacing a known type only if replace.
// g.mu is held.
func (g *Guard) set(bucket, measurement, field string, typ Type, replace bool) {
	ms := g.types[bucket]
	if ms == nil {
		ms = map[string]map[string]Type{}
		g.types[bucket] = ms
	}
	fs := ms[measurement]
	if fs == nil {
		fs = map[string]Type{}
		ms[measurement] = fs
	}
	if _, ok := fs[field]; ok {
		if replace {
			fs[field] = typ
		}
		return
	}
	if g.max > 0 && g.n >= g.max {
		g.dropped++
		return
	}
	fs[field] = typ
	g.n++
}

// checker checks one request's fields.
type checker struct {
	unknown []points.FieldType             // the fields the bucket does not hold, first type first
	byName  map[[2]string]points.FieldType // unknown by measurement and field, once it is long
}

// check compares fields with ms, what the bucket holds, and collects the
// fields ms lacks.
func (c *checker) check(ms map[string]map[string]Type, fields []points.FieldType) error {
	for _, f := range fields {
		typ := TypeOf(f.Kind)
		if have := ms[f.Measurement][f.Field]; have != Unknown {
			if have != typ {
				return conflict(f, have)
			}
			continue
		}
		if u, ok := c.findUnknown(f.Measurement, f.Field); ok {
			if have := TypeOf(u.Kind); have != typ {
				return conflict(f, have)
			}
			continue
		}
		c.unknown = append(c.unknown, f)
		if c.byName != nil {
			c.byName[[2]string{f.Measurement, f.Field}] = f
		}
	}
	return nil
}

// findUnknown returns the unknown field of measurement m named key: by
// comparison while there are few, through a map once there are many, so a
// batch of thousands of new fields does not take their square.
func (c *checker) findUnknown(m, key string) (points.FieldType, bool) {
	const few = 16
	if c.byName == nil && len(c.unknown) > few {
		c.byName = make(map[[2]string]points.FieldType, 2*len(c.unknown))
		for _, u := range c.unknown {
			c.byName[[2]string{u.Measurement, u.Field}] = u
		}
	}
	if c.byName != nil {
		u, ok := c.byName[[2]string{m, key}]
		return u, ok
	}
	for _, u := range c.unknown {
		if u.Field == key && u.Measurement == m {
			return u, true
		}
	}
	return points.FieldType{}, false
}

// conflict is the error for field f, where the bucket holds have.
func conflict(f points.FieldType, have Type) error {
	return fmt.Errorf("%w: %s: field %q of measurement %q is %s, but this bucket holds it as %s",
		ErrConflict, f.Where(), f.Field, f.Measurement, TypeOf(f.Kind), have)
}
