// Package quarantine stops a key whose points InfluxDB keeps refusing. A
// key that sends what InfluxDB refuses, over and over, costs every key:
// each refused batch takes extra writes to settle and a dead-letter sync,
// and it fills the dead-letter file that keeps everyone's refused points.
// The Watch counts, per key, the points the forwarder dead-letters; a key
// past the limit within the window is quarantined in the key store, where
// every gateway sharing the store sees it and refuses the key's writes
// with 429 until an admin releases it.
package quarantine

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/metricgate/metricgate/pkg/deadletter"
	"github.com/metricgate/metricgate/pkg/keystore"
)

// Store quarantines keys. *keystore.Store implements it.
type Store interface {
	Quarantine(ctx context.Context, id int64, reason string) (keystore.Key, bool, error)
}

// Options configure a Watch.
type Options struct {
	// Limit is how many refused points within Window quarantine a key; 0
	// turns quarantine off.
	Limit int
	// Window is the time Limit is counted over; default a minute.
	Window time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Log gets a line, marked audit, for each key quarantined, and one for
	// each quarantine the store refused.
	Log *slog.Logger
	// Quarantined, if set, is told of each key quarantined.
	Quarantined func(k keystore.Key)
	// Timeout bounds each write to the key store; default 10 s.
	Timeout time.Duration
}

// Watch counts the points InfluxDB refused per key over a sliding window
// and quarantines a key once they reach the limit. It is safe for
// concurrent use.
type Watch struct {
	store Store
	o     Options

	mu     sync.Mutex
	counts map[int64]*count
	wg     sync.WaitGroup
}

// count is one key's refused points: in the current window and the one
// before, which is weighed by how much of it the sliding window still
// covers.
type count struct {
	start      time.Time // of the current window
	cur, prev  int
	last       string // the reason of the last refusal
	quarantine bool   // a quarantine is being written
}

// New returns a Watch that quarantines keys in store as o says.
func New(store Store, o Options) *Watch {
	if o.Window <= 0 {
		o.Window = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	return &Watch{store: store, o: o, counts: map[int64]*count{}}
}

// Refused counts letters, the points InfluxDB refused in one batch, each
// against the key that sent it, and quarantines, in the background, each
// key that reaches the limit. Letters of no key (a spool of an earlier
// version) and unresolved ones, which InfluxDB may have taken and which
// may be another key's fault, are not counted.
func (w *Watch) Refused(letters []deadletter.Letter) {
	if w == nil || w.o.Limit <= 0 {
		return
	}
	now := w.o.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sweep(now)
	for _, l := range letters {
		if l.KeyID == 0 || l.Unresolved {
			continue
		}
		c := w.counts[l.KeyID]
		if c == nil {
			c = &count{start: now.Truncate(w.o.Window)}
			w.counts[l.KeyID] = c
		}
		c.roll(now, w.o.Window)
		c.cur++
		c.last = l.Reason
		if n := c.estimate(now, w.o.Window); n >= w.o.Limit && !c.quarantine {
			c.quarantine = true
			w.wg.Add(1)
			go w.quarantine(l.KeyID, n, c.last)
		}
	}
}

// Wait returns once the quarantines begun have been written, or have
// failed; for shutdown and tests.
func (w *Watch) Wait() {
	if w != nil {
		w.wg.Wait()
	}
}

// quarantine writes the quarantine of key id, which had n points refused
// within the window, the last for reason.
func (w *Watch) quarantine(id int64, n int, reason string) {
	defer w.wg.Done()
	ctx, cancel := context.WithTimeout(keystore.WithActor(context.Background(), "gateway"), w.o.Timeout)
	defer cancel()
	why := fmt.Sprintf("InfluxDB refused %d of its points within %s; the last: %s", n, w.o.Window, reason)
	k, changed, err := w.store.Quarantine(ctx, id, why)
	w.mu.Lock()
	if c := w.counts[id]; c != nil {
		// Counted afresh from here: once released, a key starts clean.
		*c = count{start: c.start}
	}
	w.mu.Unlock()
	if err != nil {
		w.o.Log.Error("cannot quarantine a key whose points InfluxDB keeps refusing; will try again at its next refusal",
			"key_id", id, "refused", n, "window", w.o.Window.String(), "error", err)
		return
	}
	if !changed {
		return // another gateway, or this one earlier, quarantined it
	}
	w.o.Log.Warn("audit: key quarantined: its writes get 429 until an admin releases it (keyctl release)", "audit", true,
		"actor", "gateway", "key_id", id, "refused", n, "window", w.o.Window.String(), "reason", k.QuarantineReason)
	if w.o.Quarantined != nil {
		w.o.Quarantined(k)
	}
}

// roll moves c's windows on to the one now is in.
func (c *count) roll(now time.Time, window time.Duration) {
	start := now.Truncate(window)
	switch {
	case !start.After(c.start):
	case start.Sub(c.start) == window:
		c.prev, c.cur, c.start = c.cur, 0, start
	default:
		c.prev, c.cur, c.start = 0, 0, start
	}
}

// estimate is the refused points of the window that ends now: the current
// window's and the share of the one before that the sliding window still
// covers.
func (c *count) estimate(now time.Time, window time.Duration) int {
	covered := 1 - float64(now.Sub(c.start))/float64(window)
	return c.cur + int(float64(c.prev)*covered)
}

// sweep forgets the keys that had nothing refused in the last two
// windows, so the map holds only keys refused recently.
func (w *Watch) sweep(now time.Time) {
	for id, c := range w.counts {
		if !c.quarantine && now.Sub(c.start) >= 2*w.o.Window {
			delete(w.counts, id)
		}
	}
}
