package server

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/limit"
	"github.com/metricgate/metricgate/pkg/metrics"
	"github.com/metricgate/metricgate/pkg/points"
)

// writeAPI is what one write endpoint does differently from the others:
// where it finds the key, how it reads points, and how it answers.
type writeAPI struct {
	// key returns the API key the request carries, or "".
	key func(r *http.Request) string
	// parser checks the request's headers and query and returns the function
	// that reads its body, or an error for writeError.
	parser func(r *http.Request) (parseFunc, error)
	// ok answers a request whose n points were written.
	ok func(w http.ResponseWriter, n int)
	// errorBody shapes the body of an error answer.
	errorBody errorShape
	// parseFactor is the memory the points of a body of this format take
	// per byte of the body, about: what the body budget sets aside for
	// them before the body is read.
	parseFactor int64
}

// parseFunc reads the points of a body into w's lines, with the host tag
// set to host; size is its declared length, or -1 when that is not known
// to be the length of what body yields, now stamps points without a time,
// and grow asks the body budget for the room the parse's memory takes
// (points.Options.Grow).
type parseFunc func(w *parseWork, body io.Reader, size int64, now time.Time, host string, grow func(int64) error) (*points.Lines, error)

// parseWork is the memory one request's parse works in, reused from
// request to request: the line-protocol scanner, the JSON one, and the
// request's room in the body budget, with the room's grow bound once for
// the parse: a lease and two method values made per request were three
// allocations on every write's path.
type parseWork struct {
	scan points.Scanner
	json points.JSONScanner
	room lease
	grow func(int64) error // room.grow
}

// works are the parses' memory, kept between requests: a 5000-point batch
// otherwise allocated its megabyte of line protocol afresh every time.
var works = sync.Pool{New: func() any {
	w := new(parseWork)
	w.grow = w.room.grow
	return w
}}

// writePipeline is the one path every write endpoint takes: authenticate,
// check the scope, that the key is not quarantined and that it has tokens
// left, wait for the pacer and
// for room to hold the body, read and parse the body within the point
// budgets, check the measurements, take a token per field value from the
// key's rate, admit the key's new series, check the field types against
// the bucket's, encode with the host tag, write, record usage.
type writePipeline struct {
	cfg     Config
	auth    *authenticator
	limits  Limits
	series  *limit.Series
	schema  Schema
	bodies  *bodyBudget
	pacer   Pacer
	out     Writer
	usage   Usage
	metrics *metrics.Metrics
}

// handler serves one write endpoint through the pipeline.
func (p *writePipeline) handler(api writeAPI) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := p.write(w, r, api)
		if err != nil {
			writeErrorAs(w, err, api.errorBody)
			return
		}
		api.ok(w, n)
	})
}

// write runs the pipeline for r and returns the number of points written.
// Nothing is written unless every point passed every check.
func (p *writePipeline) write(w http.ResponseWriter, r *http.Request, api writeAPI) (int, error) {
	k, addr, err := p.auth.authenticate(w, r, api.key(r))
	if err != nil {
		return 0, err
	}
	if err := requireScope(k, keystore.ScopeSubmit); err != nil {
		return 0, err
	}
	if k.Quarantined() {
		return 0, p.quarantined(w, k)
	}
	parse, err := api.parser(r)
	if err != nil {
		return 0, err
	}
	// A key with nothing left to send is refused before its body is read.
	if d := p.limits.Check(k.ID, k.Rate, k.Burst); !d.Allowed {
		return 0, p.rateLimited(w, d, 0)
	}
	if held := p.pacer.Wait(r.Context()); held > 0 {
		p.metrics.Paced.Inc()
		p.metrics.PacedSeconds.Add(held.Seconds())
	}
	now := p.cfg.Now()
	work := works.Get().(*parseWork)
	defer works.Put(work)
	defer work.room.release() // before the work, and its room, go back to the pool
	lines, err := p.read(w, r, k, work, parse, api.parseFactor, now)
	if err != nil {
		return 0, err
	}
	if err := p.admit(w, k, lines, now); err != nil {
		return 0, err
	}
	if err := p.out.AppendTo(k.ID, k.Bucket, lines.Data, lines.Points); err != nil {
		return 0, err
	}
	n := lines.Points
	p.metrics.PointsAccepted.Add(float64(n))
	infoOf(w).points = n
	p.usage.Record(k.ID, addrText(r, addr), now, n)
	return n, nil
}

// read reads and parses r's body, sent with key id, holding room in the body
// budget (and in the key's share, see holdBody) for the body and for the
// points the parse builds in work.room, until the caller releases it: for
// a body of known size, factor times it is set aside with it; past that,
// and for a body of unknown size (counted as the body limit), the parse
// asks for what its points take.
func (p *writePipeline) read(w http.ResponseWriter, r *http.Request, k keystore.Key, work *parseWork, parse parseFunc, factor int64, now time.Time) (*points.Lines, error) {
	body, size, err := requestBody(w, r, p.cfg.MaxBody)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	if err := p.holdBody(w, r, &work.room, k.ID, size, max(size, 0)*factor); err != nil {
		return nil, err
	}
	return parse(work, body, size, now, k.Hostname, work.grow)
}

// admit checks lines against what k may write: their measurements, its
// rate (a token per field value), its series this hour and the field types
// of its bucket. Only a request that passes all of them takes tokens and
// series.
func (p *writePipeline) admit(w http.ResponseWriter, k keystore.Key, lines *points.Lines, now time.Time) error {
	if err := checkMeasurements(k, lines.Measurements); err != nil {
		return err
	}
	d := p.limits.Allow(k.ID, k.Rate, k.Burst, lines.Values)
	setRateHeaders(w, d)
	if !d.Allowed {
		return p.rateLimited(w, d, lines.Values)
	}
	if sd := p.series.Admit(now, k.ID, seriesLimit(k), lines.Series); !sd.Allowed {
		p.metrics.RateLimited.Inc()
		setRetryAfter(w, sd.Reset)
		return fmt.Errorf("%w: this key has written %d distinct series this hour, its limit of %d, and this request has %d new ones;"+
			" its series are accepted, new ones again in %d s", errSeriesLimited, sd.Written, sd.Limit, sd.New, max(1, ceilSeconds(sd.Reset)))
	}
	return p.schema.Check(destination(p.cfg, k), lines.Fields)
}

// rateLimited reports d, a refusal of a request of n field values (0 when
// its body was not read), and returns its error.
func (p *writePipeline) rateLimited(w http.ResponseWriter, d limit.Decision, n int) error {
	setRateHeaders(w, d)
	p.metrics.RateLimited.Inc()
	if n == 0 {
		return fmt.Errorf("%w: this key has no field values left to send now; retry after %d s", errRateLimited, max(1, ceilSeconds(d.RetryAfter)))
	}
	return rateError(d, n)
}

// quarantinedRetry is the Retry-After of a quarantined key's writes: an
// admin must release it, which takes a person some time.
const quarantinedRetry = time.Minute

// quarantined refuses a write of k, which is quarantined, saying since
// when, why and who can lift it.
func (p *writePipeline) quarantined(w http.ResponseWriter, k keystore.Key) error {
	p.metrics.QuarantinedRequests.Inc()
	setRetryAfter(w, quarantinedRetry)
	return fmt.Errorf("%w: key %d is quarantined since %s because InfluxDB kept refusing its points (%s); "+
		"fix what it sends, then ask an admin to release it (keyctl release %d)",
		errQuarantined, k.ID, k.QuarantinedAt.UTC().Format(time.RFC3339), k.QuarantineReason, k.ID)
}

// seriesLimit is k's own cap on its series per hour, 0 for the gateway's
// (--max-series-per-key).
func seriesLimit(k keystore.Key) int { return k.MaxSeries }

// destination is the bucket k's points go to: its own, or the gateway's.
// The spool and the forwarder keep each bucket's points apart, and the
// schema guard checks a point against the types of the bucket it goes to.
func destination(cfg Config, k keystore.Key) string {
	if k.Bucket != "" {
		return k.Bucket
	}
	return cfg.Bucket
}

// checkMeasurements refuses measurements outside the key's list, naming
// the first point that has one: by its line for line protocol, its index
// for JSON.
func checkMeasurements(k keystore.Key, ms []points.Place) error {
	if len(k.Measurements) == 0 {
		return nil
	}
	for _, m := range ms {
		if !slices.Contains(k.Measurements, m.Measurement) {
			return fmt.Errorf("%w: %s: this key may not write measurement %q (allowed: %s)",
				errForbidden, m.Where(), m.Measurement, strings.Join(k.Measurements, ", "))
		}
	}
	return nil
}

func rateError(d limit.Decision, n int) error {
	if d.TooLarge {
		return fmt.Errorf("%w: a request of %d field values exceeds this key's burst of %d; send smaller batches", errRateLimited, n, d.Limit)
	}
	return fmt.Errorf("%w: this key may send %d more field values now; retry after %d s", errRateLimited, d.Remaining, max(1, ceilSeconds(d.RetryAfter)))
}

// requestBody returns the body, decompressed when Content-Encoding is gzip,
// limited to max bytes both before and after decompression, and its size:
// the declared Content-Length of an uncompressed body within max, else -1.
func requestBody(w http.ResponseWriter, r *http.Request, max int64) (io.ReadCloser, int64, error) {
	body := http.MaxBytesReader(w, r.Body, max)
	switch enc := strings.ToLower(strings.TrimSpace(headerValue(r.Header, "Content-Encoding"))); enc {
	case "", "identity":
		size := r.ContentLength
		if size > max {
			size = -1
		}
		return body, size, nil
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: body is not valid gzip: %w", points.ErrInvalid, err)
		}
		return http.MaxBytesReader(w, zr, max), -1, nil
	default:
		return nil, 0, fmt.Errorf("%w: Content-Encoding %q: send gzip or none", errUnsupportedMedia, enc)
	}
}
