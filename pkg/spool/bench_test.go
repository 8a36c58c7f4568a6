package spool_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/metricgate/metricgate/pkg/spool"
)

// benchLine is a typical one-point request as the gateway spools it.
var benchLine = []byte("custom_metrics,host=web-1.example.com os_updates=5i 1699786600000000000\n")

// drainAll reads and acknowledges until ctx ends, as the forwarder does, so
// a benchmark's appends never fill the spool.
func drainAll(ctx context.Context, s *spool.Spool) {
	for {
		b, err := s.Next(ctx, 5000, time.Millisecond)
		if ctx.Err() != nil || errors.Is(err, spool.ErrClosed) {
			return
		}
		s.Ack(b)
	}
}

// BenchmarkAppend measures one-point appends from many goroutines while a
// reader drains, in each sync mode: the gateway's hot path. In always mode
// it reports the groups committed per second and the appends that shared
// each fdatasync.
func BenchmarkAppend(b *testing.B) {
	for _, mode := range []struct {
		name string
		sync spool.SyncMode
	}{{"always", spool.SyncAlways}, {"interval", spool.SyncInterval}} {
		b.Run(mode.name, func(b *testing.B) {
			s, err := spool.Open(spool.Options{Dir: b.TempDir(), Sync: mode.sync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { drainAll(ctx, s); close(done) }()
			defer func() { cancel(); <-done }()
			b.SetBytes(int64(len(benchLine)))
			b.SetParallelism(8)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.Append(benchLine, 1); err != nil {
						b.Error(err)
						return
					}
				}
			})
			if st := s.Stats(); st.CommitGroups > 0 {
				b.ReportMetric(float64(st.CommitGroups)/time.Since(start).Seconds(), "groups/s")
				b.ReportMetric(float64(st.CommitAppends)/float64(st.CommitGroups), "appends/group")
			}
		})
	}
}

// BenchmarkNext measures the forwarder's reads: each op reads 100,000
// spooled one-point records in batches of 5000, then rewinds.
func BenchmarkNext(b *testing.B) {
	s, err := spool.Open(spool.Options{Dir: b.TempDir(), Sync: spool.SyncInterval})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const records = 100_000
	for range records {
		if err := s.Append(benchLine, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(records * int64(len(benchLine)))
	b.ResetTimer()
	for range b.N {
		for read := 0; read < records; {
			batch, err := s.Next(ctx, 5000, time.Millisecond)
			if err != nil {
				b.Fatal(err)
			}
			read += batch.Points
		}
		s.Rewind()
	}
}

// BenchmarkOpen measures opening a spool that holds 32 MiB of one-point
// records: the recovery scan at start.
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	s, err := spool.Open(spool.Options{Dir: dir, Sync: spool.SyncInterval})
	if err != nil {
		b.Fatal(err)
	}
	var stored int64
	for stored < 32<<20 {
		if err := s.Append(benchLine, 1); err != nil {
			b.Fatal(err)
		}
		stored += int64(len(benchLine))
	}
	want := s.Stats().Points
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(stored)
	b.ResetTimer()
	for range b.N {
		s, err := spool.Open(spool.Options{Dir: dir, Sync: spool.SyncInterval, SegmentSize: 4096})
		if err != nil {
			b.Fatal(err)
		}
		if got := s.Stats().Points; got != want {
			b.Fatalf("recovered %d points, want %d", got, want)
		}
		s.Close()
	}
}
