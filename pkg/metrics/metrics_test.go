package metrics_test

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/metricgate/metricgate/pkg/metrics"
)

// TestObserve checks that the cached series count each route and status
// apart, from many goroutines at once, and that a request no route matched
// is counted as "unmatched".
func TestObserve(t *testing.T) {
	m := metrics.New()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				m.Observe("POST /api/submit", 200, time.Millisecond)
			}
			m.Observe("POST /api/submit", 401, time.Millisecond)
			m.Observe("", 404, time.Millisecond)
		}()
	}
	wg.Wait()
	for _, tt := range []struct {
		route, code string
		want        float64
	}{
		{"POST /api/submit", "200", 800},
		{"POST /api/submit", "401", 8},
		{"unmatched", "404", 8},
	} {
		if got := testutil.ToFloat64(m.Requests.WithLabelValues(tt.route, tt.code)); got != tt.want {
			t.Errorf("requests{%s,%s} = %v, want %v", tt.route, tt.code, got, tt.want)
		}
	}
	if n := testutil.CollectAndCount(m.Requests); n != 3 {
		t.Errorf("%d request series, want 3", n)
	}
	// Two routes observed; the histogram has one series per route.
	if n := testutil.CollectAndCount(m.RequestDuration); n != 2 {
		t.Errorf("%d duration series, want 2", n)
	}
}
