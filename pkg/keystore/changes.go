package keystore

import (
	"context"
	"fmt"
	"time"
)

// The change log lets every replica's Cache learn, within a second, which
// keys another one changed. On PostgreSQL each write that changes what a
// key may do (generate, revoke, rotate, update) appends a row per key to
// key_changes in its own transaction, and NOTIFYs changeChannel with the
// last row's id in that transaction, so the notification is sent when, and
// only if, the change commits. Caches read the table after the last id they
// applied: the table is the truth, the notification only a wake-up.
//
// SQLite's key_changes is written by triggers on the key table instead
// (migrations/0007_key_changes.sql), so that a writer that does not go
// through the Store (a script, the sqlite3 shell) still logs its changes;
// its caches learn that something committed from PRAGMA data_version.

const (
	// changeChannel is the channel NOTIFY and LISTEN use.
	changeChannel = "metricgate_key_changes"
	// changeLock serializes the writers of the change log, so ids are
	// handed out in the order their transactions commit: without it a
	// change with a lower id could commit after a cache had read past it.
	changeLock int64 = 0x6d67_6368616e67 // "mg" "chang"
	// changeRetention is how long a change is kept. A cache that has been
	// cut off for longer forgets every key instead of catching up.
	changeRetention = 7 * 24 * time.Hour
)

// queryLogChanges prunes old changes, appends one for each key in the
// array ?2 at time ?1, and notifies their last id.
const queryLogChanges = `WITH pruned AS (DELETE FROM key_changes WHERE at < ?3),
	logged AS (INSERT INTO key_changes (key_id, at) SELECT k, ?1 FROM unnest(CAST(?2 AS bigint[])) AS k RETURNING id)
	SELECT pg_notify('` + changeChannel + `', CAST(max(id) AS text)) FROM logged`

// commit records in PostgreSQL's change log that the keys ids changed at
// now, and commits tx. On SQLite it only commits: the triggers have logged
// the changes already.
func (s *Store) commit(ctx context.Context, tx boundTx, now time.Time, ids ...int64) error {
	if s.dialect.changes && len(ids) > 0 {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, changeLock); err != nil {
			return fmt.Errorf("keystore: log change: %w", err)
		}
		at := now.UTC().UnixNano()
		if _, err := tx.ExecContext(ctx, queryLogChanges, at, ids, now.Add(-changeRetention).UnixNano()); err != nil {
			return fmt.Errorf("keystore: log change: %w", err)
		}
	}
	return tx.Commit()
}
