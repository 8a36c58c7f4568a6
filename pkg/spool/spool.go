// Package spool is metricgate's durable queue of accepted points: the
// gateway answers 2xx only once a request's points are in the spool, and a
// forwarder drains it to InfluxDB, deleting only what InfluxDB confirmed.
//
// The storage is an append-only log of segment files, chosen over SQLite or
// an embedded key-value store because the access pattern is exactly a log:
// appends at one end, reads and deletes at the other, never an update. That
// makes each acknowledgement one pwrite and one fdatasync, shared by every
// request that arrived meanwhile (group commit). Segments are created at full
// size and filled with zeros before use, so an fdatasync flushes data only:
// no file size or extent metadata changes on the hot path. Each record
// carries a CRC, so a write torn by a crash is recognised and ignored on
// recovery; such a record was never acknowledged.
package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by the spool. Each means the spool cannot take points
// now but may later, and says why in words for the client (Unavailable).
var (
	// ErrFull means accepting the data would take the spool over its size
	// limit; the caller should refuse it and let the client retry later.
	ErrFull = &unavailableError{"spool full", "the gateway's spool is full while InfluxDB catches up"}
	// ErrClosed means the spool has been closed.
	ErrClosed = &unavailableError{"spool closed", "the gateway cannot store points now"}
	// ErrWrite means the spool could not write or sync; nothing of the
	// append can be counted on.
	ErrWrite = &unavailableError{"spool write failed", "the gateway cannot store points now"}
)

// unavailableError is an error of the spool's with what a client is told.
type unavailableError struct{ msg, reason string }

func (e *unavailableError) Error() string { return e.msg }

// Unavailable says, in words for a client, why the spool cannot take
// points now. The HTTP layer answers 503 with it and Retry-After.
func (e *unavailableError) Unavailable() string { return e.reason }

// SyncMode says when an append is acknowledged.
type SyncMode int

const (
	// SyncAlways acknowledges an append once it is fdatasync'd: it survives
	// a crash of the machine.
	SyncAlways SyncMode = iota
	// SyncInterval acknowledges an append once the operating system has it,
	// and fdatasyncs every SyncInterval: it survives a crash of the process,
	// not of the machine.
	SyncInterval
)

// Options configure a spool.
type Options struct {
	Dir          string
	MaxBytes     int64         // default 1 GiB
	SegmentSize  int64         // default 16 MiB; a record larger than this gets a segment of its own size
	Sync         SyncMode      // default SyncAlways
	SyncInterval time.Duration // default 100ms, for SyncInterval
}

const (
	headerSize = 12 // payload length, point count, CRC-32C of both and the payload
	readChunk  = 1 << 20
	readPause  = 2 * time.Millisecond // see Next
	ackFile    = "ack"
	segPrefix  = "seg-"
	segSuffix  = ".log"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// position is a place in the log.
type position struct {
	seg uint64
	off int64
}

// segment is one file of the log as the reader and accounting see it.
type segment struct {
	id     uint64
	path   string
	end    int64 // bytes of valid records
	sealed bool  // no more appends will come
}

// Spool is a durable FIFO of line-protocol records. Appends may come from
// many goroutines; Next and Ack from one reader.
type Spool struct {
	opts Options

	// The group of appends waiting for the committer (SyncAlways): each
	// appender adds its record to cur under gmu, and the first of a group
	// kicks the committer.
	gmu  sync.Mutex
	cur  *group
	kick chan struct{}
	done chan struct{}
	wg   sync.WaitGroup

	// Guarded by wmu: held by the committer (SyncAlways) or by each
	// appender (SyncInterval).
	wmu     sync.Mutex
	aio     *asyncSyncer // the committer's fdatasync; nil where unsupported
	mem     []byte
	file    *os.File
	fileOff int64
	fileCap int64
	next    chan preparedSegment // the next segment, zero-filled ahead of need

	mu       sync.Mutex
	closed   bool
	full     bool           // an append was refused for room, and little has been freed since
	inflight sync.WaitGroup // appends between the closed check and their answer
	segs     []*segment     // oldest first; the last is the one being written
	ack      position
	read     position
	bytes    int64        // reserved or written and not yet acknowledged by the reader
	points   atomic.Int64 // written under mu; read without it by Backlog
	notify   chan struct{}
	syncErr  error
	readFile *os.File
	readSeg  uint64
	readBuf  []byte
}

// group is the appends written and synced together.
type group struct {
	buf    []byte // their records
	points int64
	done   chan struct{} // closed once buf is written and synced; err is then set
	err    error
}

type preparedSegment struct {
	id   uint64
	mem  []byte // the file mapped for writing; nil where mapping is unsupported
	file *os.File
	size int64
	err  error
}

// Open opens or creates the spool in opts.Dir, recovering what a previous
// run left: every record that was acknowledged is still there to read.
func Open(opts Options) (*Spool, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 1 << 30
	}
	if opts.SegmentSize <= 0 {
		// Small enough that the mapped segment adds little to the
		// process's resident memory, large enough to roll rarely.
		opts.SegmentSize = 16 << 20
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = 100 * time.Millisecond
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{
		opts:   opts,
		cur:    &group{done: make(chan struct{})},
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		notify: make(chan struct{}, 1),
		next:   make(chan preparedSegment, 1),
	}
	if err := s.recover(); err != nil {
		return nil, err
	}
	// Appends always go to a fresh segment, so a torn tail left by a crash
	// is never overwritten or mistaken for new records.
	var last uint64
	if n := len(s.segs); n > 0 {
		last = s.segs[n-1].id
	}
	go s.prepare(last+1, opts.SegmentSize)
	if err := s.roll(0); err != nil {
		return nil, err
	}
	if opts.Sync == SyncAlways {
		// Without AIO (an old kernel, a sandbox) the committer blocks in
		// fdatasync instead: slower under load, just as safe.
		s.aio, _ = newAsyncSyncer()
		s.wg.Add(1)
		go s.commitLoop()
	}
	if opts.Sync == SyncInterval {
		s.wg.Add(1)
		go s.syncLoop()
	}
	return s, nil
}

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
		path := s.segPath(id)
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
	end, _, err = walk(f, start, fi.Size(), &buf, func(_ []byte, pts int) (bool, bool) {
		points += int64(pts)
		return true, true
	})
	return end, end - start, points, err
}

// walk reads the records of f from off to end, up to readChunk bytes at a
// time (a larger record whole) into *buf, and passes each to fn, which says
// whether it takes the record and whether it wants another. It returns the
// offset after the last record taken, and bad when it stopped at a record
// that is not whole and valid: a write torn by a crash, the zeros after the
// last record, or corruption. Reading record by record, a pread for each
// header and each payload, cost the forwarder 4.6% of the gateway's CPU
// under one-point requests and recovery half a second per 30 MB.
func walk(f *os.File, off, end int64, buf *[]byte, fn func(payload []byte, points int) (take, more bool)) (next int64, bad bool, err error) {
	want := int64(readChunk)
	for off < end {
		chunk := min(end-off, want)
		if int64(cap(*buf)) < chunk {
			*buf = make([]byte, chunk)
		}
		b := (*buf)[:chunk]
		if n, err := f.ReadAt(b, off); err != nil && !(errors.Is(err, io.EOF) && int64(n) == chunk) {
			return off, false, err
		}
		for len(b) >= headerSize {
			n := int64(binary.LittleEndian.Uint32(b))
			if int64(len(b)) < headerSize+n {
				break
			}
			payload := b[headerSize : headerSize+n]
			if n == 0 || recordCRC(b[:8], payload) != binary.LittleEndian.Uint32(b[8:]) {
				return off, true, nil
			}
			take, more := fn(payload, int(binary.LittleEndian.Uint32(b[4:])))
			if !take {
				return off, false, nil
			}
			off += headerSize + n
			b = b[headerSize+n:]
			if !more {
				return off, false, nil
			}
		}
		if len(b) == int(chunk) {
			// No whole record in the chunk: the next is larger than a
			// chunk, so read it whole, unless it does not fit before end.
			if len(b) < headerSize || headerSize+int64(binary.LittleEndian.Uint32(b)) > end-off {
				return off, true, nil
			}
			want = headerSize + int64(binary.LittleEndian.Uint32(b))
		}
	}
	return off, false, nil
}

func recordCRC(hdr, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(hdr, castagnoli), castagnoli, payload)
}

// Append stores data, holding points points, and returns once it is as
// durable as the sync mode promises. It returns ErrFull when the spool has
// no room, without storing anything.
func (s *Spool) Append(ctx context.Context, data []byte, points int) error {
	size := int64(headerSize + len(data))
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
		// write lock, rather than hand it to the committer and back.
		rec := appendRecord(make([]byte, 0, headerSize+len(data)), data, points)
		s.wmu.Lock()
		err := s.commit(rec, int64(points))
		s.wmu.Unlock()
		if err != nil {
			s.unreserve(size)
		}
		return err
	}
	// Once added to the group the append completes even if ctx ends, so
	// the answer is always the truth about what was stored.
	s.gmu.Lock()
	g := s.cur
	first := len(g.buf) == 0
	g.buf = appendRecord(g.buf, data, points)
	g.points += int64(points)
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

func (s *Spool) unreserve(size int64) {
	s.mu.Lock()
	s.bytes -= size
	s.mu.Unlock()
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
			g.err = s.commit(g.buf, g.points)
			s.wmu.Unlock()
			// The appenders read only err, so the buffer takes the next
			// group but one.
			spare = g.buf
			close(g.done)
		}
	}
}

func appendRecord(buf, data []byte, points int) []byte {
	var hdr [headerSize]byte
	binary.LittleEndian.PutUint32(hdr[0:], uint32(len(data)))
	binary.LittleEndian.PutUint32(hdr[4:], uint32(points))
	binary.LittleEndian.PutUint32(hdr[8:], recordCRC(hdr[:8], data))
	buf = append(buf, hdr[:]...)
	return append(buf, data...)
}

// commit writes buf, the records of group, to the current segment.
func (s *Spool) commit(buf []byte, points int64) error {
	if s.fileOff+int64(len(buf)) > s.fileCap {
		if err := s.roll(int64(len(buf))); err != nil {
			return err
		}
	}
	if err := s.writeAt(buf, s.fileOff); err != nil {
		// The tail of this segment is now unknown: seal it where it was
		// valid and continue in a new one.
		s.mu.Lock()
		s.segs[len(s.segs)-1].sealed = true
		s.mu.Unlock()
		s.fileCap = 0
		return fmt.Errorf("%w: %w", ErrWrite, err)
	}
	s.fileOff += int64(len(buf))
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

// writeAt copies buf into the mapped segment, or writes it where there is
// no mapping. A mapped page that cannot be read in (a failing disk) raises a
// fault; it is turned into an error rather than a crash.
func (s *Spool) writeAt(buf []byte, off int64) (err error) {
	if s.mem == nil {
		_, err = s.file.WriteAt(buf, off)
		return err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("fault writing the mapped segment: %v", r)
		}
	}()
	copy(s.mem[off:], buf)
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

// roll seals the current segment and switches to the prepared one, which
// must hold at least need bytes.
func (s *Spool) roll(need int64) error {
	p := <-s.next
	if p.err == nil && p.size < need {
		p.close()
		os.Remove(s.segPath(p.id))
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
	s.segs = append(s.segs, &segment{id: p.id, path: s.segPath(p.id)})
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
// into the mapping faults and shoots down other CPUs' TLB entries; in the
// benchmark pwrite gave 15% more requests/s (25.7k vs 22.3k).
func prepareSegment(dir string, id uint64, size int64, mapped bool) preparedSegment {
	path := filepath.Join(dir, fmt.Sprintf("%s%016x%s", segPrefix, id, segSuffix))
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

func (s *Spool) segPath(id uint64) string {
	return filepath.Join(s.opts.Dir, fmt.Sprintf("%s%016x%s", segPrefix, id, segSuffix))
}

func (s *Spool) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Batch is a run of records read from the spool, to be acknowledged with
// Ack once delivered.
type Batch struct {
	Data   []byte // line protocol, newline-terminated lines
	Points int
	bytes  int64
	end    position
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
		off, bad, err := walk(f, start, end, &s.readBuf, func(payload []byte, pts int) (bool, bool) {
			if b.bytes > 0 && b.Points+pts > maxPoints {
				return false, false
			}
			b.Data = append(b.Data, payload...)
			b.bytes += headerSize + int64(len(payload))
			b.Points += pts
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

// Rewind makes the next Next start again after the last acknowledged
// batch, so batches read but not acknowledged (their delivery was cut
// short) are read again.
func (s *Spool) Rewind() {
	s.mu.Lock()
	s.read = s.ack
	s.mu.Unlock()
}

// Ack records that b was delivered: its records are dropped from the spool
// and fully delivered segments deleted.
func (s *Spool) Ack(b Batch) error {
	if b.bytes == 0 {
		return nil
	}
	s.mu.Lock()
	s.ack = b.end
	s.bytes -= b.bytes
	if s.bytes < s.opts.MaxBytes/10*9 {
		s.full = false
	}
	s.points.Add(-int64(b.Points))
	var remove []string
	for len(s.segs) > 1 && s.segs[0].sealed && (s.segs[0].id < s.ack.seg || s.ack.off >= s.segs[0].end) {
		if s.segs[0].id == s.ack.seg {
			s.ack = position{seg: s.segs[1].id}
		}
		remove = append(remove, s.segs[0].path)
		s.segs = s.segs[1:]
	}
	ack := s.ack
	s.mu.Unlock()
	// The ack file is a hint: if it is lost, delivered records are sent
	// again, which InfluxDB absorbs (same series, time and value).
	if err := writeAck(s.opts.Dir, ack); err != nil {
		return err
	}
	for _, p := range remove {
		os.Remove(p)
	}
	return nil
}

func writeAck(dir string, p position) error {
	tmp := filepath.Join(dir, ackFile+".tmp")
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d %d\n", p.seg, p.off)), 0o600); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, ackFile)); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

func (s *Spool) readAck() position {
	data, err := os.ReadFile(filepath.Join(s.opts.Dir, ackFile))
	if err != nil {
		return position{}
	}
	var p position
	if _, err := fmt.Sscanf(string(data), "%d %d", &p.seg, &p.off); err != nil {
		return position{}
	}
	return p
}

// Write stores lines, newline-terminated line protocol, counting one point
// per line. It is Append for callers that speak line protocol.
func (s *Spool) Write(ctx context.Context, lines []byte) error {
	return s.Append(ctx, lines, bytes.Count(lines, []byte("\n")))
}

// Ping reports whether the spool can take appends: it is open, not full,
// and its last background sync succeeded.
func (s *Spool) Ping(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.full || s.bytes >= s.opts.MaxBytes:
		return fmt.Errorf("%w: %d of %d bytes used", ErrFull, s.bytes, s.opts.MaxBytes)
	case s.syncErr != nil:
		return fmt.Errorf("%w: %w", ErrWrite, s.syncErr)
	}
	return nil
}

// Stats describe the spool's contents.
type Stats struct {
	Bytes    int64 `json:"bytes"`
	Points   int64 `json:"points"`
	MaxBytes int64 `json:"max_bytes"`
	Segments int   `json:"segments"`
}

// Stats returns the points and bytes not yet delivered.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Bytes: s.bytes, Points: s.points.Load(), MaxBytes: s.opts.MaxBytes, Segments: len(s.segs)}
}

// Backlog returns the points stored and not yet acknowledged, as Stats
// does, without taking the spool's lock: it is read on every write.
func (s *Spool) Backlog() int64 { return s.points.Load() }

// Err reports a failed background fdatasync in SyncInterval mode.
func (s *Spool) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncErr
}

// Close stops accepting appends, syncs and closes the files. Appends
// already queued are completed first.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.inflight.Wait() // the committer finishes every queued append
	close(s.done)
	s.wg.Wait()
	var err error
	if s.file != nil {
		err = fdatasync(s.file)
		preparedSegment{file: s.file, mem: s.mem}.close()
	}
	(<-s.next).close()
	if s.readFile != nil {
		s.readFile.Close()
	}
	if s.aio != nil {
		s.aio.close()
	}
	return err
}
