package limit_test

import (
	"testing"
	"time"

	"github.com/metricgate/metricgate/pkg/limit"
)

// TestSeries runs one limiter of 3 series per key per hour through the
// cases of the data path: new series up to the limit pass, a request with
// one more is refused whole, the key's known series keep flowing, other
// keys are unaffected, and the next hour starts afresh.
func TestSeries(t *testing.T) {
	c := newClock() // 12:00
	s := limit.NewSeries(3, time.Hour)
	steps := []struct {
		advance time.Duration
		id      int64
		limit   int
		hashes  []uint64
		want    limit.SeriesDecision
	}{
		{id: 1, hashes: []uint64{10, 11, 10, 11}, want: limit.SeriesDecision{Allowed: true, Limited: true, Limit: 3, Written: 2, New: 2, Reset: time.Hour}},
		{advance: 10 * time.Minute, id: 1, hashes: []uint64{12}, want: limit.SeriesDecision{Allowed: true, Limited: true, Limit: 3, Written: 3, New: 1, Reset: 50 * time.Minute}},
		{id: 1, hashes: []uint64{10, 13}, want: limit.SeriesDecision{Limited: true, Limit: 3, Written: 3, New: 1, Reset: 50 * time.Minute}},
		{id: 1, hashes: []uint64{12, 11, 10, 10}, want: limit.SeriesDecision{Allowed: true, Limited: true, Limit: 3, Written: 3, Reset: 50 * time.Minute}},
		{id: 2, hashes: []uint64{13, 14, 15}, want: limit.SeriesDecision{Allowed: true, Limited: true, Limit: 3, Written: 3, New: 3, Reset: 50 * time.Minute}},
		// A key's own limit wins over the default.
		{id: 3, limit: 5, hashes: []uint64{1, 2, 3, 4, 5}, want: limit.SeriesDecision{Allowed: true, Limited: true, Limit: 5, Written: 5, New: 5, Reset: 50 * time.Minute}},
		{id: 3, limit: -1, hashes: []uint64{6, 7, 8, 9}, want: limit.SeriesDecision{Allowed: true}},
		{advance: 50 * time.Minute, id: 1, hashes: []uint64{13, 14, 15}, want: limit.SeriesDecision{Allowed: true, Limited: true, Limit: 3, Written: 3, New: 3, Reset: time.Hour}},
	}
	for i, st := range steps {
		c.Advance(st.advance)
		if got := s.Admit(c.Now(), st.id, st.limit, st.hashes); got != st.want {
			t.Errorf("step %d, Admit(key %d, limit %d, %v): got %+v, want %+v", i, st.id, st.limit, st.hashes, got, st.want)
		}
	}
	// Keys 2 and 3 were idle through the hour from 13:00; at 14:00 only
	// key 1, which wrote at 13:00, is kept.
	c.Advance(time.Hour)
	s.Admit(c.Now(), 4, 0, []uint64{1})
	if n := s.Keys(); n != 2 {
		t.Errorf("after an idle hour the limiter holds %d keys, want 2 (the one active in the last hour and the new one)", n)
	}
}

// TestSeriesMany checks the filter at its size: 10,000 series of a key
// all pass and stay known, and of 10,000 more at most a few percent slip
// through as false positives.
func TestSeriesMany(t *testing.T) {
	s := limit.NewSeries(10000, time.Hour)
	now := newClock().Now()
	hashes := make([]uint64, 10000)
	for i := range hashes {
		hashes[i] = uint64(i)*0x9E3779B97F4A7C15 + 1
	}
	if d := s.Admit(now, 1, 0, hashes); !d.Allowed || d.Written != 10000 {
		t.Fatalf("10,000 series at a limit of 10,000: got %+v, want all admitted", d)
	}
	if d := s.Admit(now, 1, 0, hashes); !d.Allowed || d.New != 0 {
		t.Fatalf("the same 10,000 again: got %+v, want them known", d)
	}
	slipped := 0
	for i := range 10000 {
		if s.Admit(now, 1, 0, []uint64{uint64(i)*0x51AFD7ED558CCD + 7}).Allowed {
			slipped++
		}
	}
	if slipped > 300 {
		t.Errorf("%d of 10,000 new series passed a full key, want at most 3%% (the filter's false positives)", slipped)
	}
}
