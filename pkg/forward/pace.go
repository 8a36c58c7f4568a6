package forward

import (
	"context"
	"sync/atomic"
	"time"
)

// Pacer holds new writes back while the spool's backlog grows and the
// forwarder is delivering, so that under a load InfluxDB cannot keep up
// with, the gateway accepts about what it delivers instead of filling the
// spool.
//
// Where the gateway, the load generator and InfluxDB share the CPUs,
// accepting batches as fast as they come starves InfluxDB: it takes less
// than it could while the backlog grows by the rest. Paced, the gateway
// delivers more (scripts/bench.sh measures both) and the spool stays near
// empty, keeping its room for what it is for: an InfluxDB that is down.
//
// It never holds a write back while the forwarder is failing (the spool
// then takes everything, up to its size limit), and after an outage it
// lets writes in as long as the backlog does not grow past the lowest it
// has been since plus the limit: new writes keep flowing while the old
// backlog drains. A write is held at most maxWait, then let in anyway.
//
// A held write looks again when the spool acknowledges a delivery, the
// only thing that lowers the backlog, and otherwise every poll, which is
// how it sees the forwarder start failing. Looking every 2 ms instead, as
// it once did, each held write woke the gateway 500 times a second: under
// a batch load where nearly every write is held (the bench's), a share of
// the gateway's CPU, and a write let in up to 2 ms after it could go.
type Pacer struct {
	backlog func() int64           // points stored and not yet delivered
	acked   func() <-chan struct{} // closed when the backlog next falls
	healthy func() bool            // whether the forwarder's last write succeeded
	limit   int64
	maxWait time.Duration
	poll    time.Duration

	floor atomic.Int64 // the lowest backlog seen since the forwarder last failed
}

// NewPacer returns a Pacer that holds writes back while backlog() exceeds
// its floor by more than limit points and healthy() is true, for at most
// maxWait each; acked() returns a channel closed when the backlog falls
// (spool.Spool.Acked). The floor starts at the backlog now, so points left
// by an earlier run drain without holding new writes back.
func NewPacer(backlog func() int64, acked func() <-chan struct{}, healthy func() bool, limit int64, maxWait time.Duration) *Pacer {
	p := &Pacer{backlog: backlog, acked: acked, healthy: healthy, limit: limit, maxWait: maxWait, poll: pacerPoll}
	p.floor.Store(backlog())
	return p
}

// Wait returns once a write may go in: at once while the backlog is within
// bounds, otherwise when it falls back within them, maxWait has passed or
// ctx ends. It returns how long it held the write back.
func (p *Pacer) Wait(ctx context.Context) time.Duration {
	if p.admit() {
		return 0 // nearly every write, without touching the spool's lock
	}
	start := time.Now()
	deadline := time.NewTimer(p.maxWait)
	defer deadline.Stop()
	tick := time.NewTicker(p.poll)
	defer tick.Stop()
	for {
		acked := p.acked()
		if p.admit() { // again after taking the channel: an ack between is not missed
			return time.Since(start)
		}
		select {
		case <-acked:
		case <-tick.C:
		case <-deadline.C:
			return time.Since(start)
		case <-ctx.Done():
			return time.Since(start)
		}
	}
}

// pacerPoll is how often a held write looks again without an ack: how soon
// it sees that the forwarder has started failing, when the spool must take
// everything.
const pacerPoll = 50 * time.Millisecond

// admit reports whether a write may go in now. It takes no lock: it runs
// on every write.
func (p *Pacer) admit() bool {
	b := p.backlog()
	if !p.healthy() {
		p.floor.Store(b)
		return true
	}
	for {
		f := p.floor.Load()
		if b >= f {
			return b <= f+p.limit
		}
		if p.floor.CompareAndSwap(f, b) {
			return true
		}
	}
}
