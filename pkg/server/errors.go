package server

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/metricgate/metricgate/pkg/keyfile"
	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/points"
)

// Errors the handlers raise themselves.
var (
	errNoKey            = errors.New("no API key in the request")
	errUnsupportedMedia = errors.New("unsupported media type")
	errForbidden        = errors.New("forbidden")
	errRateLimited      = errors.New("rate limit exceeded")
	errSeriesLimited    = errors.New("series limit exceeded")
	errQuarantined      = errors.New("key quarantined")
	errThrottled        = errors.New("too many failed authentications")
	errInvalidParam     = errors.New("invalid query parameter")
	errInvalidRequest   = errors.New("invalid request")
	errNotActive        = errors.New("only an active key can be rotated")
)

// unavailableError is an error of the store behind the gateway (the spool's
// ErrFull, ErrWrite, ErrClosed) meaning it cannot take points now but may
// later: 503 with Retry-After. Unavailable says why, for the client.
type unavailableError interface {
	error
	Unavailable() string
}

// retryAfter is what a client is told to wait when the gateway cannot take
// its points now.
const retryAfter = "5"

// statusOf maps an error to the HTTP status and the message the client sees.
// It is the one place that decides this. Every authentication failure gets
// the same answer, so a caller learns nothing about which keys exist; the
// log keeps the precise reason. Anything unexpected is "Internal error.".
func statusOf(err error) (int, string) {
	var (
		tooLarge    *http.MaxBytesError
		unavailable unavailableError
	)
	switch {
	case errors.Is(err, errNoKey), errors.Is(err, keystore.ErrUnknownKey), errors.Is(err, keystore.ErrRevoked),
		errors.Is(err, keystore.ErrExpired), errors.Is(err, keystore.ErrHostMismatch):
		return http.StatusUnauthorized, "Unauthorized"
	case errors.Is(err, errForbidden):
		return http.StatusForbidden, "Forbidden"
	case errors.Is(err, errRateLimited), errors.Is(err, errSeriesLimited), errors.Is(err, errThrottled),
		errors.Is(err, errQuarantined):
		return http.StatusTooManyRequests, "Too Many Requests"
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", tooLarge.Limit)
	case errors.Is(err, points.ErrTooManyPoints):
		return http.StatusRequestEntityTooLarge, err.Error()
	case errors.Is(err, os.ErrDeadlineExceeded):
		return http.StatusRequestTimeout, "the request body was not received in time; send it faster, or smaller"
	case errors.Is(err, points.ErrInvalid), errors.Is(err, points.ErrEmpty), errors.Is(err, errInvalidParam):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, keystore.ErrNotFound):
		return http.StatusNotFound, "key not found"
	case errors.Is(err, keystore.ErrInvalidHostname), errors.Is(err, keystore.ErrInvalidScope),
		errors.Is(err, keystore.ErrInvalidPolicy), errors.Is(err, errInvalidRequest):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, errNotActive), errors.Is(err, keystore.ErrNameTaken), errors.Is(err, keystore.ErrChanged):
		return http.StatusConflict, err.Error()
	case errors.Is(err, keyfile.ErrInvalid):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, errUnsupportedMedia):
		return http.StatusUnsupportedMediaType, err.Error()
	case errors.As(err, &unavailable):
		return http.StatusServiceUnavailable, unavailable.Unavailable() + ", retry later"
	case errors.Is(err, keystore.ErrLookup):
		return http.StatusServiceUnavailable, "the key's host name could not be looked up in DNS, retry later"
	case errors.Is(err, errBodyMemory):
		return http.StatusServiceUnavailable, "the gateway is reading as many request bodies as its memory allows, retry later"
	}
	return http.StatusInternalServerError, "Internal error."
}

// errorShape builds an API's error body from the status and message
// statusOf chose for err. It decides only the body's form, never the status.
type errorShape func(status int, msg string, err error) any

// writeErrorAs answers with err's status and a body of the given shape,
// adds Retry-After to a 503, and records err for the request log.
func writeErrorAs(w http.ResponseWriter, err error, shape errorShape) {
	status, msg := statusOf(err)
	if info := infoOf(w); info != nil {
		info.err = err
	}
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeJSON(w, status, shape(status, strings.TrimSpace(msg), err))
}

// nativeError is the body of /api/submit: {"error": message}, plus the
// precise reason for 403 and 429. A key that authenticated is told what it
// lacks; a throttled address only that it must wait.
func nativeError(status int, msg string, err error) any {
	body := map[string]string{"error": msg}
	if status == http.StatusForbidden || status == http.StatusTooManyRequests {
		body["message"] = err.Error()
	}
	return body
}

// influxV1Error is the body InfluxDB 1.x answers with: {"error": message}.
func influxV1Error(status int, msg string, err error) any {
	if status == http.StatusUnauthorized {
		msg = "authorization failed"
	}
	return map[string]string{"error": detail(status, msg, err)}
}

// influxV2Error is the body InfluxDB 2.x answers with: {"code": kind,
// "message": message}, the code named for the status as InfluxDB names it.
func influxV2Error(status int, msg string, err error) any {
	code, ok := map[int]string{
		http.StatusBadRequest:            "invalid",
		http.StatusRequestTimeout:        "invalid", // the body came too slowly: InfluxDB has no code of its own for it
		http.StatusUnauthorized:          "unauthorized",
		http.StatusForbidden:             "forbidden",
		http.StatusRequestEntityTooLarge: "request too large",
		http.StatusUnsupportedMediaType:  "unsupported media type",
		http.StatusTooManyRequests:       "too many requests",
		http.StatusServiceUnavailable:    "unavailable",
	}[status]
	if !ok {
		code = "internal error"
	}
	return map[string]string{"code": code, "message": detail(status, msg, err)}
}

// detail is the message of the InfluxDB shapes, which have one message
// field: the precise reason for 403 and 429, otherwise msg.
func detail(status int, msg string, err error) string {
	if status == http.StatusForbidden || status == http.StatusTooManyRequests {
		return err.Error()
	}
	return msg
}
