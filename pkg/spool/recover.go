package spool

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// recover scans the segments on disk from the acknowledged position.
func (s *Spool) recover() error {
	entries, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	var ids []uint64
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, segPrefix), segSuffix), 16, 64)
		if err == nil {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	s.ack = s.readAck()
	for _, id := range ids {
		path := segmentPath(s.opts.Dir, id)
		if id < s.ack.seg {
			os.Remove(path)
			continue
		}
		start := int64(0)
		if id == s.ack.seg {
			start = s.ack.off
		}
		end, bytes, points, err := scanSegment(path, start)
		if err != nil {
			return fmt.Errorf("spool: recover %s: %w", path, err)
		}
		if end == start {
			// Nothing left to deliver (or a segment prepared and never
			// used): appends go to a new segment, so it is no longer needed.
			os.Remove(path)
			continue
		}
		s.segs = append(s.segs, &segment{id: id, path: path, end: end, sealed: true})
		s.bytes += bytes
		s.points.Add(points)
	}
	if len(s.segs) == 0 || s.segs[0].id != s.ack.seg {
		// The acknowledged segment is gone (or there was none): start at the
		// oldest that exists. Re-sending is safe, losing is not.
		s.ack = position{}
		if len(s.segs) > 0 {
			s.ack.seg = s.segs[0].id
		}
	}
	s.read = s.ack
	return nil
}

// scanSegment returns the end of the valid records from start, and the
// bytes and points they hold.
func scanSegment(path string, start int64) (end, bytes, points int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, 0, err
	}
	var buf []byte
	end, _, err = walk(f, start, fi.Size(), &buf, func(r record) (bool, bool) {
		points += int64(r.points)
		return true, true
	})
	return end, end - start, points, err
}
