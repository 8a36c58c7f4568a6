package forward_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/forward"
	"github.com/metricgate/metricgate/pkg/influx"
	"github.com/metricgate/metricgate/pkg/spool"
)

// counted puts a proxy in front of the InfluxDB at target that counts the
// writes reaching it.
func counted(t *testing.T, target string) (proxied string, writes *atomic.Int64) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	writes = new(atomic.Int64)
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/write") {
			writes.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, writes
}

// seeded writes lines to a fresh database on the test InfluxDB, and
// returns it and a writer to it whose writes are counted.
func seeded(t *testing.T, lines string) (*testenv.DB, *influx.Writer, *atomic.Int64) {
	t.Helper()
	db := testenv.InfluxDB(t)
	direct := influx.New(influx.Config{URL: db.URL, Bucket: db.Name})
	defer direct.Close()
	if err := direct.Write(context.Background(), []byte(lines)); err != nil {
		t.Fatal(err)
	}
	proxied, writes := counted(t, db.URL)
	out := influx.New(influx.Config{URL: proxied, Bucket: db.Name})
	t.Cleanup(out.Close)
	return db, out, writes
}

// deadCount counts the forwarder's writes to the dead-letter file (each one
// fsync) and their points, and the conflicts InfluxDB named.
type deadCount struct {
	mu     sync.Mutex
	writes int
	points int
	types  []string
}

// drainTo drains sp into out with the dead-letter file at dead.
func drainTo(t *testing.T, sp *spool.Spool, out forward.Writer, dead string, opts forward.Options) *deadCount {
	t.Helper()
	dc := &deadCount{}
	opts.BatchWait = 10 * time.Millisecond
	opts.DeadLetter = dead
	opts.Rejected = func(n int) { dc.mu.Lock(); dc.writes++; dc.points += n; dc.mu.Unlock() }
	opts.Conflict = func(_, m, f, typ string) { dc.mu.Lock(); dc.types = append(dc.types, m+"."+f+"="+typ); dc.mu.Unlock() }
	fwd := forward.New(sp, out, opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if left := fwd.Drain(ctx); left != 0 {
		t.Fatalf("%d points left in the spool, want 0", left)
	}
	return dc
}

func readDead(t *testing.T, path string) []forward.DeadLetter {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("dead-letter file: %v", err)
	}
	defer f.Close()
	var out []forward.DeadLetter
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var d forward.DeadLetter
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// TestAllConflictingBatch is the bisection storm: a 5000-point batch whose
// every line conflicts with the field's type in InfluxDB. It costs one
// write, InfluxDB's answer says all were dropped, and they reach the
// dead-letter file in one write and one sync, each with its key.
func TestAllConflictingBatch(t *testing.T) {
	db, out, writes := seeded(t, "cpu,host=a usage=0.5 1\n")
	sp := newSpool(t)
	var body strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&body, "cpu,host=evil usage=\"x\" %d\n", 1000+i)
	}
	if err := sp.AppendFrom(42, []byte(body.String()), 5000); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(t.TempDir(), "dead-letter.jsonl")
	dc := drainTo(t, sp, out, dead, forward.Options{BatchPoints: 5000})
	t.Logf("the all-conflicting batch cost %d writes to InfluxDB and %d to the dead-letter file", writes.Load(), dc.writes)
	if n := writes.Load(); n > 3 {
		t.Errorf("the batch cost %d writes to InfluxDB, want at most 3", n)
	}
	if dc.writes != 1 || dc.points != 5000 {
		t.Errorf("dead-letter file written %d times with %d points, want once with 5000", dc.writes, dc.points)
	}
	letters := readDead(t, dead)
	if len(letters) != 5000 {
		t.Fatalf("got %d dead letters, want 5000", len(letters))
	}
	for _, d := range letters[:3] {
		if d.KeyID != 42 || !strings.Contains(d.Reason, "field type conflict") || !strings.HasPrefix(d.Line, `cpu,host=evil usage="x" `) || d.Time.IsZero() {
			t.Errorf("dead letter %+v, want key 42, the conflict, the line and a time", d)
		}
	}
	if fmt.Sprint(dc.types) != "[cpu.usage=float]" {
		t.Errorf("conflicts reported: %v, want InfluxDB's type of cpu.usage, float", dc.types)
	}
	if n := db.Count(t, "cpu", "usage"); n != 1 {
		t.Errorf("InfluxDB holds %d points of cpu.usage, want the 1 written before", n)
	}
}

// TestMixedConflicts sends a batch of good lines from one key and lines
// of two different conflicts from others: every good line reaches
// InfluxDB, exactly the conflicting ones are dead-lettered with their
// keys, in one write, for a handful of InfluxDB writes.
func TestMixedConflicts(t *testing.T) {
	db, out, writes := seeded(t, "cpu usage=0.5 1\nmem used=1i 1\n")
	sp := newSpool(t)
	for i := range 100 {
		var key int64 = 1
		l := fmt.Sprintf("cpu,host=good usage=%d.5 %d\n", i, 1000+i)
		switch i % 10 {
		case 3:
			key, l = 2, fmt.Sprintf("cpu,host=bad usage=\"s%d\" %d\n", i, 1000+i)
		case 7:
			key, l = 3, fmt.Sprintf("mem,host=bad used=%d.25 %d\n", i, 1000+i)
		}
		if err := sp.AppendFrom(key, []byte(l), 1); err != nil {
			t.Fatal(err)
		}
	}
	dead := filepath.Join(t.TempDir(), "dead-letter.jsonl")
	dc := drainTo(t, sp, out, dead, forward.Options{BatchPoints: 5000})
	t.Logf("the mixed batch cost %d writes to InfluxDB", writes.Load())
	if n := writes.Load(); n > 6 {
		t.Errorf("the batch cost %d writes to InfluxDB, want at most 6", n)
	}
	if n := db.Count(t, "cpu", "usage"); n != 81 {
		t.Errorf("InfluxDB holds %d points of cpu.usage, want the 80 good ones and the first", n)
	}
	letters := readDead(t, dead)
	byKey := map[int64]int{}
	for _, d := range letters {
		byKey[d.KeyID]++
		if strings.Contains(d.Line, "host=good") {
			t.Errorf("a good line was dead-lettered: %+v", d)
		}
	}
	if len(letters) != 20 || byKey[2] != 10 || byKey[3] != 10 || dc.writes != 1 {
		t.Errorf("dead letters by key %v in %d writes, want 10 of key 2 and 10 of key 3 in one", byKey, dc.writes)
	}
}

// TestSplitBounded fakes a backend that refuses any body holding a bad line
// and says nothing more, as one may: the forwarder halves, within its
// budget of extra writes, and every line is either delivered or
// dead-lettered, the unresolved ones saying so.
func TestSplitBounded(t *testing.T) {
	var mu sync.Mutex
	var requests int
	delivered := map[string]bool{}
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		requests++
		if strings.Contains(string(b), "bad") {
			http.Error(w, `{"code":"invalid","message":"no"}`, http.StatusBadRequest)
			return
		}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			delivered[l] = true
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer fake.Close()
	out := influx.New(influx.Config{URL: fake.URL, Bucket: "db"})
	defer out.Close()
	sp := newSpool(t)
	var all []string
	for i := range 64 {
		l := fmt.Sprintf("m v=%di %d", i, i)
		if i == 5 || i == 40 {
			l = fmt.Sprintf("m bad=%di %d", i, i)
		}
		all = append(all, l)
		sp.AppendFrom(7, []byte(l+"\n"), 1)
	}
	dead := filepath.Join(t.TempDir(), "dead-letter.jsonl")
	dc := drainTo(t, sp, out, dead, forward.Options{BatchPoints: 5000, MaxExtraWrites: 6})
	t.Logf("without detail, %d writes", requests)
	if requests > 7 {
		t.Errorf("%d writes, want at most 1 + 6 extra", requests)
	}
	letters := readDead(t, dead)
	buried := map[string]bool{}
	unresolved := 0
	for _, d := range letters {
		buried[d.Line] = true
		if strings.Contains(d.Reason, "not resolved further") {
			unresolved++
		}
	}
	for _, l := range all {
		if delivered[l] == buried[l] {
			t.Errorf("line %q: delivered %v, dead-lettered %v; want exactly one", l, delivered[l], buried[l])
		}
	}
	if !buried["m bad=5i 5"] || !buried["m bad=40i 40"] || unresolved == 0 || dc.writes != 1 {
		t.Errorf("dead letters %d (%d unresolved) in %d writes; want both bad lines, the unresolved rest marked, one write", len(letters), unresolved, dc.writes)
	}
}

// TestDeadLetterRotation checks that the dead-letter file is rotated once
// it would pass its size, keeping the one before.
func TestDeadLetterRotation(t *testing.T) {
	var requests atomic.Int64
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, `{"error":"partial write: points beyond retention policy dropped=1"}`, http.StatusBadRequest)
	}))
	defer fake.Close()
	out := influx.New(influx.Config{URL: fake.URL, Bucket: "db"})
	defer out.Close()
	sp := newSpool(t)
	for i := range 30 {
		sp.AppendFrom(1, []byte(fmt.Sprintf("m v=%di %d\n", i, i)), 1)
	}
	dead := filepath.Join(t.TempDir(), "dead-letter.jsonl")
	drainTo(t, sp, out, dead, forward.Options{BatchPoints: 1, Workers: 1, DeadLetterMaxBytes: 1000})
	cur, err := os.Stat(dead)
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.Stat(dead + ".1")
	if err != nil {
		t.Fatalf("no rotated file: %v", err)
	}
	if cur.Size() > 1000 || old.Size() > 1000 {
		t.Errorf("files of %d and %d bytes, want each at most 1000", cur.Size(), old.Size())
	}
	if n := len(readDead(t, dead)) + len(readDead(t, dead+".1")); n >= 30 || n < 5 {
		t.Errorf("%d dead letters kept across the two files, want the latest (fewer than 30)", n)
	}
}
