// Package clusterlimit enforces the gateway's limits across every replica
// through one Redis: the field values per second of each key, and the
// failed authentications of each source address. Behind a load balancer,
// limits kept by each replica alone let a key through at N times its rate
// and a brute-forcer make N times its tries; these are the cluster's.
//
// A request does not wait for Redis. Each replica leases tokens from a
// key's bucket in Redis (a GCRA bucket that one Lua script takes from
// atomically, on Redis's clock) and spends them locally; the tokens of a
// key no request asked for in a second go back. A lease is sized from what the
// replica spends of the key, and never more than a tenth of the key's
// burst shared among the replicas, so the tokens held unspent across the
// cluster stay within 10% of the limit. A replica that found a key's bucket
// empty refuses it locally until tokens are due, so a key driven past its
// limit costs Redis a round trip per lease, not per request.
//
// While Redis cannot be reached, Options.FailClosed decides: open (the
// default) limits each key locally at its limit divided by the replicas
// that reported to Redis last; closed refuses limited keys with 429. The
// change is logged and reported to Options.OnState, and the limiter
// returns to Redis by itself once Redis answers again.
package clusterlimit

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/metricgate/metricgate/pkg/limit"
	"github.com/metricgate/metricgate/pkg/metrics"
)

// The Lua scripts, each run atomically by Redis in one round trip.
var (
	//go:embed take.lua
	takeLua    string
	takeScript = redis.NewScript(takeLua)
	//go:embed give.lua
	giveLua    string
	giveScript = redis.NewScript(giveLua)
	//go:embed beat.lua
	beatLua    string
	beatScript = redis.NewScript(beatLua)
)

// prefix starts every key the limiter writes in Redis.
const prefix = "metricgate:"

// ErrURL means the Redis URL does not parse.
var ErrURL = errors.New("not a Redis URL: want redis://[user:password@]host:port/db")

// Options configure a Limiter.
type Options struct {
	// URL is Redis's: redis://[user:password@]host:port/db (rediss:// for
	// TLS).
	URL string
	// FailClosed refuses limited keys with 429 while Redis is unreachable;
	// otherwise each replica limits them alone, at its share.
	FailClosed bool
	// Node names this replica among those reporting to Redis.
	Node string
	// DefaultRate, DefaultBurst, AuthFailRate and AuthFailBurst are the
	// server's (server.Config): what a key without limits of its own gets,
	// and the failed-authentication throttle.
	DefaultRate   float64
	DefaultBurst  int
	AuthFailRate  float64
	AuthFailBurst int
	// Now is this replica's clock, for what it decides locally; the shared
	// buckets are timed by Redis's clock. Default time.Now.
	Now func() time.Time
	// Log gets a line on every change of state.
	Log *slog.Logger
	// Metrics counts leases and Redis's errors and records the state.
	Metrics *metrics.Metrics
	// Heartbeat is how often the replica reports to Redis, gives back
	// tokens it holds unspent, and, while Redis is unreachable, tries it
	// again. Default 500 ms.
	Heartbeat time.Duration
	// Timeout bounds each call to Redis. Default 500 ms.
	Timeout time.Duration
}

// Limiter is the limits of a cluster of gateways, shared through Redis. It
// implements the server's Limits. It is safe for concurrent use.
type Limiter struct {
	opts   Options
	rdb    *redis.Client
	addr   string // host:port, without credentials, for /readyz
	member string // this replica in the registry of replicas
	// sampler samples the log lines of failed authentications, which stay
	// this replica's own business.
	sampler *limit.Failures

	mu       sync.Mutex
	state    string // metrics.LimitsShared, LimitsFailOpen or LimitsFailClosed
	since    time.Time
	lastErr  string
	replicas int         // reporting to Redis at the last heartbeat, at least 1
	local    limit.Local // while failing open: this replica's share
	buckets  map[int64]*bucket
	blocked  map[netip.Addr]time.Time // sources Redis throttled, until when

	stop context.CancelFunc
	done chan struct{}
}

// quiet is the Redis client's own logger: it would print a line per
// failed dial to stderr, where the limiter logs each change of state once.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quiet{}) }

// ParseURL reads a Redis URL, and returns an error wrapping ErrURL that
// says why without repeating the URL, which may hold a password.
func ParseURL(s string) (*redis.Options, error) {
	o, err := redis.ParseURL(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%w (%v)", ErrURL, err)
	}
	return o, nil
}

// Open returns a limiter on the Redis at opts.URL and starts reporting to
// it. It returns an error only for a URL that does not parse: a Redis that
// cannot be reached is an outage like any other, which Options.FailClosed
// decides, and the limiter uses Redis as soon as it answers.
func Open(ctx context.Context, opts Options) (*Limiter, error) {
	ro, err := ParseURL(opts.URL)
	if err != nil {
		return nil, err
	}
	opts.setDefaults()
	// One try per call, bounded: a request must not wait on retries.
	ro.MaxRetries, ro.DialerRetries = -1, 1
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = opts.Timeout, opts.Timeout, opts.Timeout
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	ro.DisableIdentity = true
	l := &Limiter{
		opts:     opts,
		rdb:      redis.NewClient(ro),
		addr:     ro.Addr,
		member:   opts.Node + "/" + uuid.NewString(),
		sampler:  limit.NewFailures(0, 0, opts.Now),
		state:    metrics.LimitsShared,
		since:    opts.Now(),
		replicas: 1,
		buckets:  map[int64]*bucket{},
		blocked:  map[netip.Addr]time.Time{},
		done:     make(chan struct{}),
	}
	if err := l.beat(ctx); err != nil {
		l.failed(err)
	} else {
		l.opts.Metrics.SetLimitsState(metrics.LimitsShared)
		l.opts.Log.Info("rate limits shared through Redis", "redis", l.addr, "replicas", l.replicaCount())
	}
	runCtx, cancel := context.WithCancel(context.Background())
	l.stop = cancel
	go l.run(runCtx)
	return l, nil
}

func (o *Options) setDefaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 500 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 500 * time.Millisecond
	}
}

// Close stops reporting, gives back the tokens this replica holds, leaves
// the registry of replicas and closes the connections to Redis.
func (l *Limiter) Close() error {
	l.stop()
	<-l.done
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
	defer cancel()
	if l.State() == metrics.LimitsShared {
		l.giveBack(ctx, time.Time{})
		l.rdb.ZRem(ctx, prefix+"replicas", l.member)
	}
	return l.rdb.Close()
}

// run reports to Redis every heartbeat until ctx ends: that this replica
// is alive (and how many are), and the tokens it holds unspent. While
// Redis is unreachable the report is the test of whether it is back.
func (l *Limiter) run(ctx context.Context) {
	defer close(l.done)
	tick := time.NewTicker(l.opts.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
		err := l.beat(cctx)
		if err == nil {
			l.recovered()
			l.giveBack(cctx, l.opts.Now().Add(-idleLease))
		} else if ctx.Err() == nil {
			l.failed(err)
		}
		cancel()
		l.forget(l.opts.Now())
	}
}

// beat reports this replica to Redis and learns how many replicas did
// within three heartbeats.
func (l *Limiter) beat(ctx context.Context) error {
	ttl := (3 * l.opts.Heartbeat).Seconds()
	n, err := beatScript.Run(ctx, l.rdb, []string{prefix + "replicas"}, l.member, ttl).Int()
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.replicas = max(1, n)
	l.mu.Unlock()
	return nil
}

// failed records that a call to Redis failed with err: the first failure
// after Redis answered changes the state to failing open or closed.
func (l *Limiter) failed(err error) {
	l.opts.Metrics.LimitsRedisErrors.Inc()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastErr = err.Error()
	if l.state != metrics.LimitsShared {
		return
	}
	l.state, l.since = metrics.LimitsFailOpen, l.opts.Now()
	msg := "rate limits: Redis unreachable; failing open: each replica limits keys alone at its share"
	if l.opts.FailClosed {
		l.state = metrics.LimitsFailClosed
		msg = "rate limits: Redis unreachable; failing closed: limited keys get 429 until it answers"
	}
	o := l.opts
	share := func(rate float64) float64 { return rate / float64(l.replicas) }
	l.local = limit.Local{
		Keys:     limit.NewKeys(0, 0, o.Now),
		Failures: limit.NewFailures(share(o.AuthFailRate), ceilShare(o.AuthFailBurst, l.replicas), o.Now),
	}
	l.buckets = map[int64]*bucket{}
	o.Metrics.SetLimitsState(l.state)
	o.Log.Warn(msg, "redis", l.addr, "replicas", l.replicas, "error", l.lastErr)
}

// recovered records that Redis answered: after an outage the state
// changes back to shared, with fresh leases.
func (l *Limiter) recovered() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state == metrics.LimitsShared {
		return
	}
	down := l.opts.Now().Sub(l.since)
	l.state, l.since, l.lastErr = metrics.LimitsShared, l.opts.Now(), ""
	l.local = limit.Local{}
	l.buckets = map[int64]*bucket{}
	l.blocked = map[netip.Addr]time.Time{}
	l.opts.Metrics.SetLimitsState(l.state)
	l.opts.Log.Info("rate limits: Redis answers again; limits shared", "redis", l.addr, "replicas", l.replicas,
		"degraded_for", down.Round(time.Millisecond).String())
}

// State returns the limits' state: metrics.LimitsShared, LimitsFailOpen or
// LimitsFailClosed.
func (l *Limiter) State() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// Status is what /readyz shows of the limits: the state and since when,
// Redis's address, the replicas counted, and the last error while Redis
// is unreachable.
func (l *Limiter) Status() map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	fail := "open"
	if l.opts.FailClosed {
		fail = "closed"
	}
	st := map[string]any{"state": l.state, "since": l.since, "redis": l.addr, "replicas": l.replicas, "fail": fail}
	if l.lastErr != "" && l.state != metrics.LimitsShared {
		st["error"] = l.lastErr
	}
	return st
}

func (l *Limiter) replicaCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.replicas
}

// ceilShare is n divided among replicas, rounded up: a share of a burst
// of 1 or more is at least 1.
func ceilShare(n, replicas int) int {
	return (n + replicas - 1) / replicas
}
