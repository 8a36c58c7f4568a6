// Package forward drains the spool into InfluxDB: batches of up to a
// configured number of points or age, retried with backoff until InfluxDB
// confirms them, and only then removed from the spool. Points InfluxDB
// refuses as permanently bad go to a dead-letter file with the reason.
package forward

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metricgate/metricgate/pkg/influx"
	"github.com/metricgate/metricgate/pkg/spool"
)

// Writer delivers line protocol. *influx.Writer implements it.
type Writer interface {
	Write(ctx context.Context, lines []byte) error
}

// Options configure a Forwarder.
type Options struct {
	BatchPoints int           // default 5000
	BatchWait   time.Duration // default 1s
	Workers     int           // batches in flight at once; default 4
	MinBackoff  time.Duration // default 100ms
	MaxBackoff  time.Duration // default 30s
	DeadLetter  string        // path of the dead-letter file (JSON lines)
	// Observe, if set, is told of each delivered batch.
	Observe func(points int, latency time.Duration)
	// Rejected, if set, is told of each dead-lettered point count.
	Rejected func(points int)
	// Failed, if set, is told of each failed write that will be retried.
	Failed func(err error)
	// After, if set, replaces time.After for the waits between retries,
	// so that a test can see the waits without spending them.
	After func(time.Duration) <-chan time.Time
}

// Forwarder moves points from a spool to InfluxDB.
type Forwarder struct {
	sp   *spool.Spool
	out  Writer
	opts Options
	log  *slog.Logger

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
	return &Forwarder{sp: sp, out: out, opts: opts, log: log, state: "idle"}
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
				j.err = f.deliver(ctx, j.b.Data, j.b.Points)
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

// deliver writes lines until InfluxDB confirms them or refuses them for
// good; only ctx ending stops it early.
func (f *Forwarder) deliver(ctx context.Context, lines []byte, points int) error {
	backoff := f.opts.MinBackoff
	for attempt := 1; ; attempt++ {
		start := time.Now()
		f.setState("forwarding", "")
		err := f.out.Write(ctx, lines)
		if err == nil {
			f.delivered(points, time.Since(start))
			return nil
		}
		if errors.Is(err, influx.ErrRejected) {
			return f.isolate(ctx, lines, err)
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

// isolate splits a refused batch in halves until the refused lines are
// found: InfluxDB 1.x writes the good lines of a batch and reports a
// partial write, 2.x refuses the whole batch, and either way each good line
// must arrive and each bad one be kept with its reason.
func (f *Forwarder) isolate(ctx context.Context, lines []byte, cause error) error {
	n := bytes.Count(lines, []byte("\n"))
	if n <= 1 {
		return f.deadLetter(lines, cause)
	}
	mid := 0
	for i, seen := 0, 0; i < len(lines); i++ {
		if lines[i] == '\n' {
			seen++
			if seen == n/2 {
				mid = i + 1
				break
			}
		}
	}
	for _, half := range [][]byte{lines[:mid], lines[mid:]} {
		if err := f.deliver(ctx, half, bytes.Count(half, []byte("\n"))); err != nil {
			return err
		}
	}
	return nil
}

// deadLetter appends a refused line and its reason to the dead-letter file
// and syncs it before the spool lets the line go.
func (f *Forwarder) deadLetter(line []byte, cause error) error {
	rec, _ := json.Marshal(struct {
		Time   time.Time `json:"time"`
		Reason string    `json:"reason"`
		Line   string    `json:"line"`
	}{time.Now().UTC(), cause.Error(), string(bytes.TrimSuffix(line, []byte("\n")))})
	file, err := os.OpenFile(f.opts.DeadLetter, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err == nil {
		_, err = file.Write(append(rec, '\n'))
		if err == nil {
			err = file.Sync()
		}
		file.Close()
	}
	if err != nil {
		// Keeping the point in the spool is better than losing it: stop,
		// and the next run will try again.
		f.log.Error("cannot write the dead-letter file", "path", f.opts.DeadLetter, "error", err)
		return fmt.Errorf("dead letter: %w", err)
	}
	f.mu.Lock()
	f.dead++
	f.mu.Unlock()
	if f.opts.Rejected != nil {
		f.opts.Rejected(1)
	}
	f.log.Error("InfluxDB refused a point; kept in the dead-letter file", "path", f.opts.DeadLetter, "reason", cause.Error())
	return nil
}

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
