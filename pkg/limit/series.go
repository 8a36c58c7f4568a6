package limit

import (
	"encoding/binary"
	"slices"
	"sync"
	"time"

	"github.com/bits-and-blooms/bloom/v3"
)

// SeriesFalsePositives is the share of new series a key's filter takes
// for ones it has seen, and so lets through beyond the limit: at 1%, the
// filter costs 9.6 bits per series of the limit (12 KB for 10,000).
const SeriesFalsePositives = 0.01

// Series limits the distinct series each key writes in each window of
// time (an hour in the gateway), as vmagent's series limiter does: a key
// that has written its limit of series this window may go on writing
// those, and its requests with a new series are refused until the next
// window. It remembers a key's series in a Bloom filter sized for the
// key's limit, so its memory is fixed per key however many series are
// tried; a filter's false positives let about 1% of new series past a
// full key, never refuse a series it has seen. Keys idle for a whole
// window are forgotten. It is safe for concurrent use.
type Series struct {
	def    int
	window time.Duration

	mu    sync.Mutex
	keys  map[int64]*keySeries
	epoch time.Time // the window the map was last swept in
}

// keySeries is one key's series in the current window.
type keySeries struct {
	mu     sync.Mutex
	start  time.Time
	limit  int
	n      int // distinct series admitted this window
	filter *bloom.BloomFilter
}

// SeriesDecision is the outcome of Series.Admit.
type SeriesDecision struct {
	Allowed bool
	Limited bool // false when no limit applies to the key
	Limit   int  // the series the key may write per window
	Written int  // distinct series the key has written this window, after this request if allowed
	New     int  // series of the request the key had not written this window
	// Reset is the time until the window ends and the count starts again.
	Reset time.Duration
}

// NewSeries returns a limiter of def series per key per window (0 for no
// limit by default).
func NewSeries(def int, window time.Duration) *Series {
	return &Series{def: def, window: window, keys: map[int64]*keySeries{}}
}

// Admit admits the series of one request made at now, by their hashes
// (repeats allowed), for key id whose own limit is limit (0 for the
// default). It admits all or none: when the key's new series would take
// it past its limit this window, nothing is recorded and the decision is
// refused. Windows are aligned on the window's multiples of now.
func (s *Series) Admit(now time.Time, id int64, limit int, hashes []uint64) SeriesDecision {
	if limit == 0 {
		limit = s.def
	}
	if limit <= 0 {
		return SeriesDecision{Allowed: true}
	}
	start := now.Truncate(s.window)
	ks := s.key(start, id)
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if !ks.start.Equal(start) || ks.limit != limit {
		ks.reset(start, limit)
	}
	fresh := ks.fresh(hashes)
	d := SeriesDecision{Limited: true, Limit: limit, Written: ks.n, New: len(fresh), Reset: ks.start.Add(s.window).Sub(now)}
	if ks.n+len(fresh) > limit {
		return d
	}
	var b [8]byte
	for _, h := range fresh {
		binary.LittleEndian.PutUint64(b[:], h)
		ks.filter.Add(b[:])
	}
	ks.n += len(fresh)
	d.Allowed, d.Written = true, ks.n
	return d
}

// key returns key id's entry, made if it has none. At the first call of
// the window that starts at epoch it forgets the keys idle since the last.
func (s *Series) key(epoch time.Time, id int64) *keySeries {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !epoch.Equal(s.epoch) {
		for k, ks := range s.keys {
			ks.mu.Lock()
			idle := ks.start.Before(s.epoch)
			ks.mu.Unlock()
			if idle {
				delete(s.keys, k)
			}
		}
		s.epoch = epoch
	}
	ks := s.keys[id]
	if ks == nil {
		ks = &keySeries{}
		s.keys[id] = ks
	}
	return ks
}

// reset starts a window at start with an empty filter for limit series,
// reusing the filter when the limit is the same.
func (ks *keySeries) reset(start time.Time, limit int) {
	if ks.filter != nil && ks.limit == limit {
		ks.filter.ClearAll()
	} else {
		ks.filter = bloom.NewWithEstimates(uint(limit), SeriesFalsePositives)
	}
	ks.start, ks.limit, ks.n = start, limit, 0
}

// fresh returns the hashes the filter has not seen, each once. A batch
// repeats its series over and over, so a hash met before in the request is
// found in a table of them (by its low bits; a later hash may take the
// place of an earlier) rather than tested against the filter again: the
// filter's test was most of the limiter's cost for a 5000-point batch.
func (ks *keySeries) fresh(hashes []uint64) []uint64 {
	var out []uint64
	var outSet map[uint64]struct{} // out's hashes, once there are many
	var known []uint64             // 0 is empty
	if len(hashes) > 1 {
		known = make([]uint64, 1024)
	}
	var b [8]byte
	for _, h := range hashes {
		if known != nil {
			slot := &known[h%uint64(len(known))]
			if *slot == h && h != 0 {
				continue
			}
			*slot = h
		}
		binary.LittleEndian.PutUint64(b[:], h)
		if ks.filter.Test(b[:]) {
			continue
		}
		if outSet == nil && len(out) > 16 {
			outSet = make(map[uint64]struct{}, 2*len(out))
			for _, o := range out {
				outSet[o] = struct{}{}
			}
		}
		if outSet != nil {
			if _, ok := outSet[h]; ok {
				continue
			}
			outSet[h] = struct{}{}
		} else if slices.Contains(out, h) {
			continue
		}
		out = append(out, h)
	}
	return out
}

// Keys returns the number of keys the limiter holds a filter for.
func (s *Series) Keys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}
