package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// errBodyMemory means a request waited too long for room to read its body.
var errBodyMemory = errors.New("too many request bodies in memory")

// errKeyBodies means a request waited too long for room in its key's share
// of the body memory: the key has as many bodies in flight as it may. It
// wraps errRateLimited: the key, not the gateway, is over its limit.
var errKeyBodies = fmt.Errorf("%w: too many request bodies in flight for this key", errRateLimited)

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
//
// One key may hold at most perKey of it, so a key that sends many bodies
// at once (or sends them slowly) leaves room for the others; past its
// share, its request waits as long for room of its own, then gets 429.
type bodyBudget struct {
	sem     *semaphore.Weighted // nil: no bound on the total
	size    int64
	perKey  int64 // 0: no bound per key
	unknown int64 // what a body of unknown size counts as: the body limit
	wait    time.Duration
	// waiting, if set, is called when a body starts to wait for room; a
	// test uses it to know the wait began.
	waiting func()

	mu     sync.Mutex
	shares map[int64]*share // by key id, while the key holds room
}

// share is the room one key holds, and how many of its bodies hold or
// wait for it.
type share struct {
	sem   *semaphore.Weighted
	users int
}

// lease is the room one request holds: its body's, and the share of the
// points its parse is expected to build, taken before the body is read;
// grow takes more as they grow (points.Options.Grow); release gives it all
// back when the request is answered.
type lease struct {
	b          *bodyBudget
	key        int64
	total, own int64
	spare      int64 // of total, taken for the parse and not yet asked for
	sh         *share
	// rc, when set, is the controller of the connection whose read
	// deadline holdBody set for body, the request's; release closes body
	// and then clears the deadline.
	rc   *http.ResponseController
	body io.Closer
}

// holdBody takes room in l for r's body of size bytes (-1 if unknown) sent
// with key id, and parse bytes more for the points its parse is expected
// to build, counting any wait in the metrics. A body that holds room must
// arrive within the body read timeout, so a client that sends it slowly
// cannot keep the room for the server's whole read timeout: the read
// fails with os.ErrDeadlineExceeded, which statusOf answers 408. A key
// past its share gets 429 with Retry-After.
func (p *writePipeline) holdBody(w http.ResponseWriter, r *http.Request, l *lease, id, size, parse int64) error {
	waited, err := p.bodies.acquire(r.Context(), l, id, size, parse)
	if waited > 0 {
		p.metrics.BodyWaits.Inc()
		p.metrics.BodyWaitSeconds.Add(waited.Seconds())
	}
	if errors.Is(err, errKeyBodies) {
		setRetryAfter(w, time.Second)
	}
	if err != nil {
		return err
	}
	if l.held() && p.cfg.BodyReadTimeout > 0 {
		rc := http.NewResponseController(w)
		// A writer that cannot set deadlines (a test's recorder) has no
		// connection to hold.
		if rc.SetReadDeadline(time.Now().Add(p.cfg.BodyReadTimeout)) == nil {
			l.rc, l.body = rc, r.Body
		}
	}
	return nil
}

// newBodyBudget returns a budget of size bytes in all, and perKey bytes
// for each key, for bodies of at most maxBody bytes; or nil (no bound)
// when both are 0 or less.
func newBodyBudget(size, perKey, maxBody int64, wait time.Duration) *bodyBudget {
	if size <= 0 && perKey <= 0 {
		return nil
	}
	b := &bodyBudget{size: size, perKey: max(perKey, 0), unknown: maxBody, wait: wait, shares: map[int64]*share{}}
	if size > 0 {
		b.sem = semaphore.NewWeighted(size)
	}
	return b
}

// acquire takes room into l, which holds none, for a body of n bytes sent
// with key id, or of unknown size when n is negative, and parse bytes more
// for what its parse builds (as much of them as the key's share allows):
// first of the key's share, then of the total, so a key past its share
// waits without holding room others could use. It returns how long it
// waited; a body larger than the share or the total takes all of it. It
// returns errKeyBodies when the key's share had no room within the wait,
// errBodyMemory when the total had none. A body under smallBody takes
// nothing. The caller gives l (in its request's pooled parseWork), so a
// request allocates no lease of its own.
func (b *bodyBudget) acquire(ctx context.Context, l *lease, id, n, parse int64) (waited time.Duration, err error) {
	*l = lease{b: b, key: id}
	if b == nil {
		return 0, nil
	}
	if n < 0 {
		n = b.unknown
	}
	if n < smallBody {
		return 0, nil
	}
	var start time.Time
	defer func() {
		if !start.IsZero() {
			waited = time.Since(start)
		}
		if err != nil {
			l.release()
		}
	}()
	want := n + parse
	if b.perKey > 0 {
		// The key's share bounds what its parse sets aside too; a body
		// larger than the share still takes its own size of the total.
		want = min(want, max(b.perKey, n))
		l.own, l.sh = min(want, b.perKey), b.share(id)
		if err := b.take(ctx, l.sh.sem, l.own, &start); err != nil {
			l.own = 0
			return 0, fmt.Errorf("%w: this key may hold %d bytes of bodies at once; waited %s for room to read %d more",
				errKeyBodies, b.perKey, time.Since(start).Round(time.Millisecond), n)
		}
	}
	if b.sem != nil {
		total := min(want, b.size)
		if err := b.take(ctx, b.sem, total, &start); err != nil {
			return 0, fmt.Errorf("%w: waited %s for room to read %d bytes", errBodyMemory, time.Since(start).Round(time.Millisecond), total)
		}
		l.total, l.spare = total, max(total-n, 0)
	}
	return 0, nil
}

// grow takes n more bytes of room for the parse: first from what was
// taken for it with the body, then from the total if it has them now. It
// does not wait: a request waiting for more while holding room could wait
// on others that wait on it. It returns errBodyMemory when the budget has
// no room.
func (l *lease) grow(n int64) error {
	if l.b == nil || l.b.sem == nil {
		return nil
	}
	c := min(n, l.spare)
	l.spare -= c
	n = min(n-c, l.b.size-l.total) // a request never holds more than the whole budget
	if n <= 0 {
		return nil
	}
	if !l.b.sem.TryAcquire(n) {
		return fmt.Errorf("%w: no room for the %d more bytes the body's points take", errBodyMemory, n)
	}
	l.total += n
	return nil
}

// take takes n of sem, waiting if it must until wait has passed since
// start, which it sets when the first wait begins.
func (b *bodyBudget) take(ctx context.Context, sem *semaphore.Weighted, n int64, start *time.Time) error {
	if sem.TryAcquire(n) {
		return nil
	}
	if start.IsZero() {
		*start = time.Now()
		if b.waiting != nil {
			b.waiting()
		}
	}
	wctx, cancel := context.WithDeadline(ctx, start.Add(b.wait))
	defer cancel()
	return sem.Acquire(wctx, n)
}

// share returns key id's share, counting one more user of it.
func (b *bodyBudget) share(id int64) *share {
	b.mu.Lock()
	defer b.mu.Unlock()
	sh := b.shares[id]
	if sh == nil {
		sh = &share{sem: semaphore.NewWeighted(b.perKey)}
		b.shares[id] = sh
	}
	sh.users++
	return sh
}

// held reports whether the lease holds any room: whether its body counts.
func (l *lease) held() bool { return l.total > 0 || l.own > 0 }

// release gives the lease's room back, and forgets the key's share once
// no body of the key holds or waits for it.
func (l *lease) release() {
	if l.rc != nil {
		// Closing reads what is left of a body (to reuse the connection)
		// under the deadline still; then the connection's next request
		// gets the server's own deadlines.
		l.body.Close()
		l.rc.SetReadDeadline(time.Time{})
	}
	if l.total > 0 {
		l.b.sem.Release(l.total)
	}
	if l.own > 0 {
		l.sh.sem.Release(l.own)
	}
	if l.sh != nil {
		l.b.mu.Lock()
		if l.sh.users--; l.sh.users == 0 {
			delete(l.b.shares, l.key)
		}
		l.b.mu.Unlock()
	}
	*l = lease{} // a second release gives back nothing
}
