package keystore

import (
	"context"
	"fmt"
	"time"
)

// Usage is what a server saw of one key since its last report.
type Usage struct {
	LastUsedAt   time.Time
	LastUsedAddr string
	Requests     int64
	Points       int64
}

// RecordUsage adds a batch of usage reports, keyed by key id, in one
// transaction, so a busy server costs the database one write per flush
// rather than one per request.
func (s *Store) RecordUsage(ctx context.Context, usage map[int64]Usage) error {
	if len(usage) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("keystore: record usage: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, queryRecordUsage)
	if err != nil {
		return fmt.Errorf("keystore: record usage: %w", err)
	}
	defer stmt.Close()
	for id, u := range usage {
		at := u.LastUsedAt.UTC().UnixNano()
		if _, err := stmt.ExecContext(ctx, at, at, u.LastUsedAddr, u.Requests, u.Points, id); err != nil {
			return fmt.Errorf("keystore: record usage of key %d: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("keystore: record usage: %w", err)
	}
	return nil
}
