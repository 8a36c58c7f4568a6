// Package limit holds the gateway's limiters: field values per second per
// key (built on golang.org/x/time/rate), so a request costs what it
// writes; the distinct series each key writes per hour, in a Bloom filter
// per key; and failed authentications per client address, against brute
// force.
package limit

import (
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Decision is the outcome of a request for tokens, with what the
// RateLimit-* response headers report.
type Decision struct {
	Allowed    bool
	Limited    bool          // false when no limit applies to the key
	TooLarge   bool          // the request needs more than the burst: it can never pass
	Limit      int           // the burst, the most field values a key may send at once
	Remaining  int           // field values that could be sent now
	Reset      time.Duration // until the bucket is full again
	RetryAfter time.Duration // until this request would pass
}

// Keys limits field values per second per key id: a point of ten fields
// costs ten tokens, so one wide line costs what ten narrow ones do. A
// key's own rate and burst win over the defaults; a rate of 0 everywhere
// means no limit.
type Keys struct {
	defRate  float64
	defBurst int
	now      func() time.Time

	mu sync.Mutex
	m  map[int64]*rate.Limiter
}

// NewKeys returns per-key limiters with the server-wide defaults. A default
// burst of 0 is taken as one second's worth of the rate.
func NewKeys(defRate float64, defBurst int, now func() time.Time) *Keys {
	if now == nil {
		now = time.Now
	}
	return &Keys{defRate: defRate, defBurst: defBurst, now: now, m: map[int64]*rate.Limiter{}}
}

// Allow takes n tokens, one per field value written, from key id's
// bucket, whose rate and burst are r and burst (0 for the defaults). A
// refused request takes nothing.
func (k *Keys) Allow(id int64, r float64, burst, n int) Decision {
	return k.decide(id, r, burst, n, true)
}

// Check reports whether key id has a token left, taking none: a key with
// none is refused before its request's body is read. The Decision is
// Allow's for a request of one token.
func (k *Keys) Check(id int64, r float64, burst int) Decision {
	return k.decide(id, r, burst, 1, false)
}

// decide is Allow when take is set, Check when it is not.
func (k *Keys) decide(id int64, r float64, burst, n int, take bool) Decision {
	if r == 0 {
		r = k.defRate
	}
	if burst == 0 {
		burst = k.defBurst
	}
	if r <= 0 {
		return Decision{Allowed: true}
	}
	if burst <= 0 {
		burst = int(math.Ceil(r))
	}
	// Read the clock under the lock: times taken outside it can reach the
	// limiter out of order, and each step back in time is credited again.
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	lim := k.m[id]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(r), burst)
		k.m[id] = lim
	} else if lim.Limit() != rate.Limit(r) || lim.Burst() != burst {
		lim.SetLimitAt(now, rate.Limit(r))
		lim.SetBurstAt(now, burst)
	}
	d := Decision{Limited: true, Limit: burst}
	if n > burst {
		d.TooLarge = true
	} else {
		res := lim.ReserveN(now, n)
		if delay := res.DelayFrom(now); delay > 0 {
			res.CancelAt(now)
			d.RetryAfter = delay
		} else {
			if !take {
				res.CancelAt(now)
			}
			d.Allowed = true
		}
	}
	tokens := lim.TokensAt(now)
	d.Remaining = int(math.Max(0, math.Floor(tokens)))
	d.Reset = time.Duration((float64(burst) - tokens) / r * float64(time.Second))
	return d
}

// Failures throttles addresses that fail to authenticate: each failure
// takes a token, tokens come back at a slow rate, and an address with none
// left is refused before its key is even looked at.
type Failures struct {
	rate  rate.Limit
	burst int
	max   int
	now   func() time.Time

	mu sync.Mutex
	m  map[netip.Addr]*rate.Limiter
}

// NewFailures allows burst failures per address, then one per 1/perSecond.
func NewFailures(perSecond float64, burst int, now func() time.Time) *Failures {
	if now == nil {
		now = time.Now
	}
	return &Failures{rate: rate.Limit(perSecond), burst: burst, max: 100000, now: now, m: map[netip.Addr]*rate.Limiter{}}
}

// Blocked reports whether addr is throttled now, and for how long.
func (f *Failures) Blocked(addr netip.Addr) (time.Duration, bool) {
	if f == nil || f.burst <= 0 {
		return 0, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	lim := f.m[addr]
	if lim == nil {
		return 0, false
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0, false
	}
	return time.Duration((1 - tokens) / float64(f.rate) * float64(time.Second)), true
}

// Fail records a failed authentication from addr and reports whether addr
// is now throttled.
func (f *Failures) Fail(addr netip.Addr) bool {
	if f == nil || f.burst <= 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	lim := f.m[addr]
	if lim == nil {
		if len(f.m) >= f.max {
			f.evict(now)
		}
		lim = rate.NewLimiter(f.rate, f.burst)
		f.m[addr] = lim
	}
	lim.AllowN(now, 1)
	return lim.TokensAt(now) < 1
}

// evict forgets addresses whose buckets have refilled, and everything if
// that is not enough, so a scan from many addresses cannot exhaust memory.
func (f *Failures) evict(now time.Time) {
	for a, lim := range f.m {
		if lim.TokensAt(now) >= float64(f.burst) {
			delete(f.m, a)
		}
	}
	if len(f.m) >= f.max {
		clear(f.m)
	}
}
