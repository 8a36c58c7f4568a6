package keystore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// Cache answers Authenticate from memory for keys it has already read, so a
// busy gateway does not query SQLite on every request. It forgets
// everything whenever any other connection commits to the database file
// (keyctl generating, revoking or updating a key; another process), which
// it notices by polling SQLite's PRAGMA data_version every interval: a
// change reaches the cache within one interval. Expiry and host binding are
// still checked on every call, against the store's clock.
type Cache struct {
	s        *Store
	conn     *sql.Conn
	maxItems int

	mu    sync.RWMutex
	keys  map[[sha256.Size]byte]Key
	gen   uint64 // bumped on every flush, so a look-up racing a change is not cached
	stop  chan struct{}
	done  chan struct{}
	close sync.Once
}

// NewCache returns a cache over s that polls for changes every interval
// (100ms if zero). Close stops the polling; it does not close s.
func NewCache(ctx context.Context, s *Store, interval time.Duration) (*Cache, error) {
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("keystore: cache: %w", err)
	}
	c := &Cache{s: s, conn: conn, maxItems: 100_000, keys: map[[sha256.Size]byte]Key{},
		stop: make(chan struct{}), done: make(chan struct{})}
	version, err := c.dataVersion(ctx)
	if err != nil {
		conn.Close()
		return nil, err
	}
	go c.poll(interval, version)
	return c, nil
}

// Authenticate is Store.Authenticate, answered from memory when it can.
func (c *Cache) Authenticate(ctx context.Context, plain string, addr netip.Addr) (Key, error) {
	hash := HashKey(plain)
	c.mu.RLock()
	k, ok := c.keys[hash]
	gen := c.gen
	c.mu.RUnlock()
	if !ok {
		var err error
		if k, err = c.s.Find(ctx, plain); err != nil {
			// Unknown keys are not cached: a flood of random keys must not
			// fill memory. Such callers are throttled instead.
			return Key{}, err
		}
		c.mu.Lock()
		if c.gen == gen {
			if len(c.keys) >= c.maxItems {
				clear(c.keys)
			}
			c.keys[hash] = k
		}
		c.mu.Unlock()
	}
	return c.s.check(ctx, k, addr)
}

// Ping reports whether the database can be read.
func (c *Cache) Ping(ctx context.Context) error { return c.s.Ping(ctx) }

// Flush forgets every cached key.
func (c *Cache) Flush() {
	c.mu.Lock()
	clear(c.keys)
	c.gen++
	c.mu.Unlock()
}

// Close stops polling and releases the cache's connection.
func (c *Cache) Close() error {
	c.close.Do(func() { close(c.stop) })
	<-c.done
	return c.conn.Close()
}

func (c *Cache) poll(interval time.Duration, version int64) {
	defer close(c.done)
	t := time.NewTicker(interval)
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
	}
}

func (c *Cache) dataVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := c.conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("keystore: cache: %w", err)
	}
	return v, nil
}
