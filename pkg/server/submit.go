package server

import (
	"compress/gzip"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"metricgate/pkg/keystore"
	"metricgate/pkg/limit"
	"metricgate/pkg/points"
)

// handleSubmit serves POST /api/submit: a JSON point or array of points,
// authenticated by the X-API-Key header and the caller's address.
func handleSubmit(cfg Config, auth *authenticator, limits *limit.Keys, out Writer, usage Usage) http.Handler {
	opts := points.Options{DefaultMeasurement: cfg.Measurement, MaxPoints: cfg.MaxPoints}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, addr, err := auth.authenticate(w, r, strings.TrimSpace(r.Header.Get("X-API-Key")))
		if err == nil {
			err = requireScope(k, keystore.ScopeSubmit)
		}
		if err == nil {
			err = checkContentType(r)
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		body, err := requestBody(w, r, cfg.MaxBody)
		if err != nil {
			writeError(w, r, err)
			return
		}
		defer body.Close()
		pts, err := points.ParseJSON(body, opts)
		if err == nil {
			err = checkMeasurements(k, pts)
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		d := limits.Allow(k.ID, k.Rate, k.Burst, len(pts))
		setRateHeaders(w, d)
		if !d.Allowed {
			writeError(w, r, rateError(d, len(pts)))
			return
		}
		now := cfg.Now()
		lines, err := points.Encode(make([]byte, 0, 64*len(pts)), pts, cfg.HostTag, k.Hostname, now)
		if err == nil {
			err = out.Write(r.Context(), lines)
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		infoFrom(r.Context()).points = len(pts)
		usage.Record(k.ID, addr.String(), now, len(pts))
		writeJSON(w, http.StatusOK, map[string]int{"accepted": len(pts)})
	})
}

// checkMeasurements refuses points outside the key's measurement list.
func checkMeasurements(k keystore.Key, pts []points.Point) error {
	if len(k.Measurements) == 0 {
		return nil
	}
	for i, p := range pts {
		if !slices.Contains(k.Measurements, p.Measurement) {
			return fmt.Errorf("%w: point %d: this key may not write measurement %q (allowed: %s)",
				errForbidden, i, p.Measurement, strings.Join(k.Measurements, ", "))
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

// checkContentType accepts JSON (application/json or any +json type) and a
// missing Content-Type; anything else is errUnsupportedMedia.
func checkContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return nil
	}
	return fmt.Errorf("%w %q: send application/json", errUnsupportedMedia, ct)
}

// requestBody returns the body, decompressed when Content-Encoding is gzip,
// limited to max bytes both before and after decompression.
func requestBody(w http.ResponseWriter, r *http.Request, max int64) (io.ReadCloser, error) {
	body := http.MaxBytesReader(w, r.Body, max)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return body, nil
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, fmt.Errorf("%w: body is not valid gzip: %w", points.ErrInvalid, err)
		}
		return http.MaxBytesReader(w, zr, max), nil
	default:
		return nil, fmt.Errorf("%w: Content-Encoding %q: send gzip or none", errUnsupportedMedia, enc)
	}
}
