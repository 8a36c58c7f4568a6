package spool

import (
	"context"
	"fmt"
	"os"
	"time"
)

// readPause is how long a started batch gathers records before reading
// again; see Next.
const readPause = 2 * time.Millisecond

// Batch is a run of records read from the spool, to be acknowledged with
// Ack once delivered.
type Batch struct {
	Data   []byte // line protocol, newline-terminated lines
	Points int
	// Keys says which key wrote which lines of Data, and for which bucket:
	// each span's lines end at its End, the first at the start of Data.
	// Adjacent records of one key for one bucket share a span.
	Keys  []KeySpan
	bytes int64
	end   position
}

// KeySpan is a run of a Batch's Data written by one key for one bucket:
// Data[previous span's End:End]. Key is 0 for records of a spool written
// before keys were recorded; Bucket is "" for the gateway's own bucket.
type KeySpan struct {
	End    int
	Key    int64
	Bucket string
}

// KeyAt returns the key that wrote the byte at offset off of b.Data, or 0.
func (b *Batch) KeyAt(off int) int64 {
	for _, s := range b.Keys {
		if off < s.End {
			return s.Key
		}
	}
	return 0
}

// Next returns the records after the last batch, waiting until there are
// maxPoints points or maxWait has passed since the first record was seen.
// A batch holds at least one record, so a larger record is returned alone.
// It returns ctx's error when ctx ends first. When it finds a corrupt
// record it returns the error with the records read before it, which are
// to be delivered all the same; the next call goes on after the segment.
func (s *Spool) Next(ctx context.Context, maxPoints int, maxWait time.Duration) (Batch, error) {
	var b Batch
	var timer, pause *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
			pause.Stop()
		}
	}()
	for {
		if err := s.readInto(&b, maxPoints); err != nil {
			return b, err
		}
		if b.Points >= maxPoints {
			return b, nil
		}
		// Until a batch is started, wait for an append. Once it is, read
		// again every readPause rather than on every append: waking per
		// append cost the forwarder a read and two goroutine switches per
		// one-point request.
		wake := s.notify
		var paused, expired <-chan time.Time
		if b.bytes > 0 {
			if timer == nil {
				timer, pause = time.NewTimer(maxWait), time.NewTimer(readPause)
			} else {
				pause.Reset(readPause)
			}
			wake, paused, expired = nil, pause.C, timer.C
		}
		select {
		case <-wake:
		case <-paused:
		case <-expired:
			return b, nil
		case <-ctx.Done():
			return Batch{}, ctx.Err()
		case <-s.done:
			if b.bytes > 0 {
				return b, nil
			}
			return Batch{}, ErrClosed
		}
	}
}

// Rewind makes the next Next start again after the last acknowledged
// batch, so batches read but not acknowledged (their delivery was cut
// short) are read again.
func (s *Spool) Rewind() {
	s.mu.Lock()
	s.read = s.ack
	s.mu.Unlock()
}

// readInto appends whole records after the read position to b, up to
// maxPoints points (at least one record).
func (s *Spool) readInto(b *Batch, maxPoints int) error {
	for {
		s.mu.Lock()
		seg := s.segmentLocked(s.read.seg)
		if seg == nil {
			s.mu.Unlock()
			return nil
		}
		if seg.id != s.read.seg {
			s.read = position{seg: seg.id}
		}
		end, sealed := seg.end, seg.sealed
		s.mu.Unlock()
		if s.read.off >= end {
			if !sealed {
				return nil
			}
			s.mu.Lock()
			next := s.nextSegmentLocked(seg.id)
			s.mu.Unlock()
			if next == nil {
				return nil
			}
			s.read = position{seg: next.id}
			continue
		}
		f, err := s.openRead(seg)
		if err != nil {
			return err
		}
		start := s.read.off
		off, bad, err := walk(f, start, end, &s.readBuf, func(r record) (bool, bool) {
			if b.bytes > 0 && b.Points+r.points > maxPoints {
				return false, false
			}
			if b.Data == nil {
				b.Data = s.batchData(batchCap(r, maxPoints, end-start))
			}
			b.add(r)
			return true, b.Points < maxPoints
		})
		s.read.off = off
		if off > start {
			b.end = s.read
		}
		switch {
		case err != nil:
			return fmt.Errorf("spool: read %s: %w", seg.path, err)
		case bad:
			return s.corrupt(seg)
		case off < end || b.Points >= maxPoints:
			return nil
		}
	}
}

// batchCap is the room a batch starting with r is given: maxPoints points
// of r's size, within the avail bytes the segment holds, r's at least.
// Appended to from nothing, a 5000-point batch of some 700 KB was
// reallocated, copied and cleared a dozen times on its way.
func batchCap(r record, maxPoints int, avail int64) int {
	per := int64(len(r.payload)/max(r.points, 1) + 1)
	return int(max(min(per*int64(max(maxPoints, r.points)), avail), int64(len(r.payload))))
}

// maxSpare is how many acknowledged batches' Data the spool keeps to fill
// again: the forwarder has a few batches in flight, and making each anew
// cost a large allocation, cleared, and the garbage collection it drove.
const maxSpare = 4

// batchData returns an empty buffer of at least size bytes for a batch,
// one an acknowledged batch gave back when it is large enough.
func (s *Spool) batchData(size int) []byte {
	s.mu.Lock()
	var buf []byte
	if n := len(s.spare); n > 0 {
		buf = s.spare[n-1]
		s.spare[n-1] = nil
		s.spare = s.spare[:n-1]
	}
	s.mu.Unlock()
	if cap(buf) < size {
		buf = make([]byte, 0, size)
	}
	return buf
}

// add appends r to b.
func (b *Batch) add(r record) {
	b.Data = append(b.Data, r.payload...)
	b.bytes += r.size
	b.Points += r.points
	// The comparison of dest as a string allocates nothing; a new span
	// copies it out of the read buffer.
	if n := len(b.Keys); n > 0 && b.Keys[n-1].Key == r.key && b.Keys[n-1].Bucket == string(r.dest) {
		b.Keys[n-1].End = len(b.Data)
	} else {
		b.Keys = append(b.Keys, KeySpan{End: len(b.Data), Key: r.key, Bucket: string(r.dest)})
	}
}

// corrupt ends seg at the read position and reports the bad record there.
// Only recovery can leave a bad record, and it stops before one, so this is
// disk corruption: the rest of the segment is skipped.
func (s *Spool) corrupt(seg *segment) error {
	s.mu.Lock()
	seg.end, seg.sealed = s.read.off, true
	s.mu.Unlock()
	return fmt.Errorf("spool: corrupt record in %s at %d", seg.path, s.read.off)
}

func (s *Spool) openRead(seg *segment) (*os.File, error) {
	if s.readFile != nil && s.readSeg == seg.id {
		return s.readFile, nil
	}
	if s.readFile != nil {
		s.readFile.Close()
	}
	f, err := os.Open(seg.path)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s.readFile, s.readSeg = f, seg.id
	return f, nil
}

func (s *Spool) segmentLocked(id uint64) *segment {
	for _, seg := range s.segs {
		if seg.id == id {
			return seg
		}
	}
	if len(s.segs) > 0 && id < s.segs[0].id {
		return s.segs[0]
	}
	return nil
}

func (s *Spool) nextSegmentLocked(id uint64) *segment {
	for _, seg := range s.segs {
		if seg.id > id {
			return seg
		}
	}
	return nil
}
