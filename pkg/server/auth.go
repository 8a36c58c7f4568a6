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
	failures Limits
	// lookupLogs samples the lines about DNS look-ups that failed, which
	// throttle no one.
	lookupLogs *limit.Failures
	trusted    []netip.Prefix
	log        *slog.Logger
	metrics    *metrics.Metrics
}

// authenticate returns the key and caller address of r, whose key is key,
// or an error for writeError. The key is looked at first: a valid key
// passes even from a throttled address, so that others behind the same
// NAT or proxy cannot lock its host out; only failures are throttled. A
// key longer than any key is refused before it is hashed, and a key whose
// DNS name could not be looked up is answered 503 and not counted.
func (a *authenticator) authenticate(w http.ResponseWriter, r *http.Request, key string) (keystore.Key, netip.Addr, error) {
	addr, ok := clientAddr(r, a.trusted)
	if !ok {
		return keystore.Key{}, addr, fmt.Errorf("%w: cannot parse the caller's address", errNoKey)
	}
	var k keystore.Key
	err := errNoKey
	switch {
	case key == "":
	case len(key) > keystore.MaxKeyLen:
		err = fmt.Errorf("%w: the key is %d bytes, longer than %d", keystore.ErrUnknownKey, len(key), keystore.MaxKeyLen)
	default:
		k, err = a.keys.Authenticate(r.Context(), key, addr)
	}
	if info := infoOf(w); info != nil {
		info.keyID = k.ID
	}
	switch reason := authFailureReason(err); {
	case err == nil:
		return k, addr, nil
	case errors.Is(err, keystore.ErrLookup):
		a.metrics.AuthLookupFailures.Inc()
		if a.lookupLogs.Fail(addr).Log {
			a.logFailure(w, addr, k, err, "key's host name could not be looked up")
		}
		return k, addr, fmt.Errorf("caller %s: %w", addr, err)
	case reason == "":
		return k, addr, err // the key store failed: no refusal
	default:
		return k, addr, a.refuse(w, addr, k, err, reason)
	}
}

// refuse counts a failed authentication from addr, logs it if it is the
// first from its source in a minute, and returns the error to answer: err,
// or errThrottled once the source has failed too often.
func (a *authenticator) refuse(w http.ResponseWriter, addr netip.Addr, k keystore.Key, err error, reason string) error {
	f := a.failures.Fail(addr)
	if f.Refused {
		reason = metrics.AuthThrottled
	}
	a.metrics.AuthFailures.WithLabelValues(reason).Inc()
	// One audit line per source a minute, with the reason and the key id
	// (the key itself is never logged) and how many went unlogged; the
	// request's own line follows.
	if f.Log {
		a.logFailure(w, addr, k, err, "audit: authentication failed", "unlogged_failures", f.Unlogged)
	} else {
		a.metrics.AuthLogsSuppressed.Inc()
	}
	if f.NowThrottled {
		a.logFailure(w, addr, k, err, "audit: address throttled after repeated authentication failures",
			"source", limit.Source(addr).String())
	}
	if f.Refused {
		setRetryAfter(w, f.RetryAfter)
		return fmt.Errorf("%w: %s has failed to authenticate too often", errThrottled, addr)
	}
	return fmt.Errorf("caller %s: %w", addr, err)
}

// logFailure writes one audit line about the failure from addr of the
// request w answers.
func (a *authenticator) logFailure(w http.ResponseWriter, addr netip.Addr, k keystore.Key, err error, msg string, extra ...any) {
	a.log.Warn(msg, append([]any{"audit", true, "addr", addr.String(), "key_id", k.ID, "reason", err.Error(),
		"request_id", requestIDOf(w)}, extra...)...)
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
