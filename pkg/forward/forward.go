// Package forward drains the spool into InfluxDB: batches of up to a
// configured number of points or age, each bucket's lines written to that
// bucket alone, retried with backoff until InfluxDB confirms them, and
// only then removed from the spool. Points InfluxDB refuses as
// permanently bad go to a dead-letter file with the reason and the key
// that sent them, found from what InfluxDB says it dropped rather than by
// resending line by line; Replay sends them again once the cause is fixed.
package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metricgate/metricgate/pkg/deadletter"
	"github.com/metricgate/metricgate/pkg/influx"
	"github.com/metricgate/metricgate/pkg/spool"
)

// Writer delivers line protocol to a bucket, "" being its own. It returns
// errors as *influx.Writer, which implements it, does: wrapping
// influx.ErrRejected for lines refused for good, influx.ErrNoBucket for a
// bucket InfluxDB lacks. It is done with lines when it returns: they are
// the spool's memory, which holds a later batch once this one is
// acknowledged.
type Writer interface {
	WriteTo(ctx context.Context, bucket string, lines []byte) error
}

// Options configure a Forwarder.
type Options struct {
	BatchPoints int           // default 5000
	BatchWait   time.Duration // default 1s
	Workers     int           // batches in flight at once; default 4
	MinBackoff  time.Duration // default 100ms
	MaxBackoff  time.Duration // default 30s
	DeadLetter  string        // path of the dead-letter file (JSON lines)
	// Bucket is the Writer's own bucket, which the spool also names "".
	// Lines bound for another bucket, a key's own, that InfluxDB does not
	// have are dead-lettered rather than retried, so that one key's
	// missing bucket does not hold back everyone's delivery; those for
	// the Writer's bucket are retried until it exists.
	Bucket string
	// DeadLetterMaxBytes is the size past which the dead-letter file is
	// rotated to DeadLetter.1, replacing the one before; default 64 MiB.
	DeadLetterMaxBytes int64
	// MaxExtraWrites bounds the writes spent on one refused batch to find
	// what InfluxDB dropped; past it, what is still unresolved is
	// dead-lettered whole. Default 16.
	MaxExtraWrites int
	// Observe, if set, is told of each delivered batch.
	Observe func(points int, latency time.Duration)
	// Rejected, if set, is told of each write to the dead-letter file and
	// the points it kept: one call per refused batch.
	Rejected func(points int)
	// DeadLettered, if set, is told of the letters of each write to the
	// dead-letter file, once they are written.
	DeadLettered func(letters []DeadLetter)
	// Conflict, if set, is told of each field type conflict InfluxDB
	// names: the type bucket ("" for the Writer's own) holds for field of
	// measurement.
	Conflict func(bucket, measurement, field, typ string)
	// Now stamps dead letters; default time.Now.
	Now func() time.Time
	// Failed, if set, is told of each failed write that will be retried.
	Failed func(err error)
	// After, if set, replaces time.After for the waits between retries,
	// so that a test can see the waits without spending them.
	After func(time.Duration) <-chan time.Time
}

// Forwarder moves points from a spool to InfluxDB.
type Forwarder struct {
	sp      *spool.Spool
	out     Writer
	opts    Options
	log     *slog.Logger
	letters *deadletter.File

	mu        sync.Mutex
	state     string
	failing   atomic.Bool // the last write to InfluxDB failed; read on every write
	lastErr   string
	forwarded int64
	dead      int64
}

// New returns a Forwarder from sp to out.
func New(sp *spool.Spool, out Writer, opts Options, log *slog.Logger) *Forwarder {
	if opts.BatchPoints <= 0 {
		opts.BatchPoints = 5000
	}
	if opts.BatchWait <= 0 {
		opts.BatchWait = time.Second
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.After == nil {
		opts.After = time.After
	}
	if opts.DeadLetterMaxBytes <= 0 {
		opts.DeadLetterMaxBytes = 64 << 20
	}
	if opts.MaxExtraWrites <= 0 {
		opts.MaxExtraWrites = 16
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Forwarder{sp: sp, out: out, opts: opts, log: log, state: "idle",
		letters: deadletter.NewFile(opts.DeadLetter, opts.DeadLetterMaxBytes)}
}

// Run forwards until ctx ends. Up to Options.Workers batches are in flight
// at once, and they are acknowledged to the spool in order, so a batch is
// only dropped once it and everything before it are confirmed. A batch in
// delivery when ctx ends stays in the spool for the next run.
func (f *Forwarder) Run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f.sp.Rewind() // what an earlier run read but did not deliver comes first
	type job struct {
		b    spool.Batch
		err  error
		done chan struct{}
	}
	work := make(chan *job)
	ordered := make(chan *job, f.opts.Workers)
	var wg sync.WaitGroup
	for i := 0; i < f.opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				j.err = f.deliver(ctx, &j.b)
				close(j.done)
			}
		}()
	}
	go func() {
		defer close(ordered)
		defer close(work)
		for {
			b, err := f.sp.Next(ctx, f.opts.BatchPoints, f.opts.BatchWait)
			if ctx.Err() != nil || errors.Is(err, spool.ErrClosed) {
				return
			}
			if err != nil {
				f.log.Error("spool read failed; skipping to the next segment", "error", err)
				if b.Points == 0 {
					continue
				}
			}
			j := &job{b: b, done: make(chan struct{})}
			select {
			case ordered <- j: // bounds the batches in flight
			case <-ctx.Done():
				return
			}
			work <- j
		}
	}()
	failed := false
	for j := range ordered {
		<-j.done
		if failed {
			continue
		}
		if j.err != nil {
			// Only a cancelled context stops a delivery: leave this batch
			// and every later one in the spool.
			failed = true
			cancel()
			continue
		}
		if err := f.sp.Ack(j.b); err != nil {
			f.log.Error("spool acknowledgement failed; the batch may be sent again", "error", err)
		}
	}
	wg.Wait()
	f.setState("stopped", "")
}

// Drain forwards until the spool is empty or ctx ends, for shutdown. It
// returns the points left in the spool.
func (f *Forwarder) Drain(ctx context.Context) int64 {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() { f.Run(runCtx); close(done) }()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for f.sp.Stats().Points > 0 {
		select {
		case <-ctx.Done():
			cancel()
			<-done
			return f.sp.Stats().Points
		case <-t.C:
		}
	}
	cancel()
	<-done
	return f.sp.Stats().Points
}

// deliver writes each bucket's lines of b to it until InfluxDB confirms
// them, and settles what InfluxDB refuses for good; only ctx ending stops
// it early.
func (f *Forwarder) deliver(ctx context.Context, b *spool.Batch) error {
	for _, p := range partsOf(b) {
		start := time.Now()
		err := f.send(ctx, p.bucket, p.data, p.points)
		if refused(err) {
			err = f.settle(ctx, &p, err, start)
		} else if err == nil {
			f.delivered(p.points, time.Since(start))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// send writes lines to bucket until InfluxDB confirms them (nil) or
// refuses them for good (an error wrapping influx.ErrRejected, or
// influx.ErrNoBucket for a bucket other than the Writer's), retrying
// everything else with backoff; only ctx ending stops it early.
func (f *Forwarder) send(ctx context.Context, bucket string, lines []byte, points int) error {
	backoff := f.opts.MinBackoff
	for attempt := 1; ; attempt++ {
		f.setState("forwarding", "")
		err := f.out.WriteTo(ctx, bucket, lines)
		if err == nil || errors.Is(err, influx.ErrRejected) || (errors.Is(err, influx.ErrNoBucket) && !f.own(bucket)) {
			f.setHealthy()
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if f.opts.Failed != nil {
			f.opts.Failed(err)
		}
		wait := max(influx.RetryAfter(err), backoff+time.Duration(rand.Int64N(int64(backoff)/2+1)))
		f.failing.Store(true)
		f.setState("retrying", err.Error())
		f.log.Warn("InfluxDB write failed; will retry", "attempt", attempt, "points", points, "retry_in", wait.String(), "error", err)
		select {
		case <-f.opts.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(backoff*2, f.opts.MaxBackoff)
	}
}

// own reports whether bucket, as the spool names it, is the Writer's own.
func (f *Forwarder) own(bucket string) bool { return bucket == "" || bucket == f.opts.Bucket }

// settle finds which lines of p, which InfluxDB refused with cause, it
// dropped, and keeps them in the dead-letter file with one write and one
// sync; the rest InfluxDB has written. It returns an error, leaving the
// batch in the spool to be sent again, only when ctx ended or the
// dead-letter file could not be written.
func (f *Forwarder) settle(ctx context.Context, p *part, cause error, start time.Time) error {
	s := &settlement{ctx: ctx, bucket: p.bucket, conflict: f.opts.Conflict, budget: f.opts.MaxExtraWrites,
		max: f.opts.MaxExtraWrites, now: f.opts.Now().UTC(),
		send: func(ctx context.Context, lines []byte, n int) error { return f.send(ctx, p.bucket, lines, n) }}
	if err := s.resolve(p.lines(), cause); err != nil {
		return err
	}
	if err := f.letters.Append(s.dead); err != nil {
		// Keeping the points in the spool is better than losing them:
		// stop, and the next run will try again.
		f.log.Error("cannot write the dead-letter file", "path", f.opts.DeadLetter, "error", err)
		return fmt.Errorf("dead letter: %w", err)
	}
	f.mu.Lock()
	f.dead += int64(len(s.dead))
	f.mu.Unlock()
	if f.opts.Rejected != nil {
		f.opts.Rejected(len(s.dead))
	}
	if f.opts.DeadLettered != nil {
		f.opts.DeadLettered(s.dead)
	}
	f.log.Error("InfluxDB refused points; kept in the dead-letter file", "path", f.opts.DeadLetter,
		"points", len(s.dead), "of", p.points, "bucket", p.bucket, "extra_writes", f.opts.MaxExtraWrites-s.budget,
		"keys", s.keys(), "reason", cause.Error())
	f.delivered(p.points-len(s.dead), time.Since(start))
	return nil
}

// setHealthy records that InfluxDB answered a write.
func (f *Forwarder) setHealthy() { f.failing.Store(false) }

func (f *Forwarder) delivered(points int, latency time.Duration) {
	f.mu.Lock()
	f.forwarded += int64(points)
	f.state, f.lastErr = "idle", ""
	f.failing.Store(false)
	f.mu.Unlock()
	if f.opts.Observe != nil {
		f.opts.Observe(points, latency)
	}
}

func (f *Forwarder) setState(state, lastErr string) {
	f.mu.Lock()
	f.state = state
	if lastErr != "" {
		f.lastErr = lastErr
	}
	f.mu.Unlock()
}

// Status describes the forwarder for /readyz.
type Status struct {
	State        string `json:"state"` // idle, forwarding, retrying or stopped
	LastError    string `json:"last_error,omitempty"`
	Forwarded    int64  `json:"points_forwarded"`
	DeadLettered int64  `json:"points_dead_lettered"`
}

// Healthy reports whether InfluxDB took the forwarder's last write, or no
// write has been tried yet. A retry in flight does not count: it may hang
// until the write timeout.
func (f *Forwarder) Healthy() bool { return !f.failing.Load() }

// Status returns the forwarder's state and counts since start.
func (f *Forwarder) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Status{State: f.state, LastError: f.lastErr, Forwarded: f.forwarded, DeadLettered: f.dead}
}

// BatchPoints returns the most points the forwarder sends in one write.
func (f *Forwarder) BatchPoints() int { return f.opts.BatchPoints }
