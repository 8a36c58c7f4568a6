package spool

import (
	"fmt"
	"os"
	"path/filepath"
)

// A segment's file name is segPrefix, its id in 16 hex digits, segSuffix.
const (
	segPrefix = "seg-"
	segSuffix = ".log"
)

// segment is one file of the log as the reader and accounting see it.
type segment struct {
	id     uint64
	path   string
	end    int64 // bytes of valid records
	sealed bool  // no more appends will come
	// size is the file's size when this process made it, 0 for a
	// segment recovered from disk, which is never reused.
	size int64
}

type preparedSegment struct {
	id   uint64
	mem  []byte // the file mapped for writing; nil where mapping is unsupported
	file *os.File
	size int64
	err  error
	// recycled says the file held a delivered segment (recycleSegment).
	recycled bool
}

// roll seals the current segment and switches to the prepared one, which
// must hold at least need bytes.
func (s *Spool) roll(need int64) error {
	p := <-s.next
	if p.err == nil && p.size < need {
		p.close()
		os.Remove(segmentPath(s.opts.Dir, p.id))
		s.made.Add(1)
		p = prepareSegment(s.opts.Dir, p.id, need, s.opts.Sync == SyncInterval)
	}
	if p.err != nil {
		go s.prepare(p.id, s.opts.SegmentSize)
		return fmt.Errorf("%w: new segment: %w", ErrWrite, p.err)
	}
	s.mu.Lock()
	old := preparedSegment{file: s.file, mem: s.mem}
	if n := len(s.segs); n > 0 {
		s.segs[n-1].sealed = true
	}
	s.segs = append(s.segs, &segment{id: p.id, path: segmentPath(s.opts.Dir, p.id), size: p.size})
	s.file, s.mem, s.fileOff, s.fileCap, s.recycled = p.file, p.mem, 0, p.size, p.recycled
	s.mu.Unlock()
	if old.file != nil {
		fdatasync(old.file)
		old.close()
	}
	go s.prepare(p.id+1, s.opts.SegmentSize)
	return nil
}

// prepare makes segment id ahead of need, so a roll costs no I/O: of a
// delivered segment's file when one is free, else a new one.
func (s *Spool) prepare(id uint64, size int64) {
	mapped := s.opts.Sync == SyncInterval
	s.mu.Lock()
	var old string
	if n := len(s.free); n > 0 {
		old, s.free = s.free[n-1], s.free[:n-1]
	}
	s.mu.Unlock()
	if old != "" {
		p := recycleSegment(s.opts.Dir, old, id, size, mapped)
		if p.err == nil {
			s.reused.Add(1)
			s.next <- p
			return
		}
		os.Remove(old)
	}
	s.made.Add(1)
	s.next <- prepareSegment(s.opts.Dir, id, size, mapped)
}

// maxFree is the most delivered segments kept for reuse; one is enough
// while the reader keeps up, since the next segment is prepared at each
// roll.
const maxFree = 1

// recycleSegment makes segment id of the file at old, a delivered segment
// of size bytes, instead of zero-filling a new file: a new one cost as
// much disk writing as the records it then held, and its fill a twentieth
// of the gateway's CPU under batches. Its blocks are written already, so
// later fdatasyncs still carry only data.
//
// What follows the records written to it is the old segment's, valid
// records among them, so recovery must not read on into them: the file
// starts empty (a zero header, made durable before it takes the new name,
// so a crash leaves either an old delivered segment, which recovery
// deletes, or an empty new one), and every write to it ends with a zero
// header (endMark) where the next will start. Should a crash cut a write
// short (one not yet acknowledged) after its records and before its end
// mark, and an old record start right where the write ends, the old
// segment's records from there on are read again: delivered before, they
// are sent again, which InfluxDB absorbs (same series, time and value), as
// it absorbs a batch whose acknowledgement was lost.
func recycleSegment(dir, old string, id uint64, size int64, mapped bool) preparedSegment {
	f, err := os.OpenFile(old, os.O_RDWR, 0)
	if err != nil {
		return preparedSegment{id: id, err: err}
	}
	if fi, serr := f.Stat(); serr != nil || fi.Size() != size {
		err = fmt.Errorf("%s: not a segment of %d bytes", old, size)
	}
	if err == nil {
		_, err = f.WriteAt(endMark[:], 0)
	}
	if err == nil {
		err = fdatasync(f)
	}
	if err == nil {
		err = os.Rename(old, segmentPath(dir, id))
	}
	if err == nil {
		err = syncDir(dir)
	}
	p := readySegment(f, id, size, mapped, err)
	p.recycled = p.err == nil
	return p
}

// endMark is an empty record header: where recovery stops.
var endMark [headerSize]byte

// prepareSegment creates a zero-filled segment and makes its size and
// directory entry durable, so that later fdatasyncs carry only data.
//
// With mapped it also maps the segment for writing: SyncInterval copies each
// append into the mapping, which puts it in the page cache without a system
// call. SyncAlways writes each group with one pwrite instead: after every
// fdatasync the kernel write-protects the pages it cleaned, so the next copy
// into the mapping faults and shoots down other CPUs' TLB entries, and in
// the benchmark pwrite served more requests per second.
func prepareSegment(dir string, id uint64, size int64, mapped bool) preparedSegment {
	f, err := os.OpenFile(segmentPath(dir, id), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return preparedSegment{id: id, err: err}
	}
	zero := make([]byte, 1<<20)
	for off := int64(0); off < size && err == nil; off += int64(len(zero)) {
		_, err = f.WriteAt(zero[:min(int64(len(zero)), size-off)], off)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = syncDir(dir)
	}
	return readySegment(f, id, size, mapped, err)
}

// readySegment returns f, segment id of size bytes, mapped for writing if
// mapped, unless err, the error of getting it ready, or of mapping it, is
// set: f is then closed.
func readySegment(f *os.File, id uint64, size int64, mapped bool, err error) preparedSegment {
	p := preparedSegment{id: id, file: f, size: size}
	if err == nil && mapped {
		p.mem, err = mapSegment(f, size)
	}
	if err != nil {
		f.Close()
		return preparedSegment{id: id, err: err}
	}
	return p
}

// close unmaps and closes the segment's file. Unmapping also drops the
// written pages from the process's resident memory.
func (p preparedSegment) close() {
	if p.mem != nil {
		unmapSegment(p.mem)
	}
	if p.file != nil {
		p.file.Close()
	}
}

// segmentPath is the file of segment id in dir.
func segmentPath(dir string, id uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%s%016x%s", segPrefix, id, segSuffix))
}
