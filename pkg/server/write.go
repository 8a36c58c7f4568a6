package server

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
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
}

// parseFunc reads the points of a body; size is its declared length, or -1
// when that is not known to be the length of what body yields, and now
// stamps points without a time.
type parseFunc func(body io.Reader, size int64, now time.Time) ([]points.Point, error)

// writePipeline is the one path every write endpoint takes: authenticate,
// check the scope, wait for the pacer and for room to hold the body, read
// and parse the body, check the measurements, take the points from the
// key's rate, encode with the host tag, write, record usage.
type writePipeline struct {
	cfg     Config
	auth    *authenticator
	limits  *limit.Keys
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
			writeErrorAs(w, r, err, api.errorBody)
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
	parse, err := api.parser(r)
	if err != nil {
		return 0, err
	}
	if held := p.pacer.Wait(r.Context()); held > 0 {
		p.metrics.Paced.Inc()
		p.metrics.PacedSeconds.Add(held.Seconds())
	}
	body, size, err := requestBody(w, r, p.cfg.MaxBody)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	held, err := p.holdBody(w, r, k.ID, size)
	if err != nil {
		return 0, err
	}
	defer held.release()
	now := p.cfg.Now()
	pts, err := parse(body, size, now)
	if err != nil {
		return 0, err
	}
	if err := checkMeasurements(k, pts); err != nil {
		return 0, err
	}
	d := p.limits.Allow(k.ID, k.Rate, k.Burst, len(pts))
	setRateHeaders(w, d)
	if !d.Allowed {
		p.metrics.RateLimited.Inc()
		return 0, rateError(d, len(pts))
	}
	lines, err := points.Encode(make([]byte, 0, 64*len(pts)), pts, p.cfg.HostTag, k.Hostname, now)
	if err != nil {
		return 0, err
	}
	if err := p.out.Write(r.Context(), lines); err != nil {
		return 0, err
	}
	p.metrics.PointsAccepted.Add(float64(len(pts)))
	infoFrom(r.Context()).points = len(pts)
	p.usage.Record(k.ID, addr.String(), now, len(pts))
	return len(pts), nil
}

// checkMeasurements refuses points outside the key's measurement list,
// naming the first: by its line for line protocol, its index for JSON.
func checkMeasurements(k keystore.Key, pts []points.Point) error {
	if len(k.Measurements) == 0 {
		return nil
	}
	for i, p := range pts {
		if !slices.Contains(k.Measurements, p.Measurement) {
			where := fmt.Sprintf("point %d", i)
			if p.Line > 0 {
				where = fmt.Sprintf("line %d", p.Line)
			}
			return fmt.Errorf("%w: %s: this key may not write measurement %q (allowed: %s)",
				errForbidden, where, p.Measurement, strings.Join(k.Measurements, ", "))
		}
	}
	return nil
}

func rateError(d limit.Decision, n int) error {
	if d.TooLarge {
		return fmt.Errorf("%w: a request of %d points exceeds this key's burst of %d points; send smaller batches", errRateLimited, n, d.Limit)
	}
	return fmt.Errorf("%w: this key may send %d more points now; retry after %d s", errRateLimited, d.Remaining, max(1, ceilSeconds(d.RetryAfter)))
}

// requestBody returns the body, decompressed when Content-Encoding is gzip,
// limited to max bytes both before and after decompression, and its size:
// the declared Content-Length of an uncompressed body within max, else -1.
func requestBody(w http.ResponseWriter, r *http.Request, max int64) (io.ReadCloser, int64, error) {
	body := http.MaxBytesReader(w, r.Body, max)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
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
