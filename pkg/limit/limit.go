// Package limit holds the gateway's limiters: field values per second per
// key (built on golang.org/x/time/rate), so a request costs what it
// writes; the distinct series each key writes per hour, in a Bloom filter
// per key; and failed authentications per client address (per /64 for
// IPv6), against brute force.
package limit

import (
	"container/list"
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

// Local is the limits of one replica alone: field values per second per
// key, and failed authentications per source. Behind a load balancer, N
// replicas with local limits let a key through at N times its rate and a
// source make N times its tries; see the clusterlimit package for limits
// shared through Redis.
type Local struct {
	*Keys
	*Failures
}

// Failures throttles the sources of failed authentications and samples
// their log lines. A source is an IPv4 address, or an IPv6 /64 (see
// Source): one host commonly holds a whole /64 and can change address
// within it at will. Each failure takes one of a source's tries, tries come
// back at a slow rate, and a source with none left is throttled. Only
// failures count: the caller lets a request with a valid key through
// whatever its source, so others behind the same NAT or proxy cannot lock
// a host out.
//
// The table of sources is bounded: when full, the source that failed
// least recently is forgotten, so a scan from many addresses costs bounded
// memory without unthrottling everyone at once.
type Failures struct {
	rate     rate.Limit
	burst    int
	max      int
	logEvery time.Duration
	now      func() time.Time

	mu      sync.Mutex
	sources map[netip.Addr]*list.Element // of *source
	order   *list.List                   // least recently failed first
}

// source is what Failures knows of one source.
type source struct {
	addr     netip.Addr
	tries    *rate.Limiter // nil when throttling is off
	logged   time.Time     // when a failure from it was last logged
	unlogged int           // failures since then that were not
}

// Failure is what Fail found out about a failure.
type Failure struct {
	// Refused is true when the source had no tries left before this
	// failure: the caller answers 429, telling it to retry after
	// RetryAfter, when it earns a try back.
	Refused    bool
	RetryAfter time.Duration
	// Throttled is true when the source has no tries left.
	Throttled bool
	// NowThrottled is true when this failure took the source's last try.
	NowThrottled bool
	// Log is true for the first failure from the source in LogEvery: the
	// caller logs that one and counts the others.
	Log bool
	// Unlogged is how many failures from the source were not logged since
	// the last that was, for that line.
	Unlogged int
}

// LogEvery is how often a failure from one source is logged.
const LogEvery = time.Minute

// NewFailures allows burst failures per source, then one per 1/perSecond;
// a burst of 0 or less throttles nothing but still samples log lines.
func NewFailures(perSecond float64, burst int, now func() time.Time) *Failures {
	if now == nil {
		now = time.Now
	}
	return &Failures{rate: rate.Limit(perSecond), burst: burst, max: 100000, logEvery: LogEvery, now: now,
		sources: map[netip.Addr]*list.Element{}, order: list.New()}
}

// Source returns what failures from addr are counted under: addr itself
// for IPv4 (an IPv4-mapped address as IPv4), and its /64 for IPv6.
func Source(addr netip.Addr) netip.Addr {
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		return netip.PrefixFrom(addr, 64).Masked().Addr()
	}
	return addr
}

// Blocked reports whether addr's source is throttled now, and for how
// long.
func (f *Failures) Blocked(addr netip.Addr) (time.Duration, bool) {
	if f == nil || f.burst <= 0 {
		return 0, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.sources[Source(addr)]
	if e == nil {
		return 0, false
	}
	tokens := e.Value.(*source).tries.TokensAt(f.now())
	if tokens >= 1 {
		return 0, false
	}
	return time.Duration((1 - tokens) / float64(f.rate) * float64(time.Second)), true
}

// Fail records a failed authentication from addr and reports what it
// means: whether addr's source is throttled, and whether to log it.
func (f *Failures) Fail(addr netip.Addr) Failure {
	if f == nil {
		return Failure{Log: true}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	s := f.touch(Source(addr))
	var out Failure
	if s.tries != nil {
		before := s.tries.TokensAt(now)
		had := before >= 1
		if !had {
			out.Refused, out.RetryAfter = true, time.Duration((1-before)/float64(f.rate)*float64(time.Second))
		}
		s.tries.AllowN(now, 1)
		out.Throttled = s.tries.TokensAt(now) < 1
		out.NowThrottled = had && out.Throttled
	}
	if s.logged.IsZero() || now.Sub(s.logged) >= f.logEvery {
		out.Log, out.Unlogged = true, s.unlogged
		s.logged, s.unlogged = now, 0
	} else {
		s.unlogged++
	}
	return out
}

// touch returns the source addr, made the most recently failed, adding it
// (and forgetting the least recently failed if the table is full) if it
// is new.
func (f *Failures) touch(addr netip.Addr) *source {
	if e := f.sources[addr]; e != nil {
		f.order.MoveToBack(e)
		return e.Value.(*source)
	}
	if len(f.sources) >= f.max {
		oldest := f.order.Front()
		f.order.Remove(oldest)
		delete(f.sources, oldest.Value.(*source).addr)
	}
	s := &source{addr: addr}
	if f.burst > 0 {
		s.tries = rate.NewLimiter(f.rate, f.burst)
	}
	f.sources[addr] = f.order.PushBack(s)
	return s
}
