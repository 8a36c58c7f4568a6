package schema_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metricgate/metricgate/pkg/points"
	"github.com/metricgate/metricgate/pkg/schema"
)

var now = time.Unix(1700000000, 0)

// lp returns the fields of a line-protocol body as the gateway's scanner
// gathers them.
func lp(t *testing.T, body string) []points.FieldType {
	t.Helper()
	var s points.Scanner
	l, err := s.Scan(strings.NewReader(body), -1, time.Nanosecond, points.Options{HostTag: "host"}, "h", now)
	if err != nil {
		t.Fatal(err)
	}
	return l.Fields
}

// TestGuard runs requests through one guard: the first type accepted is
// held, a conflict is refused naming the line and both types and records
// nothing, buckets are apart, and what InfluxDB says replaces what the
// guard held.
func TestGuard(t *testing.T) {
	g := schema.New(0)
	steps := []struct {
		bucket, body, mention string // mention "" when accepted
	}{
		{"a", "cpu usage=0.5,cores=8i\ncpu usage=0.7,cores=8i", ""},
		{"a", "cpu usage=0.6\ncpu usage=\"x\"", `line 2: field "usage" of measurement "cpu" is string, but this bucket holds it as float`},
		{"a", "cpu cores=1.5", `line 1: field "cores" of measurement "cpu" is float, but this bucket holds it as integer`},
		{"a", "mem used=1i,free=2i\nmem used=1i,free=\"x\"", `line 2: field "free" of measurement "mem" is string, but this bucket holds it as integer`},
		// Nothing of the refused request was recorded: free may be a string.
		{"a", "mem free=\"lots\"", ""},
		{"b", "cpu usage=\"x\"", ""},
		{"a", "cpu up=true,usage=1u", `field "usage" of measurement "cpu" is integer, but this bucket holds it as float`},
	}
	for i, st := range steps {
		err := g.Check(st.bucket, lp(t, st.body))
		switch {
		case st.mention == "" && err != nil:
			t.Errorf("step %d: %v, want it accepted", i, err)
		case st.mention != "" && (!errors.Is(err, schema.ErrConflict) || !strings.Contains(err.Error(), st.mention)):
			t.Errorf("step %d: got %v, want ErrConflict mentioning %q", i, err, st.mention)
		}
	}
	if got := g.Lookup("a", "mem", "free"); got != schema.String {
		t.Errorf("mem.free = %v, want string (the refused request recorded nothing)", got)
	}
	g.Learn("a", "cpu", "usage", schema.String)
	if err := g.Check("a", lp(t, "cpu usage=\"y\"")); err != nil {
		t.Errorf("after InfluxDB said usage is a string: %v", err)
	}
	if fields, _ := g.Stats(); fields != 4 {
		t.Errorf("the guard holds %d fields, want 4 (cpu.usage, cpu.cores and mem.free in a, cpu.usage in b)", fields)
	}
	// A JSON point is named by its index.
	pts, _ := points.ParseJSON(strings.NewReader(`[{"field":"v","value":1},{"field":"v","value":"x"}]`), points.Options{DefaultMeasurement: "m"})
	var l points.Lines
	if err := points.EncodeLines(&l, pts, "host", "h", now); err != nil {
		t.Fatal(err)
	}
	if err := g.Check("a", l.Fields); err == nil || !strings.Contains(err.Error(), "point 1:") {
		t.Errorf("JSON: got %v, want a conflict naming point 1", err)
	}
}

// TestGuardBound checks that past its bound the guard lets new fields
// through unremembered, and keeps guarding those it holds.
func TestGuardBound(t *testing.T) {
	g := schema.New(10)
	var b strings.Builder
	for i := range 40 {
		fmt.Fprintf(&b, "m f%d=1i\n", i)
	}
	if err := g.Check("a", lp(t, b.String())); err != nil {
		t.Fatal(err)
	}
	if fields, dropped := g.Stats(); fields != 10 || dropped != 30 {
		t.Errorf("stats = %d fields, %d dropped; want 10 and 30", fields, dropped)
	}
	if err := g.Check("a", lp(t, "m f0=\"x\"")); !errors.Is(err, schema.ErrConflict) {
		t.Errorf("a remembered field with another type: got %v, want a conflict", err)
	}
	if err := g.Check("a", lp(t, "m f39=\"x\"")); err != nil {
		t.Errorf("a field past the bound: got %v, want it let through", err)
	}
}

// TestGuardRace sends two types of one new field at once from many
// goroutines: exactly one type wins, and every request of the other is
// refused.
func TestGuardRace(t *testing.T) {
	g := schema.New(0)
	ints, strs := lp(t, "m v=1i"), lp(t, "m v=\"x\"")
	var mu sync.Mutex
	won := map[bool]int{}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			err := g.Check("a", map[bool][]points.FieldType{true: ints, false: strs}[i%2 == 0])
			if err == nil {
				mu.Lock()
				won[i%2 == 0]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(won) != 1 || won[true]+won[false] != 8 {
		t.Errorf("accepted by type: %v, want 8 of one type and none of the other", won)
	}
}
