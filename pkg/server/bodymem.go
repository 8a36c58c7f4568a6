package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/semaphore"
)

// errBodyMemory means a request waited too long for room to read its body.
var errBodyMemory = errors.New("too many request bodies in memory")

// smallBody is the size under which a body is read without asking the
// budget: such a body costs about what its connection already does, and
// one-point requests stay off the budget's lock.
const smallBody = 64 << 10

// bodyBudget bounds the bytes of request bodies the gateway holds at once,
// from reading a body until its request is answered. Each body of 5000
// JSON points is about 0.6 MB read, and its line protocol half that again
// while the spool syncs: without a bound, memory grows with the number of
// clients sending batches at once. A request waits for room before its
// body is read, as InfluxDB queues writes past its max-concurrent-write-
// limit, and gets a 503 if none comes within wait.
type bodyBudget struct {
	sem     *semaphore.Weighted
	size    int64
	unknown int64 // what a body of unknown size counts as: the body limit
	wait    time.Duration
	// waiting, if set, is called when a body starts to wait for room; a
	// test uses it to know the wait began.
	waiting func()
}

// newBodyBudget returns a budget of size bytes for bodies of at most
// maxBody bytes, or nil (no bound) when size is 0 or less.
func newBodyBudget(size, maxBody int64, wait time.Duration) *bodyBudget {
	if size <= 0 {
		return nil
	}
	return &bodyBudget{sem: semaphore.NewWeighted(size), size: size, unknown: maxBody, wait: wait}
}

// acquire takes room for a body of n bytes, or of unknown size when n is
// negative, and returns what gives it back and how long it waited for the
// room. A body larger than the whole budget takes all of it.
func (b *bodyBudget) acquire(ctx context.Context, n int64) (release func(), waited time.Duration, err error) {
	if b == nil {
		return func() {}, 0, nil
	}
	if n < 0 {
		n = b.unknown
	}
	if n < smallBody {
		return func() {}, 0, nil
	}
	n = min(n, b.size)
	if !b.sem.TryAcquire(n) {
		if b.waiting != nil {
			b.waiting()
		}
		start := time.Now()
		wctx, cancel := context.WithTimeout(ctx, b.wait)
		err := b.sem.Acquire(wctx, n)
		cancel()
		waited = time.Since(start)
		if err != nil {
			return nil, waited, fmt.Errorf("%w: waited %s for room to read %d bytes", errBodyMemory, waited.Round(time.Millisecond), n)
		}
	}
	return func() { b.sem.Release(n) }, waited, nil
}
