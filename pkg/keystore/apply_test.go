package keystore_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/metricgate/metricgate/pkg/keystore"
)

var applyOpts = keystore.PlanOptions{ManagedBy: keystore.ManagedByApply}

// planKinds is a plan's changes as "kind name" lines, for comparison.
func planKinds(p keystore.Plan) string {
	var b strings.Builder
	for _, c := range p.Changes {
		fmt.Fprintf(&b, "%s %s\n", c.Kind, c.Name)
	}
	return b.String()
}

// mustPlan plans defs on s, failing the test on an error.
func mustPlan(t *testing.T, s *keystore.Store, defs []keystore.NewKey, o keystore.PlanOptions) keystore.Plan {
	t.Helper()
	p, err := s.Plan(context.Background(), defs, o)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return p
}

// mustApply plans and applies defs on s and checks the plan's kinds.
func mustApply(t *testing.T, s *keystore.Store, defs []keystore.NewKey, o keystore.PlanOptions, wantKinds string) keystore.Plan {
	t.Helper()
	p := mustPlan(t, s, defs, o)
	if got := planKinds(p); got != wantKinds {
		t.Fatalf("plan:\n%swant\n%s", got, wantKinds)
	}
	applied, err := s.Apply(context.Background(), p)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return applied
}

func TestNames(t *testing.T) { forEachBackend(t, testNames) }

func testNames(t *testing.T, b backend) {
	s, _ := openStore(t, b)
	ctx := context.Background()
	k, _ := generate(t, s, keystore.NewKey{Name: "web-1-telegraf", Hostname: "web-1"})
	if got, err := s.GetByName(ctx, "web-1-telegraf"); err != nil || got.ID != k.ID || got.Name != "web-1-telegraf" {
		t.Fatalf("GetByName = %+v, %v; want key %d", got, err, k.ID)
	}
	if _, err := s.GetByName(ctx, "web-2"); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("GetByName(unknown) error = %v, want ErrNotFound", err)
	}
	_, _, err := s.Generate(ctx, keystore.NewKey{Name: "web-1-telegraf", Hostname: "web-2"})
	if want := fmt.Sprintf(`key name taken: key %d is named "web-1-telegraf"`, k.ID); !errors.Is(err, keystore.ErrNameTaken) || !strings.Contains(fmt.Sprint(err), want) {
		t.Errorf("Generate(same name) error = %v, want ErrNameTaken naming key %d", err, k.ID)
	}
	other, _ := generate(t, s, keystore.NewKey{Hostname: "web-2"})
	if _, err := s.Update(ctx, other.ID, keystore.Update{Name: ptr("web-1-telegraf")}); !errors.Is(err, keystore.ErrNameTaken) {
		t.Errorf("Update(rename to a taken name) error = %v, want ErrNameTaken", err)
	}
	if got, err := s.Update(ctx, other.ID, keystore.Update{Name: ptr("web-2-telegraf")}); err != nil || got.Name != "web-2-telegraf" {
		t.Errorf("Update(rename) = %+v, %v; want named web-2-telegraf", got, err)
	}
	if got, err := s.Update(ctx, other.ID, keystore.Update{Name: ptr("")}); err != nil || got.Name != "" {
		t.Errorf("Update(name \"\") = %+v, %v; want no name", got, err)
	}

	// Rotation moves the name to the new key.
	nk, _, old, err := s.Rotate(ctx, k.ID, time.Hour)
	if err != nil || nk.Name != "web-1-telegraf" || old.Name != "" {
		t.Fatalf("Rotate = new %q, old %q, %v; want the name on the new key only", nk.Name, old.Name, err)
	}
	// A revoked key keeps its name and frees it.
	if _, err := s.Revoke(ctx, nk.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetByName(ctx, "web-1-telegraf"); err != nil || got.ID != nk.ID || got.RevokedAt.IsZero() {
		t.Errorf("GetByName(revoked) = %+v, %v; want the revoked key %d", got, err, nk.ID)
	}
	again, _ := generate(t, s, keystore.NewKey{Name: "web-1-telegraf", Hostname: "web-1"})
	if got, err := s.GetByName(ctx, "web-1-telegraf"); err != nil || got.ID != again.ID {
		t.Errorf("GetByName = %d, %v; want the key not revoked, %d", got.ID, err, again.ID)
	}

	for _, bad := range []string{"Web-1", "web 1", "-web", "12345", strings.Repeat("a", 64), uuid.NewString(), "wéb"} {
		_, _, err := s.Generate(ctx, keystore.NewKey{Name: bad, Hostname: "web-1"})
		if !errors.Is(err, keystore.ErrInvalidPolicy) || !strings.Contains(fmt.Sprint(err), "name") {
			t.Errorf("Generate(name %q) error = %v, want ErrInvalidPolicy naming the name", bad, err)
		}
	}
}

func TestApply(t *testing.T) { forEachBackend(t, testApply) }

func testApply(t *testing.T, b backend) {
	s, _ := openStore(t, b)
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	handMade, _ := generate(t, s, keystore.NewKey{Name: "hand-made", Hostname: "10.0.0.9"})
	unnamed, _ := generate(t, s, keystore.NewKey{Hostname: "10.0.0.8"})
	defs := []keystore.NewKey{
		{Name: "web-1", Hostname: "127.0.0.1", Description: "web one", Measurements: []string{"cpu", "mem"}, Rate: 10, Burst: 20},
		{Name: "web-2", Hostname: "127.0.0.2", Scopes: []string{"submit"}, ExpiresAt: now.Add(720 * time.Hour)},
		{Name: "web-3", Hostname: "Web-3.Example.COM."},
	}

	created := mustApply(t, s, defs, applyOpts, "create web-1\ncreate web-2\ncreate web-3\n")
	for _, c := range created.Changes {
		k := c.Result
		if k.ID == 0 || k.Name != c.Name || k.ManagedBy != keystore.ManagedByApply || k.Prefix != c.Value[:8] {
			t.Errorf("created %+v for %s, want a key of that name made by apply with its value's prefix", k, c.Name)
		}
	}
	if _, err := s.Authenticate(ctx, created.Changes[0].Value, netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Errorf("the created key does not authenticate: %v", err)
	}
	if k := created.Changes[2].Result; k.Hostname != "web-3.example.com" || !reflect.DeepEqual(k.Scopes, []string{"submit"}) {
		t.Errorf("web-3 = %+v, want its hostname canonical and the default scope", k)
	}

	// The same definitions again: nothing to do, nothing written.
	before := auditLines(t, s, 0, 0)
	same := mustApply(t, s, defs, applyOpts, "unchanged web-1\nunchanged web-2\nunchanged web-3\n")
	if same.Changed() || len(auditLines(t, s, 0, 0)) != len(before) {
		t.Errorf("applying the same definitions wrote to the audit log")
	}

	// Changes: a policy, a host, a key made by hand, scopes reordered.
	defs[0].Rate, defs[0].Description, defs[0].Measurements = 50, "web one, faster", []string{"mem", "cpu"}
	defs[1].Hostname = "127.0.0.3"
	defs = append(defs, keystore.NewKey{Name: "hand-made", Hostname: "10.0.0.9", Description: "adopted"})
	p := mustPlan(t, s, defs, applyOpts)
	if got, want := planKinds(p), "update web-1\nreplace web-2\nunchanged web-3\nupdate hand-made\n"; got != want {
		t.Fatalf("plan:\n%swant\n%s", got, want)
	}
	wantDiffs := []keystore.Diff{{"description", "web one", "web one, faster"}, {"rate", "10", "50"}}
	if !reflect.DeepEqual(p.Changes[0].Diffs, wantDiffs) {
		t.Errorf("web-1 diffs = %v, want %v (measurements in another order are the same)", p.Changes[0].Diffs, wantDiffs)
	}
	applied, err := s.Apply(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if k := applied.Changes[0].Result; k.Rate != 50 || k.Burst != 20 || k.ID != created.Changes[0].Result.ID {
		t.Errorf("updated web-1 = %+v, want the same key with rate 50", k)
	}
	oldWeb2, newWeb2 := created.Changes[1].Result, applied.Changes[1].Result
	if newWeb2.ID == oldWeb2.ID || newWeb2.Hostname != "127.0.0.3" || newWeb2.Name != "web-2" {
		t.Errorf("replaced web-2 = %+v, want a new key for 127.0.0.3", newWeb2)
	}
	if got, _ := s.Get(ctx, oldWeb2.ID); got.RevokedAt.IsZero() || got.ReplacedBy != newWeb2.ID {
		t.Errorf("the replaced key = %+v, want it revoked and replaced by %d", got, newWeb2.ID)
	}
	if got, _ := s.Get(ctx, handMade.ID); got.Description != "adopted" || got.ManagedBy != "" {
		t.Errorf("hand-made key = %+v, want it updated and still not apply's", got)
	}

	// web-3 leaves the file: kept without --prune, revoked with it; keys
	// apply did not make are never pruned.
	defs = append(defs[:2], defs[3])
	p = mustPlan(t, s, defs, applyOpts)
	if len(p.Stale) != 1 || p.Stale[0].Name != "web-3" || p.Changed() {
		t.Errorf("plan without prune: stale %v, changed %v; want web-3 stale and no change", p.Stale, p.Changed())
	}
	pruned := mustApply(t, s, defs, keystore.PlanOptions{ManagedBy: keystore.ManagedByApply, Prune: true},
		"unchanged web-1\nunchanged web-2\nunchanged hand-made\nrevoke web-3\n")
	if pruned.Changes[3].Result.RevokedAt.IsZero() {
		t.Errorf("pruned web-3 is not revoked")
	}
	mustApply(t, s, nil, keystore.PlanOptions{ManagedBy: keystore.ManagedByApply, Prune: true}, "revoke web-1\nrevoke web-2\n")
	for _, id := range []int64{handMade.ID, unnamed.ID} {
		if k, _ := s.Get(ctx, id); !k.RevokedAt.IsZero() {
			t.Errorf("key %d, not made by apply, was revoked by a prune", id)
		}
	}
	entries, _ := s.Audit(ctx, 0, 0)
	if e := entries[0]; e.Action != keystore.ActionApply || e.KeyID != 0 ||
		e.Detail != "source=apply create=0 update=0 replace=0 revoke=2 unchanged=0" {
		t.Errorf("last audit entry = %+v, want the apply's summary", e)
	}
}

func TestPlanRefusesBadDefinitions(t *testing.T) { forEachBackend(t, testPlanRefusesBadDefinitions) }

func testPlanRefusesBadDefinitions(t *testing.T, b backend) {
	s, _ := openStore(t, b)
	for _, tt := range []struct {
		name string
		defs []keystore.NewKey
		want string
	}{
		{"NoName", []keystore.NewKey{{Hostname: "web-1"}}, "definition 1: invalid key policy: name must not be empty"},
		{"Duplicate", []keystore.NewKey{{Name: "a", Hostname: "web-1"}, {Name: "a", Hostname: "web-2"}},
			`invalid key policy: definitions 1 and 2 are both named "a"`},
		{"BadHost", []keystore.NewKey{{Name: "a", Hostname: "not a host"}}, `definition 1 ("a"): invalid hostname "not a host"`},
		{"BadScope", []keystore.NewKey{{Name: "a", Hostname: "web-1", Scopes: []string{"root"}}}, `definition 1 ("a"): invalid scope "root"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Plan(context.Background(), tt.defs, applyOpts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Plan error = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := s.Plan(context.Background(), nil, keystore.PlanOptions{Prune: true}); err == nil {
		t.Errorf("Plan without a maker succeeded; it would prune keys made by hand")
	}
}

// TestApplyChangedSincePlan changes the store between a plan and its
// apply and checks that the apply writes nothing and says why.
func TestApplyChangedSincePlan(t *testing.T) { forEachBackend(t, testApplyChangedSincePlan) }

func testApplyChangedSincePlan(t *testing.T, b backend) {
	s, _ := openStore(t, b)
	ctx := context.Background()
	defs := []keystore.NewKey{{Name: "web-1", Hostname: "web-1"}, {Name: "web-2", Hostname: "web-2"}}
	mustApply(t, s, defs, applyOpts, "create web-1\ncreate web-2\n")
	defs[0].Rate, defs[1].Rate = 5, 5
	p := mustPlan(t, s, defs, applyOpts)

	web2, _ := s.GetByName(ctx, "web-2")
	if _, err := s.Update(ctx, web2.ID, keystore.Update{Description: ptr("changed by hand")}); err != nil {
		t.Fatal(err)
	}
	before, _ := s.List(ctx, keystore.Filter{All: true})
	_, err := s.Apply(ctx, p)
	if !errors.Is(err, keystore.ErrChanged) || !strings.Contains(err.Error(), `"web-2"`) {
		t.Fatalf("Apply after a change error = %v, want ErrChanged naming web-2", err)
	}
	if after, _ := s.List(ctx, keystore.Filter{All: true}); !reflect.DeepEqual(after, before) {
		t.Errorf("a refused apply changed keys:\n%+v\nwant\n%+v", after, before)
	}
	// Planned again, it applies.
	mustApply(t, s, defs, applyOpts, "update web-1\nupdate web-2\n")

	defs = append(defs, keystore.NewKey{Name: "web-3", Hostname: "web-3"})
	p = mustPlan(t, s, defs, applyOpts)
	generate(t, s, keystore.NewKey{Name: "web-3", Hostname: "web-3"})
	if _, err := s.Apply(ctx, p); !errors.Is(err, keystore.ErrChanged) {
		t.Errorf("Apply after someone took a name error = %v, want ErrChanged", err)
	}
}

// TestApplyConcurrent applies two sets of definitions of the same keys at
// once, from two Stores, many times, and checks that each apply either
// succeeds or fails with ErrChanged, and that the store always holds one
// set whole: an apply never half-applies.
func TestApplyConcurrent(t *testing.T) { forEachBackend(t, testApplyConcurrent) }

func testApplyConcurrent(t *testing.T, b backend) {
	s1, addr := openStore(t, b)
	s2 := openAt(t, addr)
	ctx := context.Background()
	defsOf := func(d string) []keystore.NewKey {
		var defs []keystore.NewKey
		for i := range 20 {
			defs = append(defs, keystore.NewKey{Name: fmt.Sprintf("web-%d", i), Hostname: "web-1", Description: d})
		}
		return defs
	}
	mustApply(t, s1, defsOf("start"), applyOpts, planKinds(keystore.Plan{Changes: func() []keystore.Change {
		var cs []keystore.Change
		for _, d := range defsOf("") {
			cs = append(cs, keystore.Change{Kind: keystore.PlanCreate, Name: d.Name})
		}
		return cs
	}()}))
	refused := 0
	for round := range 10 {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, s := range []*keystore.Store{s1, s2} {
			wg.Go(func() {
				p, err := s.Plan(ctx, defsOf(fmt.Sprintf("round %d by %d", round, i)), applyOpts)
				if err == nil {
					_, err = s.Apply(ctx, p)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil && !errors.Is(err, keystore.ErrChanged) {
				t.Fatalf("round %d: Apply error = %v, want nil or ErrChanged", round, err)
			}
			if err != nil {
				refused++
			}
		}
		keys, _ := s1.List(ctx, keystore.Filter{})
		seen := map[string]int{}
		for _, k := range keys {
			seen[k.Description]++
		}
		if len(seen) != 1 || len(keys) != 20 {
			t.Fatalf("round %d: the keys' descriptions are %v; want one apply's, whole", round, seen)
		}
	}
	t.Logf("%d of 20 applies were refused as changed since their plan", refused)
}

func TestImport(t *testing.T) { forEachBackend(t, testImport) }

func testImport(t *testing.T, b backend) {
	s, _ := openStore(t, b)
	ctx := context.Background()
	uuidKey, legacyKey := uuid.NewString(), "token-from-the-old-system"
	keys := []keystore.HashedKey{
		{NewKey: keystore.NewKey{Name: "web-1", Hostname: "127.0.0.1", Rate: 5}, Hash: keystore.HashKey(strings.ToUpper(uuidKey)), Prefix: uuidKey[:8]},
		{NewKey: keystore.NewKey{Name: "old-1", Hostname: "127.0.0.1"}, Hash: sha256.Sum256([]byte(legacyKey))},
	}
	changes, err := s.Import(ctx, keys)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	for i, c := range changes {
		if c.Kind != keystore.PlanCreate || c.Result.ManagedBy != keystore.ManagedByImport || c.Result.Name != keys[i].Name {
			t.Errorf("import %d = %s %+v, want created, named %s, made by import", i, c.Kind, c.Result, keys[i].Name)
		}
	}
	for _, plain := range []string{uuidKey, legacyKey} {
		if k, err := s.Authenticate(ctx, plain, netip.MustParseAddr("127.0.0.1")); err != nil {
			t.Errorf("imported key %.8s…: Authenticate = %+v, %v", plain, k, err)
		}
	}
	if k, _ := s.GetByName(ctx, "old-1"); k.Prefix != "" || !k.Legacy() {
		t.Errorf("a key imported without a prefix = %+v, want none, shown as legacy", k)
	}
	again, err := s.Import(ctx, keys)
	if err != nil || again[0].Kind != keystore.PlanUnchanged || again[1].Kind != keystore.PlanUnchanged {
		t.Errorf("Import again = %+v, %v; want both unchanged", again, err)
	}

	before := auditLines(t, s, 0, 0)
	for _, tt := range []struct {
		name string
		keys []keystore.HashedKey
		want error
	}{
		{"HashHeldByAnother", []keystore.HashedKey{{NewKey: keystore.NewKey{Name: "new-1", Hostname: "web-9"}, Hash: sha256.Sum256([]byte("x"))},
			{NewKey: keystore.NewKey{Name: "web-9", Hostname: "127.0.0.1"}, Hash: keys[0].Hash}}, keystore.ErrConflict},
		{"NameTaken", []keystore.HashedKey{{NewKey: keystore.NewKey{Name: "web-1", Hostname: "web-9"}, Hash: sha256.Sum256([]byte("y"))}}, keystore.ErrNameTaken},
		{"BadPrefix", []keystore.HashedKey{{NewKey: keystore.NewKey{Name: "new-2", Hostname: "web-9"}, Hash: sha256.Sum256([]byte("z")), Prefix: "XYZ"}}, keystore.ErrInvalidPolicy},
		{"SameHashTwice", []keystore.HashedKey{{NewKey: keystore.NewKey{Name: "a", Hostname: "web-9"}, Hash: sha256.Sum256([]byte("z"))},
			{NewKey: keystore.NewKey{Name: "b", Hostname: "web-9"}, Hash: sha256.Sum256([]byte("z"))}}, keystore.ErrInvalidPolicy},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Import(ctx, tt.keys); !errors.Is(err, tt.want) {
				t.Errorf("Import error = %v, want %v", err, tt.want)
			}
			if after := auditLines(t, s, 0, 0); len(after) != len(before) {
				t.Errorf("a refused import wrote %d audit entries", len(after)-len(before))
			}
		})
	}
}

func TestGenerateMany(t *testing.T) { forEachBackend(t, testGenerateMany) }

func testGenerateMany(t *testing.T, b backend) {
	s, _ := openStore(t, b)
	ctx := context.Background()
	keys, plains, err := s.GenerateMany(ctx, []keystore.NewKey{{Hostname: "127.0.0.1", Name: "a"}, {Hostname: "127.0.0.2"}, {Hostname: "127.0.0.1"}})
	if err != nil || len(keys) != 3 || len(plains) != 3 {
		t.Fatalf("GenerateMany = %d keys, %v", len(keys), err)
	}
	for i, k := range keys {
		if found, err := s.Find(ctx, plains[i]); err != nil || found.ID != k.ID {
			t.Errorf("key %d: Find(its value) = %d, %v", i, found.ID, err)
		}
	}
	for _, tt := range []struct {
		name string
		nks  []keystore.NewKey
		want string
	}{
		{"BadHost", []keystore.NewKey{{Hostname: "web-1"}, {Hostname: "not a host"}}, `key 2 of 2 (hostname "not a host"): invalid hostname`},
		{"SameName", []keystore.NewKey{{Hostname: "web-1", Name: "b"}, {Hostname: "web-2", Name: "b"}}, `key 2 of 2 (hostname "web-2"): key name taken: key 1 of 2 is named "b" too`},
		{"NameTaken", []keystore.NewKey{{Hostname: "web-1"}, {Hostname: "web-2", Name: "a"}}, `key 2 of 2 (hostname "web-2"): keystore: key name taken: key 1 is named "a"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := s.GenerateMany(ctx, tt.nks)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("GenerateMany error = %v, want %q", err, tt.want)
			}
			if all, _ := s.List(ctx, keystore.Filter{All: true}); len(all) != 3 {
				t.Errorf("a refused GenerateMany left %d keys, want 3", len(all))
			}
		})
	}
}
