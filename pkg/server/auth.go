package server

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/limit"
	"github.com/metricgate/metricgate/pkg/metrics"
)

// authenticator checks a request's key against its caller's address and
// throttles addresses that keep failing.
type authenticator struct {
	keys     Keys
	failures *limit.Failures
	trusted  []netip.Prefix
	log      *slog.Logger
	metrics  *metrics.Metrics
}

// authenticate returns the key and caller address of r, whose key is key,
// or an error for writeError. A throttled address is refused before its key
// is looked at.
func (a *authenticator) authenticate(w http.ResponseWriter, r *http.Request, key string) (keystore.Key, netip.Addr, error) {
	addr, ok := clientAddr(r, a.trusted)
	if !ok {
		return keystore.Key{}, addr, fmt.Errorf("%w: cannot parse the caller's address", errNoKey)
	}
	if wait, blocked := a.failures.Blocked(addr); blocked {
		a.metrics.AuthFailures.WithLabelValues(metrics.AuthThrottled).Inc()
		setRetryAfter(w, wait)
		return keystore.Key{}, addr, fmt.Errorf("%w: %s has failed to authenticate too often", errThrottled, addr)
	}
	var k keystore.Key
	err := errNoKey
	if key != "" {
		k, err = a.keys.Authenticate(r.Context(), key, addr)
	}
	if info := infoFrom(r.Context()); info != nil {
		info.keyID = k.ID
	}
	if err != nil {
		reason := authFailureReason(err)
		if reason == "" {
			// The key store could not answer (a 503): the caller did
			// nothing wrong, so this neither counts nor throttles it.
			a.log.Warn("key store could not check a key", "addr", addr.String(), "key_id", k.ID, "error", err.Error(),
				"request_id", requestIDFrom(r.Context()))
			return k, addr, fmt.Errorf("caller %s: %w", addr, err)
		}
		a.metrics.AuthFailures.WithLabelValues(reason).Inc()
		// One audit line per refusal, with the reason and the key id (the
		// key itself is never logged); the request's own line follows.
		audit := []any{"audit", true, "addr", addr.String(), "key_id", k.ID, "reason", err.Error(), "request_id", requestIDFrom(r.Context())}
		a.log.Warn("audit: authentication failed", audit...)
		if a.failures.Fail(addr) {
			a.log.Warn("audit: address throttled after repeated authentication failures", audit...)
		}
		return k, addr, fmt.Errorf("caller %s: %w", addr, err)
	}
	return k, addr, nil
}

// authFailureReason names err for the auth failures metric, or returns ""
// when err is not a refusal (the key store failed).
func authFailureReason(err error) string {
	switch {
	case errors.Is(err, keystore.ErrUnknownKey):
		return metrics.AuthUnknown
	case errors.Is(err, keystore.ErrRevoked):
		return metrics.AuthRevoked
	case errors.Is(err, keystore.ErrExpired):
		return metrics.AuthExpired
	case errors.Is(err, keystore.ErrHostMismatch):
		return metrics.AuthHostMismatch
	case errors.Is(err, errNoKey):
		return metrics.AuthNoKey
	}
	return ""
}

// requireScope returns errForbidden unless k carries scope.
func requireScope(k keystore.Key, scope string) error {
	if !k.HasScope(scope) {
		return fmt.Errorf("%w: this key lacks the %q scope", errForbidden, scope)
	}
	return nil
}

// setRateHeaders reports d in the RateLimit-* headers, and Retry-After when
// the request was refused.
func setRateHeaders(w http.ResponseWriter, d limit.Decision) {
	if !d.Limited {
		return
	}
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(d.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(d.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(ceilSeconds(d.Reset)))
	if !d.Allowed && !d.TooLarge {
		setRetryAfter(w, d.RetryAfter)
	}
}

func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, ceilSeconds(d))))
}

func ceilSeconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }
