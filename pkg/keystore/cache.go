package keystore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Cache answers Authenticate from memory for keys it has already read, so a
// busy gateway does not ask the database on every request: a cached key
// costs no round trip at all. It learns of changes in the background:
//
//   - On SQLite it polls PRAGMA data_version every CacheOptions.Poll to
//     learn that another connection committed to the file, then reads the
//     change log that triggers on the key table keep for every writer
//     (migrations/0007_key_changes.sql) and forgets the keys it names.
//     Most commits change no key (the gateway writes usage every second),
//     and forgetting every key on each would send the next request of
//     every key to the database. If the log no longer holds the last
//     change the cache applied (it was pruned past it, or the file was
//     replaced by an older copy), the cache forgets every key.
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
	lastChange atomic.Int64 // the id of the last change applied from the store's change log
	connected  atomic.Bool  // the cache is following the store's changes now
	lastErr    atomic.Pointer[string]

	conn    *sql.Conn    // SQLite: the connection that polls data_version
	query   *sql.Stmt    // SQLite: PRAGMA data_version, prepared once on conn
	changes *sql.Stmt    // SQLite: queryChangesFrom, prepared once on conn
	shm     *os.File     // SQLite: the WAL index, whose header every commit changes; nil if it cannot be read
	queries atomic.Int64 // SQLite: the polls that asked data_version
	stop    chan struct{}
	done    chan struct{}
	close   sync.Once
}

// CacheOptions tune a Cache. The zero value is the defaults.
type CacheOptions struct {
	// Poll is how often the cache asks the store for changes it was not
	// told of: SQLite's data_version, and its change log when that moved
	// (default 25 ms), or PostgreSQL's change log (default 5 s), beside
	// the notifications that tell it at once.
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
		return c.closeConn()
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

// queryChangesFrom reads SQLite's change log from the change with the
// given id on. It returns that change too, when the log still holds it, so
// the cache can tell a log that has not moved from one that was pruned past
// it or replaced by an older copy, which would both return nothing after
// it. Pruning keeps the log to 10,000 changes, so this is bounded.
const queryChangesFrom = `SELECT id, key_id FROM key_changes WHERE id >= ? ORDER BY id`

// startPolling starts following a SQLite store by its data_version, from
// the newest change in its log. The statements are prepared once on the
// connection the cache holds, rather than compiled again on every poll, 40
// times a second by default.
func (c *Cache) startPolling(ctx context.Context) (err error) {
	if c.o.Poll <= 0 {
		c.o.Poll = 25 * time.Millisecond
	}
	if c.conn, err = c.s.db.Conn(ctx); err != nil {
		return fmt.Errorf("keystore: cache: %w", err)
	}
	defer func() {
		if err != nil {
			c.closeConn()
		}
	}()
	if c.query, err = c.conn.PrepareContext(ctx, `PRAGMA data_version`); err != nil {
		return fmt.Errorf("keystore: cache: %w", err)
	}
	if c.changes, err = c.conn.PrepareContext(ctx, queryChangesFrom); err != nil {
		return fmt.Errorf("keystore: cache: %w", err)
	}
	if shm, err := os.Open(c.s.addr + "-shm"); err == nil {
		c.shm = shm
	}
	var header [walIndexHeader]byte
	haveHeader := c.walIndex(&header) // before the version it stands for
	version, err := c.dataVersion(ctx)
	if err != nil {
		return err
	}
	var last int64
	if err = c.conn.QueryRowContext(ctx, queryLastChange).Scan(&last); err != nil {
		return fmt.Errorf("keystore: cache: read the change log: %w", err)
	}
	c.lastChange.Store(last)
	c.connected.Store(true)
	go c.poll(version, header, haveHeader)
	return nil
}

// walIndexHeader is the size of the header at the start of a SQLite
// database's -shm file in WAL mode, the wal-index header: every commit by
// any connection changes it (its frame count and checksums; a reset of
// the WAL, its salts). See SQLite's file format, "The WAL-Index Format".
const walIndexHeader = 48

// pollBackstop is how often the cache asks data_version even when the
// wal-index header has not changed.
const pollBackstop = time.Second

// walIndex reads the wal-index header into h, and reports whether it could.
func (c *Cache) walIndex(h *[walIndexHeader]byte) bool {
	if c.shm == nil {
		return false
	}
	n, err := c.shm.ReadAt(h[:], 0)
	return err == nil && n == len(h)
}

// poll follows a SQLite store until Close: every CacheOptions.Poll it asks
// whether another connection has committed since the version it last
// caught up with, and if so reads the change log. answered is the
// wal-index header read before version was asked, when haveHeader.
//
// Asking data_version takes a read transaction, its locks and a query,
// which 40 times a second was about a third of an idle gateway's CPU. A
// poll first reads the wal-index header (one pread), and asks only when it
// changed since the last answer, or pollBackstop after it, should the
// header ever miss a change.
func (c *Cache) poll(version int64, answered [walIndexHeader]byte, haveHeader bool) {
	defer close(c.done)
	t := time.NewTicker(c.o.Poll)
	defer t.Stop()
	current := true // the cache has applied every change up to version
	var header [walIndexHeader]byte
	asked := time.Now()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		read := c.walIndex(&header)
		if read && haveHeader && current && header == answered && time.Since(asked) < pollBackstop {
			c.heardNow()
			continue
		}
		c.queries.Add(1)
		asked = time.Now()
		ctx := context.Background()
		v, err := c.dataVersion(ctx)
		if err == nil && (v != version || !current) {
			err = c.readLog(ctx)
		}
		if err != nil {
			// Better a few look-ups than a stale answer. The log is read
			// again once the store answers, whatever its version then.
			c.Flush()
			current = false
			msg := err.Error()
			c.lastErr.Store(&msg)
			continue
		}
		version, current = v, true
		answered, haveHeader = header, read
		c.heardNow()
	}
}

func (c *Cache) dataVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := c.query.QueryRowContext(ctx).Scan(&v); err != nil {
		return 0, fmt.Errorf("keystore: cache: %w", err)
	}
	return v, nil
}

// readLog reads the changes logged after the last one applied and forgets
// the cached keys they name. If the log no longer holds the last change
// applied (or, when none has been, the first change), it was pruned past
// the cache or the file was replaced by an older copy: the cache cannot
// know what changed, forgets every key, and goes on from the log's newest
// change, or from its start when it is empty.
func (c *Cache) readLog(ctx context.Context) error {
	last := c.lastChange.Load()
	rows, err := c.changes.QueryContext(ctx, last)
	if err != nil {
		return fmt.Errorf("keystore: cache: read the change log: %w", err)
	}
	defer rows.Close()
	var (
		keys          []int64
		first, newest int64
		found         bool
	)
	for rows.Next() {
		var id, key int64
		if err := rows.Scan(&id, &key); err != nil {
			return fmt.Errorf("keystore: cache: read the change log: %w", err)
		}
		if !found {
			first, found = id, true
		}
		if id > last {
			keys = append(keys, key)
		}
		newest = id
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("keystore: cache: read the change log: %w", err)
	}
	switch {
	case !found && last == 0:
		return nil // nothing logged yet
	case !found || first != max(last, 1):
		c.Flush()
	default:
		c.forget(keys)
	}
	c.lastChange.Store(newest)
	return nil
}

// forget forgets the cached keys with the given ids, which have changed. It
// also stops a look-up that raced their change, and may have read a key
// as it was before, from caching what it read.
func (c *Cache) forget(ids []int64) {
	if len(ids) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, id := range ids {
		if hash, ok := c.ids[id]; ok {
			delete(c.keys, hash)
			delete(c.ids, id)
		}
	}
}

// closeConn releases the SQLite connection the cache polls on, and the
// statements prepared on it.
func (c *Cache) closeConn() error {
	if c.shm != nil {
		c.shm.Close()
	}
	var errs []error
	for _, st := range []*sql.Stmt{c.query, c.changes} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(append(errs, c.conn.Close())...)
}
