package clusterlimit_test

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/clusterlimit"
	"github.com/metricgate/metricgate/pkg/metrics"
)

// replica is one gateway's limiter, with its log and metrics.
type replica struct {
	*clusterlimit.Limiter
	logs    *testenv.Buffer
	metrics *metrics.Metrics
}

// open starts a limiter on url with a heartbeat of 50 ms, changed by
// mutate, and closes it at the end of the test.
func open(t *testing.T, url string, mutate func(*clusterlimit.Options)) *replica {
	t.Helper()
	r := &replica{logs: &testenv.Buffer{}, metrics: metrics.New()}
	o := clusterlimit.Options{URL: url, Node: t.Name(), AuthFailRate: 0.001, AuthFailBurst: 5,
		Log: slog.New(slog.NewTextHandler(r.logs, nil)), Metrics: r.metrics, Heartbeat: 50 * time.Millisecond}
	if mutate != nil {
		mutate(&o)
	}
	l, err := clusterlimit.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { l.Close() }) })
	r.Limiter = l
	return r
}

// cluster opens n limiters on one Redis and waits until each counts n
// replicas.
func cluster(t *testing.T, url string, n int, mutate func(*clusterlimit.Options)) []*replica {
	t.Helper()
	var rs []*replica
	for range n {
		rs = append(rs, open(t, url, mutate))
	}
	for _, r := range rs {
		waitFor(t, "every replica to count the others", func() bool { return r.Status()["replicas"] == n })
	}
	return rs
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
	}
}

func redisURL(s *testenv.RedisServer) string { return "redis://" + s.Addr + "/0" }

// TestBurstShared spends one key's burst (its rate too slow to refill
// within the test) from three replicas in turn: together they admit the
// burst less at most the 10% held in leases, never more; and the tokens a
// replica gives back on Close are spent by the others.
func TestBurstShared(t *testing.T) {
	url := redisURL(testenv.StartRedis(t))
	rs := cluster(t, url, 3, nil)
	const burst = 300
	admitted := 0
	for refused := 0; refused < 3; {
		refused = 0
		for _, r := range rs {
			if d := r.Allow(7, 0.001, burst, 1); d.Allowed {
				admitted++
			} else {
				refused++
				if d.RetryAfter <= 0 || !d.Limited || d.Limit != burst {
					t.Fatalf("refusal %+v: want Limited, Limit %d and a RetryAfter", d, burst)
				}
			}
		}
	}
	t.Logf("3 replicas admitted %d of a burst of %d", admitted, burst)
	if admitted > burst || admitted < burst*9/10 {
		t.Fatalf("admitted %d, want between %d and %d", admitted, burst*9/10, burst)
	}
	leases := testutil.ToFloat64(rs[0].metrics.LimitsLeases) + testutil.ToFloat64(rs[1].metrics.LimitsLeases) + testutil.ToFloat64(rs[2].metrics.LimitsLeases)
	if leases > float64(admitted)/3 {
		t.Errorf("%v leases for %d requests, want at most one per 3 requests", leases, admitted)
	}
	// Whatever rs[0] holds goes back when it closes; a fresh replica (the
	// others remember the key empty for a while) spends it.
	rs[0].Close()
	fresh := open(t, url, nil)
	more := 0
	for fresh.Allow(7, 0.001, burst, 1).Allowed {
		more++
	}
	if admitted+more > burst {
		t.Errorf("after a replica closed, %d more were admitted: %d in all, over the burst of %d", more, admitted+more, burst)
	}
}

// TestFailuresShared spreads one source's failed authentications over
// three replicas: the source is throttled after the same number of
// failures as on one, and a replica that never saw it refuses it too.
func TestFailuresShared(t *testing.T) {
	rs := cluster(t, redisURL(testenv.StartRedis(t)), 3, nil)
	addr := netip.MustParseAddr("192.0.2.7")
	for i := range 5 {
		f := rs[i%3].Fail(addr)
		if f.Refused || f.Throttled != (i == 4) || f.NowThrottled != (i == 4) {
			t.Fatalf("failure %d on replica %d: %+v, want refused false, throttled %v", i+1, i%3, f, i == 4)
		}
	}
	for i, r := range rs {
		if f := r.Fail(addr); !f.Refused || f.RetryAfter <= 0 {
			t.Errorf("failure 6 on replica %d: %+v, want refused with a RetryAfter", i, f)
		}
	}
	// Another address of the same IPv6 /64 is the same source.
	v6 := netip.MustParseAddr("2001:db8::1")
	for range 5 {
		rs[0].Fail(v6)
	}
	if f := rs[1].Fail(netip.MustParseAddr("2001:db8::ffff")); !f.Refused {
		t.Errorf("another address of a throttled /64 on another replica: %+v, want refused", f)
	}
}

// TestRedisOutage stops Redis under two clusters' limiters, one failing
// open and one closed: open limits each key locally at its share of the
// replicas counted, closed refuses; both log and count the change, say so
// in their status, and share the limits again once Redis is back.
func TestRedisOutage(t *testing.T) {
	srv := testenv.StartRedis(t)
	url := redisURL(srv)
	open3 := cluster(t, url, 3, nil)
	closed := open(t, url, func(o *clusterlimit.Options) { o.FailClosed = true })
	for _, r := range append(open3, closed) {
		waitFor(t, "4 replicas", func() bool { return r.Status()["replicas"] == 4 })
	}
	for _, r := range append(open3, closed) {
		if d := r.Allow(1, 1000, 1000, 1); !d.Allowed {
			t.Fatalf("before the outage: %+v, want allowed", d)
		}
	}
	srv.Stop(t)
	for _, r := range append(open3, closed) {
		waitFor(t, "the limiter to notice Redis is gone", func() bool { return r.State() != metrics.LimitsShared })
	}
	// Failing open: a burst of 400 is 100 for each of the 4 replicas
	// counted.
	admitted := 0
	for open3[0].Allow(2, 0.001, 400, 1).Allowed {
		admitted++
	}
	if admitted != 100 {
		t.Errorf("failing open, one replica of 4 admitted %d of a burst of 400, want 100", admitted)
	}
	if d := closed.Allow(2, 0.001, 400, 1); d.Allowed || d.RetryAfter < time.Second {
		t.Errorf("failing closed: %+v, want refused with a RetryAfter of at least 1 s", d)
	}
	if d := closed.Allow(3, 0, 0, 1); !d.Allowed {
		t.Errorf("failing closed, a key without a limit: %+v, want allowed", d)
	}
	st := open3[0].Status()
	if st["state"] != metrics.LimitsFailOpen || st["error"] == nil {
		t.Errorf("status during the outage = %v, want fail_open with the error", st)
	}
	srv.Start(t)
	for _, r := range append(open3, closed) {
		waitFor(t, "the limiter to share the limits again", func() bool { return r.State() == metrics.LimitsShared })
		for _, state := range []string{metrics.LimitsShared} {
			if g := testutil.ToFloat64(r.metrics.LimitsState.WithLabelValues(state)); g != 1 {
				t.Errorf("metricgate_limits_state{state=%q} = %v, want 1", state, g)
			}
		}
		if n := testutil.ToFloat64(r.metrics.LimitsStateChanges.WithLabelValues(metrics.LimitsShared)); n != 2 {
			t.Errorf("changes to shared = %v, want 2 (at start and after the outage)", n)
		}
		if !strings.Contains(r.logs.String(), "Redis unreachable") || !strings.Contains(r.logs.String(), "Redis answers again") {
			t.Errorf("log lacks the changes of state:\n%s", r.logs.String())
		}
	}
	if n := testutil.ToFloat64(closed.metrics.LimitsStateChanges.WithLabelValues(metrics.LimitsFailClosed)); n != 1 {
		t.Errorf("changes to fail_closed = %v, want 1", n)
	}
	if d := closed.Allow(2, 0.001, 400, 1); !d.Allowed {
		t.Errorf("after the outage: %+v, want allowed from the shared bucket", d)
	}
}

// TestUnreachableAtStart opens a limiter on a Redis that is not there yet:
// it starts failing open, and shares the limits once Redis starts.
func TestUnreachableAtStart(t *testing.T) {
	r := open(t, "redis://"+testenv.FreeAddr(t)+"/0", nil)
	if st := r.State(); st != metrics.LimitsFailOpen {
		t.Fatalf("state with no Redis = %s, want fail_open", st)
	}
	if d := r.Allow(1, 10, 10, 1); !d.Allowed {
		t.Errorf("failing open from the start: %+v, want allowed", d)
	}
}

// TestParseURL refuses what is not a Redis URL, without repeating a
// password it holds.
func TestParseURL(t *testing.T) {
	for _, bad := range []string{"127.0.0.1:6379", "http://127.0.0.1:6379", "redis://u:s3cret@127.0.0.1:x/0", "redis://127.0.0.1:6379/x"} {
		_, err := clusterlimit.ParseURL(bad)
		if !errors.Is(err, clusterlimit.ErrURL) {
			t.Errorf("ParseURL(%q) = %v, want ErrURL", bad, err)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ParseURL's error shows the password: %v", err)
		}
	}
	if _, err := clusterlimit.Open(context.Background(), clusterlimit.Options{URL: "nope"}); !errors.Is(err, clusterlimit.ErrURL) {
		t.Errorf("Open with a bad URL = %v, want ErrURL", err)
	}
}

// TestSharedRate drives one key at three times its rate of 2,000 field
// values a second through three replicas, in requests of 20, and checks
// that they admit 2,000 a second together, within 10%, once the burst is
// spent (it drains at 4,000 a second: in half a second); with about one lease per lease's worth of tokens, not one per
// request.
func TestSharedRate(t *testing.T) {
	rs := cluster(t, redisURL(testenv.StartRedis(t)), 3, nil)
	const rate, burst, per = 2000, 0, 20 // the burst is a second's worth
	var mu sync.Mutex
	var admitted []time.Time
	start := time.Now()
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// 2,000 a second offered to each replica: 100 requests of 20.
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for now := range tick.C {
				if now.Sub(start) > 1700*time.Millisecond {
					return
				}
				if r.Allow(9, rate, burst, per).Allowed {
					mu.Lock()
					admitted = append(admitted, now)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	n := 0
	for _, at := range admitted {
		if at.Sub(start) >= 700*time.Millisecond {
			n++
		}
	}
	got := float64(n*per) / 1.0
	t.Logf("3 replicas driven at 3x admitted %.0f field values/s (limit %d) over the last second", got, rate)
	if got < rate*0.9 || got > rate*1.1 {
		t.Errorf("admitted %.0f/s, want within 10%% of %d", got, rate)
	}
	var leases float64
	for _, r := range rs {
		leases += testutil.ToFloat64(r.metrics.LimitsLeases)
	}
	if requests := 3 * 170; leases > float64(requests)/3 {
		t.Errorf("%v leases for about %d requests, want at most one per three", leases, requests)
	}
	t.Logf("%v leases for %d requests admitted of about 510", leases, len(admitted))
}
