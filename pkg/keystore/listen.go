package keystore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// How the Cache follows PostgreSQL's change log (changes.go): LISTEN first,
// then read every change after the last one applied, then wait for
// notifications, polling every CacheOptions.Poll in case one is lost. A
// change committed between LISTEN and the read is seen twice, never not at
// all; applying a change twice does no harm.

const (
	// defaultChangePoll is CacheOptions.Poll on PostgreSQL.
	defaultChangePoll = 5 * time.Second
	// changePage is how many changes one read of the log returns.
	changePage = 1000
	// minBackoff and maxBackoff bound the wait between attempts to
	// reconnect: short enough to catch up within a couple of seconds of
	// the server's return.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// Statements the listener runs on its own connection, with pgx.
var (
	queryLastChange   = `SELECT COALESCE(max(id), 0) FROM key_changes`
	queryFirstChange  = `SELECT COALESCE(min(id), 0) FROM key_changes`
	queryChangesAfter = `SELECT id, key_id FROM key_changes WHERE id > $1 ORDER BY id LIMIT ` + strconv.Itoa(changePage)
	queryKeysByIDs    = dollarParams(`SELECT key_hash, ` + authColumns + ` FROM api_keys WHERE id = ANY(?)`)
)

// startListening starts from the log's last change, connects and listens,
// and follows the log in the background.
func (c *Cache) startListening(ctx context.Context) error {
	if c.o.Poll <= 0 {
		c.o.Poll = defaultChangePoll
	}
	var last int64
	if err := c.s.db.QueryRowContext(ctx, queryLastChange).Scan(&last); err != nil {
		return fmt.Errorf("keystore: cache: read the change log: %w", err)
	}
	c.lastChange.Store(last)
	conn, err := c.subscribe(ctx)
	if err != nil {
		return fmt.Errorf("keystore: cache: %w", err)
	}
	go c.listen(conn)
	return nil
}

// listen follows the change log on conn until Close, reconnecting with
// backoff whenever the connection is lost.
func (c *Cache) listen(conn *pgx.Conn) {
	defer close(c.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	backoff := minBackoff
	for {
		if conn != nil {
			err := c.follow(ctx, conn)
			conn.Close(context.Background())
			conn = nil
			if ctx.Err() != nil {
				return
			}
			c.lost(err)
			c.o.Log.Warn("key store: lost the connection that follows key changes; reconnecting", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		var err error
		if conn, err = c.subscribe(ctx); err != nil {
			c.lost(err)
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
		// The pool's idle connections went down with this one's: drop them
		// rather than fail the next look-ups on them.
		c.s.pool.Reset()
		c.o.Log.Info("key store: following key changes again", "last_change", c.lastChange.Load())
	}
}

// subscribe connects, LISTENs and catches up with every change after the
// last one applied.
func (c *Cache) subscribe(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, c.s.listen.ConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, c.s.listen)
	if err != nil {
		return nil, connectError(&c.s.listen.Config, err, c.s.listen.ConnectTimeout)
	}
	if _, err := conn.Exec(cctx, "LISTEN "+changeChannel); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("listen: %w", err)
	}
	if err := c.catchUp(cctx, conn, true); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// follow waits for notifications on conn and catches up on each, and every
// CacheOptions.Poll without one. It returns when conn fails or ctx ends.
func (c *Cache) follow(ctx context.Context, conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, c.o.Poll)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && !pgconn.Timeout(err):
			return err
		case n != nil:
			if id, perr := strconv.ParseInt(n.Payload, 10, 64); perr == nil && id <= c.lastChange.Load() {
				continue // read already, with an earlier change
			}
		}
		qctx, cancel := context.WithTimeout(ctx, c.s.listen.ConnectTimeout)
		err = c.catchUp(qctx, conn, false)
		cancel()
		if err != nil {
			return err
		}
	}
}

// catchUp applies, in order, every change after the last one applied. On a
// new connection it first checks that the log still holds the change after
// that one: if pruning has removed it, the cache cannot know what changed
// and forgets every key.
func (c *Cache) catchUp(ctx context.Context, conn *pgx.Conn, reconnected bool) error {
	last := c.lastChange.Load()
	if reconnected {
		var first int64
		if err := conn.QueryRow(ctx, queryFirstChange).Scan(&first); err != nil {
			return fmt.Errorf("read the change log: %w", err)
		}
		if first > last+1 {
			c.Flush()
		}
	}
	for {
		ids, newest, err := readChanges(ctx, conn, last)
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			if err := c.apply(ctx, conn, ids); err != nil {
				return err
			}
			last = newest
			c.lastChange.Store(last)
		}
		if len(ids) < changePage {
			break
		}
	}
	c.heardNow()
	return nil
}

// readChanges returns the keys of the changes after id after, one page of
// them, and the id of the last change read.
func readChanges(ctx context.Context, conn *pgx.Conn, after int64) (keys []int64, newest int64, err error) {
	rows, err := conn.Query(ctx, queryChangesAfter, after)
	if err != nil {
		return nil, 0, fmt.Errorf("read the change log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, key int64
		if err := rows.Scan(&id, &key); err != nil {
			return nil, 0, fmt.Errorf("read the change log: %w", err)
		}
		keys, newest = append(keys, key), id
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("read the change log: %w", err)
	}
	return keys, newest, nil
}

// apply re-reads the keys ids that the cache holds and replaces them, so a
// revoked key is answered as revoked from memory. Keys it does not hold
// need nothing: they are read when first used. If the keys cannot be read,
// they are forgotten.
func (c *Cache) apply(ctx context.Context, conn *pgx.Conn, ids []int64) error {
	c.mu.Lock()
	c.gen++
	var held []int64
	for _, id := range ids {
		if _, ok := c.ids[id]; ok {
			held = append(held, id)
		}
	}
	c.mu.Unlock()
	if len(held) == 0 {
		return nil
	}
	fresh, err := readKeys(ctx, conn, held)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, id := range held {
		if hash, ok := c.ids[id]; ok {
			delete(c.keys, hash)
			delete(c.ids, id)
		}
		if k, ok := fresh[id]; ok && err == nil {
			c.keys[k.hash] = k.Key
			c.ids[id] = k.hash
		}
	}
	return err
}

// hashedKey is a key with the hash it is cached under.
type hashedKey struct {
	Key
	hash [sha256.Size]byte
}

// readKeys reads the keys with the given ids.
func readKeys(ctx context.Context, conn *pgx.Conn, ids []int64) (map[int64]hashedKey, error) {
	rows, err := conn.Query(ctx, queryKeysByIDs, ids)
	if err != nil {
		return nil, fmt.Errorf("read changed keys: %w", err)
	}
	defer rows.Close()
	keys := map[int64]hashedKey{}
	for rows.Next() {
		var stored []byte
		k, err := scanKey(rows, &stored)
		if err != nil {
			return nil, fmt.Errorf("read changed keys: %w", err)
		}
		if len(stored) != sha256.Size {
			return nil, errors.New("read changed keys: a key hash is not a SHA-256")
		}
		keys[k.ID] = hashedKey{k, [sha256.Size]byte(stored)}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read changed keys: %w", err)
	}
	return keys, nil
}
