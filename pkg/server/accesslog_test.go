package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// TestAccessLogMatchesSlog checks the hand-written access line against
// what log/slog's handlers write for the same record, in both formats, so
// the gateway's log stays one format.
func TestAccessLogMatchesSlog(t *testing.T) {
	// One log for every line, so that lines of one second, and then of
	// the same second elsewhere, follow each other as they do in a
	// gateway's log.
	west := time.FixedZone("west", -7*3600)
	times := []time.Time{
		time.Date(2026, 11, 27, 12, 41, 18, 123456789, time.UTC),
		time.Date(2026, 11, 27, 12, 41, 18, 120000000, time.UTC),
		time.Date(2026, 11, 27, 12, 41, 18, 0, time.UTC),
		time.Date(2026, 11, 27, 12, 41, 18, 5, time.UTC).In(west),
		time.Date(2026, 11, 27, 12, 41, 19, 999999999, west),
	}
	logs := map[bool]*bytes.Buffer{false: new(bytes.Buffer), true: new(bytes.Buffer)}
	access := map[bool]*AccessLog{false: NewAccessLog(logs[false], false, AccessAll), true: NewAccessLog(logs[true], true, AccessAll)}
	tests := []struct {
		name string
		e    accessEntry
	}{
		{"accepted", accessEntry{method: "POST", path: "/api/submit", status: 200, latency: 1234 * time.Microsecond,
			remote: "127.0.0.1:5555", requestID: "0123abcd", keyID: 7, points: 5000}},
		{"no key, no points", accessEntry{method: "GET", path: "/readyz", status: 200, latency: 0, remote: "[::1]:80", requestID: "x"}},
		{"client error", accessEntry{method: "POST", path: "/write", status: 400, latency: 17 * time.Millisecond, remote: "10.0.0.1:1", requestID: "r",
			keyID: 1, err: errors.New("invalid points: line 2: field \"v\" = \"a\tb\"\nnext \\ <tag> & é \x01 \xff")}},
		{"server error", accessEntry{method: "POST", path: "/api/submit", status: 503, latency: 2 * time.Second, remote: "", requestID: "r2",
			err: errors.New("spool full: 1 of 1 bytes used")}},
		{"odd path", accessEntry{method: "PUT", path: "/a b=c/\"q\"", status: 404, latency: time.Microsecond, remote: "h:1", requestID: "id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, at := range times {
				e := tt.e
				e.time = at
				for _, text := range []bool{false, true} {
					var want bytes.Buffer
					got := logs[text]
					got.Reset()
					access[text].write(&e)
					var h slog.Handler = slog.NewJSONHandler(&want, nil)
					if text {
						h = slog.NewTextHandler(&want, nil)
					}
					if err := h.Handle(context.Background(), slogRecord(&e)); err != nil {
						t.Fatal(err)
					}
					if text {
						if got.String() != want.String() {
							t.Errorf("text:\n got %s\nwant %s", got.String(), want.String())
						}
						continue
					}
					var g, w map[string]any
					if err := json.Unmarshal(got.Bytes(), &g); err != nil {
						t.Fatalf("json: %v in %s", err, got.String())
					}
					json.Unmarshal(want.Bytes(), &w)
					if !reflect.DeepEqual(g, w) {
						t.Errorf("json:\n got %s\nwant %s", got.String(), want.String())
					}
					if n := bytes.Count(got.Bytes(), []byte("\n")); n != 1 {
						t.Errorf("json: %d newlines in one line: %q", n, got.String())
					}
					if want := `{"time":"` + at.Format(time.RFC3339Nano) + `"`; !bytes.HasPrefix(got.Bytes(), []byte(want)) {
						t.Errorf("json: got %s, want it to start %s", got.String(), want)
					}
				}
			}
		})
	}
}

// FuzzAppendJSONString checks the access log's JSON strings: any text
// becomes a valid JSON string that reads back as the text, with invalid
// UTF-8 as one U+FFFD a byte, as slog's JSON handler writes it.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "request", "/api/v2/write", "0123456789abcdef0123456789abcdef", "a\"b\\c\n\x01\x7f é \xff", "12345678\"", "1234567\x80", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString([]byte(`"`), s)
		b = append(b, '"')
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: %s is not a JSON string: %v", s, b, err)
		}
		if want := string([]rune(s)); got != want {
			t.Errorf("%q: read back %q, want %q", s, got, want)
		}
		if plain := jsonPlain(s); plain == len(s) && string(b[1:len(b)-1]) != s {
			t.Errorf("%q: all plain, yet written %s", s, b)
		}
	})
}

// slogRecord is the record the access line stands for.
func slogRecord(e *accessEntry) slog.Record {
	level := slog.LevelInfo
	if e.err != nil && e.status >= 500 {
		level = slog.LevelError
	}
	r := slog.NewRecord(e.time, level, "request", 0)
	r.AddAttrs(
		slog.String("method", e.method),
		slog.String("path", e.path),
		slog.Int("status", e.status),
		slog.Float64("latency_ms", float64(e.latency.Microseconds())/1000),
		slog.String("remote", e.remote),
		slog.String("request_id", e.requestID),
	)
	if e.keyID != 0 {
		r.AddAttrs(slog.Int64("key_id", e.keyID))
	}
	if e.points != 0 {
		r.AddAttrs(slog.Int("points", e.points))
	}
	if e.err != nil {
		r.AddAttrs(slog.String("error", e.err.Error()))
	}
	return r
}

// TestMillisMatchesFloat checks the latency as the access line writes it
// against strconv's shortest form of the float64 slog would format, over
// every size of value and the bounds where millis changes its method.
func TestMillisMatchesFloat(t *testing.T) {
	values := []int64{0, 1, 9, 10, 999, 1000, 1001, 1234, 100000, 999999999999999, 1e15, 1e15 + 1, 1<<53 - 1, 1 << 53, 1<<62 + 12345, -1, -1234}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		values = append(values, r.Int64N(int64(1)<<(1+r.IntN(62))))
	}
	for _, us := range values {
		var f fields
		f.millis("l", us)
		want := `{"l":` + strconv.FormatFloat(float64(us)/1000, 'f', -1, 64)
		if string(f.b) != want {
			t.Fatalf("%d µs: got %s, want %s", us, f.b, want)
		}
	}
}

func BenchmarkAccessLog(b *testing.B) {
	e := accessEntry{time: time.Now(), method: "POST", path: "/api/submit", status: 200, latency: 1234 * time.Microsecond,
		remote: "127.0.0.1:5555", requestID: "0123abcd0123abcd", keyID: 7, points: 1}
	b.Run("hand-written", func(b *testing.B) {
		l := NewAccessLog(io.Discard, false, AccessAll)
		for b.Loop() {
			l.write(&e)
		}
	})
	b.Run("slog", func(b *testing.B) {
		l := slog.New(slog.NewJSONHandler(io.Discard, nil))
		for b.Loop() {
			r := slogRecord(&e)
			l.Handler().Handle(context.Background(), r)
		}
	})
}
