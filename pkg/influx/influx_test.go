package influx_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/influx"
)

// newWriter returns a Writer for cfg, closed after the test.
func newWriter(t *testing.T, cfg influx.Config) *influx.Writer {
	t.Helper()
	w := influx.New(cfg)
	t.Cleanup(w.Close)
	return w
}

// TestWrite writes to the real InfluxDB and reads the points back, with
// their nanosecond timestamps intact.
func TestWrite(t *testing.T) {
	db := testenv.InfluxDB(t)
	w := newWriter(t, influx.Config{URL: db.URL, Bucket: db.Name})
	ctx := context.Background()

	if err := w.Ping(ctx); err != nil {
		t.Fatalf("Ping: got %v, want nil", err)
	}
	lines := "cpu,host=a value=1 1700000000123456789\ncpu,host=b value=2.5 1700000001987654321\n"
	if err := w.Write(ctx, []byte(lines)); err != nil {
		t.Fatalf("Write: got %v, want nil", err)
	}
	if got := db.Count(t, "cpu", "value"); got != 2 {
		t.Fatalf("count of cpu.value: got %d, want 2", got)
	}
	series := db.Query(t, `SELECT "value", "host" FROM "cpu"`)
	if len(series) != 1 {
		t.Fatalf("got %d series, want 1", len(series))
	}
	want := [][]string{{"1700000000123456789", "1", "a"}, {"1700000001987654321", "2.5", "b"}}
	var got [][]string
	for _, row := range series[0].Values {
		var r []string
		for _, v := range row {
			switch v := v.(type) {
			case json.Number:
				r = append(r, v.String())
			case string:
				r = append(r, v)
			default:
				t.Fatalf("unexpected value %#v in row %v", v, row)
			}
		}
		got = append(got, r)
	}
	if len(got) != len(want) {
		t.Fatalf("got rows %v, want %v", got, want)
	}
	for i := range want {
		if strings.Join(got[i], " ") != strings.Join(want[i], " ") {
			t.Errorf("row %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

// TestWriteRefused checks how the real InfluxDB's refusals are sorted:
// points it will never take are rejected, a missing database is only
// unavailable.
func TestWriteRefused(t *testing.T) {
	tests := []struct {
		name    string
		bucket  string // empty for the test's database
		lines   string
		wantErr error
		wantMsg string
	}{
		{"FieldTypeConflict", "", `m v="text" 2`, influx.ErrRejected, "conflict"},
		{"UnparsableLine", "", "m v=", influx.ErrRejected, "unable to parse"},
		{"MissingDatabase", "metricgate_no_such_database", "m v=1i 1", influx.ErrUnavailable, "database not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := testenv.InfluxDB(t)
			ctx := context.Background()
			if err := newWriter(t, influx.Config{URL: db.URL, Bucket: db.Name}).Write(ctx, []byte("m v=1i 1")); err != nil {
				t.Fatalf("first Write: got %v, want nil", err)
			}
			bucket := tt.bucket
			if bucket == "" {
				bucket = db.Name
			}
			err := newWriter(t, influx.Config{URL: db.URL, Bucket: bucket}).Write(ctx, []byte(tt.lines))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Write(%q): got error %v, want %v", tt.lines, err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Write(%q): got error %q, want it to mention %q", tt.lines, err, tt.wantMsg)
			}
			if got := db.Count(t, "m", "v"); got != 1 {
				t.Errorf("count of m.v: got %d, want 1", got)
			}
		})
	}
}

// TestWriteTo writes through one Writer to its own bucket and to two
// others: each point lands in the bucket it was written to alone, and a
// bucket InfluxDB lacks is ErrNoBucket, which is also ErrUnavailable.
func TestWriteTo(t *testing.T) {
	own, other := testenv.InfluxDB(t), testenv.InfluxDB(t)
	w := newWriter(t, influx.Config{URL: own.URL, Bucket: own.Name})
	ctx := context.Background()
	for _, c := range []struct{ bucket, lines string }{
		{"", "m v=1i 1\n"}, {own.Name, "m v=2i 2\n"}, {other.Name, "m v=3i 3\nm v=4i 4\nm v=5i 5\n"},
	} {
		if err := w.WriteTo(ctx, c.bucket, []byte(c.lines)); err != nil {
			t.Fatalf("WriteTo(%q): %v", c.bucket, err)
		}
	}
	if a, b := own.Count(t, "m", "v"), other.Count(t, "m", "v"); a != 2 || b != 3 {
		t.Errorf("the Writer's bucket holds %d points and the other %d, want 2 and 3", a, b)
	}
	err := w.WriteTo(ctx, "metricgate_no_such_database", []byte("m v=1i 1\n"))
	if !errors.Is(err, influx.ErrNoBucket) || !errors.Is(err, influx.ErrUnavailable) || !strings.Contains(err.Error(), "database not found") {
		t.Errorf("WriteTo a missing database: %v, want ErrNoBucket and ErrUnavailable", err)
	}
}

// TestUnreachable points a Writer at a closed port.
func TestUnreachable(t *testing.T) {
	url := "http://" + testenv.FreeAddr(t)
	w := newWriter(t, influx.Config{URL: url, Bucket: "metricgate"})
	ctx := context.Background()
	if err := w.Write(ctx, []byte("m v=1")); !errors.Is(err, influx.ErrUnavailable) {
		t.Errorf("Write: got error %v, want %v", err, influx.ErrUnavailable)
	}
	if err := w.Ping(ctx); !errors.Is(err, influx.ErrUnavailable) {
		t.Errorf("Ping: got error %v, want %v", err, influx.ErrUnavailable)
	}
}

// fake is an InfluxDB stand-in for answers a real one will not give on
// demand. It records what it is sent.
type fake struct {
	*httptest.Server
	requests atomic.Int64
	body     atomic.Value // string
}

func newFake(t *testing.T, h http.HandlerFunc) *fake {
	t.Helper()
	f := &fake{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		b, _ := io.ReadAll(r.Body)
		f.body.Store(string(b))
		h(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// TestWriteStatus checks how error statuses are sorted, and that the wait
// InfluxDB asks for is reported.
func TestWriteStatus(t *testing.T) {
	tests := []struct {
		name           string
		status         int
		header         map[string]string
		body           string
		wantErr        error
		wantRetryAfter time.Duration
		wantMsg        string
	}{
		{name: "TooManyRequests", status: 429, header: map[string]string{"Retry-After": "7"},
			wantErr: influx.ErrUnavailable, wantRetryAfter: 7 * time.Second},
		{name: "ServiceUnavailable", status: 503, wantErr: influx.ErrUnavailable},
		{name: "ServiceUnavailableRetryAfter", status: 503, header: map[string]string{"Retry-After": "30"},
			wantErr: influx.ErrUnavailable, wantRetryAfter: 30 * time.Second},
		{name: "InternalError", status: 500, body: "boom", wantErr: influx.ErrUnavailable, wantMsg: "boom"},
		{name: "Unauthorized", status: 401, wantErr: influx.ErrUnavailable},
		{name: "TooLarge", status: 413, body: "request entity too large", wantErr: influx.ErrRejected},
		{name: "Unprocessable", status: 422, body: "points beyond retention policy",
			wantErr: influx.ErrRejected, wantMsg: "points beyond retention policy"},
		{name: "BadRequestJSON", status: 400,
			header:  map[string]string{"Content-Type": "application/json", "X-Influxdb-Error": "partial write: bad timestamp"},
			body:    `{"error":"partial write: bad timestamp"}`,
			wantErr: influx.ErrRejected, wantMsg: "bad timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			lines := "m,t=a v=1 1\nm,t=b v=2 2"
			err := newWriter(t, influx.Config{URL: f.URL, Bucket: "db"}).Write(context.Background(), []byte(lines))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Write: got error %v, want %v", err, tt.wantErr)
			}
			if other := map[error]error{influx.ErrRejected: influx.ErrUnavailable, influx.ErrUnavailable: influx.ErrRejected}[tt.wantErr]; errors.Is(err, other) {
				t.Errorf("Write: got error %v, which is also %v", err, other)
			}
			if got := influx.RetryAfter(err); got != tt.wantRetryAfter {
				t.Errorf("RetryAfter: got %v, want %v", got, tt.wantRetryAfter)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Write: got error %q, want it to mention %q", err, tt.wantMsg)
			}
			if got, _ := f.body.Load().(string); got != lines || f.requests.Load() != 1 {
				t.Errorf("InfluxDB got %d requests, the last with body %q; want 1 with %q", f.requests.Load(), got, lines)
			}
		})
	}
}

// TestWriteEmpty checks that nothing to write sends nothing.
func TestWriteEmpty(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	w := newWriter(t, influx.Config{URL: f.URL, Bucket: "db"})
	for _, lines := range [][]byte{nil, {}} {
		if err := w.Write(context.Background(), lines); err != nil {
			t.Errorf("Write(%q): got %v, want nil", lines, err)
		}
	}
	if got := f.requests.Load(); got != 0 {
		t.Errorf("got %d requests, want 0", got)
	}
}

// TestWriteToDoneWithLines checks that WriteTo is done with the lines it
// was given when it returns, even when the answer comes before the body
// is all sent: the forwarder reuses the memory of a delivered batch. A
// read of the lines after WriteTo returns is a race the race detector
// reports. It needs a server that refuses a body it has not read, which
// InfluxDB does not do on demand.
func TestWriteToDoneWithLines(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"code":"invalid","message":"refused unread"}`, http.StatusBadRequest)
	}))
	t.Cleanup(srv.Close)
	w := newWriter(t, influx.Config{URL: srv.URL, Bucket: "db"})
	text := strings.Repeat("m v=1i 1\n", 4<<20) // 36 MB: more than the sockets hold
	lines := []byte(text)
	for range 3 {
		if err := w.WriteTo(context.Background(), "", lines); !errors.Is(err, influx.ErrRejected) {
			t.Fatalf("WriteTo: %v, want ErrRejected", err)
		}
		clear(lines) // the transport must be done with them
		copy(lines, text)
	}
}

// TestWriteBodyInOneWrite checks that a write's body leaves in one Write
// on the connection, not copied through the transport's 32 KB buffer in
// as many, and that the real InfluxDB gets all of it.
func TestWriteBodyInOneWrite(t *testing.T) {
	db := testenv.InfluxDB(t)
	w := newWriter(t, influx.Config{URL: db.URL, Bucket: db.Name})
	var largest atomic.Int64
	var d net.Dialer
	influx.SetDial(w, func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		return writeSizes{c, &largest}, err
	})
	var b strings.Builder
	const points = 20000
	for i := range points {
		fmt.Fprintf(&b, "bulk,host=h%d value=%di %d\n", i%10, i, 1700000000000000000+i)
	}
	body := b.String() // about 900 KB
	if err := w.Write(context.Background(), []byte(body)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if got := db.Count(t, "bulk", "value"); got != points {
		t.Fatalf("count of bulk.value: got %d, want %d", got, points)
	}
	// The transport's buffer takes the headers and the body's first bytes.
	if got, want := largest.Load(), int64(len(body)-4096); got < want {
		t.Errorf("largest Write on the connection: %d bytes, want at least %d of the %d-byte body", got, want, len(body))
	}
}

// writeSizes is a connection that keeps the size of its largest Write.
type writeSizes struct {
	net.Conn
	largest *atomic.Int64
}

func (c writeSizes) Write(p []byte) (int, error) {
	if n := int64(len(p)); n > c.largest.Load() {
		c.largest.Store(n)
	}
	return c.Conn.Write(p)
}

// TestWriteTimeout checks that Config.Timeout bounds a request to an
// InfluxDB that never answers.
func TestWriteTimeout(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
	}{
		{"OneSecond", time.Second},
		{"SubSecond", 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			})
			t.Cleanup(func() { close(release) }) // before the server closes
			w := newWriter(t, influx.Config{URL: f.URL, Bucket: "db", Timeout: tt.timeout})

			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
			defer cancel()
			start := time.Now()
			err := w.Write(ctx, []byte("m v=1"))
			elapsed := time.Since(start)
			if !errors.Is(err, influx.ErrUnavailable) {
				t.Errorf("Write: got error %v, want %v", err, influx.ErrUnavailable)
			}
			if most := tt.timeout + time.Second; elapsed > most {
				t.Errorf("Write with Timeout %v: got an answer after %v, want at most %v", tt.timeout, elapsed.Round(time.Millisecond), most)
			}
		})
	}
}

// TestWriteGzip checks that a compressed write reaches InfluxDB whole, and
// that GzipAuto compresses only what leaves the host.
func TestWriteGzip(t *testing.T) {
	db := testenv.InfluxDB(t)
	var b strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&b, "gz,host=h%d v=%di %d\n", i%10, i, 1700000000000000000+i)
	}
	if err := newWriter(t, influx.Config{URL: db.URL, Bucket: db.Name, Gzip: influx.GzipAlways}).Write(context.Background(), []byte(b.String())); err != nil {
		t.Fatalf("Write: got %v, want nil", err)
	}
	if got := db.Count(t, "gz", "v"); got != 1000 {
		t.Fatalf("count of gz.v: got %d, want 1000", got)
	}

	var encodings []string
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		encodings = append(encodings, r.Header.Get("Content-Encoding"))
		w.WriteHeader(204)
	})
	for _, g := range []influx.Gzip{influx.GzipAuto, influx.GzipNever, influx.GzipAlways} {
		if err := newWriter(t, influx.Config{URL: f.URL, Bucket: "db", Gzip: g}).Write(context.Background(), []byte("m v=1 1\n")); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(encodings, ","); got != ",,gzip" {
		t.Errorf("Content-Encoding of auto (loopback), never, always: got %q, want \",,gzip\"", got)
	}
	body, _ := f.body.Load().(string)
	zr, err := gzip.NewReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if plain, _ := io.ReadAll(zr); string(plain) != "m v=1 1\n" {
		t.Errorf("the gzipped body reads %q, want %q", plain, "m v=1 1\n")
	}
}
