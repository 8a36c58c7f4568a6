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
}

type preparedSegment struct {
	id   uint64
	mem  []byte // the file mapped for writing; nil where mapping is unsupported
	file *os.File
	size int64
	err  error
}

// roll seals the current segment and switches to the prepared one, which
// must hold at least need bytes.
func (s *Spool) roll(need int64) error {
	p := <-s.next
	if p.err == nil && p.size < need {
		p.close()
		os.Remove(segmentPath(s.opts.Dir, p.id))
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
	s.segs = append(s.segs, &segment{id: p.id, path: segmentPath(s.opts.Dir, p.id)})
	s.file, s.mem, s.fileOff, s.fileCap = p.file, p.mem, 0, p.size
	s.mu.Unlock()
	if old.file != nil {
		fdatasync(old.file)
		old.close()
	}
	go s.prepare(p.id+1, s.opts.SegmentSize)
	return nil
}

// prepare makes segment id ahead of need, so a roll costs no I/O.
func (s *Spool) prepare(id uint64, size int64) {
	s.next <- prepareSegment(s.opts.Dir, id, size, s.opts.Sync == SyncInterval)
}

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
	path := segmentPath(dir, id)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return preparedSegment{id: id, err: err}
	}
	zero := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(zero)) {
		n := min(int64(len(zero)), size-off)
		if _, err := f.WriteAt(zero[:n], off); err != nil {
			f.Close()
			return preparedSegment{id: id, err: err}
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return preparedSegment{id: id, err: err}
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return preparedSegment{id: id, err: err}
	}
	if !mapped {
		return preparedSegment{id: id, file: f, size: size}
	}
	mem, err := mapSegment(f, size)
	if err != nil {
		f.Close()
		return preparedSegment{id: id, err: err}
	}
	return preparedSegment{id: id, file: f, mem: mem, size: size}
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
