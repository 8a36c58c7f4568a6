package server

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
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
	w     io.Writer
	text  bool
	level AccessLevel
	bufs  sync.Pool
	// second is the last line's time formatted up to its second, which
	// the lines of that second share: formatting a time whole was a
	// tenth of a line's cost.
	second atomic.Pointer[second]
}

// second is a time formatted as RFC 3339 up to its seconds, and its zone,
// for the times of one second in one location.
type second struct {
	unix int64
	loc  *time.Location
	date string // "2006-01-02T15:04:05"
	zone string // "Z" or "-07:00"
}

// AccessLevel is which requests get an access log line.
type AccessLevel int

const (
	AccessAll    AccessLevel = iota // every request
	AccessErrors                    // requests answered 400 or above
	AccessNone                      // none
)

// ParseAccessLevel reads "all", "errors" or "none".
func ParseAccessLevel(s string) (AccessLevel, error) {
	for l, name := range []string{"all", "errors", "none"} {
		if s == name {
			return AccessLevel(l), nil
		}
	}
	return 0, fmt.Errorf("%q: want all, errors or none", s)
}

// NewAccessLog returns an access log writing to w, for the requests level
// says: key=value pairs when text is set, else a JSON object per line. w
// gets one Write per line and must be safe for concurrent use.
func NewAccessLog(w io.Writer, text bool, level AccessLevel) *AccessLog {
	return &AccessLog{w: w, text: text, level: level, bufs: sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}}
}

// logs reports whether a request answered status gets a line.
func (l *AccessLog) logs(status int) bool {
	return l.level == AccessAll || l.level == AccessErrors && status >= 400
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
	f.time("time", e.time, l.secondOf(e.time))
	f.raw("level", level)
	f.raw("msg", "request")
	f.str("method", e.method)
	f.str("path", e.path)
	f.int("status", int64(e.status))
	f.millis("latency_ms", e.latency.Microseconds())
	f.str("remote", e.remote)
	f.raw("request_id", e.requestID) // saneRequestID's or newRequestID's: nothing to escape
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

// secondOf returns t's second, formatted once for all the lines in it.
func (l *AccessLog) secondOf(t time.Time) *second {
	unix := t.Unix()
	if s := l.second.Load(); s != nil && s.unix == unix && s.loc == t.Location() {
		return s
	}
	s := &second{unix: unix, loc: t.Location(), date: t.Format("2006-01-02T15:04:05"), zone: t.Format("Z07:00")}
	l.second.Store(s)
	return s
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

// time appends t, whose second is sec, as slog does: RFC 3339 with
// nanoseconds in JSON (trailing zeros dropped, as time.RFC3339Nano), with
// milliseconds (and no quotes) in text.
func (f *fields) time(k string, t time.Time, sec *second) {
	f.key(k)
	ns := t.Nanosecond()
	if f.text {
		f.b = append(f.b, sec.date...)
		f.b = appendFraction(f.b, ns/1e6, 3, false)
		f.b = append(f.b, sec.zone...)
		return
	}
	f.b = append(f.b, '"')
	f.b = append(f.b, sec.date...)
	f.b = appendFraction(f.b, ns, 9, true)
	f.b = append(f.b, sec.zone...)
	f.b = append(f.b, '"')
}

// appendFraction appends '.' and v in digits digits, its trailing zeros
// dropped if trim is set, and nothing at all for a 0 it trims.
func appendFraction(b []byte, v, digits int, trim bool) []byte {
	if trim {
		if v == 0 {
			return b
		}
		for v%10 == 0 {
			v /= 10
			digits--
		}
	}
	b = append(b, '.')
	n := len(b)
	for range digits {
		b = append(b, '0')
	}
	for i := len(b) - 1; i >= n; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
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

// millis appends us microseconds as milliseconds, as slog writes the
// float64 us/1000: the decimal with its trailing zeros dropped. With at
// most 15 digits, that decimal is the shortest that reads back as the
// float, which is what strconv (and slog through it) writes, for a
// fraction of strconv's work.
func (f *fields) millis(k string, us int64) {
	f.key(k)
	if us < 0 || us >= 1e15 {
		f.b = strconv.AppendFloat(f.b, float64(us)/1000, 'f', -1, 64)
		return
	}
	f.b = strconv.AppendInt(f.b, us/1000, 10)
	f.b = appendFraction(f.b, int(us%1000), 3, true)
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
	plain := jsonPlain(s)
	if plain == len(s) {
		return append(b, s...)
	}
	start := 0
	for i := plain; i < len(s); {
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

// jsonPlain returns the length of the start of s that needs no escaping
// in a JSON string: printable ASCII, neither '"' nor '\\'. Every access
// line's strings are that whole, so it looks at eight bytes a step.
func jsonPlain(s string) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		q, bs := x^(ones*'"'), x^(ones*'\\')
		// A byte of 0x80 or more, below 0x20, or equal to '"' or '\\'
		// (a zero byte of q or bs) sets its high bit here.
		if (x|(x-ones*0x20)|(q-ones)&^q|(bs-ones)&^bs)&highs != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			break
		}
	}
	return i
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
