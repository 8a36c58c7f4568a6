package keystore_test

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// TestDestination gives a key its own bucket and series budget, changes
// them, and rotates the key: the store keeps both, the audit log names
// them, and the rotated key has them too.
func TestDestination(t *testing.T) { forEachBackend(t, testDestination) }

func testDestination(t *testing.T, b backend) {
	s, _ := openStore(t, b)
	ctx := context.Background()
	k, plain := generate(t, s, keystore.NewKey{Hostname: "127.0.0.1", Bucket: "tenant-a/week", MaxSeries: 500})
	if k.Bucket != "tenant-a/week" || k.MaxSeries != 500 {
		t.Errorf("generated bucket %q, max series %d; want tenant-a/week and 500", k.Bucket, k.MaxSeries)
	}
	got, err := s.Authenticate(ctx, plain, netip.MustParseAddr("127.0.0.1"))
	if err != nil || got.Bucket != "tenant-a/week" || got.MaxSeries != 500 {
		t.Errorf("Authenticate = %+v, %v; want the bucket and the budget", got, err)
	}
	k, err = s.Update(ctx, k.ID, keystore.Update{Bucket: ptr(""), MaxSeries: ptr(20)})
	if err != nil || k.Bucket != "" || k.MaxSeries != 20 {
		t.Fatalf("Update = %+v, %v; want the gateway's bucket and 20 series", k, err)
	}
	k, err = s.Update(ctx, k.ID, keystore.Update{Bucket: ptr("tenant-b"), MaxSeries: ptr(0)})
	if err != nil || k.Bucket != "tenant-b" || k.MaxSeries != 0 {
		t.Fatalf("Update = %+v, %v; want tenant-b and the gateway's budget", k, err)
	}
	nk, _, _, err := s.Rotate(ctx, k.ID, time.Hour)
	if err != nil || nk.Bucket != "tenant-b" || nk.MaxSeries != 0 {
		t.Errorf("rotated key %+v, %v; want tenant-b", nk, err)
	}
	if got, want := changes(t, s, k.ID), []string{
		"rotate replaced_by=" + strconv.FormatInt(nk.ID, 10) + " grace=1h0m0s",
		"update bucket=tenant-b max_series=default",
		"update bucket=default max_series=20",
		"generate hostname=127.0.0.1 scopes=submit bucket=tenant-a/week max_series=500",
	}; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestQuarantine quarantines a key and releases it: each changes the key
// once, with an audit entry, whatever the repeats; the key still
// authenticates (the gateway, not the store, refuses its writes) with its
// quarantine, which List can select.
func TestQuarantine(t *testing.T) { forEachBackend(t, testQuarantine) }

func testQuarantine(t *testing.T, b backend) {
	s, _ := openStore(t, b)
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 9, 30, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	s.Actor = "gateway"
	k, plain := generate(t, s, keystore.NewKey{Hostname: "127.0.0.1"})
	other, _ := generate(t, s, keystore.NewKey{Hostname: "127.0.0.1"})

	q, changed, err := s.Quarantine(ctx, k.ID, "InfluxDB refused 100 points\nwithin 1m")
	if err != nil || !changed || !q.Quarantined() || !q.QuarantinedAt.Equal(now) || q.QuarantineReason != "InfluxDB refused 100 points within 1m" {
		t.Fatalf("Quarantine = %+v, %v, %v; want quarantined now with the reason on one line", q, changed, err)
	}
	now = now.Add(time.Minute)
	again, changed, err := s.Quarantine(ctx, k.ID, "another reason")
	if err != nil || changed || !again.QuarantinedAt.Equal(q.QuarantinedAt) || again.QuarantineReason != q.QuarantineReason {
		t.Errorf("Quarantine again = %+v, %v, %v; want the first quarantine kept, unchanged", again, changed, err)
	}
	got, err := s.Authenticate(ctx, plain, netip.MustParseAddr("127.0.0.1"))
	if err != nil || !got.Quarantined() || got.QuarantineReason != q.QuarantineReason {
		t.Errorf("Authenticate = %+v, %v; want the key with its quarantine", got, err)
	}
	listed, err := s.List(ctx, keystore.Filter{Quarantined: true})
	if err != nil || len(listed) != 1 || listed[0].ID != k.ID {
		t.Errorf("List(Quarantined) = %+v, %v; want key %d alone", listed, err, k.ID)
	}
	if all, _ := s.List(ctx, keystore.Filter{}); len(all) != 2 {
		t.Errorf("List = %d keys, want 2: a quarantined key is still active", len(all))
	}

	r, changed, err := s.Release(ctx, k.ID)
	if err != nil || !changed || r.Quarantined() || r.QuarantineReason != "" {
		t.Fatalf("Release = %+v, %v, %v; want no quarantine", r, changed, err)
	}
	if r, changed, err := s.Release(ctx, other.ID); err != nil || changed || r.Quarantined() {
		t.Errorf("Release of a key not quarantined = %+v, %v, %v; want it as it is, unchanged", r, changed, err)
	}
	if got, want := changes(t, s, k.ID), []string{"release",
		`quarantine reason="InfluxDB refused 100 points within 1m"`, "generate hostname=127.0.0.1 scopes=submit"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("audit %q, want %q", got, want)
	}
	if got := changes(t, s, other.ID); len(got) != 1 {
		t.Errorf("audit of the key never quarantined: %q, want its generate alone", got)
	}
	for name, act := range map[string]func(context.Context, int64) (keystore.Key, bool, error){
		"Quarantine": func(ctx context.Context, id int64) (keystore.Key, bool, error) { return s.Quarantine(ctx, id, "x") },
		"Release":    s.Release,
	} {
		if _, _, err := act(ctx, 9999); !errors.Is(err, keystore.ErrNotFound) {
			t.Errorf("%s of an unknown id: %v, want ErrNotFound", name, err)
		}
	}
}

// TestQuarantineReasonCut quarantines with a reason longer than the store
// keeps: it is cut on a character boundary and marked.
func TestQuarantineReasonCut(t *testing.T) {
	s, _ := openStore(t, sqliteBackend)
	k, _ := generate(t, s, keystore.NewKey{Hostname: "127.0.0.1"})
	q, _, err := s.Quarantine(context.Background(), k.ID, strings.Repeat("é", keystore.MaxQuarantineReason))
	if err != nil {
		t.Fatal(err)
	}
	if r := q.QuarantineReason; len(r) > keystore.MaxQuarantineReason || !strings.HasSuffix(r, "é…") {
		t.Errorf("reason of %d bytes ending %q, want at most %d ending in é…", len(r), r[len(r)-8:], keystore.MaxQuarantineReason)
	}
}

// TestQuarantineReachesReplicas quarantines a key through one handle on
// the store, as the gateway that saw the refusals does, and waits for a
// cache over another handle, as another replica's, to answer with the
// quarantine; then the release.
func TestQuarantineReachesReplicas(t *testing.T) { forEachBackend(t, testQuarantineReachesReplicas) }

func testQuarantineReachesReplicas(t *testing.T, b backend) {
	s, addr := openStore(t, b)
	ctx := context.Background()
	replica := newCache(t, openAt(t, addr), keystore.CacheOptions{Poll: 50 * time.Millisecond})
	k, plain := generate(t, s, keystore.NewKey{Hostname: "127.0.0.1"})
	waitAuth(t, replica, plain, nil, func(k keystore.Key) bool { return !k.Quarantined() }, time.Second)
	if _, _, err := s.Quarantine(ctx, k.ID, "refused"); err != nil {
		t.Fatal(err)
	}
	took := waitAuth(t, replica, plain, nil, func(k keystore.Key) bool { return k.Quarantined() && k.QuarantineReason == "refused" }, time.Second)
	t.Logf("the quarantine reached the other replica in %v", took.Round(time.Millisecond))
	if _, _, err := s.Release(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	waitAuth(t, replica, plain, nil, func(k keystore.Key) bool { return !k.Quarantined() }, time.Second)
}

// changes returns the audit log of key id, newest first, each entry as
// its action and detail.
func changes(t *testing.T, s *keystore.Store, id int64) []string {
	t.Helper()
	var out []string
	for _, l := range auditLines(t, s, id, 0) {
		out = append(out, strings.TrimSpace(l.Action+" "+l.Detail))
	}
	return out
}

// TestApplyDestination applies definitions that give keys their own
// bucket and series budget: they are made with them, a change to either
// is an update naming it, and a definition without them gives the
// gateway's back, as a definition declares the key whole.
func TestApplyDestination(t *testing.T) { forEachBackend(t, testApplyDestination) }

func testApplyDestination(t *testing.T, b backend) {
	s, _ := openStore(t, b)
	defs := []keystore.NewKey{{Name: "tenant-a", Hostname: "127.0.0.1", Bucket: "tenant-a", MaxSeries: 500}}
	created := mustApply(t, s, defs, applyOpts, "create tenant-a\n")
	if k := created.Changes[0].Result; k.Bucket != "tenant-a" || k.MaxSeries != 500 {
		t.Errorf("created %+v, want bucket tenant-a and 500 series", k)
	}
	mustApply(t, s, defs, applyOpts, "unchanged tenant-a\n")
	defs[0].Bucket = "tenant-a/week"
	p := mustApply(t, s, defs, applyOpts, "update tenant-a\n")
	if want := []keystore.Diff{{"bucket", "tenant-a", "tenant-a/week"}}; !reflect.DeepEqual(p.Changes[0].Diffs, want) {
		t.Errorf("diffs %v, want %v", p.Changes[0].Diffs, want)
	}
	defs[0].Bucket, defs[0].MaxSeries = "", 0
	p = mustApply(t, s, defs, applyOpts, "update tenant-a\n")
	if k := p.Changes[0].Result; k.Bucket != "" || k.MaxSeries != 0 {
		t.Errorf("after a definition without them: %+v, want the gateway's bucket and budget", k)
	}
}
