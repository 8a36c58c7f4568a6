package keystore_test

import (
	"context"
	"testing"
	"time"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// TestUsageAcrossNodes records usage of one key through two stores with
// different node names, as two replicas would, and checks that a key shows
// their sum and the latest use, that each node's reports add to its own,
// that reports of unknown keys are dropped, and that audit entries name the
// node a change was made through.
func TestUsageAcrossNodes(t *testing.T) { forEachBackend(t, testUsageAcrossNodes) }

func testUsageAcrossNodes(t *testing.T, b backend) {
	a, addr := openStore(t, b)
	a.Node = "gw-a"
	other := openAt(t, addr)
	other.Node = "gw-b"
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	k, _ := generate(t, a, keystore.NewKey{Hostname: "127.0.0.1"})
	k2, _ := generate(t, other, keystore.NewKey{Hostname: "127.0.0.1"})

	record := func(s *keystore.Store, u map[int64]keystore.Usage) {
		t.Helper()
		if err := s.RecordUsage(ctx, u); err != nil {
			t.Fatalf("RecordUsage through %s: %v", s.Node, err)
		}
	}
	record(a, map[int64]keystore.Usage{k.ID: {LastUsedAt: now, LastUsedAddr: "10.0.0.1", Requests: 2, Points: 20}, 999: {LastUsedAt: now, Requests: 1}})
	record(other, map[int64]keystore.Usage{k.ID: {LastUsedAt: now.Add(time.Second), LastUsedAddr: "10.0.0.2", Requests: 3, Points: 30},
		k2.ID: {LastUsedAt: now, LastUsedAddr: "10.0.0.3", Requests: 1, Points: 1}})
	record(a, map[int64]keystore.Usage{k.ID: {LastUsedAt: now.Add(-time.Hour), LastUsedAddr: "10.0.0.9", Requests: 5, Points: 50}})

	got, err := a.Get(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Requests != 10 || got.Points != 100 || !got.LastUsedAt.Equal(now.Add(time.Second)) || got.LastUsedAddr != "10.0.0.2" {
		t.Errorf("usage = %d requests, %d points, last %v from %s; want 10, 100, %v from 10.0.0.2",
			got.Requests, got.Points, got.LastUsedAt, got.LastUsedAddr, now.Add(time.Second))
	}
	listed, err := a.List(ctx, keystore.Filter{})
	if err != nil || len(listed) != 2 || listed[0].Requests != 10 || listed[1].Requests != 1 || listed[1].LastUsedAddr != "10.0.0.3" {
		t.Errorf("List = %+v, %v; want both keys with their usage", listed, err)
	}
	if n := queryInt(t, addr, `SELECT count(*) FROM key_usage WHERE key_id = ?`, k.ID); n != 2 {
		t.Errorf("key %d has %d usage rows, want one per node", k.ID, n)
	}
	if n := queryInt(t, addr, `SELECT count(*) FROM key_usage WHERE key_id = 999`); n != 0 {
		t.Errorf("usage of an unknown key was kept in %d rows", n)
	}

	if _, err := other.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	entries, err := a.Audit(ctx, k.ID, 0)
	if err != nil || len(entries) != 2 || entries[0].Node != "gw-b" || entries[1].Node != "gw-a" {
		t.Errorf("audit = %+v, %v; want the revoke through gw-b, the generate through gw-a", entries, err)
	}
}
