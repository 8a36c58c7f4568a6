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
	"errors"
	"fmt"
	"os"
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

// ErrDestination means an append named a destination longer than a record
// can hold (MaxDestination bytes); nothing was stored. Unlike the errors
// above it will not pass with time.
var ErrDestination = errors.New("spool: destination too long")

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

// Spool is a durable FIFO of line-protocol records. Appends may come from
// many goroutines; Next and Ack from one reader.
type Spool struct {
	opts Options
	lock *dirLock // held from Open to Close

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
	// recycled says the current segment's file held an earlier segment,
	// whose records lie past what was written: each write ends with an
	// empty header (endMark) for recovery to stop at.
	recycled bool
	next     chan preparedSegment // the next segment, made ahead of need

	mu       sync.Mutex
	closed   bool
	full     bool           // an append was refused for room, and little has been freed since
	inflight sync.WaitGroup // appends between the closed check and their answer
	segs     []*segment     // oldest first; the last is the one being written
	free     []string       // files of delivered segments, for prepare to reuse
	spare    [][]byte       // Data of acknowledged batches, for readInto to fill again
	ack      position
	read     position
	bytes    int64        // reserved or written and not yet acknowledged by the reader
	points   atomic.Int64 // written under mu; read without it by Backlog
	notify   chan struct{}
	acked    chan struct{} // closed and replaced by each Ack (Acked)
	syncErr  error
	// The groups the committer wrote and synced, and the appends in them.
	groups, grouped atomic.Int64
	// The segments prepare made anew and of delivered segments' files.
	made, reused atomic.Int64
	readFile     *os.File
	readSeg      uint64
	readBuf      []byte
	ackFile      *os.File // open from the first Ack, written by the reader
}

// position is a place in the log.
type position struct {
	seg uint64
	off int64
}

// Open opens or creates the spool in opts.Dir, recovering what a previous
// run left: every record that was acknowledged is still there to read. The
// directory stays locked until Close: while another Spool, in this process
// or another, has it open, Open returns an error wrapping ErrLocked that
// names the directory and the holder's process id.
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
	lock, err := lockDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	s := &Spool{
		opts:   opts,
		lock:   lock,
		cur:    &group{done: make(chan struct{})},
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		notify: make(chan struct{}, 1),
		acked:  make(chan struct{}),
		next:   make(chan preparedSegment, 1),
	}
	if err := s.recover(); err != nil {
		lock.release()
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
		// roll has begun preparing another segment: let it finish before
		// the directory is someone else's.
		(<-s.next).close()
		lock.release()
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

// Write stores lines, newline-terminated line protocol, counting one point
// per line. It is Append for callers that speak line protocol, and takes a
// context only to serve where an InfluxDB writer could: an append, once
// begun, completes, so that its answer is the truth about what was stored.
func (s *Spool) Write(_ context.Context, lines []byte) error {
	return s.Append(lines, bytes.Count(lines, []byte("\n")))
}

// WriteFrom is Write for lines written by key: AppendFrom for callers that
// speak line protocol. It returns Append's errors.
func (s *Spool) WriteFrom(_ context.Context, key int64, lines []byte) error {
	return s.AppendFrom(key, lines, bytes.Count(lines, []byte("\n")))
}

// WriteTo is WriteFrom for lines bound for dest, the bucket key's points go
// to ("" for the gateway's own): AppendTo for callers that speak line
// protocol. It returns AppendTo's errors.
func (s *Spool) WriteTo(_ context.Context, key int64, dest string, lines []byte) error {
	return s.AppendTo(key, dest, lines, bytes.Count(lines, []byte("\n")))
}

// Ping reports whether the spool can take appends: it is open, not full,
// and its last background sync succeeded. The context is unused: the
// answer needs no I/O.
func (s *Spool) Ping(context.Context) error {
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

// Stats describe the spool's contents, and its group commit.
type Stats struct {
	Bytes    int64 `json:"bytes"`
	Points   int64 `json:"points"`
	MaxBytes int64 `json:"max_bytes"`
	Segments int   `json:"segments"`
	// CommitGroups is the groups written and synced together since Open
	// (SyncAlways), and CommitAppends the appends in them: their ratio is
	// how many requests share an fdatasync.
	CommitGroups  int64 `json:"commit_groups"`
	CommitAppends int64 `json:"commit_appends"`
	// SegmentsMade is the segment files made since Open, zero-filled, and
	// SegmentsReused the segments made of delivered segments' files.
	SegmentsMade   int64 `json:"segments_made"`
	SegmentsReused int64 `json:"segments_reused"`
}

// Stats returns the points and bytes not yet delivered.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Bytes: s.bytes, Points: s.points.Load(), MaxBytes: s.opts.MaxBytes, Segments: len(s.segs),
		CommitGroups: s.groups.Load(), CommitAppends: s.grouped.Load(), SegmentsMade: s.made.Load(), SegmentsReused: s.reused.Load()}
}

// Backlog returns the points stored and not yet acknowledged, as Stats
// does, without taking the spool's lock: it is read on every write.
func (s *Spool) Backlog() int64 { return s.points.Load() }

// Acked returns a channel that the next Ack closes: what waits for the
// backlog to fall waits on it, rather than reading Backlog again and again.
func (s *Spool) Acked() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

// Close stops accepting appends, syncs and closes the files, and unlocks
// the directory. Appends already queued are completed first.
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
	s.mu.Lock()
	for _, p := range s.free {
		os.Remove(p) // delivered: a clean stop leaves none, as before
	}
	s.free = nil
	s.mu.Unlock()
	if s.readFile != nil {
		s.readFile.Close()
	}
	if s.ackFile != nil {
		s.ackFile.Close()
	}
	if s.aio != nil {
		s.aio.close()
	}
	s.lock.release()
	return err
}
