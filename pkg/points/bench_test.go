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

// telegrafLP returns n lines shaped like a Telegraf agent's flush, as the
// peer benchmarks send them: three measurements in turn, several tags and
// fields each.
func telegrafLP(n int) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		ts := fmt.Sprintf("1699786600%09d", i)
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, "cpu,host=web-%d,cpu=cpu%d,region=eu-west usage_user=%d.5,usage_system=3.25,usage_idle=84.125,usage_iowait=0.5 %s\n", i%50, i%8, i%97, ts)
		case 1:
			fmt.Fprintf(&b, "disk,host=web-%d,device=nvme0n1p%d,fstype=ext4,mode=rw,path=/var/lib/data%d free=%di,total=512000000000i,used_percent=%d.25 %s\n", i%50, i%4, i%4, 1000000+i, i%100, ts)
		default:
			fmt.Fprintf(&b, "net,host=web-%d,interface=eth%d bytes_recv=%di,bytes_sent=%di,packets_recv=%di,err_in=0i,drop_in=0i %s\n", i%50, i%2, 123456789+i, 987654321+i, 4242+i, ts)
		}
	}
	return b.Bytes()
}

// BenchmarkLineProtocol compares the ways a line-protocol body becomes
// what the spool keeps: parsed into points and encoded again (with what
// the checks read), and scanned straight through.
func BenchmarkLineProtocol(b *testing.B) {
	opts := points.Options{MaxPoints: 5000, HostTag: "host", Limits: points.Limits{MaxFields: 256, MaxTags: 64, MaxFuture: 10 * time.Minute}}
	now := time.Unix(1700000100, 0)
	for _, bc := range []struct {
		name string
		body []byte
	}{
		{"one", []byte("custom_metrics,host=127.0.0.1 os_updates=5i 1699786600000000001\n")},
		{"simple5000", batchLP(5000)},
		{"telegraf5000", telegrafLP(5000)},
	} {
		b.Run("parse-encode/"+bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			var l points.Lines
			for b.Loop() {
				pts, err := points.ParseLineProtocol(bytes.NewReader(bc.body), time.Nanosecond, opts, now)
				if err != nil {
					b.Fatal(err)
				}
				l.Reset()
				if err := points.EncodeLines(&l, pts, "host", "127.0.0.1", now); err != nil {
					b.Fatal(err)
				}
			}
		})
		// scan-decoder is the Scanner without its fast path for plain
		// lines: what the fast path saves.
		for _, path := range []string{"scan", "scan-decoder"} {
			b.Run(path+"/"+bc.name, func(b *testing.B) {
				b.SetBytes(int64(len(bc.body)))
				b.ReportAllocs()
				var s points.Scanner
				s.SetDecoderOnly(path == "scan-decoder")
				for b.Loop() {
					if _, err := s.Scan(bytes.NewReader(bc.body), int64(len(bc.body)), time.Nanosecond, opts, "127.0.0.1", now); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkJSONScanner is a JSONScanner's Scan of the bodies /api/submit
// gets most: one point, and a script's few points in an array, as plain
// objects (the plain path) and with tags (the whole parse).
func BenchmarkJSONScanner(b *testing.B) {
	opts := points.Options{DefaultMeasurement: "custom_metrics", HostTag: "host", MaxPoints: 5000}
	now := time.Now()
	var plain10, tagged10 strings.Builder
	plain10.WriteString("[")
	tagged10.WriteString("[")
	for i := range 10 {
		if i > 0 {
			plain10.WriteString(",")
			tagged10.WriteString(",")
		}
		fmt.Fprintf(&plain10, `{"field":"f%d","value":%d.5,"timestamp":%d}`, i, i, 1699786600000000000+i)
		fmt.Fprintf(&tagged10, `{"field":"f%d","value":%d.5,"timestamp":%d,"tags":{"disk":"sda"}}`, i, i, 1699786600000000000+i)
	}
	plain10.WriteString("]")
	tagged10.WriteString("]")
	for _, bc := range []struct{ name, body string }{
		{"one", `{"field": "os_updates", "value": 5, "timestamp": 1699786600000000000}`},
		{"plain10", plain10.String()},
		{"tagged10", tagged10.String()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var j points.JSONScanner
			r := strings.NewReader(bc.body)
			for b.Loop() {
				r.Reset(bc.body)
				if _, err := j.Scan(r, opts, "web-1", now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
