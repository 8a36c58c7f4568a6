package quarantine_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/deadletter"
	"github.com/metricgate/metricgate/pkg/keystore"
	"github.com/metricgate/metricgate/pkg/quarantine"
)

// refusals returns n dead letters of key, resolved unless unresolved.
func refusals(key int64, n int, unresolved bool) []deadletter.Letter {
	out := make([]deadletter.Letter, n)
	for i := range out {
		out[i] = deadletter.Letter{KeyID: key, Reason: fmt.Sprintf("partial write: field type conflict %d", i),
			Line: "cpu usage=\"x\"", Unresolved: unresolved}
	}
	return out
}

// TestWatch counts refusals against a real key store with a limit of 5 a
// minute: a key reaches it across two calls and is quarantined once, with
// the count and the last reason, and logged for the audit; a key whose
// refusals are spread wider than the window, unresolved letters, and
// letters of no key are not.
func TestWatch(t *testing.T) {
	ctx := context.Background()
	store, err := keystore.Open(ctx, filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var ids []int64
	for range 3 {
		k, _, err := store.Generate(ctx, keystore.NewKey{Hostname: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
	}
	bad, slow, unlucky := ids[0], ids[1], ids[2]
	clock := testenv.NewClock(time.Date(2026, 5, 1, 12, 0, 10, 0, time.UTC))
	logs := &testenv.Buffer{}
	var told []int64
	w := quarantine.New(store, quarantine.Options{Limit: 5, Window: time.Minute, Now: clock.Now,
		Log: slog.New(slog.NewJSONHandler(logs, nil)), Quarantined: func(k keystore.Key) { told = append(told, k.ID) }})
	quarantined := func(id int64) bool {
		t.Helper()
		w.Wait()
		k, err := store.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return k.Quarantined()
	}

	w.Refused(append(refusals(bad, 4, false), refusals(slow, 3, false)...))
	w.Refused(append(refusals(unlucky, 20, true), refusals(0, 20, false)...))
	if quarantined(bad) || quarantined(slow) || quarantined(unlucky) {
		t.Fatal("a key was quarantined below the limit, or for unresolved letters")
	}
	clock.Advance(30 * time.Second)
	w.Refused(refusals(bad, 1, false))
	if !quarantined(bad) {
		t.Fatal("5 refusals within a minute did not quarantine the key")
	}
	k, _ := store.Get(ctx, bad)
	if want := "InfluxDB refused 5 of its points within 1m0s; the last: partial write: field type conflict 0"; k.QuarantineReason != want {
		t.Errorf("reason %q, want %q", k.QuarantineReason, want)
	}
	clock.Advance(2 * time.Minute)
	w.Refused(refusals(slow, 3, false))
	if quarantined(slow) {
		t.Error("3 refusals, then 3 more two minutes later, quarantined the key")
	}
	w.Refused(refusals(bad, 5, false)) // the quarantined key's spooled points, still refused
	w.Wait()
	if fmt.Sprint(told) != fmt.Sprint([]int64{bad}) {
		t.Errorf("told of quarantines of keys %v, want key %d's alone, once", told, bad)
	}
	if n := strings.Count(logs.String(), `"audit":true`); n != 1 || !strings.Contains(logs.String(), fmt.Sprintf(`"key_id":%d`, bad)) {
		t.Errorf("logged %d audit lines, want one naming key %d:\n%s", n, bad, logs)
	}
	entries, err := store.Audit(ctx, bad, 1)
	if err != nil || len(entries) != 1 || entries[0].Action != keystore.ActionQuarantine || entries[0].Actor != "gateway" {
		t.Errorf("the key's last audit entry %+v, %v; want its quarantine by the gateway", entries, err)
	}
}
