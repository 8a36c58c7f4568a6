package keystore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Cache answers Authenticate from memory for keys it has already read, so a
// busy gateway does not ask the database on every request: a cached key
// costs no round trip at all. It learns of changes in the background:
//
//   - On SQLite it forgets everything whenever any other connection commits
//     to the file (keyctl generating, revoking or updating a key; another
//     process), which it notices by polling PRAGMA data_version every
//     CacheOptions.Poll.
//   - On PostgreSQL it LISTENs on a connection of its own for the change
//     log's notifications, reads the changes after the last one it applied,
//     and re-reads the keys they name that it holds; a poll every
//     CacheOptions.Poll catches a notification that was lost, and after a
//     lost connection it reconnects with backoff and catches up before
//     anything else.
//
// Expiry and host binding are still checked on every call, against the
// store's clock. A cache that has not heard from its store for longer than
// CacheOptions.MaxStale answers ErrUnavailable rather than vouch for a key.
type Cache struct {
	s        *Store
	o        CacheOptions
	maxItems int

	mu   sync.RWMutex
	keys map[[sha256.Size]byte]Key
	ids  map[int64][sha256.Size]byte // the hash each cached key is under
	gen  uint64                      // bumped on every change, so a look-up racing one is not cached

	heard      atomic.Int64 // o.Now() in unix nanoseconds when the store last answered the cache
	lastChange atomic.Int64 // PostgreSQL: the id of the last change applied
	connected  atomic.Bool  // the cache is following the store's changes now
	lastErr    atomic.Pointer[string]

	conn  *sql.Conn // SQLite: the connection that polls data_version
	query *sql.Stmt // SQLite: PRAGMA data_version, prepared once on conn
	stop  chan struct{}
	done  chan struct{}
	close sync.Once
}

// CacheOptions tune a Cache. The zero value is the defaults.
type CacheOptions struct {
	// Poll is how often the cache asks the store for changes it was not
	// told of: SQLite's data_version (default 25 ms), or PostgreSQL's
	// change log (default 5 s), beside the notifications that tell it at
	// once.
	Poll time.Duration
	// MaxStale is how long after it last heard from the store the cache
	// keeps answering from what it holds; after that it answers
	// ErrUnavailable for every key. 0 means 5 minutes.
	MaxStale time.Duration
	// Now is the clock that measures staleness; nil means time.Now.
	Now func() time.Time
	// Log receives a warning when the cache loses its store and a note
	// when it is back; nil discards them.
	Log *slog.Logger
}

// NewCache returns a cache over s that follows the store's changes until
// Close, which does not close s. On PostgreSQL it returns once it is
// listening, so every change committed after it returns reaches it.
func NewCache(ctx context.Context, s *Store, o CacheOptions) (*Cache, error) {
	if o.MaxStale <= 0 {
		o.MaxStale = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{s: s, o: o, maxItems: 100_000, keys: map[[sha256.Size]byte]Key{}, ids: map[int64][sha256.Size]byte{},
		stop: make(chan struct{}), done: make(chan struct{})}
	c.heard.Store(o.Now().UnixNano())
	start := c.startPolling
	if s.dialect.changes {
		start = c.startListening
	}
	if err := start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Authenticate is Store.Authenticate, answered from memory when it can; like
// it, it returns keys without their usage. It
// returns ErrUnavailable, wrapped, when it cannot vouch for the key: the
// cache is too stale, or the key is not cached and the store cannot be
// read.
func (c *Cache) Authenticate(ctx context.Context, plain string, addr netip.Addr) (Key, error) {
	if behind := c.Behind(); behind > c.o.MaxStale {
		return Key{}, fmt.Errorf("%w: not heard from the %s key store for %s", ErrUnavailable, c.s.dialect.name, behind.Round(time.Second))
	}
	hash := HashKey(plain)
	c.mu.RLock()
	k, ok := c.keys[hash]
	gen := c.gen
	c.mu.RUnlock()
	if !ok {
		if c.s.dialect.changes && !c.connected.Load() {
			return Key{}, fmt.Errorf("%w: cut off from the %s key store", ErrUnavailable, c.s.dialect.name)
		}
		var err error
		if k, err = c.s.find(ctx, plain, queryAuthByHash); err != nil {
			// Unknown keys are not cached: a flood of random keys must not
			// fill memory. Such callers are throttled instead.
			if errors.Is(err, ErrUnknownKey) {
				return Key{}, err
			}
			return Key{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		c.mu.Lock()
		if c.gen == gen {
			if len(c.keys) >= c.maxItems {
				clear(c.keys)
				clear(c.ids)
			}
			c.keys[hash] = k
			c.ids[k.ID] = hash
		}
		c.mu.Unlock()
	}
	return c.s.check(ctx, k, addr)
}

// Ping reports whether the cache can answer: on SQLite whether the
// database can be read; on PostgreSQL whether the cache has heard from it
// within CacheOptions.MaxStale, so a replica stays ready through a short
// outage it can ride out.
func (c *Cache) Ping(ctx context.Context) error {
	if !c.s.dialect.changes {
		return c.s.Ping(ctx)
	}
	if behind := c.Behind(); behind > c.o.MaxStale {
		return fmt.Errorf("keystore: not heard from PostgreSQL for %s, longer than the %s allowed", behind.Round(time.Second), c.o.MaxStale)
	}
	return nil
}

// Behind returns how long ago the cache last heard from its store: applied
// a change, or polled and found it current.
func (c *Cache) Behind() time.Duration {
	return max(0, time.Duration(c.o.Now().UnixNano()-c.heard.Load()))
}

// CacheStatus is what a Cache knows of its store, for /readyz.
type CacheStatus struct {
	Backend       string  `json:"backend"`
	BehindSeconds float64 `json:"behind_seconds"` // since the last applied change or successful poll
	Connected     bool    `json:"connected"`      // following the store's changes now
	LastChange    int64   `json:"last_change,omitempty"`
	CachedKeys    int     `json:"cached_keys"`
	Error         string  `json:"error,omitempty"` // why it last lost the store
}

// Status reports the cache's state.
func (c *Cache) Status() CacheStatus {
	c.mu.RLock()
	n := len(c.keys)
	c.mu.RUnlock()
	st := CacheStatus{Backend: c.s.dialect.name, BehindSeconds: c.Behind().Seconds(), Connected: c.connected.Load(),
		LastChange: c.lastChange.Load(), CachedKeys: n}
	if e := c.lastErr.Load(); e != nil {
		st.Error = *e
	}
	return st
}

// Flush forgets every cached key.
func (c *Cache) Flush() {
	c.mu.Lock()
	clear(c.keys)
	clear(c.ids)
	c.gen++
	c.mu.Unlock()
}

// Close stops following the store and releases the cache's connection.
func (c *Cache) Close() error {
	c.close.Do(func() { close(c.stop) })
	<-c.done
	if c.conn != nil {
		return errors.Join(c.query.Close(), c.conn.Close())
	}
	return nil
}

// heardNow notes that the store answered.
func (c *Cache) heardNow() {
	c.heard.Store(c.o.Now().UnixNano())
	c.connected.Store(true)
	c.lastErr.Store(nil)
}

// lost notes that the cache is cut off from the store, and why.
func (c *Cache) lost(err error) {
	msg := err.Error()
	c.lastErr.Store(&msg)
	c.connected.Store(false)
}

// startPolling starts following a SQLite store by its data_version. The
// pragma is prepared once on the connection the cache holds, rather than
// compiled again on every poll, 40 times a second by default.
func (c *Cache) startPolling(ctx context.Context) error {
	if c.o.Poll <= 0 {
		c.o.Poll = 25 * time.Millisecond
	}
	conn, err := c.s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("keystore: cache: %w", err)
	}
	query, err := conn.PrepareContext(ctx, `PRAGMA data_version`)
	if err != nil {
		conn.Close()
		return fmt.Errorf("keystore: cache: %w", err)
	}
	c.conn, c.query = conn, query
	version, err := c.dataVersion(ctx)
	if err != nil {
		query.Close()
		conn.Close()
		return err
	}
	c.connected.Store(true)
	go c.poll(version)
	return nil
}

func (c *Cache) poll(version int64) {
	defer close(c.done)
	t := time.NewTicker(c.o.Poll)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		v, err := c.dataVersion(context.Background())
		if err != nil || v != version {
			// On an error too: better a few look-ups than a stale answer.
			c.Flush()
			version = v
		}
		if err != nil {
			msg := err.Error()
			c.lastErr.Store(&msg)
		} else {
			c.heardNow()
		}
	}
}

func (c *Cache) dataVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := c.query.QueryRowContext(ctx).Scan(&v); err != nil {
		return 0, fmt.Errorf("keystore: cache: %w", err)
	}
	return v, nil
}
