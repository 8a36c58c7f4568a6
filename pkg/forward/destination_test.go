package forward_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/deadletter"
	"github.com/metricgate/metricgate/pkg/forward"
	"github.com/metricgate/metricgate/pkg/influx"
)

// TestBucketsApart spools, in one batch, the gateway's bucket's lines, a
// key's own bucket's lines writing the same field with another type, and
// lines for a bucket InfluxDB does not have. Each bucket's lines are
// written to it alone, so the two types do not meet and nothing of them
// is refused; the missing bucket's lines are dead-lettered at once, with
// their bucket and key, rather than retried, and the batch leaves the
// spool.
func TestBucketsApart(t *testing.T) {
	own, tenant := testenv.InfluxDB(t), testenv.InfluxDB(t)
	out := influx.New(influx.Config{URL: own.URL, Bucket: own.Name})
	t.Cleanup(out.Close)
	sp := newSpool(t)
	for i := range 30 {
		var err error
		switch i % 3 {
		case 0:
			err = sp.AppendTo(1, "", []byte(fmt.Sprintf("cpu usage=0.5 %d\n", 1000+i)), 1)
		case 1:
			err = sp.AppendTo(2, tenant.Name, []byte(fmt.Sprintf("cpu usage=\"busy\" %d\n", 1000+i)), 1)
		case 2:
			err = sp.AppendTo(3, "metricgate_no_such_bucket", []byte(fmt.Sprintf("cpu usage=1i %d\n", 1000+i)), 1)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var told []forward.DeadLetter
	dead := filepath.Join(t.TempDir(), "dead-letter.jsonl")
	dc := drainTo(t, sp, out, dead, forward.Options{BatchPoints: 5000, Bucket: own.Name,
		DeadLettered: func(l []forward.DeadLetter) { mu.Lock(); told = append(told, l...); mu.Unlock() }})
	if a, b := own.Count(t, "cpu", "usage"), tenant.Count(t, "cpu", "usage"); a != 10 || b != 10 {
		t.Errorf("the gateway's bucket holds %d points and the key's own %d, want 10 each", a, b)
	}
	letters := readDead(t, dead)
	for _, l := range letters {
		if l.KeyID != 3 || l.Bucket != "metricgate_no_such_bucket" || !strings.Contains(l.Reason, "database not found") {
			t.Errorf("dead letter %+v, want key 3's, for its missing bucket", l)
		}
	}
	if len(letters) != 10 || dc.writes != 1 || len(told) != 10 {
		t.Errorf("%d dead letters in %d writes, %d told; want the missing bucket's 10 in one, told", len(letters), dc.writes, len(told))
	}
}

// TestReplay dead-letters lines for a bucket InfluxDB does not have and
// lines whose field type conflicts, then creates the bucket and replays:
// the bucket's lines are delivered and taken out of the file, the
// conflicting ones refused again and kept with the new reason. A replay
// while InfluxDB is unreachable sends nothing and changes nothing.
func TestReplay(t *testing.T) {
	db, out, _ := seeded(t, "cpu usage=0.5 1\n")
	missing := fmt.Sprintf("%s_later", db.Name)
	t.Cleanup(func() { db.Query(t, fmt.Sprintf("DROP DATABASE %q", missing)) })
	path := filepath.Join(t.TempDir(), "dead-letter.jsonl")
	file := deadletter.NewFile(path, 0)
	at := time.Unix(1700000000, 0).UTC()
	var letters []forward.DeadLetter
	for i := range 6 {
		l := forward.DeadLetter{Time: at, KeyID: 5, Bucket: missing, Reason: "database not found", Line: fmt.Sprintf("cpu usage=%d.5 %d", i, 100+i)}
		if i%3 == 2 {
			l = forward.DeadLetter{Time: at, KeyID: 6, Reason: "field type conflict", Line: fmt.Sprintf("cpu usage=\"x\" %d", 100+i)}
		}
		letters = append(letters, l)
	}
	if err := file.Append(letters); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	down := influx.New(influx.Config{URL: "http://" + testenv.FreeAddr(t), Bucket: db.Name})
	defer down.Close()
	r, err := forward.Replay(ctx, file, down, forward.ReplayOptions{})
	if err != nil || r.NotSent != 6 || r.Delivered+r.Refused != 0 || r.Error == "" {
		t.Errorf("replay with InfluxDB unreachable = %+v, %v; want all 6 not sent, with the error", r, err)
	}
	if got, _ := file.Read(); len(got) != 6 {
		t.Fatalf("after a replay that sent nothing the file holds %d letters, want 6", len(got))
	}

	db.Query(t, fmt.Sprintf("CREATE DATABASE %q", missing))
	later := time.Unix(1800000000, 0).UTC()
	r, err = forward.Replay(ctx, file, out, forward.ReplayOptions{Now: func() time.Time { return later }})
	if err != nil || r.Delivered != 4 || r.Refused != 2 || r.NotSent != 0 {
		t.Fatalf("replay = %+v, %v; want 4 delivered and 2 refused again", r, err)
	}
	if n := (&testenv.DB{URL: db.URL, Name: missing}).Count(t, "cpu", "usage"); n != 4 {
		t.Errorf("the created bucket holds %d points, want the 4 replayed", n)
	}
	kept, _ := file.Read()
	for _, l := range kept {
		if l.KeyID != 6 || !l.Time.Equal(later) || !strings.Contains(l.Reason, "conflict") {
			t.Errorf("kept %+v, want key 6's conflicts, refused again at %v", l, later)
		}
	}
	if len(kept) != 2 {
		t.Errorf("the file keeps %d letters, want the 2 refused again", len(kept))
	}
	r, err = forward.Replay(ctx, file, out, forward.ReplayOptions{Select: func(l forward.DeadLetter) bool { return l.KeyID == 5 }})
	if err != nil || r != (forward.ReplayReport{}) {
		t.Errorf("replaying key 5's letters, of which none are left = %+v, %v; want nothing done", r, err)
	}
}
