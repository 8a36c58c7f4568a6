package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/deadletter"
	"github.com/metricgate/metricgate/pkg/forward"
	"github.com/metricgate/metricgate/pkg/influx"
)

func TestNewCmdDeadLetters(t *testing.T) {
	f := testFactory(false)
	f.Getenv = func(k string) string {
		return map[string]string{"APISERVER_SPOOL_DIR": "/var/spool", "INFLUX_URL": "http://influx:8086", "INFLUX_BUCKET": "db/rp"}[k]
	}
	list := parseVerb(t, f, NewCmdDeadLettersList, []string{"list", "--key", "7", "--limit", "5"}, exitOK, "")
	if list.SpoolDir != "/var/spool" || list.KeyID != 7 || list.Limit != 5 {
		t.Errorf("list options %+v, want the environment's spool directory, key 7, limit 5", *list)
	}
	parseVerb(t, f, NewCmdDeadLettersList, []string{"list", "--limit", "-1"}, exitUsage, "--limit must be 0 (all) or more, got -1")
	parseVerb(t, f, NewCmdDeadLettersList, []string{"list", "extra"}, exitUsage, `takes no arguments, got "extra"`)
	replay := parseVerb(t, f, NewCmdDeadLettersReplay, []string{"replay", "--spool-dir", "s", "--influx-token", "u:p"}, exitOK, "")
	if replay.SpoolDir != "s" || replay.Influx != (influx.Config{URL: "http://influx:8086", Token: "u:p", Bucket: "db/rp"}) {
		t.Errorf("replay options %+v, want the flags, and the environment's InfluxDB", *replay)
	}
}

// deadLetterFixture writes a spool directory's dead letters: three of key
// 7 for bucket, which InfluxDB does not have yet, and two of key 8 for the
// gateway's own, whose field type conflicts with what db holds. It
// returns the directory.
func deadLetterFixture(t *testing.T, db *testenv.DB, bucket string) string {
	t.Helper()
	direct := influx.New(influx.Config{URL: db.URL, Bucket: db.Name})
	defer direct.Close()
	if err := direct.Write(t.Context(), []byte("cpu usage=0.5 1\n")); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var letters []deadletter.Letter
	for i := range 5 {
		l := deadletter.Letter{Time: testNow.Add(time.Duration(i) * time.Minute), KeyID: 7, Bucket: bucket,
			Reason: `InfluxDB has no such bucket: database not found: "` + bucket + `"`, Line: fmt.Sprintf("cpu usage=%d.5 %d", i, 100+i)}
		if i >= 3 {
			l = deadletter.Letter{Time: testNow.Add(time.Duration(i) * time.Minute), KeyID: 8, Reason: "partial write: field type conflict",
				Line: fmt.Sprintf("cpu usage=\"x\" %d", 100+i)}
		}
		letters = append(letters, l)
	}
	if err := deadletter.NewFile(filepath.Join(dir, "dead-letter.jsonl"), 0).Append(letters); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestDeadLetters lists a spool directory's dead letters in each form,
// replays them while InfluxDB cannot be reached (nothing changes, exit 1),
// then replays key 7's once its bucket exists: they are delivered and
// taken out, and key 8's, still conflicting, are refused again and kept.
func TestDeadLetters(t *testing.T) {
	db := testenv.InfluxDB(t)
	bucket := db.Name + "_later"
	t.Cleanup(func() { db.Query(t, fmt.Sprintf("DROP DATABASE %q", bucket)) })
	dir := deadLetterFixture(t, db, bucket)
	c := newCLI(t)
	c.env = map[string]string{"APISERVER_SPOOL_DIR": dir, "INFLUX_URL": db.URL, "INFLUX_BUCKET": db.Name}

	r := c.runTTY("", "dead-letters", "list", "--limit", "3").mustSucceed(t)
	// The reason of key 7's letters, which names the bucket, is cut to 60
	// characters, the width of its column.
	cut := `InfluxDB has no such bucket: database not found: "` + bucket[:9] + "…"
	pad := func(s string, n int) string { return s + strings.Repeat(" ", n-len([]rune(s))) }
	want := "" +
		"TIME              KEY  " + pad("BUCKET", len(bucket)) + "  " + pad("REASON", 60) + "  LINE\n" +
		"2026-03-01 12:02  7    " + bucket + "  " + cut + "  cpu usage=2.5 102\n" +
		"2026-03-01 12:03  8    " + pad("-", len(bucket)) + "  " + pad("partial write: field type conflict", 60) + "  cpu usage=\"x\" 103\n" +
		"2026-03-01 12:04  8    " + pad("-", len(bucket)) + "  " + pad("partial write: field type conflict", 60) + "  cpu usage=\"x\" 104\n"
	if r.stdout != want {
		t.Errorf("table =\n%s\nwant\n%s", r.stdout, want)
	}
	r = c.run("dead-letters", "list", "--key", "8").mustSucceed(t)
	if want := "2026-03-01T12:03:00Z\t8\t\tpartial write: field type conflict\tcpu usage=\"x\" 103\t\n" +
		"2026-03-01T12:04:00Z\t8\t\tpartial write: field type conflict\tcpu usage=\"x\" 104\t\n"; r.stdout != want {
		t.Errorf("list --key 8 = %q, want %q", r.stdout, want)
	}
	var all []deadletter.Letter
	if err := json.Unmarshal([]byte(c.run("dead-letters", "list", "-o", "json").mustSucceed(t).stdout), &all); err != nil || len(all) != 5 {
		t.Fatalf("list -o json: %d letters, %v; want 5", len(all), err)
	}

	down := c.run("dead-letters", "replay", "--influx-url", "http://"+testenv.FreeAddr(t))
	if down.code != exitError || !strings.HasPrefix(down.stderr, "keyctl: 5 dead letters were not sent and are kept: bucket") ||
		!strings.Contains(down.stdout, "5 not sent") {
		t.Errorf("replay with InfluxDB down: exit %d, stdout %q, stderr %q; want 1 and all 5 kept", down.code, down.stdout, down.stderr)
	}
	db.Query(t, fmt.Sprintf("CREATE DATABASE %q", bucket))
	r = c.run("dead-letters", "replay", "--key", "7").mustSucceed(t)
	if want := fmt.Sprintf("Sent 3 dead letters again: 3 delivered and taken out of %s, 0 refused again (kept, with the new reason), 0 not sent.\n",
		filepath.Join(dir, "dead-letter.jsonl")); r.stdout != want {
		t.Errorf("replay --key 7 = %q, want %q", r.stdout, want)
	}
	if n := (&testenv.DB{URL: db.URL, Name: bucket}).Count(t, "cpu", "usage"); n != 3 {
		t.Errorf("key 7's bucket holds %d points, want 3", n)
	}
	c.now = testNow.Add(time.Hour)
	var rep forward.ReplayReport
	if err := json.Unmarshal([]byte(c.run("dead-letters", "replay", "-o", "json").mustSucceed(t).stdout), &rep); err != nil ||
		rep != (forward.ReplayReport{Refused: 2}) {
		t.Errorf("replay -o json = %+v, %v; want key 8's 2 refused again", rep, err)
	}
	if err := json.Unmarshal([]byte(c.run("dead-letters", "list", "-o", "json").mustSucceed(t).stdout), &all); err != nil || len(all) != 2 {
		t.Fatalf("after the replays: %d letters, %v; want key 8's 2", len(all), err)
	}
	for _, l := range all {
		if l.KeyID != 8 || !l.Time.Equal(c.now) || !strings.Contains(l.Reason, "field type conflict: input field \"usage\"") {
			t.Errorf("kept %+v, want key 8's, refused again at %v with InfluxDB's reason", l, c.now)
		}
	}
}

// TestDeadLettersNoSpool checks the errors for a spool directory that is
// not there, and an empty list.
func TestDeadLettersNoSpool(t *testing.T) {
	c := newCLI(t)
	missing := filepath.Join(t.TempDir(), "nope")
	checkRuns(t, c, []runCase{
		{"List", []string{"dead-letters", "list", "--spool-dir", missing}, exitError,
			"keyctl: no spool directory at " + missing + " (set --spool-dir or APISERVER_SPOOL_DIR)"},
		{"Replay", []string{"dead-letters", "replay", "--spool-dir", missing}, exitError,
			"keyctl: no spool directory at " + missing + " (set --spool-dir or APISERVER_SPOOL_DIR)"},
		{"NegativeKey", []string{"dead-letters", "list", "--spool-dir", t.TempDir(), "--key", "-1"}, exitUsage,
			"keyctl: --key must be a key id, got -1"},
	})
	empty := t.TempDir()
	if r := c.runTTY("", "dead-letters", "list", "--spool-dir", empty); r.code != exitOK || r.stdout != "" || r.stderr != "No dead letters in "+empty+".\n" {
		t.Errorf("an empty list: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := c.run("dead-letters", "list", "--spool-dir", empty, "-o", "json").mustSucceed(t); r.stdout != "[]\n" {
		t.Errorf("an empty list in JSON = %q, want []", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(empty, "dead-letter.jsonl")); err == nil {
		t.Error("listing made a dead-letter file")
	}
}
