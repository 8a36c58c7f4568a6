package clusterlimit

import (
	"context"
	"net/netip"
	"time"

	"github.com/metricgate/metricgate/pkg/limit"
	"github.com/metricgate/metricgate/pkg/metrics"
)

// Fail records a failed authentication from addr in its source's bucket in
// Redis, so a source has the same tries however its failures are spread
// over the replicas, and reports whether the source was already
// throttled. A source Redis throttled is refused here without asking until
// it earns a try back. Failures are the only requests that ask Redis
// before they are answered, and those of a throttled source do not.
func (l *Limiter) Fail(addr netip.Addr) limit.Failure {
	f := l.sampler.Fail(addr)
	if l.opts.AuthFailBurst <= 0 {
		return f
	}
	for {
		// A second turn only follows a failure of Redis, after which the
		// state is no longer shared.
		if out, ok := l.fail(addr, f); ok {
			return out
		}
	}
}

// fail is Fail for a failure whose log sampling is f. It returns false
// when Redis failed: the state has changed and the caller decides again.
func (l *Limiter) fail(addr netip.Addr, f limit.Failure) (limit.Failure, bool) {
	o := l.opts
	src := limit.Source(addr)
	state, local, _ := l.mode()
	switch state {
	case metrics.LimitsFailOpen:
		lf := local.Fail(addr)
		lf.Log, lf.Unlogged = f.Log, f.Unlogged
		return lf, true
	case metrics.LimitsFailClosed:
		f.Refused, f.RetryAfter, f.Throttled = true, l.closed(0).RetryAfter, true
		return f, true
	}
	now := o.Now()
	if until, ok := l.blockedUntil(src); ok && now.Before(until) {
		f.Refused, f.RetryAfter, f.Throttled = true, until.Sub(now), true
		return f, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()
	res, err := take(ctx, l, prefix+"fail:"+src.String(), o.AuthFailRate, o.AuthFailBurst, 1, 1)
	if err != nil {
		l.failed(err)
		return f, false
	}
	interval := time.Duration(float64(time.Second) / o.AuthFailRate)
	switch {
	case res.granted == 0:
		f.Refused, f.RetryAfter, f.Throttled = true, res.wait, true
		l.block(src, now.Add(res.wait))
	case res.left < 1:
		f.Throttled, f.NowThrottled = true, true
		l.block(src, now.Add(time.Duration((1-res.left)*float64(interval))))
	}
	return f, true
}

// blockedUntil returns until when Redis said src is throttled, if it did.
func (l *Limiter) blockedUntil(src netip.Addr) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	until, ok := l.blocked[src]
	return until, ok
}

// block remembers that src is throttled until then.
func (l *Limiter) block(src netip.Addr, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.blocked[src] = until
}
