package spool_test

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"

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
