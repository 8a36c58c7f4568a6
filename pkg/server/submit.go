package server

import (
	"compress/gzip"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"metricgate/pkg/points"
)

// handleSubmit serves POST /api/submit: a JSON point or array of points,
// authenticated by the X-API-Key header and the caller's address.
func handleSubmit(cfg Config, keys Keys, out Writer) http.Handler {
	opts := points.Options{DefaultMeasurement: cfg.Measurement, MaxPoints: cfg.MaxPoints}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := infoFrom(r.Context())
		key := strings.TrimSpace(r.Header.Get("X-API-Key"))
		if key == "" {
			writeError(w, r, errNoKey)
			return
		}
		addr, ok := clientAddr(r, cfg.TrustedProxies)
		if !ok {
			writeError(w, r, fmt.Errorf("%w: cannot parse the caller's address", errNoKey))
			return
		}
		k, err := keys.Authenticate(r.Context(), key, addr)
		if info != nil {
			info.keyID = k.ID
		}
		if err != nil {
			writeError(w, r, fmt.Errorf("caller %s: %w", addr, err))
			return
		}

		if err := checkContentType(r); err != nil {
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
		if err != nil {
			writeError(w, r, err)
			return
		}
		lines, err := points.Encode(make([]byte, 0, 64*len(pts)), pts, cfg.HostTag, k.Hostname, cfg.Now())
		if err != nil {
			writeError(w, r, err)
			return
		}
		if err := out.Write(r.Context(), lines); err != nil {
			writeError(w, r, err)
			return
		}
		if info != nil {
			info.points = len(pts)
		}
		writeJSON(w, http.StatusOK, map[string]int{"accepted": len(pts)})
	})
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
