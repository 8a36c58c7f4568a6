package server

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBodyBudget(t *testing.T) {
	ctx := context.Background()
	b := newBodyBudget(1<<20, 1<<20, 50*time.Millisecond)

	first, _, err := b.acquire(ctx, 600<<10)
	if err != nil {
		t.Fatalf("first 600 KiB of a 1 MiB budget: %v", err)
	}
	if _, waited, err := b.acquire(ctx, 600<<10); !errors.Is(err, errBodyMemory) || waited < b.wait {
		t.Fatalf("second 600 KiB while the first is held: got %v after %s, want errBodyMemory after %s", err, waited, b.wait)
	}
	small, waited, err := b.acquire(ctx, smallBody-1)
	if err != nil || waited != 0 {
		t.Fatalf("a small body while the budget is short: %v after %s, want no wait", err, waited)
	}
	small()

	// The waiter gets the room once the first body is answered.
	done := make(chan error, 1)
	waiting := make(chan struct{})
	go func() {
		b := *b
		b.wait = 10 * time.Second
		b.waiting = func() { close(waiting) }
		release, waited, err := b.acquire(ctx, 600<<10)
		if err == nil {
			release()
			if waited <= 0 {
				err = errors.New("it did not wait")
			}
		}
		done <- err
	}()
	<-waiting
	first()
	if err := <-done; err != nil {
		t.Fatalf("second 600 KiB, waiting, after the first was released: %v", err)
	}

	// A body larger than the whole budget takes all of it rather than
	// waiting forever.
	all, _, err := b.acquire(ctx, 3<<20)
	if err != nil {
		t.Fatalf("a body over the budget, with nothing else held: %v", err)
	}
	if _, _, err := b.acquire(ctx, smallBody); !errors.Is(err, errBodyMemory) {
		t.Fatalf("while the whole budget is held: got %v, want errBodyMemory", err)
	}
	all()

	// A body of unknown size counts as the body limit, here the whole
	// budget.
	part, _, err := b.acquire(ctx, smallBody)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.acquire(ctx, -1); !errors.Is(err, errBodyMemory) {
		t.Fatalf("a body of unknown size while %d bytes are held: got %v, want errBodyMemory", smallBody, err)
	}
	part()

	var none *bodyBudget
	if _, _, err := none.acquire(ctx, 1<<30); err != nil {
		t.Fatalf("no budget: %v", err)
	}
}

// TestReservation checks a request's room: what is set aside for the
// parse serves its first requests for more, the rest comes from the budget
// if it has it now, without waiting, and everything goes back at the end.
func TestReservation(t *testing.T) {
	ctx := context.Background()
	b := newBodyBudget(1<<20, 1<<20, 10*time.Second)
	r, err := b.reserve(ctx, 100<<10, 200<<10)
	if err != nil || r.held != 300<<10 {
		t.Fatalf("reserve: held %d, %v; want 300 KiB", r.held, err)
	}
	if err := r.grow(150 << 10); err != nil || r.held != 300<<10 {
		t.Fatalf("growing within what was set aside: held %d, %v; want no more taken", r.held, err)
	}
	if err := r.grow(100 << 10); err != nil || r.held != 350<<10 {
		t.Fatalf("growing past it: held %d, %v; want 50 KiB more", r.held, err)
	}
	other, err := b.reserve(ctx, 600<<10, 0)
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
