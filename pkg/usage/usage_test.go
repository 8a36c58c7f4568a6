package usage_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/usage"
)

// openStore opens a fresh key store in a temp dir with two keys in it.
func openStore(t *testing.T) (s *keystore.Store, a, b int64) {
	t.Helper()
	ctx := context.Background()
	s, err := keystore.Open(ctx, filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	for _, id := range []*int64{&a, &b} {
		k, _, err := s.Generate(ctx, keystore.NewKey{Hostname: "127.0.0.1"})
		if err != nil {
			t.Fatalf("Generate: %v", err)
		}
		*id = k.ID
	}
	return s, a, b
}

// checkUsage compares what the store holds of key id with want.
func checkUsage(t *testing.T, s *keystore.Store, id int64, want keystore.Usage) {
	t.Helper()
	k, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%d): %v", id, err)
	}
	if !k.LastUsedAt.Equal(want.LastUsedAt) || k.LastUsedAddr != want.LastUsedAddr ||
		k.Requests != want.Requests || k.Points != want.Points {
		got := keystore.Usage{LastUsedAt: k.LastUsedAt, LastUsedAddr: k.LastUsedAddr, Requests: k.Requests, Points: k.Points}
		t.Errorf("key %d: got usage %+v, want %+v", id, got, want)
	}
}

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestFlush records requests of two keys, out of time order, and checks that
// one flush stores their sums and latest use, and that a later flush adds to
// them rather than writing them again.
func TestFlush(t *testing.T) {
	ctx := context.Background()
	s, a, b := openStore(t)
	r := usage.NewRecorder(s, discard())

	r.Record(a, "10.0.0.1", t0, 10)
	r.Record(a, "10.0.0.3", t0.Add(3*time.Second), 20)
	r.Record(a, "10.0.0.2", t0.Add(2*time.Second), 5)
	r.Record(b, "2001:db8::1", t0.Add(time.Second), 7)
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	checkUsage(t, s, a, keystore.Usage{LastUsedAt: t0.Add(3 * time.Second), LastUsedAddr: "10.0.0.3", Requests: 3, Points: 35})
	checkUsage(t, s, b, keystore.Usage{LastUsedAt: t0.Add(time.Second), LastUsedAddr: "2001:db8::1", Requests: 1, Points: 7})

	if err := r.Flush(ctx); err != nil {
		t.Fatalf("Flush with nothing buffered: %v", err)
	}
	checkUsage(t, s, a, keystore.Usage{LastUsedAt: t0.Add(3 * time.Second), LastUsedAddr: "10.0.0.3", Requests: 3, Points: 35})

	r.Record(a, "10.0.0.9", t0.Add(time.Second), 1) // older than what is stored
	r.Record(b, "2001:db8::2", t0.Add(time.Minute), 0)
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("second Flush: %v", err)
	}
	checkUsage(t, s, a, keystore.Usage{LastUsedAt: t0.Add(3 * time.Second), LastUsedAddr: "10.0.0.3", Requests: 4, Points: 36})
	checkUsage(t, s, b, keystore.Usage{LastUsedAt: t0.Add(time.Minute), LastUsedAddr: "2001:db8::2", Requests: 2, Points: 7})
}

// TestFlushFailure checks that usage whose write failed is kept and merged
// with what is recorded before the next flush. The write fails for real,
// through a cancelled context, or, to record a request while the failing
// write is in flight, through failFirst.
func TestFlushFailure(t *testing.T) {
	tests := []struct {
		name string
		// inFlight records the second request during the failed write
		// rather than after it.
		inFlight bool
		// after is when the second request happened, relative to the
		// first.
		after    time.Duration
		wantAt   time.Time
		wantAddr string
	}{
		{"LaterRequestWins", false, time.Second, t0.Add(time.Second), "10.0.0.2"},
		{"KeptRequestWins", false, -time.Second, t0, "10.0.0.1"},
		{"InFlightLaterRequestWins", true, time.Second, t0.Add(time.Second), "10.0.0.2"},
		{"InFlightKeptRequestWins", true, -time.Second, t0, "10.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, a, b := openStore(t)
			second := func() {}
			var r *usage.Recorder
			record := func() { r.Record(a, "10.0.0.2", t0.Add(tt.after), 5) }
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			wantErr := context.Canceled
			if tt.inFlight {
				r = usage.NewRecorder(&failFirst{Store: s, during: record}, discard())
				wantErr = errWrite
			} else {
				r = usage.NewRecorder(s, discard())
				cancel()
				second = record
			}
			r.Record(a, "10.0.0.1", t0, 10)
			r.Record(b, "10.0.0.5", t0, 1)

			if err := r.Flush(ctx); !errors.Is(err, wantErr) {
				t.Fatalf("first Flush: got error %v, want %v", err, wantErr)
			}
			checkUsage(t, s, a, keystore.Usage{})

			second()
			if err := r.Flush(context.Background()); err != nil {
				t.Fatalf("second Flush: %v", err)
			}
			checkUsage(t, s, a, keystore.Usage{LastUsedAt: tt.wantAt, LastUsedAddr: tt.wantAddr, Requests: 2, Points: 15})
			checkUsage(t, s, b, keystore.Usage{LastUsedAt: t0, LastUsedAddr: "10.0.0.5", Requests: 1, Points: 1})
		})
	}
}

var errWrite = errors.New("injected write failure")

// failFirst is a usage.Store over a real store whose first write runs
// during, as if a request were recorded while the write was in flight, and
// then fails; later writes reach the store.
type failFirst struct {
	*keystore.Store
	during func()
	failed bool
}

func (f *failFirst) RecordUsage(ctx context.Context, u map[int64]keystore.Usage) error {
	if !f.failed {
		f.failed = true
		f.during()
		return errWrite
	}
	return f.Store.RecordUsage(ctx, u)
}

// TestConcurrent records from many goroutines while flushes run, and checks
// that every request is counted once.
func TestConcurrent(t *testing.T) {
	const goroutines, each = 8, 100
	s, a, _ := openStore(t)
	r := usage.NewRecorder(s, discard())
	stop := make(chan struct{})
	flushed := make(chan error)
	go func() {
		for {
			select {
			case <-stop:
				flushed <- r.Flush(context.Background())
				return
			default:
				if err := r.Flush(context.Background()); err != nil {
					flushed <- err
					return
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				r.Record(a, "10.0.0.1", t0.Add(time.Duration(g*each+i)), 2)
			}
		})
	}
	wg.Wait()
	close(stop)
	if err := <-flushed; err != nil {
		t.Fatalf("Flush: %v", err)
	}
	checkUsage(t, s, a, keystore.Usage{
		LastUsedAt: t0.Add(goroutines*each - 1), LastUsedAddr: "10.0.0.1",
		Requests: goroutines * each, Points: 2 * goroutines * each,
	})
}

// TestRun checks that Run flushes on its ticker, and once more when its
// context is cancelled.
func TestRun(t *testing.T) {
	t.Run("FlushesOnTicker", func(t *testing.T) {
		s, a, _ := openStore(t)
		// In the bubble the ticker runs on a fake clock that moves only
		// when every goroutine of the test waits: an hour's tick takes no
		// time, and when the test wakes after it Run has flushed.
		synctest.Test(t, func(t *testing.T) {
			r := usage.NewRecorder(s, discard())
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { r.Run(ctx, time.Hour); close(done) }()
			defer func() { cancel(); <-done }()

			r.Record(a, "10.0.0.1", t0, 3)
			time.Sleep(time.Hour - time.Second)
			synctest.Wait()
			checkUsage(t, s, a, keystore.Usage{})
			time.Sleep(2 * time.Second)
			synctest.Wait()
			checkUsage(t, s, a, keystore.Usage{LastUsedAt: t0, LastUsedAddr: "10.0.0.1", Requests: 1, Points: 3})
		})
	})
	t.Run("FlushesOnCancel", func(t *testing.T) {
		s, a, _ := openStore(t)
		r := usage.NewRecorder(s, discard())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { r.Run(ctx, time.Hour); close(done) }()

		r.Record(a, "10.0.0.1", t0, 3)
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return within 5s of its context being cancelled")
		}
		checkUsage(t, s, a, keystore.Usage{LastUsedAt: t0, LastUsedAddr: "10.0.0.1", Requests: 1, Points: 3})
	})
}
