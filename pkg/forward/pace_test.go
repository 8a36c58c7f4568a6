package forward_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/metricgate/metricgate/pkg/forward"
)

// pacerState is the backlog and forwarder health a Pacer reads, set by the
// test as the spool and forwarder would change them.
type pacerState struct {
	backlog atomic.Int64
	healthy atomic.Bool
	mu      sync.Mutex
	acked   chan struct{} // closed and replaced by deliver, as Spool.Ack does
}

func newPacer(s *pacerState, limit int64, maxWait time.Duration) *forward.Pacer {
	return forward.NewPacer(s.backlog.Load, s.ackedChan, s.healthy.Load, limit, maxWait)
}

func (s *pacerState) ackedChan() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.acked == nil {
		s.acked = make(chan struct{})
	}
	return s.acked
}

// deliver lowers the backlog to b as an acknowledged delivery does.
func (s *pacerState) deliver(b int64) {
	s.ackedChan()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backlog.Store(b)
	close(s.acked)
	s.acked = make(chan struct{})
}

// waitAsync runs p.Wait in a goroutine and returns a channel closed when it
// returns.
func waitAsync(ctx context.Context, p *forward.Pacer) <-chan struct{} {
	done := make(chan struct{})
	go func() { p.Wait(ctx); close(done) }()
	return done
}

// The tests run in a synctest bubble, where time is a fake clock that
// moves only when every goroutine of the test waits: the Pacer's polls and
// deadline take no real time, and whether Wait has returned after a given
// time is exact, not a guess about how busy the machine is.

func mustReturn(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("Wait still holding the write back after 5s: %s", what)
	}
}

func mustHold(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	time.Sleep(50 * time.Millisecond)
	if returnedNow(done) {
		t.Fatalf("Wait let the write in within 50ms: %s", what)
	}
}

// returnedNow reports whether Wait has returned once every goroutine of the
// test waits, with no time passing.
func returnedNow(done <-chan struct{}) bool {
	synctest.Wait()
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// heldOver makes p's floor 0, raises the backlog to 5000 and returns a Wait
// that p holds back: over a limit of 1000 while the forwarder delivers.
func heldOver(ctx context.Context, t *testing.T, s *pacerState, p *forward.Pacer) <-chan struct{} {
	t.Helper()
	s.backlog.Store(0)
	p.Wait(context.Background()) // the floor is 0 now
	s.backlog.Store(5000)
	done := waitAsync(ctx, p)
	mustHold(t, done, "over the limit")
	return done
}

func TestPacerHoldsBackWhileBacklogGrows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s pacerState
		s.healthy.Store(true)
		p := newPacer(&s, 1000, time.Hour)

		s.backlog.Store(1000)
		mustReturn(t, waitAsync(context.Background(), p), "backlog at the limit")
		if held := p.Wait(context.Background()); held != 0 {
			t.Errorf("Wait reports holding a write it let in at once for %v", held)
		}

		s.backlog.Store(1001)
		done := waitAsync(context.Background(), p)
		mustHold(t, done, "backlog over the limit while the forwarder delivers")
		s.deliver(900)
		mustReturn(t, done, "backlog back under the limit")
	})
}

func TestPacerNeverHoldsBackWhileForwarderFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s pacerState
		p := newPacer(&s, 1000, time.Hour)
		s.healthy.Store(false)
		s.backlog.Store(1_000_000)
		mustReturn(t, waitAsync(context.Background(), p), "InfluxDB down: the spool takes everything")

		// InfluxDB is back with a million points to drain: new writes go in as
		// long as the backlog does not grow past its lowest since by the limit.
		s.healthy.Store(true)
		mustReturn(t, waitAsync(context.Background(), p), "old backlog draining")
		s.backlog.Store(400_000)
		mustReturn(t, waitAsync(context.Background(), p), "backlog falling")
		s.backlog.Store(401_000)
		mustReturn(t, waitAsync(context.Background(), p), "backlog up by the limit from its lowest")
		s.backlog.Store(401_001)
		done := waitAsync(context.Background(), p)
		mustHold(t, done, "backlog up by more than the limit from its lowest")
		s.deliver(400_500)
		mustReturn(t, done, "backlog back within the limit")
	})
}

func TestPacerStartsFromTheBacklogLeftByAnEarlierRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s pacerState
		s.healthy.Store(true)
		s.backlog.Store(5_000_000)
		p := newPacer(&s, 1000, time.Hour)
		mustReturn(t, waitAsync(context.Background(), p), "points left by an earlier run")
	})
}

func TestPacerLetsInAfterMaxWaitOrWhenTheRequestEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s pacerState
		s.healthy.Store(true)
		p := newPacer(&s, 1000, 20*time.Millisecond)
		s.backlog.Store(5000)
		mustReturn(t, waitAsync(context.Background(), p), "held longer than maxWait")
		if held := p.Wait(context.Background()); held != 20*time.Millisecond {
			t.Errorf("Wait reports holding a write for %v, want maxWait, 20ms", held)
		}

		p = newPacer(&s, 1000, time.Hour)
		ctx, cancel := context.WithCancel(context.Background())
		done := heldOver(ctx, t, &s, p)
		cancel()
		mustReturn(t, done, "the request ended")
	})
}

// TestPacerLetsInAtTheDelivery checks that a held write goes in when the
// delivery that makes room is acknowledged, with no time passing, and not
// at the next poll; and that without one, it sees the forwarder fail at a
// poll.
func TestPacerLetsInAtTheDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s pacerState
		s.healthy.Store(true)
		p := newPacer(&s, 1000, time.Hour)
		done := heldOver(context.Background(), t, &s, p)

		s.deliver(4000) // still over: held
		if returnedNow(done) {
			t.Fatal("Wait let the write in at a delivery that left the backlog over the limit")
		}
		before := time.Now()
		s.deliver(1000)
		if !returnedNow(done) {
			t.Fatal("Wait still holding the write back after the delivery that made room")
		}
		if waited := time.Since(before); waited != 0 {
			t.Errorf("Wait let the write in %v after the delivery, want at once", waited)
		}

		done = heldOver(context.Background(), t, &s, p)
		s.healthy.Store(false) // InfluxDB down: nothing is acknowledged
		mustReturn(t, done, "the forwarder failing")
	})
}
