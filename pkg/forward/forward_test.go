package forward_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metricgate/metricgate/pkg/forward"
	"github.com/metricgate/metricgate/pkg/influx"
	"github.com/metricgate/metricgate/pkg/spool"
)

func newSpool(t *testing.T) *spool.Spool {
	t.Helper()
	sp, err := spool.Open(spool.Options{Dir: t.TempDir(), SegmentSize: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp
}

// TestDeadLetter spools good lines around one InfluxDB refuses (a field
// type conflict): the good ones arrive, the bad one is kept with the
// reason, and the spool empties.
func TestDeadLetter(t *testing.T) {
	db, out, _ := seeded(t, "m,host=h v=1i 1\n")
	sp := newSpool(t)
	lines := "m,host=h v=2i 2\nm,host=h v=3i 3\nm,host=h v=\"three\" 4\nm,host=h v=5i 5\nm,host=h v=6i 6\n"
	if err := sp.Write(context.Background(), []byte(lines)); err != nil {
		t.Fatal(err)
	}
	deadPath := filepath.Join(t.TempDir(), "dead-letter.jsonl")
	var rejected int
	fwd := forward.New(sp, out, forward.Options{BatchWait: 10 * time.Millisecond, DeadLetter: deadPath,
		Rejected: func(n int) { rejected += n }}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if left := fwd.Drain(ctx); left != 0 {
		t.Fatalf("%d points left in the spool, want 0", left)
	}
	if n := db.Count(t, "m", "v"); n != 5 {
		t.Errorf("InfluxDB has %d points, want 5 (the first and the four good ones)", n)
	}
	f, err := os.Open(deadPath)
	if err != nil {
		t.Fatalf("dead-letter file: %v", err)
	}
	defer f.Close()
	var recs []struct{ Reason, Line string }
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var r struct{ Reason, Line string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if len(recs) != 1 || recs[0].Line != `m,host=h v="three" 4` || !strings.Contains(recs[0].Reason, "conflict") {
		t.Errorf("dead letters = %+v, want the one conflicting line with its reason", recs)
	}
	if st := fwd.Status(); st.DeadLettered != 1 || st.Forwarded != 4 || rejected != 1 {
		t.Errorf("status = %+v, rejected %d; want 1 dead-lettered, 4 forwarded", st, rejected)
	}
}

// stepClock is a clock that moves only when the forwarder waits: After
// moves it on by the wait and fires at once. A test sees the waits the
// forwarder chose, in the times it reads from Now, without spending them.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	c.mu.Unlock()
	return ch
}

// TestRetryHonoursRetryAfter fakes an InfluxDB that answers 429 with
// Retry-After, then 503, then accepts: a fault a real one cannot produce on
// demand. The batch is delivered once, after the wait it was told.
func TestRetryHonoursRetryAfter(t *testing.T) {
	clock := &stepClock{now: time.Unix(1700000000, 0)}
	var mu sync.Mutex
	var times []time.Time
	var bodies []string
	var fwd *forward.Forwarder
	var healthyWhileRetrying bool
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		times = append(times, clock.Now())
		switch len(times) {
		case 1:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
		case 2:
			healthyWhileRetrying = fwd.Healthy()
			w.WriteHeader(503)
		default:
			bodies = append(bodies, string(b))
			w.WriteHeader(204)
		}
	}))
	defer fake.Close()
	out := influx.New(influx.Config{URL: fake.URL, Bucket: "db"})
	defer out.Close()
	sp := newSpool(t)
	sp.Write(context.Background(), []byte("m v=1i 1\n"))
	mu.Lock()
	fwd = forward.New(sp, out, forward.Options{BatchWait: time.Millisecond, MinBackoff: 10 * time.Millisecond, After: clock.After},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	mu.Unlock()
	if !fwd.Healthy() {
		t.Error("a new forwarder is not healthy")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if left := fwd.Drain(ctx); left != 0 {
		t.Fatalf("%d points left, want 0", left)
	}
	if !fwd.Healthy() {
		t.Error("the forwarder is not healthy after delivering")
	}
	mu.Lock()
	defer mu.Unlock()
	if healthyWhileRetrying {
		t.Error("the forwarder was healthy while retrying a failed write")
	}
	if len(times) != 3 || len(bodies) != 1 || bodies[0] != "m v=1i 1" && bodies[0] != "m v=1i 1\n" {
		t.Fatalf("got %d attempts and bodies %q, want 3 attempts and one delivery", len(times), bodies)
	}
	if wait := times[1].Sub(times[0]); wait < time.Second {
		t.Errorf("retried after %v, want at least the 1s Retry-After", wait)
	}
}

// TestAcksInOrder runs several workers where the first batch hangs: the
// later batches reach InfluxDB, but none leaves the spool before the first
// is confirmed, so stopping then loses nothing.
func TestAcksInOrder(t *testing.T) {
	var mu sync.Mutex
	hang := true
	release := make(chan struct{})
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		stall := hang && strings.Contains(string(b), "v=1i")
		mu.Unlock()
		if stall {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		w.WriteHeader(204)
	}))
	defer fake.Close()
	defer close(release) // before the server closes
	out := influx.New(influx.Config{URL: fake.URL, Bucket: "db"})
	defer out.Close()
	sp := newSpool(t)
	for _, l := range []string{"m v=1i 1\n", "m v=2i 2\n", "m v=3i 3\n"} {
		sp.Write(context.Background(), []byte(l))
	}
	var delivered atomic.Int64
	laterDelivered := make(chan struct{})
	fwd := forward.New(sp, out, forward.Options{BatchPoints: 1, BatchWait: time.Millisecond, Workers: 3,
		Observe: func(int, time.Duration) {
			if delivered.Add(1) == 2 {
				close(laterDelivered)
			}
		}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { fwd.Run(ctx); close(stopped) }()
	select {
	case <-laterDelivered:
	case <-time.After(10 * time.Second):
		t.Error("the later batches were not delivered within 10s while the first hung")
	}
	cancel()
	<-stopped
	if n := sp.Stats().Points; n != 3 {
		t.Fatalf("after stopping with the first batch unconfirmed, the spool holds %d points, want all 3", n)
	}
	if st := fwd.Status(); st.Forwarded != 2 {
		t.Errorf("forwarded = %d, want 2 (the later batches were sent meanwhile)", st.Forwarded)
	}
	mu.Lock()
	hang = false
	mu.Unlock()
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	if left := fwd.Drain(dctx); left != 0 {
		t.Errorf("after the outage, %d points left, want 0", left)
	}
}
