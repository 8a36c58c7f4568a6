package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/deadletter"
	"github.com/metricgate/metricgate/pkg/forward"
	gatewaypkg "github.com/metricgate/metricgate/pkg/gateway"
	"github.com/metricgate/metricgate/pkg/keyjson"
	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/server"
)

// TestPoisoningOwnBucket is the poisoning attack of TestPoisoningWithoutGuard
// (no schema guard, no time window: nothing at the door stops it) by a key
// with a bucket of its own: it writes a string for the float field the
// other key writes, in next week's shard and now, and every point of both
// is acknowledged and reaches its own bucket. None of the other key's
// points is dead-lettered: the two keys' points never meet in a shard.
func TestPoisoningOwnBucket(t *testing.T) {
	spoolDir := ""
	g := startGatewayWith(t, func(cfg *gatewaypkg.Config) {
		spoolDir = cfg.Spool.Dir
		cfg.NoSchemaGuard = true
		cfg.Server.Limits.MaxFuture = 0
	})
	tenant := testenv.InfluxDB(t)
	ctx := context.Background()
	honestKey, honest := g.key(t, "127.0.0.1")
	poisoner, attacker, err := g.keys.Generate(ctx, keystore.NewKey{Hostname: "127.0.0.1", Bucket: tenant.Name})
	if err != nil {
		t.Fatal(err)
	}
	week := fixedNow.Add(7 * 24 * time.Hour).Truncate(7 * 24 * time.Hour).UnixNano()
	// The honest key writes next week's shard too, where the attacker's
	// string is.
	acked := writeUsage(t, g, honest, week+1)
	for _, ts := range []int64{week, fixedNow.UnixNano() + 1000} {
		body := fmt.Sprintf(`{"measurement":"cpu","field":"usage","value":"x","timestamp":%d}`, ts)
		if r := g.submit(t, attacker, body); r.status != 200 {
			t.Fatalf("the key writing its own bucket: got %d %s, want 200", r.status, r.body)
		}
	}
	n := <-acked
	if got := g.count(t, "cpu", "usage"); got != int64(n) || n != 201 {
		t.Errorf("the gateway's bucket holds %d points of cpu.usage, want the honest key's %d acknowledged, all 201", got, n)
	}
	if got := tenant.Count(t, "cpu", "usage"); got != 2 {
		t.Errorf("the attacker's bucket holds %d points, want its 2", got)
	}
	for _, d := range deadLetters(t, spoolDir) {
		t.Errorf("dead letter %+v, want none (keys %d and %d write apart)", d, honestKey.ID, poisoner.ID)
	}
}

// TestSchemaGuardPerBucket checks that the guard keys field types by the
// bucket a point goes to: a key with its own bucket may write a field as
// a string that the gateway's bucket holds as a float, and is then held
// to its own type, while the other key is held to the float.
func TestSchemaGuardPerBucket(t *testing.T) {
	g := startGateway(t, nil)
	tenant := testenv.InfluxDB(t)
	_, shared := g.key(t, "127.0.0.1")
	_, own, err := g.keys.Generate(context.Background(), keystore.NewKey{Hostname: "127.0.0.1", Bucket: tenant.Name})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		key, value string
		want       int
		mention    string
	}{
		{shared, "0.5", 200, ""},
		{own, `"busy"`, 200, ""},
		{shared, `"busy"`, 400, "is string, but this bucket holds it as float"},
		{own, "0.5", 400, "is float, but this bucket holds it as string"},
	}
	for i, s := range steps {
		r := g.submit(t, s.key, fmt.Sprintf(`{"measurement":"cpu","field":"usage","value":%s,"timestamp":%d}`, s.value, fixedNow.UnixNano()+int64(i)))
		if r.status != s.want || !strings.Contains(r.body, s.mention) {
			t.Errorf("step %d: got %d %s, want %d mentioning %q", i, r.status, r.body, s.want, s.mention)
		}
	}
}

// TestSeriesBudgetPerKey gives the gateway a budget of 5 series a key and
// one key a budget of its own of 2: that key's third new series is
// refused with its own limit, while the other key writes 5.
func TestSeriesBudgetPerKey(t *testing.T) {
	g := startGateway(t, func(cfg *server.Config) { cfg.MaxSeriesPerKey = 5 })
	_, narrow, err := g.keys.Generate(context.Background(), keystore.NewKey{Hostname: "127.0.0.1", MaxSeries: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, wide := g.key(t, "127.0.0.1")
	series := func(n int) string {
		var pts []string
		for i := range n {
			pts = append(pts, fmt.Sprintf(`{"field":"v","value":%d,"tags":{"id":"%d"},"timestamp":%d}`, i, i, fixedNow.UnixNano()+int64(i)))
		}
		return "[" + strings.Join(pts, ",") + "]"
	}
	if r := g.submit(t, narrow, series(3)); r.status != 429 || !strings.Contains(r.body, "its limit of 2, and this request has 3 new ones") {
		t.Errorf("3 series for a key of 2: got %d %s, want 429 with its own limit", r.status, r.body)
	}
	if r := g.submit(t, narrow, series(2)); r.status != 200 {
		t.Errorf("2 series for a key of 2: got %d %s, want 200", r.status, r.body)
	}
	if r := g.submit(t, wide, series(5)); r.status != 200 {
		t.Errorf("5 series for a key of the gateway's 5: got %d %s, want 200", r.status, r.body)
	}
}

// TestQuarantine is a key whose points InfluxDB keeps refusing: it writes
// to a bucket of its own that InfluxDB does not have, so each of its
// acknowledged points is dead-lettered. With a limit of 5 a minute it is
// quarantined: its writes get 429 with the reason, before their body is
// read, while another key writes on. Over the admin API the key shows as
// quarantined and its dead letters are listed; once the bucket exists
// they are replayed into it, and released, the key writes again.
func TestQuarantine(t *testing.T) {
	g := startAdminWith(t, func(cfg *gatewaypkg.Config) { cfg.QuarantineAfter = 5 })
	ctx := context.Background()
	bucket := g.db.Name + "_later"
	refused, key, err := g.keys.Generate(ctx, keystore.NewKey{Hostname: "127.0.0.1", Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	_, other := g.key(t, "127.0.0.1")
	for i := range 5 {
		if r := g.submit(t, key, fmt.Sprintf(`{"field":"v","value":%d,"timestamp":%d}`, i, fixedNow.UnixNano()+int64(i))); r.status != 200 {
			t.Fatalf("point %d: got %d %s, want 200", i, r.status, r.body)
		}
	}
	// A body that is not JSON gets 400 until the key is quarantined, and
	// 429 after, since a quarantined key's body is not read.
	var r response
	waitUntil(t, "the key is refused as quarantined", 10*time.Second, func() bool {
		r = g.submit(t, key, `not json`)
		return r.status == 429
	})
	if !strings.Contains(r.body, fmt.Sprintf("key %d is quarantined since", refused.ID)) ||
		!strings.Contains(r.body, "InfluxDB refused 5 of its points within 1m0s") || !strings.Contains(r.body, "database not found") ||
		!strings.Contains(r.body, fmt.Sprintf("keyctl release %d", refused.ID)) || r.header.Get("Retry-After") != "60" {
		t.Errorf("a quarantined key's write: got %d %s Retry-After=%q, want 429 saying why and how to lift it", r.status, r.body, r.header.Get("Retry-After"))
	}
	if r := g.submit(t, other, `{"field":"v","value":1}`); r.status != 200 {
		t.Errorf("another key meanwhile: got %d %s, want 200", r.status, r.body)
	}
	if !strings.Contains(g.logs.String(), `"msg":"audit: key quarantined`) {
		t.Errorf("no audit line for the quarantine in the log:\n%s", g.logs)
	}

	shown := decode[keyjson.Key](t, g.do(t, "GET", fmt.Sprintf("/admin/api/keys/%d", refused.ID), ""))
	if !shown.Quarantined || shown.QuarantinedAt == nil || !strings.Contains(shown.QuarantineReason, "refused 5") {
		t.Errorf("the admin API shows the key as %+v, want it quarantined with the reason", shown)
	}
	list := decode[struct {
		Total   int
		Letters []deadletter.Letter
	}](t, g.do(t, "GET", fmt.Sprintf("/admin/api/dead-letters?key_id=%d&limit=2", refused.ID), ""))
	if list.Total != 5 || len(list.Letters) != 2 {
		t.Errorf("dead letters of the key: %+v, want 5, of which 2 listed", list)
	}
	for _, l := range list.Letters {
		if l.Bucket != bucket || l.KeyID != refused.ID || !strings.HasPrefix(l.Line, "custom_metrics,host=127.0.0.1 v=") ||
			!strings.HasPrefix(l.Reason, "InfluxDB has no such bucket: database not found") {
			t.Errorf("dead letter %+v, want the key's point for its missing bucket", l)
		}
	}

	g.db.Query(t, fmt.Sprintf("CREATE DATABASE %q", bucket))
	t.Cleanup(func() { g.db.Query(t, fmt.Sprintf("DROP DATABASE %q", bucket)) })
	rr := g.do(t, "POST", "/admin/api/dead-letters/replay", fmt.Sprintf(`{"key_id": %d}`, refused.ID))
	if rep := decode[forward.ReplayReport](t, rr); rr.status != 200 || rep != (forward.ReplayReport{Delivered: 5}) {
		t.Errorf("replay: got %d %s, want 200 with 5 delivered", rr.status, rr.body)
	}
	if n := (&testenv.DB{URL: g.db.URL, Name: bucket}).Count(t, "custom_metrics", "v"); n != 5 {
		t.Errorf("the key's bucket holds %d points after the replay, want 5", n)
	}
	released := decode[keyjson.Key](t, g.do(t, "POST", fmt.Sprintf("/admin/api/keys/%d/release", refused.ID), ""))
	if released.Quarantined || released.QuarantinedAt != nil {
		t.Errorf("release answered %+v, want the key no longer quarantined", released)
	}
	waitUntil(t, "the released key writes again", 10*time.Second, func() bool {
		return g.submit(t, key, `not json`).status == 400
	})
	if r := g.submit(t, key, `{"field":"v","value":9}`); r.status != 200 {
		t.Errorf("the released key: got %d %s, want 200", r.status, r.body)
	}
	entries, _ := g.keys.Audit(ctx, refused.ID, 2)
	if len(entries) != 2 || entries[0].Action != "release" || entries[1].Action != "quarantine" || entries[1].Actor != "gateway" ||
		entries[0].Actor != fmt.Sprintf("admin-api:key %d from 127.0.0.1", g.admin.ID) {
		t.Errorf("the key's audit log ends %+v, want its quarantine by the gateway and its release by the admin", entries)
	}
}

// waitUntil polls cond until it holds, failing the test after within.
func waitUntil(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
	}
}
