package forward

import (
	"regexp"
	"strconv"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// refusal is what InfluxDB's answer to a refused write says. InfluxDB 1.x
// and 2.x write the lines they can and answer "partial write: ...
// dropped=N", naming the first field type conflict if that was the cause:
//
//	partial write: field type conflict: input field "usage" on measurement
//	"cpu" is type string, already exists as type float dropped=5000
type refusal struct {
	dropped  int // lines InfluxDB dropped; 0 when it did not say
	conflict *typeConflict
}

// typeConflict is a field type conflict InfluxDB named.
type typeConflict struct {
	measurement, field string
	input, existing    string // type names as InfluxDB gives them
}

var (
	droppedRe  = regexp.MustCompile(`dropped=(\d+)`)
	conflictRe = regexp.MustCompile(`input field ("(?:[^"\\]|\\.)*") on measurement ("(?:[^"\\]|\\.)*") is type (\w+), already exists as type (\w+)`)
)

// parseRefusal reads InfluxDB's message.
func parseRefusal(msg string) refusal {
	var r refusal
	if m := droppedRe.FindStringSubmatch(msg); m != nil {
		r.dropped, _ = strconv.Atoi(m[1])
	}
	if m := conflictRe.FindStringSubmatch(msg); m != nil {
		field, ferr := strconv.Unquote(m[1])
		measurement, merr := strconv.Unquote(m[2])
		if ferr == nil && merr == nil {
			r.conflict = &typeConflict{measurement: measurement, field: field, input: m[3], existing: m[4]}
		}
	}
	return r
}

// kindNames are the names InfluxDB gives the types of field values.
var kindNames = map[lineprotocol.ValueKind]string{
	lineprotocol.Float:  "float",
	lineprotocol.Int:    "integer",
	lineprotocol.Uint:   "unsigned",
	lineprotocol.String: "string",
	lineprotocol.Bool:   "boolean",
}

// matches reports whether line, one line of line protocol, writes c's
// field of c's measurement with c's input type: whether it is one of the
// lines the conflict dropped.
func (c *typeConflict) matches(line []byte) bool {
	dec := lineprotocol.NewDecoderWithBytes(line)
	if !dec.Next() {
		return false
	}
	m, err := dec.Measurement()
	if err != nil || string(m) != c.measurement {
		return false
	}
	for {
		k, _, err := dec.NextTag()
		if err != nil {
			return false
		}
		if k == nil {
			break
		}
	}
	for {
		k, v, err := dec.NextField()
		if err != nil || k == nil {
			return false
		}
		if string(k) == c.field {
			return kindNames[v.Kind()] == c.input
		}
	}
}
