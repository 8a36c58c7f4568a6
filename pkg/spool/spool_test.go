package spool_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/metricgate/metricgate/pkg/spool"
)

func open(t *testing.T, opts spool.Options) *spool.Spool {
	t.Helper()
	s, err := spool.Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func line(i int) []byte { return []byte(fmt.Sprintf("m,host=h x=%di %d\n", i, i)) }

// drain reads n lines from the spool, acknowledging as it goes if ack,
// and returns them in order. It fails the test if they have not come
// within 10 seconds.
func drain(t *testing.T, s *spool.Spool, n int, ack bool) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var lines []string
	for len(lines) < n {
		b, err := s.Next(ctx, 7, 10*time.Millisecond)
		if err != nil {
			t.Fatalf("Next after %d of %d lines: %v", len(lines), n, err)
		}
		if b.Points > 7 && strings.Count(string(b.Data), "\n") != b.Points {
			t.Fatalf("batch of %d points over the maximum of 7 holds more than one record", b.Points)
		}
		lines = append(lines, strings.SplitAfter(string(b.Data), "\n")...)
		lines = lines[:len(lines)-1]
		if ack {
			if err := s.Ack(b); err != nil {
				t.Fatal(err)
			}
		}
	}
	return lines
}

// checkDrained checks that the spool has nothing more to read, without
// waiting: Next with room for one point returns a record that is there
// before it looks at its context (TestNextBeforeContext), so with a
// cancelled context it returns the context's error only when there is none.
func checkDrained(t *testing.T, s *spool.Spool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if b, err := s.Next(ctx, 1, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("the spool has more to read: Next returned %q, %v", b.Data, err)
	}
}

// TestNextBeforeContext checks what checkDrained relies on: a record
// waiting in the spool is returned even when the context has ended.
func TestNextBeforeContext(t *testing.T) {
	s := open(t, spool.Options{Dir: t.TempDir(), SegmentSize: 4096})
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if b, err := s.Next(ctx, 1, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next on an empty spool with a cancelled context = %q, %v; want context.Canceled", b.Data, err)
	}
	if err := s.Append(line(0), 1); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Next(ctx, 1, time.Hour); err != nil || string(b.Data) != string(line(0)) {
		t.Fatalf("Next with a record waiting and a cancelled context = %q, %v; want the record", b.Data, err)
	}
	checkDrained(t, s)
}

func TestAppendReadAck(t *testing.T) {
	for _, mode := range []spool.SyncMode{spool.SyncAlways, spool.SyncInterval} {
		t.Run(fmt.Sprint("mode", mode), func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, spool.Options{Dir: dir, SegmentSize: 256, Sync: mode})
			var want []string
			for i := 0; i < 50; i++ {
				if err := s.Append(line(i), 1); err != nil {
					t.Fatal(err)
				}
				want = append(want, string(line(i)))
			}
			if st := s.Stats(); st.Points != 50 || st.Segments < 5 || s.Backlog() != 50 {
				t.Errorf("stats = %+v, backlog %d, want 50 points over several 256-byte segments", st, s.Backlog())
			}
			got := drain(t, s, 50, false)
			if strings.Join(got, "") != strings.Join(want, "") {
				t.Fatalf("read %d lines, want the 50 appended in order", len(got))
			}
			checkDrained(t, s)
			s.Close()

			// Nothing was acknowledged: a reopened spool has it all again.
			s = open(t, spool.Options{Dir: dir, SegmentSize: 256, Sync: mode})
			if got := drain(t, s, 50, true); strings.Join(got, "") != strings.Join(want, "") {
				t.Fatalf("after reopen read %d lines, want all 50 again", len(got))
			}
			checkDrained(t, s)
			if st := s.Stats(); st.Points != 0 || st.Bytes != 0 || s.Backlog() != 0 {
				t.Errorf("after acking everything stats = %+v, backlog %d, want empty", st, s.Backlog())
			}
			s.Close()
			s = open(t, spool.Options{Dir: dir, SegmentSize: 256, Sync: mode})
			defer s.Close()
			if st := s.Stats(); st.Points != 0 {
				t.Errorf("acknowledged records came back: stats = %+v", st)
			}
			checkDrained(t, s)
			segs, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
			if len(segs) > 3 {
				t.Errorf("%d segment files left after everything was delivered, want delivered ones deleted", len(segs))
			}
		})
	}
}

// numbered returns the numbered record i: 22 bytes, one point.
func numbered(i int) []byte { return []byte(fmt.Sprintf("m,host=h x=%04di %04d\n", i, i)) }

// openNumbered opens a spool (--fsync interval) in a directory of its own
// and appends the numbered records 0 to n-1.
func openNumbered(t *testing.T, n int) *spool.Spool {
	t.Helper()
	s := open(t, spool.Options{Dir: t.TempDir(), Sync: spool.SyncInterval})
	for i := range n {
		if err := s.Append(numbered(i), 1); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TestNextSizesBatchOnce checks that a batch's data is allocated once at
// about its size, not grown record by record: reading 1000 one-point
// records takes a few allocations in all, where growing from nothing took
// one per doubling and more.
func TestNextSizesBatchOnce(t *testing.T) {
	s := openNumbered(t, 3000)
	defer s.Close()
	ctx := context.Background()
	var b spool.Batch
	allocs := testing.AllocsPerRun(5, func() {
		s.Rewind()
		var err error
		if b, err = s.Next(ctx, 1000, time.Hour); err != nil {
			t.Fatal(err)
		}
	})
	if b.Points != 1000 || len(b.Data) != 22*1000 {
		t.Fatalf("batch of %d points, %d bytes; want 1000 and 22000", b.Points, len(b.Data))
	}
	if allocs > 4 {
		t.Errorf("Next took %.0f allocations for a batch of 1000 records, want at most 4", allocs)
	}
	if cap(b.Data) > 2*len(b.Data) {
		t.Errorf("batch data of %d bytes has room for %d", len(b.Data), cap(b.Data))
	}
}

// TestAckGivesDataBack checks that a batch is read into the memory of one
// acknowledged before it, when it fits, and holds its own records all the
// same: making each 5000-point batch anew was a large allocation, cleared,
// and the collections it drove.
func TestAckGivesDataBack(t *testing.T) {
	s := openNumbered(t, 3000)
	defer s.Close()
	ctx := context.Background()
	var last *byte
	for round := range 3 {
		b, err := s.Next(ctx, 1000, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if want := numbered(round * 1000); b.Points != 1000 || !bytes.HasPrefix(b.Data, want) {
			t.Fatalf("batch %d: %d points starting %.22q; want 1000 starting %q", round, b.Points, b.Data, want)
		}
		first := unsafe.SliceData(b.Data)
		if round > 0 && first != last {
			t.Errorf("batch %d was read into new memory, not the acknowledged batch's", round)
		}
		last = first
		if err := s.Ack(b); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAckedClosesAtAck checks the channel a held write waits on
// (forward.Pacer): open until an Ack lowers the backlog, closed by it, and
// a new one open for the next.
func TestAckedClosesAtAck(t *testing.T) {
	s := open(t, spool.Options{Dir: t.TempDir(), SegmentSize: 4096})
	defer s.Close()
	acked := s.Acked()
	if err := s.Append(line(0), 1); err != nil {
		t.Fatal(err)
	}
	b, err := s.Next(context.Background(), 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-acked:
		t.Fatal("Acked closed before any Ack")
	default:
	}
	if err := s.Ack(b); err != nil {
		t.Fatal(err)
	}
	select {
	case <-acked:
	default:
		t.Fatal("Acked still open after an Ack")
	}
	select {
	case <-s.Acked():
		t.Fatal("the next Acked is closed already")
	default:
	}
}

func TestTornTailIgnored(t *testing.T) {
	dir := t.TempDir()
	s := open(t, spool.Options{Dir: dir, SegmentSize: 4096})
	for i := 0; i < 3; i++ {
		if err := s.Append(line(i), 1); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	// Tear the last record as a crash mid-write would: flip a payload byte.
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	var data []byte
	var path string
	for _, p := range segs {
		if b, _ := os.ReadFile(p); strings.Contains(string(b), "x=2i") {
			data, path = b, p
		}
	}
	i := strings.Index(string(data), "x=2i")
	data[i] = 'y'
	os.WriteFile(path, data, 0o600)

	s = open(t, spool.Options{Dir: dir, SegmentSize: 4096})
	defer s.Close()
	if err := s.Append(line(3), 1); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(drain(t, s, 3, true), "")
	want := string(line(0)) + string(line(1)) + string(line(3))
	if got != want {
		t.Errorf("got %q, want %q: the torn record skipped, later ones kept", got, want)
	}
	checkDrained(t, s)
}

func TestFull(t *testing.T) {
	s := open(t, spool.Options{Dir: t.TempDir(), MaxBytes: 100, SegmentSize: 4096})
	defer s.Close()
	ctx := context.Background()
	big := []byte(strings.Repeat("a", 60) + "\n")
	if err := s.Append(big, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(big, 1); !errors.Is(err, spool.ErrFull) {
		t.Fatalf("second append error = %v, want ErrFull", err)
	}
	if st := s.Stats(); st.Points != 1 {
		t.Errorf("stats after a refused append = %+v, want 1 point", st)
	}
	b, err := s.Next(ctx, 10, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	s.Ack(b)
	if err := s.Append(big, 1); err != nil {
		t.Errorf("append after delivery freed room: %v", err)
	}
}

// TestConcurrentAppends appends from many goroutines while a reader drains,
// and checks every acknowledged append is read exactly once.
func TestConcurrentAppends(t *testing.T) {
	s := open(t, spool.Options{Dir: t.TempDir(), SegmentSize: 16 << 10})
	defer s.Close()
	const writers, each = 16, 200
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := s.Append(line(w*each+i), 1); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	seen := map[string]int{}
	for _, l := range drain(t, s, writers*each, true) {
		seen[l]++
	}
	wg.Wait()
	checkDrained(t, s)
	if len(seen) != writers*each {
		t.Fatalf("read %d distinct lines, want %d", len(seen), writers*each)
	}
	for l, n := range seen {
		if n != 1 {
			t.Fatalf("line %q read %d times, want once", l, n)
		}
	}
}

func TestPingReportsFull(t *testing.T) {
	s := open(t, spool.Options{Dir: t.TempDir(), MaxBytes: 100, SegmentSize: 4096})
	defer s.Close()
	ctx := context.Background()
	if err := s.Append([]byte(strings.Repeat("a", 50)+"\n"), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping with room left: %v", err)
	}
	if err := s.Append([]byte(strings.Repeat("a", 50)+"\n"), 1); !errors.Is(err, spool.ErrFull) {
		t.Fatalf("append error = %v, want ErrFull", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, spool.ErrFull) {
		t.Errorf("Ping after a refused append = %v, want ErrFull", err)
	}
	b, _ := s.Next(ctx, 10, time.Millisecond)
	s.Ack(b)
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping after delivery freed room: %v", err)
	}
}

// TestReadAcrossChunks reads records that straddle the reader's 1 MiB
// reads, and records larger than one, in both sync modes, and checks every
// byte comes back once and in order.
func TestReadAcrossChunks(t *testing.T) {
	for _, mode := range []spool.SyncMode{spool.SyncAlways, spool.SyncInterval} {
		t.Run(fmt.Sprint("mode", mode), func(t *testing.T) {
			s := open(t, spool.Options{Dir: t.TempDir(), SegmentSize: 8 << 20, Sync: mode})
			defer s.Close()
			ctx := context.Background()
			var want strings.Builder
			sizes := []int{100, 1<<20 - 50, 300, 3 << 19, 7, 1 << 20, 1<<20 - 12, 1<<20 - 11, 64 << 10}
			for i, n := range sizes {
				rec := []byte(fmt.Sprintf("m,i=%d v=%s\n", i, strings.Repeat(string(rune('a'+i)), n)))
				if err := s.Append(rec, 1); err != nil {
					t.Fatal(err)
				}
				want.Write(rec)
			}
			var got strings.Builder
			for points := 0; points < len(sizes); {
				b, err := s.Next(ctx, 2, time.Millisecond)
				if err != nil {
					t.Fatal(err)
				}
				got.Write(b.Data)
				points += b.Points
				if err := s.Ack(b); err != nil {
					t.Fatal(err)
				}
			}
			if got.String() != want.String() {
				t.Fatalf("read %d bytes, want the %d appended, in order", got.Len(), want.Len())
			}
		})
	}
}

// TestReadCorruptRecord flips a byte of a record on disk: the reader must
// report the corruption, not deliver the record.
func TestReadCorruptRecord(t *testing.T) {
	dir := t.TempDir()
	s := open(t, spool.Options{Dir: dir, Sync: spool.SyncAlways})
	defer s.Close()
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := s.Append(line(i), 1); err != nil {
			t.Fatal(err)
		}
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	f, err := os.OpenFile(segs[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The second record's payload starts after the first record and its own
	// 12-byte header.
	if _, err := f.WriteAt([]byte("X"), int64(12+len(line(0))+12+2)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b, err := s.Next(ctx, 100, time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "corrupt record") {
		t.Fatalf("Next = %q, %v; want a corrupt record error", b.Data, err)
	}
	// The record before the bad one is still delivered.
	if string(b.Data) != string(line(0)) || b.Points != 1 {
		t.Errorf("Next returned %q (%d points) with the error, want the first record", b.Data, b.Points)
	}
}

// TestKeysRecorded appends records without a key, as a spool written
// before keys were recorded holds them, and records of two keys, then
// reopens the spool: a batch says which key wrote each line, the records
// without a key read as key 0, and a record torn in its extended header is
// dropped on recovery while those before it are kept.
func TestKeysRecorded(t *testing.T) {
	dir := t.TempDir()
	s := open(t, spool.Options{Dir: dir, SegmentSize: 1 << 16})
	for _, a := range []struct {
		key  int64
		line int
	}{{0, 1}, {0, 2}, {7, 3}, {7, 4}, {9, 5}, {0, 6}} {
		if err := s.AppendFrom(a.key, line(a.line), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash in the middle of the next record: its header, extension and
	// half its payload are on disk, as a torn write leaves them.
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) == 0 {
		segs, _ = filepath.Glob(filepath.Join(dir, "*"))
	}
	tornAfter(t, segs, 6)

	s = open(t, spool.Options{Dir: dir, SegmentSize: 1 << 16})
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := s.Next(ctx, 100, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if b.Points != 6 {
		t.Fatalf("got %d points after recovery, want the 6 whole records", b.Points)
	}
	want := []int64{0, 0, 7, 7, 9, 0}
	for i, l := range strings.SplitAfter(strings.TrimSuffix(string(b.Data), "\n"), "\n") {
		off := strings.Index(string(b.Data), l)
		if got := b.KeyAt(off); got != want[i] {
			t.Errorf("line %d (%q) written by key %d, want %d", i+1, l, got, want[i])
		}
	}
	if len(b.Keys) != 4 {
		t.Errorf("got %d key spans %+v, want 4: adjacent records of one key share one", len(b.Keys), b.Keys)
	}
}

// tornAfter finds the segment holding n whole records and writes after them
// the start of a record of key 5: its header, its extension and half of a
// payload that the header says is longer.
func tornAfter(t *testing.T, segs []string, n int) {
	t.Helper()
	// length 30, 1 point with the extension flag, a CRC, key 5, then 10
	// of the 30 payload bytes.
	torn := []byte{30, 0, 0, 0, 1, 0, 0, 0x80, 1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0, 0}
	tearAfterRecords(t, segs, append(torn, "m,host=h x="...))
}

// tearAfterRecords finds the segment holding the test's records and
// writes torn after them, as a write cut short by a crash leaves a record.
func tearAfterRecords(t *testing.T, segs []string, torn []byte) {
	t.Helper()
	for _, path := range segs {
		data, err := os.ReadFile(path)
		if err != nil || !strings.Contains(string(data), "x=1i") {
			continue
		}
		end := strings.LastIndex(string(data), "\n") + 1
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(torn, int64(end)); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no segment among %v holds the records", segs)
}

// TestDestinationsRecorded appends records for the gateway's bucket and
// for keys' own buckets, in both sync modes, then reopens the spool: a
// batch's spans say which key wrote each line and for which bucket, a
// key's records for two buckets are two spans, the spool's byte count
// matches what it read (it is 0 once all is acknowledged), a destination
// longer than a record holds is refused, and a record torn in its
// destination is dropped on recovery.
func TestDestinationsRecorded(t *testing.T) {
	for _, mode := range []spool.SyncMode{spool.SyncAlways, spool.SyncInterval} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) { testDestinationsRecorded(t, mode) })
	}
}

func testDestinationsRecorded(t *testing.T, mode spool.SyncMode) {
	dir := t.TempDir()
	longest := strings.Repeat("b", spool.MaxDestination)
	opts := spool.Options{Dir: dir, SegmentSize: 1 << 16, Sync: mode}
	s := open(t, opts)
	appends := []struct {
		key  int64
		dest string
	}{{0, ""}, {7, "tenant-a"}, {7, "tenant-a"}, {7, "tenant-b/week"}, {9, ""}, {9, longest}, {0, "tenant-a"}}
	for i, a := range appends {
		if err := s.AppendTo(a.key, a.dest, line(i), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AppendTo(1, longest+"b", line(99), 1); !errors.Is(err, spool.ErrDestination) {
		t.Errorf("a destination of %d bytes: %v, want ErrDestination", len(longest)+1, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*"))
	tornDestination(t, segs)

	s = open(t, opts)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := s.Next(ctx, 100, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if b.Points != len(appends) {
		t.Fatalf("got %d points after recovery, want the %d whole records", b.Points, len(appends))
	}
	var got []string
	start := 0
	for _, sp := range b.Keys {
		got = append(got, fmt.Sprintf("%d %q %d", sp.Key, sp.Bucket, strings.Count(string(b.Data[start:sp.End]), "\n")))
		start = sp.End
	}
	want := []string{`0 "" 1`, `7 "tenant-a" 2`, `7 "tenant-b/week" 1`, `9 "" 1`, fmt.Sprintf("9 %q 1", longest), `0 "tenant-a" 1`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("spans (key, bucket, lines):\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := s.Ack(b); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Bytes != 0 || st.Points != 0 {
		t.Errorf("after acknowledging everything: %+v, want 0 bytes and points", st)
	}
}

// tornDestination writes after the test's records the start of a record
// for a destination of 20 bytes, torn within the name: length 30, 1 point
// with the destination flag, a CRC, then 5 of the 20 bytes of the name.
func tornDestination(t *testing.T, segs []string) {
	t.Helper()
	tearAfterRecords(t, segs, []byte{30, 0, 0, 0, 1, 0, 0, 0x40, 1, 2, 3, 4, 20, 't', 'e', 'n', 'a', 'n'})
}

// TestAckFile checks the acknowledged position across a restart: a record
// written in place is read back, one written by an earlier version
// ("seg off", renamed into place) is read as it was, and a torn one sends
// everything again rather than skip anything.
func TestAckFile(t *testing.T) {
	dir := t.TempDir()
	s := open(t, spool.Options{Dir: dir})
	for i := range 10 {
		if err := s.Append(line(i), 1); err != nil {
			t.Fatal(err)
		}
	}
	drain(t, s, 7, true) // the first batch, acknowledged
	s.Close()
	path := filepath.Join(dir, "ack")
	rec, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var seg, off int64
	if n, _ := fmt.Sscanf(string(rec), "%d %d", &seg, &off); n != 2 || len(rec) != 51 {
		t.Fatalf("ack file %q: want \"seg off crc\" of fixed width", rec)
	}
	for _, tt := range []struct {
		name, file string
		want       int
	}{
		{"InPlace", string(rec), 3},
		{"EarlierVersion", fmt.Sprintf("%d %d\n", seg, off), 3},
		{"Torn", string(rec[:30]) + strings.Repeat("9", 10) + string(rec[40:]), 10},
		{"Garbage", "x", 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			s := open(t, spool.Options{Dir: dir})
			defer s.Close()
			if got := drain(t, s, tt.want, false); len(got) != tt.want || got[len(got)-1] != string(line(9)) {
				t.Errorf("got %d lines back ending %q, want %d ending with the last", len(got), got[len(got)-1], tt.want)
			}
			checkDrained(t, s)
		})
	}
}
