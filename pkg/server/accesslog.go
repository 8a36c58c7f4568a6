package server

import (
	"io"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// AccessLog writes the gateway's one line per request, in the same shape
// as the JSON or text handler of log/slog writes the rest of its log, so a
// log reader sees one format.
//
// It is written by hand rather than through slog because it is on every
// request's path, where slog's record, its attribute copies and its JSON
// handler cost a measurable share of the gateway's CPU (README,
// Performance; BenchmarkAccessLog compares the two).
type AccessLog struct {
	w    io.Writer
	text bool
	bufs sync.Pool
}

// NewAccessLog returns an access log writing to w: key=value pairs when
// text is set, else a JSON object per line. w gets one Write per line and
// must be safe for concurrent use.
func NewAccessLog(w io.Writer, text bool) *AccessLog {
	return &AccessLog{w: w, text: text, bufs: sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}}
}

// accessEntry is what one access log line says.
type accessEntry struct {
	time      time.Time
	method    string
	path      string
	status    int
	latency   time.Duration
	remote    string
	requestID string
	keyID     int64
	points    int
	err       error
}

func (l *AccessLog) write(e *accessEntry) {
	bp := l.bufs.Get().(*[]byte)
	b := (*bp)[:0]
	level := "INFO"
	if e.err != nil && e.status >= 500 {
		level = "ERROR"
	}
	f := fields{b: b, text: l.text}
	f.time("time", e.time)
	f.raw("level", level)
	f.str("msg", "request")
	f.str("method", e.method)
	f.str("path", e.path)
	f.int("status", int64(e.status))
	f.float("latency_ms", float64(e.latency.Microseconds())/1000)
	f.str("remote", e.remote)
	f.str("request_id", e.requestID)
	if e.keyID != 0 {
		f.int("key_id", e.keyID)
	}
	if e.points != 0 {
		f.int("points", int64(e.points))
	}
	if e.err != nil {
		f.str("error", e.err.Error())
	}
	f.end()
	l.w.Write(f.b)
	if cap(f.b) <= 64<<10 {
		*bp = f.b
		l.bufs.Put(bp)
	}
}

// fields appends key/value pairs as slog's JSON or text handler would.
type fields struct {
	b    []byte
	text bool
	n    int
}

func (f *fields) key(k string) {
	switch {
	case f.text && f.n > 0:
		f.b = append(f.b, ' ')
	case !f.text && f.n == 0:
		f.b = append(f.b, '{')
	case !f.text:
		f.b = append(f.b, ',')
	}
	f.n++
	if f.text {
		f.b = append(f.b, k...)
		f.b = append(f.b, '=')
		return
	}
	f.b = append(f.b, '"')
	f.b = append(f.b, k...)
	f.b = append(f.b, '"', ':')
}

// time appends t as slog does: RFC 3339 with nanoseconds in JSON, with
// milliseconds (and no quotes) in text.
func (f *fields) time(k string, t time.Time) {
	f.key(k)
	if f.text {
		f.b = t.AppendFormat(f.b, "2006-01-02T15:04:05.000Z07:00")
		return
	}
	f.b = append(f.b, '"')
	f.b = t.AppendFormat(f.b, time.RFC3339Nano)
	f.b = append(f.b, '"')
}

func (f *fields) str(k, v string) {
	f.key(k)
	if f.text {
		if needsQuoting(v) {
			f.b = strconv.AppendQuote(f.b, v)
		} else {
			f.b = append(f.b, v...)
		}
		return
	}
	f.b = append(f.b, '"')
	f.b = appendJSONString(f.b, v)
	f.b = append(f.b, '"')
}

// raw appends a value that needs neither escaping nor quoting in text.
func (f *fields) raw(k, v string) {
	f.key(k)
	if f.text {
		f.b = append(f.b, v...)
		return
	}
	f.b = append(f.b, '"')
	f.b = append(f.b, v...)
	f.b = append(f.b, '"')
}

func (f *fields) int(k string, v int64) {
	f.key(k)
	f.b = strconv.AppendInt(f.b, v, 10)
}

// float appends v as slog does for the values a latency takes: no exponent
// from 1e-6 to 1e21, where encoding/json and strconv's 'g' agree with 'f'.
func (f *fields) float(k string, v float64) {
	f.key(k)
	f.b = strconv.AppendFloat(f.b, v, 'f', -1, 64)
}

func (f *fields) end() {
	if !f.text {
		f.b = append(f.b, '}')
	}
	f.b = append(f.b, '\n')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s escaped for the inside of a JSON string.
func appendJSONString(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}

// needsQuoting reports whether slog's text handler would quote s.
func needsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for _, r := range s {
		if r == '=' || r == '"' || r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
	}
	return false
}
