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
