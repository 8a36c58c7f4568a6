package limit_test

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/limit"
)

// newClock is a clock the test moves by hand.
func newClock() *testenv.Clock { return testenv.NewClock(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)) }

// TestKeysPolicy checks which rate and burst apply to a key's first request:
// the key's own win over the server's defaults, and a burst of 0 everywhere
// is one second's worth of the rate.
func TestKeysPolicy(t *testing.T) {
	tests := []struct {
		name     string
		defRate  float64
		defBurst int
		keyRate  float64
		keyBurst int
		n        int
		want     limit.Decision
	}{
		{
			name: "KeyOverridesDefaults", defRate: 100, defBurst: 50, keyRate: 10, keyBurst: 5, n: 1,
			want: limit.Decision{Allowed: true, Limited: true, Limit: 5, Remaining: 4, Reset: 100 * time.Millisecond},
		},
		{
			name: "DefaultsWhenKeyHasNone", defRate: 10, defBurst: 5, n: 2,
			want: limit.Decision{Allowed: true, Limited: true, Limit: 5, Remaining: 3, Reset: 200 * time.Millisecond},
		},
		{
			name: "KeyRateWithDefaultBurst", defRate: 100, defBurst: 50, keyRate: 10, n: 10,
			want: limit.Decision{Allowed: true, Limited: true, Limit: 50, Remaining: 40, Reset: time.Second},
		},
		{
			name: "DefaultRateWithKeyBurst", defRate: 10, defBurst: 5, keyBurst: 8, n: 8,
			want: limit.Decision{Allowed: true, Limited: true, Limit: 8, Remaining: 0, Reset: 800 * time.Millisecond},
		},
		{
			name: "NoBurstAnywhereIsOneSecondOfRate", defRate: 10, n: 1,
			want: limit.Decision{Allowed: true, Limited: true, Limit: 10, Remaining: 9, Reset: 100 * time.Millisecond},
		},
		{
			name: "NoBurstAnywhereRoundsUp", defRate: 100, keyRate: 2.5, n: 1,
			want: limit.Decision{Allowed: true, Limited: true, Limit: 3, Remaining: 2, Reset: 400 * time.Millisecond},
		},
		{
			name: "NoRateAnywhere", n: 1_000_000,
			want: limit.Decision{Allowed: true},
		},
		{
			name: "NoRateAnywhereIgnoresBursts", defBurst: 5, keyBurst: 3, n: 1_000_000,
			want: limit.Decision{Allowed: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := limit.NewKeys(tt.defRate, tt.defBurst, newClock().Now)
			if got := k.Allow(1, tt.keyRate, tt.keyBurst, tt.n); got != tt.want {
				t.Errorf("Allow(n=%d): got %+v, want %+v", tt.n, got, tt.want)
			}
		})
	}
}

// step is one call to Keys.Allow, after moving the clock by advance.
type step struct {
	advance time.Duration
	id      int64
	rate    float64
	burst   int
	n       int
	want    limit.Decision
}

// TestKeysAllow runs sequences of requests against one set of limiters and
// checks every decision exactly: what is refused takes nothing, and the
// waits reported are those of the rate.
func TestKeysAllow(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "RefusedTakesNothing",
			steps: []step{
				{rate: 10, burst: 5, n: 5, want: limit.Decision{Allowed: true, Limited: true, Limit: 5, Remaining: 0, Reset: 500 * time.Millisecond}},
				{rate: 10, burst: 5, n: 3, want: limit.Decision{Limited: true, Limit: 5, Remaining: 0, Reset: 500 * time.Millisecond, RetryAfter: 300 * time.Millisecond}},
				{rate: 10, burst: 5, n: 3, want: limit.Decision{Limited: true, Limit: 5, Remaining: 0, Reset: 500 * time.Millisecond, RetryAfter: 300 * time.Millisecond}},
				{advance: 100 * time.Millisecond, rate: 10, burst: 5, n: 3, want: limit.Decision{Limited: true, Limit: 5, Remaining: 1, Reset: 400 * time.Millisecond, RetryAfter: 200 * time.Millisecond}},
				{advance: 200 * time.Millisecond, rate: 10, burst: 5, n: 3, want: limit.Decision{Allowed: true, Limited: true, Limit: 5, Remaining: 0, Reset: 500 * time.Millisecond}},
			},
		},
		{
			name: "TooLargeTakesNothing",
			steps: []step{
				{rate: 10, burst: 5, n: 6, want: limit.Decision{TooLarge: true, Limited: true, Limit: 5, Remaining: 5}},
				{rate: 10, burst: 5, n: 5, want: limit.Decision{Allowed: true, Limited: true, Limit: 5, Remaining: 0, Reset: 500 * time.Millisecond}},
				{rate: 10, burst: 5, n: 6, want: limit.Decision{TooLarge: true, Limited: true, Limit: 5, Remaining: 0, Reset: 500 * time.Millisecond}},
			},
		},
		{
			name: "RefillsAtRateUpToBurst",
			steps: []step{
				{rate: 10, burst: 5, n: 5, want: limit.Decision{Allowed: true, Limited: true, Limit: 5, Remaining: 0, Reset: 500 * time.Millisecond}},
				{advance: time.Hour, rate: 10, burst: 5, n: 5, want: limit.Decision{Allowed: true, Limited: true, Limit: 5, Remaining: 0, Reset: 500 * time.Millisecond}},
				{advance: 250 * time.Millisecond, rate: 10, burst: 5, n: 1, want: limit.Decision{Allowed: true, Limited: true, Limit: 5, Remaining: 1, Reset: 350 * time.Millisecond}},
			},
		},
		{
			name: "KeysAreSeparate",
			steps: []step{
				{id: 1, rate: 10, burst: 5, n: 5, want: limit.Decision{Allowed: true, Limited: true, Limit: 5, Remaining: 0, Reset: 500 * time.Millisecond}},
				{id: 2, rate: 10, burst: 5, n: 5, want: limit.Decision{Allowed: true, Limited: true, Limit: 5, Remaining: 0, Reset: 500 * time.Millisecond}},
				{id: 1, rate: 10, burst: 5, n: 1, want: limit.Decision{Limited: true, Limit: 5, Remaining: 0, Reset: 500 * time.Millisecond, RetryAfter: 100 * time.Millisecond}},
			},
		},
		{
			name: "RaisedRate",
			steps: []step{
				{rate: 10, burst: 5, n: 5, want: limit.Decision{Allowed: true, Limited: true, Limit: 5, Remaining: 0, Reset: 500 * time.Millisecond}},
				{rate: 100, burst: 5, n: 3, want: limit.Decision{Limited: true, Limit: 5, Remaining: 0, Reset: 50 * time.Millisecond, RetryAfter: 30 * time.Millisecond}},
				{advance: 30 * time.Millisecond, rate: 100, burst: 5, n: 3, want: limit.Decision{Allowed: true, Limited: true, Limit: 5, Remaining: 0, Reset: 50 * time.Millisecond}},
			},
		},
		{
			name: "LoweredRate",
			steps: []step{
				{rate: 100, burst: 5, n: 5, want: limit.Decision{Allowed: true, Limited: true, Limit: 5, Remaining: 0, Reset: 50 * time.Millisecond}},
				{advance: 10 * time.Millisecond, rate: 10, burst: 5, n: 2, want: limit.Decision{Limited: true, Limit: 5, Remaining: 1, Reset: 400 * time.Millisecond, RetryAfter: 100 * time.Millisecond}},
			},
		},
		{
			name: "RaisedBurst",
			steps: []step{
				{rate: 10, burst: 5, n: 5, want: limit.Decision{Allowed: true, Limited: true, Limit: 5, Remaining: 0, Reset: 500 * time.Millisecond}},
				{rate: 10, burst: 20, n: 10, want: limit.Decision{Limited: true, Limit: 20, Remaining: 0, Reset: 2 * time.Second, RetryAfter: time.Second}},
				{advance: time.Second, rate: 10, burst: 20, n: 10, want: limit.Decision{Allowed: true, Limited: true, Limit: 20, Remaining: 0, Reset: 2 * time.Second}},
			},
		},
		{
			name: "LoweredBurstCapsTokens",
			steps: []step{
				{rate: 10, burst: 20, n: 1, want: limit.Decision{Allowed: true, Limited: true, Limit: 20, Remaining: 19, Reset: 100 * time.Millisecond}},
				{rate: 10, burst: 2, n: 1, want: limit.Decision{Allowed: true, Limited: true, Limit: 2, Remaining: 1, Reset: 100 * time.Millisecond}},
				{rate: 10, burst: 2, n: 3, want: limit.Decision{TooLarge: true, Limited: true, Limit: 2, Remaining: 1, Reset: 100 * time.Millisecond}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			k := limit.NewKeys(1000, 1000, c.Now)
			for i, s := range tt.steps {
				c.Advance(s.advance)
				if got := k.Allow(s.id, s.rate, s.burst, s.n); got != s.want {
					t.Errorf("step %d, Allow(id=%d, rate=%v, burst=%d, n=%d): got %+v, want %+v",
						i, s.id, s.rate, s.burst, s.n, got, s.want)
				}
			}
		})
	}
}

// TestKeysConcurrent sends one key's requests from several goroutines on
// the real clock: together they may not get more than the burst plus the
// rate times the time they ran, whatever order they reach the limiter in.
func TestKeysConcurrent(t *testing.T) {
	const (
		rate       = 10000
		burst      = 10
		goroutines = 8
		run        = 200 * time.Millisecond
	)
	k := limit.NewKeys(0, 0, nil)
	var allowed atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for time.Since(start) < run {
				if k.Allow(1, rate, burst, 1).Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if got, most := allowed.Load(), int64(burst+rate*elapsed.Seconds())+1; got > most {
		t.Errorf("%d goroutines for %v: got %d points allowed, want at most %d (burst %d + %d/s)",
			goroutines, elapsed, got, most, burst, rate)
	}
}

// TestFailures follows one address through its burst of failures, the
// wait it is given, and its recovery as the clock moves.
func TestFailures(t *testing.T) {
	c := newClock()
	f := limit.NewFailures(0.25, 3, c.Now) // one failure back every 4 s
	addr := netip.MustParseAddr("192.0.2.1")
	other := netip.MustParseAddr("2001:db8::1")

	if wait, blocked := f.Blocked(addr); blocked || wait != 0 {
		t.Fatalf("Blocked before any failure: got %v %v, want 0 false", wait, blocked)
	}
	for i, want := range []bool{false, false, true} {
		if got := f.Fail(addr); got.Throttled != want || got.NowThrottled != want || got.Refused {
			t.Fatalf("failure %d: Fail got %+v, want Throttled and NowThrottled %v, not Refused", i+1, got, want)
		}
	}
	checkBlocked := func(name string, a netip.Addr, wantWait time.Duration, wantBlocked bool) {
		t.Helper()
		if wait, blocked := f.Blocked(a); wait != wantWait || blocked != wantBlocked {
			t.Errorf("%s: Blocked(%s) got %v %v, want %v %v", name, a, wait, blocked, wantWait, wantBlocked)
		}
	}
	checkBlocked("AfterBurst", addr, 4*time.Second, true)
	checkBlocked("OtherAddress", other, 0, false)

	c.Advance(time.Second)
	checkBlocked("OneSecondLater", addr, 3*time.Second, true)
	if got := f.Fail(addr); !got.Throttled || got.NowThrottled || !got.Refused || got.RetryAfter != 3*time.Second {
		t.Errorf("Fail while blocked: got %+v, want refused (retry after 3s) and throttled, not now", got)
	}
	checkBlocked("FailWhileBlockedAddsNoWait", addr, 3*time.Second, true)

	c.Advance(3 * time.Second)
	checkBlocked("Recovered", addr, 0, false)
	if got := f.Fail(addr); !got.Throttled || !got.NowThrottled {
		t.Errorf("Fail after recovering one token: got %+v, want throttled now", got)
	}
	checkBlocked("BlockedAgain", addr, 4*time.Second, true)

	c.Advance(time.Hour)
	for i, want := range []bool{false, false, true} {
		if got := f.Fail(addr); got.Throttled != want {
			t.Errorf("failure %d after full refill: Fail got %+v, want Throttled %v", i+1, got, want)
		}
	}
}

// TestFailuresOff checks that a burst of 0 and a nil *Failures throttle no
// one.
func TestFailuresOff(t *testing.T) {
	tests := []struct {
		name string
		f    *limit.Failures
	}{
		{"BurstZero", limit.NewFailures(0.25, 0, newClock().Now)},
		{"Nil", nil},
	}
	addr := netip.MustParseAddr("192.0.2.1")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range 100 {
				if got := tt.f.Fail(addr); got.Throttled || got.NowThrottled {
					t.Fatalf("failure %d: Fail got %+v, want not throttled", i+1, got)
				}
			}
			if wait, blocked := tt.f.Blocked(addr); blocked || wait != 0 {
				t.Errorf("Blocked: got %v %v, want 0 false", wait, blocked)
			}
		})
	}
}

// maxAddrs is how many addresses Failures tracks before it evicts (an
// unexported constant of the package).
const maxAddrs = 100000

// TestFailuresEviction fills the table to its limit: nothing is forgotten
// until it is full; then the source that failed least recently is
// forgotten, and only that one: a throttled source that failed recently
// stays throttled, where the table used to be cleared.
func TestFailuresEviction(t *testing.T) {
	tests := []struct {
		name string
		// blockFirst blocks the address before the crowd fails rather
		// than after.
		blockFirst  bool
		wantBlocked bool
	}{
		{"KeepsRecentlyFailed", false, true},
		{"ForgetsLeastRecentlyFailed", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			f := limit.NewFailures(1, 2, c.Now)
			addr := netip.MustParseAddr("192.0.2.1")
			crowd := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
			block := func(a netip.Addr) {
				f.Fail(a)
				if !f.Fail(a).Throttled {
					t.Fatalf("Fail(%s) twice: not throttled", a)
				}
			}
			if tt.blockFirst {
				block(addr)
			}
			for i := range maxAddrs - 1 {
				block(crowd(i))
			}
			if !tt.blockFirst {
				block(addr)
			}
			if _, got := f.Blocked(addr); !got {
				t.Fatalf("Blocked(%s) with %d sources known: got false, want true", addr, maxAddrs)
			}
			f.Fail(netip.MustParseAddr("192.0.2.2")) // one past the limit: evicts one
			if _, got := f.Blocked(addr); got != tt.wantBlocked {
				t.Errorf("Blocked(%s) after eviction: got %v, want %v", addr, got, tt.wantBlocked)
			}
			// Whichever was forgotten, every other source is still throttled.
			first := 0
			if !tt.blockFirst {
				first = 1
			}
			for _, i := range []int{first, maxAddrs / 2, maxAddrs - 2} {
				if _, got := f.Blocked(crowd(i)); !got {
					t.Errorf("Blocked(%s) after eviction: got false, want true: only one source is forgotten", crowd(i))
				}
			}
		})
	}
}

// TestFailuresIPv6Per64 is the attack of an IPv6 client that changes its
// address within its /64 after every failure: it is counted as one
// source, while its neighbour in the next /64 is not.
func TestFailuresIPv6Per64(t *testing.T) {
	f := limit.NewFailures(0.25, 3, newClock().Now)
	for i := range 3 {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 7, 0xa, byte(i), 0, 0, 0, 0, 0, byte(i + 1)})
		if got := f.Fail(a); got.Throttled != (i == 2) {
			t.Fatalf("failure %d from %s: got %+v, want throttled only on the third", i+1, a, got)
		}
	}
	if _, blocked := f.Blocked(netip.MustParseAddr("2001:db8:0:7:ffff::1")); !blocked {
		t.Errorf("a fresh address in the same /64 is not blocked")
	}
	if _, blocked := f.Blocked(netip.MustParseAddr("2001:db8:0:8::1")); blocked {
		t.Errorf("an address in the next /64 is blocked")
	}
	if got, want := limit.Source(netip.MustParseAddr("2001:db8:0:7:1:2:3:4%eth0")), netip.MustParseAddr("2001:db8:0:7::"); got != want {
		t.Errorf("Source of a zoned IPv6 address = %s, want %s", got, want)
	}
	if got, want := limit.Source(netip.MustParseAddr("::ffff:192.0.2.1")), netip.MustParseAddr("192.0.2.1"); got != want {
		t.Errorf("Source of an IPv4-mapped address = %s, want %s", got, want)
	}
}

// TestFailuresLogSampling checks that one failure per source per minute is
// to be logged, with the count of those that were not.
func TestFailuresLogSampling(t *testing.T) {
	for _, burst := range []int{3, 0} { // sampling works with throttling off too
		c := newClock()
		f := limit.NewFailures(0.25, burst, c.Now)
		addr, other := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
		var logged []int
		for i := range 50 {
			if i == 30 {
				c.Advance(limit.LogEvery)
			}
			if got := f.Fail(addr); got.Log {
				logged = append(logged, got.Unlogged)
			}
		}
		if want := []int{0, 29}; fmt.Sprint(logged) != fmt.Sprint(want) {
			t.Errorf("burst %d: logged failures with unlogged counts %v, want %v", burst, logged, want)
		}
		if !f.Fail(other).Log {
			t.Errorf("burst %d: the first failure of another source is not logged", burst)
		}
	}
}

// TestKeysCheck checks that Check takes nothing, and refuses a key with no
// token left with the wait for one.
func TestKeysCheck(t *testing.T) {
	c := newClock()
	k := limit.NewKeys(10, 5, c.Now)
	for range 3 {
		if d := k.Check(1, 0, 0); !d.Allowed || d.Remaining != 5 {
			t.Fatalf("Check on a full bucket: got %+v, want allowed with 5 remaining, nothing taken", d)
		}
	}
	if d := k.Allow(1, 0, 0, 5); !d.Allowed {
		t.Fatalf("Allow(5): got %+v", d)
	}
	want := limit.Decision{Limited: true, Limit: 5, Reset: 500 * time.Millisecond, RetryAfter: 100 * time.Millisecond}
	if d := k.Check(1, 0, 0); d != want {
		t.Errorf("Check on an empty bucket: got %+v, want %+v", d, want)
	}
	c.Advance(100 * time.Millisecond)
	if d := k.Check(1, 0, 0); !d.Allowed || d.Remaining != 1 {
		t.Errorf("Check with one token back: got %+v, want allowed with 1 remaining", d)
	}
	if d := k.Allow(1, 0, 0, 1); !d.Allowed {
		t.Errorf("Allow(1) after Check: got %+v, want the token Check left", d)
	}
}
