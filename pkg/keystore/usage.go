package keystore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Usage is what a server saw of one key since its last report.
type Usage struct {
	LastUsedAt   time.Time
	LastUsedAddr string
	Requests     int64
	Points       int64
}

// usageRow is one key's Usage as RecordUsage hands it to the database, in
// a JSON array that one statement reads.
type usageRow struct {
	ID       int64  `json:"id"`
	At       *int64 `json:"at"` // unix nanoseconds; null when not known
	Addr     string `json:"addr"`
	Requests int64  `json:"requests"`
	Points   int64  `json:"points"`
}

// RecordUsage adds a batch of usage reports, keyed by key id, to this
// node's rows (Store.Node) in one statement, so a busy server costs the
// database one write per flush rather than one per request, and replicas
// never write the same rows. Reports of ids no key has are dropped.
func (s *Store) RecordUsage(ctx context.Context, usage map[int64]Usage) error {
	if len(usage) == 0 {
		return nil
	}
	rows := make([]usageRow, 0, len(usage))
	for id, u := range usage {
		r := usageRow{ID: id, Addr: u.LastUsedAddr, Requests: u.Requests, Points: u.Points}
		if !u.LastUsedAt.IsZero() {
			r.At = ptr(u.LastUsedAt.UTC().UnixNano())
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b usageRow) int { return cmp.Compare(a.ID, b.ID) })
	batch, err := json.Marshal(rows)
	if err != nil {
		return fmt.Errorf("keystore: record usage: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, s.dialect.upsertUsage, s.Node, string(batch)); err != nil {
		return fmt.Errorf("keystore: record usage of %d keys: %w", len(rows), err)
	}
	return nil
}
