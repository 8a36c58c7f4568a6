package points_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/pkg/points"
)

func batchJSON(n int) []byte {
	var b strings.Builder
	b.WriteString("[")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"measurement":"batch","field":"v","value":%d,"tags":{"shard":"%d"},"timestamp":%d}`, i, i%50, 1700000000000000000+i)
	}
	b.WriteString("]")
	return []byte(b.String())
}

func batchLP(n int) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "batch,shard=%d v=%di %d\n", i%50, i, 1700000000000000000+i)
	}
	return b.Bytes()
}

// BenchmarkParseEncode measures the per-request cost of turning a body into
// line protocol: one point, and a batch of 5000, in JSON and line protocol.
func BenchmarkParseEncode(b *testing.B) {
	opts := points.Options{DefaultMeasurement: "custom_metrics", MaxPoints: 5000}
	now := time.Now()
	one := []byte(`{"field": "os_updates", "value": 5, "timestamp": 1699786600000000000}`)
	for _, bc := range []struct {
		name string
		body []byte
		lp   bool
	}{
		{"json/1", one, false},
		{"json/5000", batchJSON(5000), false},
		{"lineprotocol/5000", batchLP(5000), true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			var buf []byte
			for i := 0; i < b.N; i++ {
				var pts []points.Point
				var err error
				if bc.lp {
					pts, err = points.ParseLineProtocol(bytes.NewReader(bc.body), time.Nanosecond, opts, now)
				} else {
					pts, err = points.ParseJSON(bytes.NewReader(bc.body), opts)
				}
				if err != nil {
					b.Fatal(err)
				}
				buf, err = points.Encode(buf[:0], pts, "host", "h", now)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
