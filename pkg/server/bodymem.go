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
	r, err := b.reserve(ctx, n, 0)
	if err != nil {
		return nil, r.waited, err
	}
	return r.release, r.waited, nil
}

// reserve takes room, as acquire does, for a body of n bytes (of unknown
// size when negative, counted as the body limit) and for parse bytes of
// the points its parse is expected to build, and returns the request's
// reservation, which the parse may grow. A body under smallBody takes
// nothing.
func (b *bodyBudget) reserve(ctx context.Context, n, parse int64) (*reservation, error) {
	r := &reservation{b: b}
	if b == nil {
		return r, nil
	}
	if n < 0 {
		n = b.unknown
	}
	if n < smallBody {
		return r, nil
	}
	n += parse
	if extra := n - b.size; extra > 0 {
		n, r.spare = b.size, parse-extra
	} else {
		r.spare = parse
	}
	if !b.sem.TryAcquire(n) {
		if b.waiting != nil {
			b.waiting()
		}
		start := time.Now()
		wctx, cancel := context.WithTimeout(ctx, b.wait)
		err := b.sem.Acquire(wctx, n)
		cancel()
		r.waited = time.Since(start)
		if err != nil {
			return r, fmt.Errorf("%w: waited %s for room to read %d bytes", errBodyMemory, r.waited.Round(time.Millisecond), n)
		}
	}
	r.held = n
	return r, nil
}

// reservation is one request's room in the budget: its body's and its
// parse's expected share, taken before the body is read, and what the
// parse asks for beyond that as the points it builds grow
// (points.Options.Grow), all given back when the request is answered.
type reservation struct {
	b      *bodyBudget
	held   int64 // taken from the budget
	spare  int64 // of held, taken for the parse and not yet asked for
	waited time.Duration
}

// grow takes n more bytes of room for the parse: first from what was
// taken for it with the body, then from the budget if it has them now. It
// does not wait: a request waiting for more while holding room could wait
// on others that wait on it. It returns errBodyMemory when the budget has
// no room.
func (r *reservation) grow(n int64) error {
	if r.b == nil {
		return nil
	}
	c := min(n, r.spare)
	r.spare -= c
	n -= c
	if n <= 0 {
		return nil
	}
	n = min(n, r.b.size-r.held) // a request never holds more than the whole budget
	if n <= 0 {
		return nil
	}
	if !r.b.sem.TryAcquire(n) {
		return fmt.Errorf("%w: no room for the %d more bytes the body's points take", errBodyMemory, n)
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
