package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/server"
)

const onePoint = `{"field": "x", "value": 1}`

func TestExpiryCrossing(t *testing.T) {
	g := startGateway(t, nil)
	c := testenv.NewClock(time.Now())
	g.keys.Now = c.Now
	_, key, err := g.keys.Generate(context.Background(), keystore.NewKey{Hostname: "127.0.0.1", ExpiresAt: c.Now().Add(720 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(720*time.Hour - time.Second)
	if r := g.submit(t, key, onePoint); r.status != 200 {
		t.Fatalf("a second before expiry: got %d %s, want 200", r.status, r.body)
	}
	c.Advance(time.Second)
	r := g.submit(t, key, onePoint)
	if r.status != 401 || strings.TrimSpace(r.body) != `{"error":"Unauthorized"}` {
		t.Fatalf("at expiry: got %d %s, want the usual 401", r.status, r.body)
	}
	if line := lastLogLine(t, g.logs); !strings.Contains(line["error"].(string), "expired") {
		t.Errorf("log error %q does not say the key expired", line["error"])
	}
}

func TestScopesAndMeasurements(t *testing.T) {
	g := startGateway(t, nil)
	ctx := context.Background()
	_, adminOnly, _ := g.keys.Generate(ctx, keystore.NewKey{Hostname: "127.0.0.1", Scopes: []string{"admin"}})
	_, limited, _ := g.keys.Generate(ctx, keystore.NewKey{Hostname: "127.0.0.1", Measurements: []string{"cpu", "mem"}})

	r := g.submit(t, adminOnly, onePoint)
	if r.status != 403 || !strings.Contains(r.body, `"error":"Forbidden"`) || !strings.Contains(r.body, `lacks the \"submit\" scope`) {
		t.Errorf("admin-only key: got %d %s, want 403 Forbidden naming the submit scope", r.status, r.body)
	}
	if r := g.submit(t, limited, `[{"measurement": "cpu", "field": "u", "value": 1}, {"measurement": "mem", "field": "u", "value": 2}]`); r.status != 200 {
		t.Errorf("allowed measurements: got %d %s, want 200", r.status, r.body)
	}
	r = g.submit(t, limited, `[{"measurement": "cpu", "field": "u", "value": 3}, {"measurement": "disk", "field": "u", "value": 4}]`)
	if r.status != 403 || !strings.Contains(r.body, `point 1`) || !strings.Contains(r.body, `\"disk\"`) {
		t.Errorf("measurement outside the list: got %d %s, want 403 naming point 1 and disk", r.status, r.body)
	}
	if n := g.count(t, "cpu", "u"); n != 1 {
		t.Errorf("cpu points stored = %d, want 1 (nothing of the refused batch)", n)
	}
}

func TestRateLimit(t *testing.T) {
	c := testenv.NewClock(time.Now())
	g := startGateway(t, func(cfg *server.Config) {
		cfg.Now = c.Now
		cfg.DefaultRate = 1000
	})
	_, key, err := g.keys.Generate(context.Background(), keystore.NewKey{Hostname: "127.0.0.1", Rate: 10, Burst: 5})
	if err != nil {
		t.Fatal(err)
	}
	ts := 0
	batch := func(n int) string { // distinct times, so InfluxDB keeps every point
		var pts []string
		for i := 0; i < n; i++ {
			ts++
			pts = append(pts, fmt.Sprintf(`{"field": "x", "value": 1, "timestamp": %d}`, ts))
		}
		return "[" + strings.Join(pts, ",") + "]"
	}
	r := g.submit(t, key, batch(3))
	if r.status != 200 || r.header.Get("RateLimit-Limit") != "5" || r.header.Get("RateLimit-Remaining") != "2" {
		t.Fatalf("3 of 5: got %d limit=%s remaining=%s, want 200 5 2", r.status, r.header.Get("RateLimit-Limit"), r.header.Get("RateLimit-Remaining"))
	}
	r = g.submit(t, key, batch(3))
	if r.status != 429 || r.header.Get("Retry-After") != "1" || r.header.Get("RateLimit-Remaining") != "2" || r.header.Get("RateLimit-Reset") == "" {
		t.Fatalf("3 more: got %d %s Retry-After=%q remaining=%q reset=%q, want 429 with Retry-After 1 and 2 remaining",
			r.status, r.body, r.header.Get("Retry-After"), r.header.Get("RateLimit-Remaining"), r.header.Get("RateLimit-Reset"))
	}
	if r := g.submit(t, key, batch(6)); r.status != 429 || !strings.Contains(r.body, "burst of 5") {
		t.Errorf("6 points with a burst of 5: got %d %s, want 429 naming the burst", r.status, r.body)
	}
	c.Advance(100 * time.Millisecond) // one more point's worth
	if r := g.submit(t, key, batch(3)); r.status != 200 {
		t.Errorf("after refill: got %d %s, want 200", r.status, r.body)
	}
	if n := g.count(t, "custom_metrics", "x"); n != 6 {
		t.Errorf("points stored = %d, want 6: nothing of a refused request", n)
	}

	// A key without its own rate gets the server default.
	_, plain, _ := g.keys.Generate(context.Background(), keystore.NewKey{Hostname: "127.0.0.1"})
	if r := g.submit(t, plain, onePoint); r.header.Get("RateLimit-Limit") != "1000" {
		t.Errorf("default limit header = %q, want 1000", r.header.Get("RateLimit-Limit"))
	}
}

// TestBruteForceThrottled checks that an address that keeps failing gets
// 429 with Retry-After, is logged once as throttled, and earns a try back
// with time; and that, being throttled, it still cannot pass with a bad key.
func TestBruteForceThrottled(t *testing.T) {
	c := testenv.NewClock(time.Now())
	g := startGateway(t, func(cfg *server.Config) {
		cfg.Now = c.Now
		cfg.AuthFailRate = 0.1
		cfg.AuthFailBurst = 3
	})
	const bad = "3b241101-e2bb-4255-8caf-4136c566a962"
	for i := 0; i < 3; i++ {
		if r := g.submit(t, bad, onePoint); r.status != 401 {
			t.Fatalf("failure %d: got %d, want 401", i+1, r.status)
		}
	}
	if n := strings.Count(g.logs.String(), "throttled after repeated authentication failures"); n != 1 {
		t.Errorf("the log says %d times that the address was throttled, want once", n)
	}
	r := g.submit(t, bad, onePoint)
	if r.status != 429 || r.header.Get("Retry-After") != "10" {
		t.Errorf("throttled address with a bad key: got %d Retry-After=%q, want 429 and 10", r.status, r.header.Get("Retry-After"))
	}
	c.Advance(10 * time.Second)
	if r := g.submit(t, bad, onePoint); r.status != 401 {
		t.Errorf("after the wait, one more try: got %d %s, want 401", r.status, r.body)
	}
	if r := g.submit(t, bad, onePoint); r.status != 429 {
		t.Errorf("after that try: got %d %s, want 429", r.status, r.body)
	}
}

func TestRotationOverlap(t *testing.T) {
	g := startGateway(t, nil)
	c := testenv.NewClock(time.Now())
	g.keys.Now = c.Now
	old, oldPlain := g.key(t, "127.0.0.1")
	_, newPlain, _, err := g.keys.Rotate(context.Background(), old.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name       string
		advance    time.Duration
		old, fresh int
	}{
		{"DuringGrace", 59 * time.Minute, 200, 200},
		{"AfterGrace", time.Minute, 401, 200},
	} {
		c.Advance(tt.advance)
		if r := g.submit(t, oldPlain, onePoint); r.status != tt.old {
			t.Errorf("%s: old key got %d, want %d", tt.name, r.status, tt.old)
		}
		if r := g.submit(t, newPlain, onePoint); r.status != tt.fresh {
			t.Errorf("%s: new key got %d, want %d", tt.name, r.status, tt.fresh)
		}
	}
}

// TestChangesReachRunningServer makes changes through a second handle on
// the database file, as keyctl does, and measures how long the running
// server takes to apply each.
func TestChangesReachRunningServer(t *testing.T) {
	g := startGateway(t, nil)
	ctx := context.Background()
	admin, err := keystore.Open(ctx, g.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	k, key, _ := admin.Generate(ctx, keystore.NewKey{Hostname: "127.0.0.1"})

	waitFor := func(what string, want int, change func()) {
		t.Helper()
		start := time.Now()
		change()
		for {
			r := g.submit(t, key, onePoint)
			if r.status == want {
				t.Logf("%s reached the running server in %v", what, time.Since(start))
				return
			}
			if time.Since(start) > time.Second {
				t.Fatalf("%s: still %d after 1s, want %d", what, r.status, want)
			}
		}
	}
	waitFor("generate", 200, func() {})
	scopes := []string{"admin"}
	waitFor("update scopes", 403, func() { admin.Update(ctx, k.ID, keystore.Update{Scopes: &scopes}) })
	scopes = []string{"submit"}
	waitFor("update scopes back", 200, func() { admin.Update(ctx, k.ID, keystore.Update{Scopes: &scopes}) })
	waitFor("revoke", 401, func() { admin.Revoke(ctx, k.ID) })
}

func TestUsageRecorded(t *testing.T) {
	g := startGateway(t, nil)
	k, key := g.key(t, "127.0.0.1")
	g.submit(t, key, onePoint)
	g.submit(t, key, `[`+onePoint+`,`+onePoint+`]`)
	// Usage reaches the store at the gateway's next flush.
	var got keystore.Key
	for deadline := time.Now().Add(5 * time.Second); got.Requests < 2 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var err error
		if got, err = g.keys.Get(context.Background(), k.ID); err != nil {
			t.Fatal(err)
		}
	}
	if got.Requests != 2 || got.Points != 3 || got.LastUsedAddr != "127.0.0.1" || !got.LastUsedAt.Equal(fixedNow) {
		t.Errorf("usage = %d requests, %d points, last %v from %q; want 2, 3, %v from 127.0.0.1",
			got.Requests, got.Points, got.LastUsedAt, got.LastUsedAddr, fixedNow)
	}
}
