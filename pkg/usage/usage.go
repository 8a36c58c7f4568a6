// Package usage buffers what the gateway sees of each key (last use, request
// and point counts) and writes it to the key store in batches, so the
// database takes one write per flush rather than one per request.
package usage

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// Store persists usage. *keystore.Store implements it.
type Store interface {
	RecordUsage(ctx context.Context, usage map[int64]keystore.Usage) error
}

// Recorder buffers usage in memory between flushes. It is safe for
// concurrent use.
type Recorder struct {
	store Store
	log   *slog.Logger

	mu      sync.Mutex
	pending map[int64]keystore.Usage
}

// NewRecorder returns a Recorder writing to store.
func NewRecorder(store Store, log *slog.Logger) *Recorder {
	return &Recorder{store: store, log: log, pending: map[int64]keystore.Usage{}}
}

// Record notes one request by key id from addr at time at with points points.
func (r *Recorder) Record(id int64, addr string, at time.Time, points int) {
	r.mu.Lock()
	u := r.pending[id]
	if !at.Before(u.LastUsedAt) {
		u.LastUsedAt, u.LastUsedAddr = at, addr
	}
	u.Requests++
	u.Points += int64(points)
	r.pending[id] = u
	r.mu.Unlock()
}

// Flush writes what is buffered. On failure the usage is kept for the next
// flush.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	batch := r.pending
	r.pending = map[int64]keystore.Usage{}
	r.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := r.store.RecordUsage(ctx, batch); err != nil {
		r.mu.Lock()
		for id, u := range batch {
			p := r.pending[id]
			if u.LastUsedAt.After(p.LastUsedAt) {
				p.LastUsedAt, p.LastUsedAddr = u.LastUsedAt, u.LastUsedAddr
			}
			p.Requests += u.Requests
			p.Points += u.Points
			r.pending[id] = p
		}
		r.mu.Unlock()
		return err
	}
	return nil
}

// Run flushes every interval until ctx is done, then flushes once more.
func (r *Recorder) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := r.Flush(fctx); err != nil {
				r.log.Error("usage flush failed at shutdown", "error", err)
			}
			return
		case <-t.C:
			if err := r.Flush(ctx); err != nil {
				r.log.Warn("usage flush failed; will retry", "error", err)
			}
		}
	}
}
