package server

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBodyBudget(t *testing.T) {
	ctx := context.Background()
	b := newBodyBudget(1<<20, 0, 1<<20, 50*time.Millisecond)

	first, _, err := acquire(ctx, b, 1, 600<<10, 0)
	if err != nil {
		t.Fatalf("first 600 KiB of a 1 MiB budget: %v", err)
	}
	if _, waited, err := acquire(ctx, b, 1, 600<<10, 0); !errors.Is(err, errBodyMemory) || waited < b.wait {
		t.Fatalf("second 600 KiB while the first is held: got %v after %s, want errBodyMemory after %s", err, waited, b.wait)
	}
	small, waited, err := acquire(ctx, b, 1, smallBody-1, 0)
	if err != nil || waited != 0 {
		t.Fatalf("a small body while the budget is short: %v after %s, want no wait", err, waited)
	}
	small.release()

	// The waiter gets the room once the first body is answered.
	done := make(chan error, 1)
	waiting := make(chan struct{})
	b.wait, b.waiting = 10*time.Second, func() { close(waiting) }
	go func() {
		second, waited, err := acquire(ctx, b, 1, 600<<10, 0)
		if err == nil {
			second.release()
			if waited <= 0 {
				err = errors.New("it did not wait")
			}
		}
		done <- err
	}()
	<-waiting
	first.release()
	if err := <-done; err != nil {
		t.Fatalf("second 600 KiB, waiting, after the first was released: %v", err)
	}
	b.wait, b.waiting = 50*time.Millisecond, nil

	// A body larger than the whole budget takes all of it rather than
	// waiting forever.
	all, _, err := acquire(ctx, b, 1, 3<<20, 0)
	if err != nil {
		t.Fatalf("a body over the budget, with nothing else held: %v", err)
	}
	if _, _, err := acquire(ctx, b, 1, smallBody, 0); !errors.Is(err, errBodyMemory) {
		t.Fatalf("while the whole budget is held: got %v, want errBodyMemory", err)
	}
	all.release()

	// A body of unknown size counts as the body limit, here the whole
	// budget.
	part, _, err := acquire(ctx, b, 1, smallBody, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := acquire(ctx, b, 1, -1, 0); !errors.Is(err, errBodyMemory) {
		t.Fatalf("a body of unknown size while %d bytes are held: got %v, want errBodyMemory", smallBody, err)
	}
	part.release()

	var none *bodyBudget
	if _, _, err := acquire(ctx, none, 1, 1<<30, 0); err != nil {
		t.Fatalf("no budget: %v", err)
	}
}

// TestBodyBudgetPerKey checks that one key holds at most its share, while
// another key still finds room; that a key past its share waits for its
// own room, and then gets errKeyBodies (a rate limit, 429); and that a
// key's share is forgotten once none of its bodies holds it.
func TestBodyBudgetPerKey(t *testing.T) {
	ctx := context.Background()
	b := newBodyBudget(1<<20, 300<<10, 1<<20, 50*time.Millisecond)
	a1, _, err := acquire(ctx, b, 1, 200<<10, 0)
	if err != nil {
		t.Fatalf("key 1's first 200 KiB: %v", err)
	}
	if _, waited, err := acquire(ctx, b, 1, 200<<10, 0); !errors.Is(err, errKeyBodies) || !errors.Is(err, errRateLimited) || waited < b.wait {
		t.Fatalf("key 1's second 200 KiB, past its 300 KiB share: got %v after %s, want errKeyBodies after %s", err, waited, b.wait)
	}
	other, waited, err := acquire(ctx, b, 2, 200<<10, 0)
	if err != nil || waited != 0 {
		t.Fatalf("key 2's 200 KiB while key 1 holds its share: %v after %s, want room at once", err, waited)
	}
	big, _, err := acquire(ctx, b, 3, 400<<10, 0)
	if err != nil || big.own != 300<<10 || big.total != 400<<10 {
		t.Fatalf("key 3's 400 KiB: %v, holding %d of its share and %d of the total, want all 300 KiB of it and 400 KiB", err, big.own, big.total)
	}
	if got := len(b.shares); got != 3 {
		t.Errorf("%d shares while three keys hold room, want 3", got)
	}
	for _, l := range []*lease{a1, other, big} {
		l.release()
	}
	if got := len(b.shares); got != 0 {
		t.Errorf("%d shares once every body is answered, want 0", got)
	}
	if l, _, err := acquire(ctx, b, 1, 300<<10, 0); err != nil {
		t.Errorf("key 1's whole share after its bodies were answered: %v", err)
	} else {
		l.release()
	}
	if n := b.sem.TryAcquire(1 << 20); !n {
		t.Errorf("the total is not whole again after every release")
	}
}

// TestReservation checks a request's room: what is set aside for the
// parse serves its first requests for more, the rest comes from the budget
// if it has it now, without waiting, and everything goes back at the end.
func TestReservation(t *testing.T) {
	ctx := context.Background()
	b := newBodyBudget(1<<20, 0, 1<<20, 10*time.Second)
	r, _, err := acquire(ctx, b, 1, 100<<10, 200<<10)
	if err != nil || r.total != 300<<10 {
		t.Fatalf("reserve: held %d, %v; want 300 KiB", r.total, err)
	}
	if err := r.grow(150 << 10); err != nil || r.total != 300<<10 {
		t.Fatalf("growing within what was set aside: held %d, %v; want no more taken", r.total, err)
	}
	if err := r.grow(100 << 10); err != nil || r.total != 350<<10 {
		t.Fatalf("growing past it: held %d, %v; want 50 KiB more", r.total, err)
	}
	other, _, err := acquire(ctx, b, 2, 600<<10, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := r.grow(200 << 10); !errors.Is(err, errBodyMemory) || time.Since(start) > time.Second {
		t.Fatalf("growing with the budget taken: %v after %s, want errBodyMemory at once", err, time.Since(start))
	}
	other.release()
	r.release()
	if !b.sem.TryAcquire(1 << 20) {
		t.Errorf("the budget is not whole after both released")
	}
}

// acquire is b.acquire into a lease of its own.
func acquire(ctx context.Context, b *bodyBudget, id, n, parse int64) (*lease, time.Duration, error) {
	l := new(lease)
	waited, err := b.acquire(ctx, l, id, n, parse)
	return l, waited, err
}
