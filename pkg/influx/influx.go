// Package influx writes line protocol to InfluxDB through the official
// client, github.com/influxdata/influxdb-client-go/v2, and sorts its
// failures into those worth retrying and those that never will succeed.
package influx

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
)

// Errors returned by Writer.Write.
var (
	// ErrUnavailable means InfluxDB could not take the write now (network
	// error, 429, 5xx, or a configuration error such as a missing
	// database); the same write may succeed later.
	ErrUnavailable = errors.New("InfluxDB unavailable")
	// ErrRejected means InfluxDB refused the points themselves (a 400 or
	// 422, such as a field type conflict, or a 413 for too large a batch);
	// retrying the same request will not help.
	ErrRejected = errors.New("InfluxDB rejected the points")
	// ErrNoBucket means InfluxDB has no bucket (database) of the name
	// written to: a 404. An error that wraps it is also ErrUnavailable,
	// since creating the bucket fixes it; a caller that cannot wait for
	// that (a key's own bucket, which only its key writes) tells it apart.
	ErrNoBucket = errors.New("InfluxDB has no such bucket")
)

// noBucketError is ErrNoBucket with InfluxDB's message; it is
// ErrUnavailable too.
type noBucketError struct{ msg string }

func (e noBucketError) Error() string { return ErrNoBucket.Error() + ": " + e.msg }

func (e noBucketError) Is(target error) bool {
	return target == ErrNoBucket || target == ErrUnavailable
}

// Config says where to write. With InfluxDB 1.8 the bucket is "db/rp" (or
// "db" for the default retention policy) and the token empty or "user:pass".
type Config struct {
	URL     string
	Token   string
	Org     string
	Bucket  string
	Timeout time.Duration // per HTTP request; defaults to 10s
}

// Writer writes line protocol to its bucket, or to any other it is given.
// It is safe for concurrent use.
type Writer struct {
	client influxdb2.Client
	org    string
	bucket string
	write  api.WriteAPIBlocking

	mu      sync.Mutex
	buckets map[string]api.WriteAPIBlocking // the other buckets written to
}

// New returns a Writer for cfg. It does not contact InfluxDB.
func New(cfg Config) *Writer {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	// The client takes whole seconds and reads 0 as no timeout at all:
	// round up.
	opts := influxdb2.DefaultOptions().
		SetHTTPRequestTimeout(uint(math.Ceil(timeout.Seconds()))).
		SetPrecision(time.Nanosecond).
		SetMaxRetries(0).
		SetLogLevel(0)
	client := influxdb2.NewClientWithOptions(cfg.URL, cfg.Token, opts)
	return &Writer{client: client, org: cfg.Org, bucket: cfg.Bucket, write: client.WriteAPIBlocking(cfg.Org, cfg.Bucket),
		buckets: map[string]api.WriteAPIBlocking{}}
}

// Write sends lines, newline-separated line protocol with nanosecond
// timestamps, in one request. It returns nil only when InfluxDB confirmed
// the write, and otherwise an error wrapping ErrUnavailable or ErrRejected.
func (w *Writer) Write(ctx context.Context, lines []byte) error {
	return w.WriteTo(ctx, "", lines)
}

// WriteTo is Write to bucket, in the organization of the Writer's Config;
// "" is the Config's bucket. It returns Write's errors, and for a bucket
// InfluxDB does not have one that also wraps ErrNoBucket.
func (w *Writer) WriteTo(ctx context.Context, bucket string, lines []byte) error {
	if len(lines) == 0 {
		return nil
	}
	err := w.api(bucket).WriteRecord(ctx, string(lines))
	if err == nil {
		return nil
	}
	var herr *influxhttp.Error
	if errors.As(err, &herr) {
		switch herr.StatusCode {
		// 413 too: a batch over InfluxDB's body limit never fits, but
		// its halves may, and the forwarder splits what is rejected.
		case 400, 413, 422:
			return fmt.Errorf("%w: %s", ErrRejected, herr.Message)
		case 404:
			return noBucketError{herr.Message}
		}
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// api returns the client's writer of bucket, made on first use.
func (w *Writer) api(bucket string) api.WriteAPIBlocking {
	if bucket == "" || bucket == w.bucket {
		return w.write
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	a, ok := w.buckets[bucket]
	if !ok {
		a = w.client.WriteAPIBlocking(w.org, bucket)
		w.buckets[bucket] = a
	}
	return a
}

// RetryAfter returns how long InfluxDB asked a client to wait before trying
// again (its Retry-After header), or 0.
func RetryAfter(err error) time.Duration {
	var herr *influxhttp.Error
	if errors.As(err, &herr) {
		return time.Duration(herr.RetryAfter) * time.Second
	}
	return 0
}

// Ping reports whether InfluxDB answers its health check.
func (w *Writer) Ping(ctx context.Context) error {
	ok, err := w.client.Ping(ctx)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if !ok {
		return ErrUnavailable
	}
	return nil
}

// Close releases the client's connections.
func (w *Writer) Close() { w.client.Close() }
