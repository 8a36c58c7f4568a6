package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"metricgate/pkg/influx"
	"metricgate/pkg/keystore"
	"metricgate/pkg/points"
	"metricgate/pkg/spool"
)

// Errors the handlers raise themselves.
var (
	errNoKey            = errors.New("no API key in the request")
	errUnsupportedMedia = errors.New("unsupported media type")
	errForbidden        = errors.New("forbidden")
	errRateLimited      = errors.New("rate limit exceeded")
	errThrottled        = errors.New("too many failed authentications")
)

// retryAfter is what a client is told to wait when the gateway cannot take
// its points now.
const retryAfter = "5"

// statusOf maps an error to the HTTP status and the message the client sees.
// It is the one place that decides this. Every authentication failure gets
// the same answer, so a caller learns nothing about which keys exist; the
// log keeps the precise reason. Anything unexpected is "Internal error.".
func statusOf(err error) (int, string) {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.Is(err, errNoKey), errors.Is(err, keystore.ErrUnknownKey), errors.Is(err, keystore.ErrRevoked),
		errors.Is(err, keystore.ErrExpired), errors.Is(err, keystore.ErrHostMismatch):
		return http.StatusUnauthorized, "Unauthorized"
	case errors.Is(err, errForbidden):
		return http.StatusForbidden, "Forbidden"
	case errors.Is(err, errRateLimited), errors.Is(err, errThrottled):
		return http.StatusTooManyRequests, "Too Many Requests"
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", tooLarge.Limit)
	case errors.Is(err, points.ErrTooManyPoints):
		return http.StatusRequestEntityTooLarge, err.Error()
	case errors.Is(err, points.ErrInvalid), errors.Is(err, points.ErrEmpty):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, errUnsupportedMedia):
		return http.StatusUnsupportedMediaType, err.Error()
	case errors.Is(err, influx.ErrRejected):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, spool.ErrFull):
		return http.StatusServiceUnavailable, "the gateway's spool is full while InfluxDB catches up, retry later"
	case errors.Is(err, spool.ErrWrite), errors.Is(err, spool.ErrClosed):
		return http.StatusServiceUnavailable, "the gateway cannot store points now, retry later"
	case errors.Is(err, influx.ErrUnavailable):
		return http.StatusServiceUnavailable, "metrics storage is unavailable, retry later"
	}
	return http.StatusInternalServerError, "Internal error."
}

// writeError answers with err's status and a JSON body {"error": message},
// and records err for the request log.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := statusOf(err)
	if info := infoFrom(r.Context()); info != nil {
		info.err = err
	}
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	body := map[string]string{"error": strings.TrimSpace(msg)}
	// A key that authenticated is told what it lacks; a throttled address
	// only that it must wait.
	if status == http.StatusForbidden || status == http.StatusTooManyRequests {
		body["message"] = err.Error()
	}
	writeJSON(w, status, body)
}
