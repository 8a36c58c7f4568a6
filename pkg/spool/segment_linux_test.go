package spool_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metricgate/metricgate/pkg/spool"
)

// TestSegmentsAllocated checks that a new segment has its blocks, written
// as zeros, before any append reaches it, in both sync modes. A sparse
// segment would leave each append to allocate, and could fail for room
// halfway through one.
func TestSegmentsAllocated(t *testing.T) {
	const size = 1 << 20
	for _, mode := range []spool.SyncMode{spool.SyncAlways, spool.SyncInterval} {
		t.Run(fmt.Sprint("mode", mode), func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, spool.Options{Dir: dir, SegmentSize: size, Sync: mode})
			defer s.Close()
			if err := s.Append(line(1), 1); err != nil {
				t.Fatal(err)
			}
			// The first segment holds the append; the next may still be
			// being prepared.
			segs, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
			if len(segs) == 0 {
				t.Fatal("no segment file")
			}
			var st syscall.Stat_t
			if err := syscall.Stat(segs[0], &st); err != nil {
				t.Fatal(err)
			}
			if st.Size != size || st.Blocks*512 < size {
				t.Errorf("%s: %d bytes in %d bytes of blocks, want %d bytes, all allocated", filepath.Base(segs[0]), st.Size, st.Blocks*512, size)
			}
		})
	}
}

// TestSegmentsRecycled checks that delivered segments' files become later
// segments rather than new files being zero-filled, and that what an old
// segment held past the new records never comes back: not in reading, and
// not in the recovery after a crash, where the spool's files are as the
// process left them. The records are of one size, so the new ones end
// where an old one starts, a valid record that only the end mark keeps
// recovery from reading.
func TestSegmentsRecycled(t *testing.T) {
	const size = 4096
	rec := func(phase, i int) []byte { return []byte(fmt.Sprintf("m,host=h p=%di,i=%04di 1\n", phase, i)) }
	for _, mode := range []spool.SyncMode{spool.SyncAlways, spool.SyncInterval} {
		t.Run(fmt.Sprint("mode", mode), func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, spool.Options{Dir: dir, SegmentSize: size, Sync: mode})
			defer s.Close()
			// Phase 0 fills several segments and is delivered whole.
			var want []string
			for i := range 200 {
				if err := s.Append(rec(0, i), 1); err != nil {
					t.Fatal(err)
				}
				want = append(want, string(rec(0, i)))
			}
			// Segment 3 is prepared in the background at the roll to 2; let
			// it be made before anything is delivered, so that it is new
			// and the first file delivered goes to segment 4.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
				if st := s.Stats(); st.SegmentsMade == 3 {
					break
				} else if time.Now().After(deadline) {
					t.Fatalf("segment 3 not prepared: %+v", st)
				}
			}
			if got := drain(t, s, 200, true); strings.Join(got, "") != strings.Join(want, "") {
				t.Fatalf("phase 0: read %d lines, not the 200 appended", len(got))
			}
			// Phase 1 fills the rest of phase 0's last segment and the one
			// prepared then, and goes on into phase 0's first file: 200
			// records of 36 bytes are 26, 113 and 61 in 4096-byte
			// segments, and phase 0's records lie past the 61.
			before := s.Stats()
			want = want[:0]
			for i := range 200 {
				if err := s.Append(rec(1, i), 1); err != nil {
					t.Fatal(err)
				}
				want = append(want, string(rec(1, i)))
			}
			after := s.Stats()
			if reused := after.SegmentsReused - before.SegmentsReused; reused != 1 {
				t.Fatalf("phase 1 made %d segments of delivered ones, want 1", reused)
			}
			// The crash: a copy of the directory as it is, opened anew.
			crashed := t.TempDir()
			files, _ := os.ReadDir(dir)
			for _, f := range files {
				if strings.HasPrefix(f.Name(), "seg-") || f.Name() == "ack" {
					data, err := os.ReadFile(filepath.Join(dir, f.Name()))
					if err != nil {
						t.Fatal(err)
					}
					os.WriteFile(filepath.Join(crashed, f.Name()), data, 0o600)
				}
			}
			for _, d := range []struct {
				name string
				s    *spool.Spool
			}{{"running", s}, {"recovered", open(t, spool.Options{Dir: crashed, SegmentSize: size, Sync: mode})}} {
				if got := drain(t, d.s, 200, true); strings.Join(got, "") != strings.Join(want, "") {
					t.Fatalf("%s: read %d lines, want phase 1's 200:\n%s", d.name, len(got), strings.Join(got, ""))
				}
				checkDrained(t, d.s)
			}
		})
	}
}
