package deadletter_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metricgate/metricgate/pkg/deadletter"
)

var at = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// letter is the i-th letter of a test, of key.
func letter(i int, key int64) deadletter.Letter {
	return deadletter.Letter{Time: at.Add(time.Duration(i) * time.Second), KeyID: key, Bucket: "tenant-a",
		Reason: "partial write: field type conflict", Line: fmt.Sprintf("cpu usage=\"x%d\" %d", i, i)}
}

func lines(letters []deadletter.Letter) []string {
	var out []string
	for _, l := range letters {
		out = append(out, l.Line)
	}
	return out
}

func mustRead(t *testing.T, f *deadletter.File) []deadletter.Letter {
	t.Helper()
	letters, err := f.Read()
	if err != nil {
		t.Fatal(err)
	}
	return letters
}

// TestAppendRotateRead appends past the cap: the full file is rotated to
// .1, and Read gives the letters of both, oldest first, skipping a line
// torn by a crash.
func TestAppendRotateRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dead-letter.jsonl")
	f := deadletter.NewFile(path, 400)
	for i := range 3 {
		if err := f.Append([]deadletter.Letter{letter(2*i, 1), letter(2*i+1, 2)}); err != nil {
			t.Fatal(err)
		}
	}
	cur, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.Stat(path + ".1")
	if err != nil {
		t.Fatalf("no rotated file: %v", err)
	}
	if cur.Size() > 400 || old.Size() > 400 || cur.Mode().Perm() != 0o600 {
		t.Errorf("files of %d and %d bytes, mode %v; want each at most 400, 0600", cur.Size(), old.Size(), cur.Mode().Perm())
	}
	got := mustRead(t, f)
	if n := len(got); n < 2 || n >= 6 || got[len(got)-1].Line != letter(5, 2).Line {
		t.Errorf("read %q, want the latest letters (fewer than 6), oldest first", lines(got))
	}
	torn, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	torn.WriteString(`{"time":"2026-05-01T12:00:00Z","key_id":3,"rea`)
	torn.Close()
	if again := mustRead(t, f); len(again) != len(got) {
		t.Errorf("with a torn line at the end, read %d letters, want the %d whole ones", len(again), len(got))
	}
}

// TestSettle takes out delivered letters (a repeated one once per time it
// is named), replaces refused ones with their new reason, and keeps the
// others, a torn line, and a letter appended after the replay read the
// file.
func TestSettle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dead-letter.jsonl")
	f := deadletter.NewFile(path, 0)
	dup := letter(1, 7)
	if err := f.Append([]deadletter.Letter{letter(0, 7), dup, dup, letter(2, 8), letter(3, 9)}); err != nil {
		t.Fatal(err)
	}
	torn, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	torn.WriteString("not a letter\n")
	torn.Close()
	read := mustRead(t, f)
	if err := f.Append([]deadletter.Letter{letter(4, 7)}); err != nil {
		t.Fatal(err)
	}
	now := read[3]
	now.Reason, now.Time = "refused again", at.Add(time.Hour)
	removed, err := f.Settle([]deadletter.Letter{read[0], read[1]}, []deadletter.Refused{{Was: read[3], Now: now}})
	if err != nil || removed != 2 {
		t.Fatalf("Settle = %d, %v; want 2 taken out", removed, err)
	}
	got := mustRead(t, f)
	want := []string{dup.Line, letter(2, 8).Line, letter(3, 9).Line, letter(4, 7).Line}
	if strings.Join(lines(got), "|") != strings.Join(want, "|") || got[1].Reason != "refused again" || !got[1].Time.Equal(now.Time) {
		t.Errorf("after Settle: %+v\nwant lines %q with the second refused again", got, want)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), "not a letter\n") {
		t.Errorf("Settle dropped a line that is not a letter:\n%s", data)
	}
}

// TestSettleBesideAppends appends from several goroutines, each through
// its own File as the gateway's forwarder and a keyctl replay would be,
// while another settles letters it read: every letter appended is kept
// unless it was taken out, so none is lost to a rewrite.
func TestSettleBesideAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dead-letter.jsonl")
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			f := deadletter.NewFile(path, 0)
			for i := range 50 {
				if err := f.Append([]deadletter.Letter{letter(1000*w+i, int64(w))}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	replay := deadletter.NewFile(path, 0)
	removed, rounds := 0, 0
	for finished := false; !finished; rounds++ {
		select {
		case <-done:
			finished = true
		default:
		}
		read, err := replay.Read()
		if err != nil {
			t.Fatal(err)
		}
		n, err := replay.Settle(read[:min(len(read), 3)], nil)
		if err != nil {
			t.Fatal(err)
		}
		removed += n
	}
	t.Logf("%d settles took out %d letters while 200 were appended", rounds, removed)
	if n := len(mustRead(t, replay)); n != 200-removed {
		t.Errorf("%d letters left, want %d: 200 appended, %d taken out", n, 200-removed, removed)
	}
}
