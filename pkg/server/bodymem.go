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
	r, err := b.reserve(ctx, n)
	if err != nil {
		return nil, r.waited, err
	}
	return r.release, r.waited, nil
}

// reserve takes room for a body of n bytes, or of unknown size when n is
// negative, as acquire does, and returns the request's reservation, which
// its parse may grow.
func (b *bodyBudget) reserve(ctx context.Context, n int64) (*reservation, error) {
	r := &reservation{b: b, ctx: ctx}
	if b == nil {
		return r, nil
	}
	if n < 0 {
		n = b.unknown
	}
	if n < smallBody {
		return r, nil
	}
	return r, r.take(n)
}

// reservation is one request's room in the budget: its body's, taken
// before the body is read, and what its parse asks for as the points it
// builds grow (points.Options.Grow), all given back when the request is
// answered. A request never holds more than the whole budget: past it, it
// counts what it would hold, to give back in order.
type reservation struct {
	b      *bodyBudget
	ctx    context.Context
	held   int64 // taken from the budget
	over   int64 // asked for beyond the whole budget, not taken
	waited time.Duration
}

// grow takes n more bytes of room, waiting for them as a body does, or
// gives back -n when n is negative. It returns errBodyMemory when no room
// came in time.
func (r *reservation) grow(n int64) error {
	if r.b == nil {
		return nil
	}
	if n < 0 {
		back := -n
		c := min(r.over, back)
		r.over -= c
		back = min(back-c, r.held)
		if back > 0 {
			r.held -= back
			r.b.sem.Release(back)
		}
		return nil
	}
	return r.take(n)
}

// take takes n bytes of room, as much of them as the budget has in all.
func (r *reservation) take(n int64) error {
	b := r.b
	if extra := r.held + n - b.size; extra > 0 {
		r.over += extra
		n -= extra
	}
	if n <= 0 {
		return nil
	}
	if !b.sem.TryAcquire(n) {
		if b.waiting != nil {
			b.waiting()
		}
		start := time.Now()
		wctx, cancel := context.WithTimeout(r.ctx, b.wait)
		err := b.sem.Acquire(wctx, n)
		cancel()
		waited := time.Since(start)
		r.waited += waited
		if err != nil {
			return fmt.Errorf("%w: waited %s for room for %d more bytes", errBodyMemory, waited.Round(time.Millisecond), n)
		}
	}
	r.held += n
	return nil
}

// release gives back all the room r holds.
func (r *reservation) release() {
	if r.held > 0 {
		r.b.sem.Release(r.held)
		r.held = 0
	}
}
