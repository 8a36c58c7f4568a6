package spool

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"
)

// group is the appends written and synced together.
type group struct {
	buf     []byte // their records
	points  int64
	appends int64
	done    chan struct{} // closed once buf is written and synced; err is then set
	err     error
}

// Append stores data, holding points points, and returns once it is as
// durable as the sync mode promises. It returns an error wrapping ErrFull
// when the spool has no room, without storing anything; ErrClosed after
// Close; and an error wrapping ErrWrite when the write or its sync failed,
// when nothing of the append can be counted on. The record names no key;
// AppendFrom names the one that wrote it.
func (s *Spool) Append(data []byte, points int) error {
	return s.AppendFrom(0, data, points)
}

// AppendFrom is Append for data written by key, which the record keeps
// (Batch.Keys), so that what InfluxDB refuses is traced to the key that
// sent it. Key 0 is none. It returns Append's errors.
func (s *Spool) AppendFrom(key int64, data []byte, points int) error {
	return s.AppendTo(key, "", data, points)
}

// AppendTo is AppendFrom for data bound for dest, the bucket the key's
// points go to, which the record keeps too (KeySpan.Bucket) so that the
// forwarder writes it there; "" is the gateway's own bucket. It returns
// Append's errors, and ErrDestination for a dest longer than
// MaxDestination bytes.
func (s *Spool) AppendTo(key int64, dest string, data []byte, points int) error {
	if len(dest) > MaxDestination {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrDestination, len(dest), MaxDestination)
	}
	size := recordSize(data, key, dest)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.bytes+size > s.opts.MaxBytes {
		s.full = true
		s.mu.Unlock()
		return fmt.Errorf("%w: %d of %d bytes used", ErrFull, s.bytes, s.opts.MaxBytes)
	}
	s.bytes += size
	s.full = false
	s.inflight.Add(1)
	s.mu.Unlock()
	defer s.inflight.Done()

	if s.opts.Sync == SyncInterval {
		// Nothing to wait for but the write itself: do it here, under the
		// write lock, rather than hand it to the committer and back, with
		// the header and the data copied straight into the segment.
		var hdr headerBuf
		h := recordHeader(&hdr, data, points, key, dest)
		s.wmu.Lock()
		err := s.commit(int64(points), h, data)
		s.wmu.Unlock()
		if err != nil {
			s.unreserve(size)
		}
		return err
	}
	// The appender waits for its group whatever happens, so the answer is
	// always the truth about what was stored.
	s.gmu.Lock()
	g := s.cur
	first := len(g.buf) == 0
	g.buf = appendRecord(g.buf, data, points, key, dest)
	g.points += int64(points)
	g.appends++
	s.gmu.Unlock()
	if first {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	<-g.done
	if g.err != nil {
		s.unreserve(size)
	}
	return g.err
}

// commitLoop writes the waiting appends in groups: one pwrite and one
// fdatasync for all the appends that arrived while the last group was
// being written. Appenders add to a shared buffer and wait for one channel
// to close, so a request costs no channel send of its own.
func (s *Spool) commitLoop() {
	defer s.wg.Done()
	var spare []byte
	for {
		select {
		case <-s.kick:
		case <-s.done:
			return
		}
		for {
			s.gmu.Lock()
			g := s.cur
			if len(g.buf) == 0 {
				s.gmu.Unlock()
				break
			}
			s.cur = &group{buf: spare[:0], done: make(chan struct{})}
			s.gmu.Unlock()
			s.wmu.Lock()
			g.err = s.commit(g.points, nil, g.buf)
			s.wmu.Unlock()
			s.groups.Add(1)
			s.grouped.Add(g.appends)
			// The appenders read only err, so the buffer takes the next
			// group but one.
			spare = g.buf
			close(g.done)
		}
	}
}

// commit writes hdr and data, one or more whole records holding points
// points, to the current segment.
func (s *Spool) commit(points int64, hdr, data []byte) error {
	n := int64(len(hdr) + len(data))
	if s.fileOff+n > s.fileCap {
		if err := s.roll(n); err != nil {
			return err
		}
	}
	// A recycled segment's next write starts at an end mark.
	mark := s.recycled && s.fileOff+n+headerSize <= s.fileCap
	if err := s.writeAt(s.fileOff, hdr, data, mark); err != nil {
		// The tail of this segment is now unknown: seal it where it was
		// valid and continue in a new one.
		s.mu.Lock()
		s.segs[len(s.segs)-1].sealed = true
		s.mu.Unlock()
		s.fileCap = 0
		return fmt.Errorf("%w: %w", ErrWrite, err)
	}
	s.fileOff += n
	s.mu.Lock()
	s.segs[len(s.segs)-1].end = s.fileOff
	s.points.Add(points)
	s.mu.Unlock()
	s.wake()
	if s.opts.Sync == SyncAlways {
		if err := s.syncGroup(); err != nil {
			return fmt.Errorf("%w: sync: %w", ErrWrite, err)
		}
	}
	return nil
}

// syncGroup fdatasyncs the current segment for the committer.
func (s *Spool) syncGroup() error {
	if s.aio != nil {
		err := s.aio.fdatasync(s.file)
		if !errors.Is(err, errNoAsync) {
			return err
		}
		s.aio.close()
		s.aio = nil
	}
	return fdatasync(s.file)
}

// mappedMax is the largest append copied into the mapped segment; a
// larger one is written with pwrite. A copy saves the system call, which
// is most of a one-point append's cost, but each new page it touches takes
// a fault, and the file system's page_mkwrite on a shared mapping costs
// more per page than pwrite's copy into the page cache: a 5000-point batch
// spent a fifth of the gateway's CPU in that copy.
const mappedMax = 4096

// writeAt copies hdr and then data into the mapped segment at off, or
// writes them where there is no mapping or the append is large (see
// mappedMax), followed by an end mark if mark is set. A mapped page that
// cannot be read in (a failing disk) raises a fault; it is turned into an
// error rather than a crash.
func (s *Spool) writeAt(off int64, hdr, data []byte, mark bool) (err error) {
	end := off + int64(len(hdr)+len(data))
	if s.mem == nil || len(hdr)+len(data) > mappedMax {
		if len(hdr) > 0 {
			if _, err := s.file.WriteAt(hdr, off); err != nil {
				return err
			}
		}
		if mark && len(hdr) == 0 {
			// The committer's group buffer, its own: the mark goes in the
			// same write.
			data = append(data, endMark[:]...)
			mark = false
		}
		if _, err := s.file.WriteAt(data, off+int64(len(hdr))); err != nil || !mark {
			return err
		}
		_, err := s.file.WriteAt(endMark[:], end)
		return err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("fault writing the mapped segment: %v", r)
		}
	}()
	copy(s.mem[off+int64(copy(s.mem[off:], hdr)):], data)
	if mark {
		clear(s.mem[end : end+headerSize])
	}
	return nil
}

// syncLoop fdatasyncs the current segment every SyncInterval.
func (s *Spool) syncLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.mu.Lock()
			f := s.file
			s.mu.Unlock()
			if f != nil {
				if err := fdatasync(f); err != nil && !errors.Is(err, os.ErrClosed) {
					s.mu.Lock()
					s.syncErr = err
					s.mu.Unlock()
				}
			}
		case <-s.done:
			return
		}
	}
}

func (s *Spool) unreserve(size int64) {
	s.mu.Lock()
	s.bytes -= size
	s.mu.Unlock()
}

func (s *Spool) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}
