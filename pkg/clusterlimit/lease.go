package clusterlimit

import (
	"context"
	"math"
	"strconv"
	"time"

	"github.com/metricgate/metricgate/pkg/limit"
	"github.com/metricgate/metricgate/pkg/metrics"
)

const (
	// leaseShare is the most of a key's limit (a second's worth, or its
	// burst if larger) the replicas hold unspent at once, together: what
	// the cluster may admit less than an exact limiter would, while one
	// replica holds tokens another could spend.
	leaseShare = 0.10
	// leaseEvery is how often a busy replica asks Redis for a key's
	// tokens: a lease is what it spends of the key in that time.
	leaseEvery = 100 * time.Millisecond
	// idleLease is how long a replica keeps tokens it does not spend
	// before it gives them back.
	idleLease = time.Second
	// idleBucket is how long a replica remembers a key it has not seen.
	idleBucket = time.Minute
	// leaseWait bounds how long a request waits for a lease another
	// request of the same key asked for.
	leaseWait = time.Second
)

// bucket is what one replica knows of one key's tokens in Redis.
type bucket struct {
	key    string // in Redis
	tokens int    // leased from Redis, not spent yet
	// empty is when Redis last said the key has no tokens for the request,
	// and until is when they are due: until then the key is refused here
	// without asking.
	until time.Time
	retry time.Duration
	// left and full are Redis's answer to the last lease: the tokens it
	// had left, and the time until the key's bucket is full.
	left float64
	full time.Duration
	// fetch is closed when the lease in flight is answered; nil when none
	// is.
	fetch chan struct{}
	// short is set when the last lease got fewer tokens than it asked:
	// the key is at its limit, where leasing ahead only takes tokens from
	// other replicas' requests.
	short bool
	// asked is the tokens requests asked for since the last lease, and
	// demand their rate, smoothed: a lease is demand times leaseEvery.
	asked     int
	demand    float64
	leasedAt  time.Time
	used      time.Time // when a request last asked
	rate      float64
	burst     int
	leaseSize int
}

// Allow takes n tokens, one per field value written, from key id's
// bucket, whose rate and burst are rate and burst (0 for the defaults): from
// the tokens this replica holds, leasing more from Redis when they are
// too few. A refused request takes nothing.
func (l *Limiter) Allow(id int64, rate float64, burst, n int) limit.Decision {
	rate, burst = l.resolve(rate, burst)
	if rate <= 0 {
		return limit.Decision{Allowed: true}
	}
	if n > burst {
		return limit.Decision{Limited: true, TooLarge: true, Limit: burst}
	}
	state, local, replicas := l.mode()
	switch state {
	case metrics.LimitsFailOpen:
		return local.Allow(id, rate/float64(replicas), ceilShare(burst, replicas), n)
	case metrics.LimitsFailClosed:
		return l.closed(burst)
	}
	d, ok := l.spend(l.bucket(id, rate, burst), n)
	if !ok { // Redis failed while leasing: decide as the new state says
		return l.Allow(id, rate, burst, n)
	}
	return d
}

// Check reports whether key id may have a token, taking none and never
// asking Redis: a key this replica found out of tokens is refused before
// its request's body is read.
func (l *Limiter) Check(id int64, rate float64, burst int) limit.Decision {
	rate, burst = l.resolve(rate, burst)
	if rate <= 0 {
		return limit.Decision{Allowed: true}
	}
	state, local, replicas := l.mode()
	switch state {
	case metrics.LimitsFailOpen:
		return local.Check(id, rate/float64(replicas), ceilShare(burst, replicas))
	case metrics.LimitsFailClosed:
		return l.closed(burst)
	}
	b := l.bucket(id, rate, burst)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.opts.Now()
	if b.tokens == 0 && now.Before(b.until) {
		return l.refusal(b, now)
	}
	return l.granted(b)
}

// resolve puts the defaults in for a rate or burst of 0.
func (l *Limiter) resolve(rate float64, burst int) (float64, int) {
	if rate == 0 {
		rate = l.opts.DefaultRate
	}
	if burst == 0 {
		burst = l.opts.DefaultBurst
	}
	if burst <= 0 {
		burst = int(math.Ceil(rate))
	}
	return rate, burst
}

// mode returns the state and, while failing open, the local limits and
// the replicas they are a share of.
func (l *Limiter) mode() (string, limit.Local, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state, l.local, l.replicas
}

// closed is the refusal of a limited key while Redis is unreachable and
// the limits fail closed: retry after the next heartbeat, at least.
func (l *Limiter) closed(burst int) limit.Decision {
	return limit.Decision{Limited: true, Limit: burst, RetryAfter: max(time.Second, l.opts.Heartbeat)}
}

// bucket returns key id's bucket, made if this replica has none, with the
// key's current rate and burst.
func (l *Limiter) bucket(id int64, rate float64, burst int) *bucket {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[id]
	if b == nil {
		b = &bucket{key: prefix + "rate:" + strconv.FormatInt(id, 10)}
		l.buckets[id] = b
	}
	b.rate, b.burst = rate, burst
	return b
}

// spend takes n tokens from b, leasing more when it holds too few, or
// refuses. It returns false when Redis failed: the state has changed and
// the caller decides again.
func (l *Limiter) spend(b *bucket, n int) (limit.Decision, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b.asked += n
	b.used = l.opts.Now()
	waited := false
	for {
		if l.state != metrics.LimitsShared {
			return limit.Decision{}, false
		}
		now := l.opts.Now()
		switch {
		case b.tokens >= n:
			b.tokens -= n
			if b.tokens < b.leaseSize/2 && b.fetch == nil && !b.short && !now.Before(b.until) {
				l.startLease(b, 1, true)
			}
			return l.granted(b), true
		case now.Before(b.until):
			return l.refusal(b, now), true
		case b.fetch != nil:
			if waited {
				// The lease another request asked for is slow: Redis is
				// about to be declared unreachable.
				return l.refusal(b, now), true
			}
			fetch := b.fetch
			l.mu.Unlock()
			select {
			case <-fetch:
			case <-time.After(leaseWait):
				waited = true
			}
			l.mu.Lock()
		default:
			if err := l.startLease(b, n-b.tokens, false); err != nil {
				return limit.Decision{}, false
			}
		}
	}
}

// startLease asks Redis for a lease of b's tokens, at least need of them,
// with l.mu held; it releases l.mu meanwhile. In the background (async)
// it returns at once, and a failure changes the state all the same.
func (l *Limiter) startLease(b *bucket, need int, async bool) error {
	b.leaseSize = l.leaseSize(b)
	want := max(need, b.leaseSize)
	fetch := make(chan struct{})
	b.fetch = fetch
	rate, burst := b.rate, b.burst
	lease := func() (taken, error) {
		ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
		defer cancel()
		l.opts.Metrics.LimitsLeases.Inc()
		res, err := take(ctx, l, b.key, rate, burst, want, need)
		res.short = res.granted < want
		return res, err
	}
	if async {
		go func() {
			res, err := lease()
			l.mu.Lock()
			l.leased(b, fetch, res, err)
			l.mu.Unlock()
		}()
		return nil
	}
	l.mu.Unlock()
	res, err := lease()
	l.mu.Lock()
	return l.leased(b, fetch, res, err)
}

// leased applies Redis's answer to a lease of b's tokens, with l.mu held.
func (l *Limiter) leased(b *bucket, fetch chan struct{}, res taken, err error) error {
	b.fetch = nil
	close(fetch)
	if err != nil {
		l.mu.Unlock()
		l.failed(err)
		l.mu.Lock()
		return err
	}
	now := l.opts.Now()
	b.tokens += res.granted
	b.left, b.full, b.short = res.left, res.full, res.short
	if res.short {
		// The key is at its limit. Ask again when the request's tokens
		// are due, and not before half a lease interval: the replicas
		// together still ask for more than the key's rate that often,
		// so none of its tokens go unspent, and a key driven past its
		// limit costs Redis a few round trips a second, not one per
		// request.
		b.retry = res.wait
		b.until = now.Add(max(res.wait, leaseEvery/2))
	}
	if elapsed := now.Sub(b.leasedAt); !b.leasedAt.IsZero() && elapsed > 0 {
		rate := float64(b.asked) / max(elapsed.Seconds(), 0.01)
		b.demand = (b.demand + rate) / 2
	} else {
		b.demand = float64(b.asked) / leaseEvery.Seconds()
	}
	b.asked, b.leasedAt = 0, now
	return nil
}

// leaseSize is how many tokens to lease for b: what this replica asks of
// the key in leaseEvery, within a replica's part of leaseShare of the
// key's limit.
func (l *Limiter) leaseSize(b *bucket) int {
	ceiling := max(1, int(leaseShare*math.Max(float64(b.burst), b.rate))/l.replicas)
	return min(ceiling, max(1, int(b.demand*leaseEvery.Seconds())))
}

// granted is the Decision for a request b let through, with l.mu held:
// what the RateLimit headers report is this replica's tokens and what
// Redis had left at the last lease.
func (l *Limiter) granted(b *bucket) limit.Decision {
	remaining := min(b.burst, b.tokens+int(math.Max(0, b.left)))
	return limit.Decision{Allowed: true, Limited: true, Limit: b.burst, Remaining: remaining, Reset: b.full}
}

// refusal is the Decision for a request b refused at now, with l.mu held.
func (l *Limiter) refusal(b *bucket, now time.Time) limit.Decision {
	return limit.Decision{Limited: true, Limit: b.burst, Remaining: b.tokens, Reset: b.full,
		RetryAfter: max(b.retry, b.until.Sub(now))}
}

// giveBack gives Redis the tokens of every key not asked for since
// before, and forgets the keys idle for idleBucket. A zero before gives
// back all of them.
func (l *Limiter) giveBack(ctx context.Context, before time.Time) {
	type back struct {
		key    string
		rate   float64
		tokens int
	}
	var backs []back
	l.mu.Lock()
	for _, b := range l.buckets {
		if b.tokens > 0 && b.fetch == nil && (before.IsZero() || b.used.Before(before)) {
			backs = append(backs, back{b.key, b.rate, b.tokens})
			b.tokens = 0
		}
	}
	l.mu.Unlock()
	for _, bk := range backs {
		if err := giveScript.Run(ctx, l.rdb, []string{bk.key}, bk.rate, bk.tokens).Err(); err != nil {
			l.failed(err)
			return
		}
	}
}

// forget drops what this replica knows of keys and sources idle since
// long before now.
func (l *Limiter) forget(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, b := range l.buckets {
		if b.tokens == 0 && b.fetch == nil && now.Sub(b.used) > idleBucket {
			delete(l.buckets, id)
		}
	}
	for k, until := range l.blocked {
		if now.After(until) {
			delete(l.blocked, k)
		}
	}
}

// taken is Redis's answer to a lease.
type taken struct {
	granted int
	short   bool          // fewer than asked for
	left    float64       // tokens left in the bucket
	wait    time.Duration // until the tokens needed are there, when none were granted
	full    time.Duration // until the bucket is full
}

// take runs take.lua on key: up to want tokens, at least need.
func take(ctx context.Context, l *Limiter, key string, rate float64, burst, want, need int) (taken, error) {
	v, err := takeScript.Run(ctx, l.rdb, []string{key}, rate, burst, want, need).Slice()
	if err != nil {
		return taken{}, err
	}
	var t taken
	if len(v) == 4 {
		g, _ := v[0].(int64)
		t.granted = int(g)
		t.left = parseFloat(v[1])
		t.wait = seconds(parseFloat(v[2]))
		t.full = seconds(parseFloat(v[3]))
	}
	return t, nil
}

func parseFloat(v any) float64 {
	s, _ := v.(string)
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
