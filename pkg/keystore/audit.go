package keystore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Actions recorded in the audit log.
const (
	ActionGenerate = "generate"
	ActionRevoke   = "revoke"
	ActionUpdate   = "update"
	ActionRotate   = "rotate"
	// ActionApply sums up one apply of definitions (Store.Apply); it
	// concerns no single key.
	ActionApply = "apply"
	// ActionImport records a key brought in by its hash (Store.Import).
	ActionImport = "import"
	// ActionQuarantine is the gateway stopping a key whose points InfluxDB
	// kept refusing; ActionRelease an admin letting it write again.
	ActionQuarantine = "quarantine"
	ActionRelease    = "release"
)

// unknownActor is recorded when a Store's Actor is not set.
const unknownActor = "unknown"

type actorKey struct{}

// WithActor returns a copy of ctx that names actor as the one making the
// changes done with it, such as "admin-api:key 7 from 127.0.0.1". The audit
// log records it in preference to Store.Actor, which a server sharing one
// Store among its requests cannot set per request. An empty actor leaves
// Store.Actor in force.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// AuditEntry is one change to a key, as recorded in the audit log. It holds
// no key value or hash.
type AuditEntry struct {
	ID     int64
	At     time.Time
	Actor  string // who made the change: from WithActor, else Store.Actor
	Node   string // the replica the change was made through (Store.Node); empty for keyctl
	KeyID  int64  // 0 when the change concerned no single key
	Action string // one of the Action constants
	Detail string // what changed, as space-separated name=value pairs
}

// Audit returns the audit log, newest first: every entry when keyID is 0,
// else the entries of that key. A limit above 0 returns at most that many.
// An id that no key has gives an empty list, not an error.
func (s *Store) Audit(ctx context.Context, keyID int64, limit int) ([]AuditEntry, error) {
	q := `SELECT id, at, actor, node, key_id, action, detail FROM audit_log`
	var args []any
	if keyID != 0 {
		q += ` WHERE key_id = ?`
		args = append(args, keyID)
	}
	// Ids, not times, order the log: they follow the order of the commits
	// even when a clock steps back.
	q += ` ORDER BY id DESC`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("keystore: read audit log: %w", err)
	}
	defer rows.Close()
	entries := []AuditEntry{}
	for rows.Next() {
		var (
			e   AuditEntry
			at  int64
			key sql.NullInt64
		)
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Node, &key, &e.Action, &e.Detail); err != nil {
			return nil, fmt.Errorf("keystore: read audit log: %w", err)
		}
		e.At = time.Unix(0, at).UTC()
		e.KeyID = key.Int64
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("keystore: read audit log: %w", err)
	}
	return entries, nil
}

// audit records a change in tx, the transaction that makes it, so the log
// and the keys cannot disagree.
func (s *Store) audit(ctx context.Context, tx boundTx, at time.Time, keyID int64, action, detail string) error {
	actor, _ := ctx.Value(actorKey{}).(string)
	if actor == "" {
		actor = s.Actor
	}
	if actor == "" {
		actor = unknownActor
	}
	_, err := tx.ExecContext(ctx, queryInsertAudit,
		at.UTC().UnixNano(), actor, s.Node, nullInt(keyID), action, detail)
	if err != nil {
		return fmt.Errorf("keystore: record %s of key %d: %w", action, keyID, err)
	}
	return nil
}

// details builds an audit detail of name=value pairs.
type details []string

// add appends name=value, quoting a value that is empty or holds spaces,
// quotes or control characters, so the pairs can be told apart.
func (d *details) add(name, value string) {
	if value == "" || strings.ContainsFunc(value, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == '"' || r == '\\'
	}) {
		value = strconv.Quote(value)
	}
	*d = append(*d, name+"="+value)
}

func (d details) String() string { return strings.Join(d, " ") }

func expiryDetail(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func measurementsDetail(ms []string) string {
	if len(ms) == 0 {
		return "any"
	}
	return joinList(ms)
}

func rateDetail(r float64) string {
	if r == 0 {
		return "default"
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

func burstDetail(b int) string {
	if b == 0 {
		return "default"
	}
	return strconv.Itoa(b)
}

// generateDetail describes a new key's binding and policy, naming only the
// parts that differ from the defaults.
func generateDetail(k Key) string {
	var d details
	if k.Name != "" {
		d.add("name", k.Name)
	}
	d.add("hostname", k.Hostname)
	d.add("scopes", joinList(k.Scopes))
	if len(k.Measurements) > 0 {
		d.add("measurements", measurementsDetail(k.Measurements))
	}
	if k.Rate != 0 {
		d.add("rate", rateDetail(k.Rate))
	}
	if k.Burst != 0 {
		d.add("burst", burstDetail(k.Burst))
	}
	if !k.ExpiresAt.IsZero() {
		d.add("expires_at", expiryDetail(k.ExpiresAt))
	}
	if k.Description != "" {
		d.add("description", k.Description)
	}
	if k.Bucket != "" {
		d.add("bucket", k.Bucket)
	}
	if k.MaxSeries != 0 {
		d.add("max_series", maxSeriesDetail(k.MaxSeries))
	}
	return d.String()
}

func bucketDetail(b string) string {
	if b == "" {
		return "default"
	}
	return b
}

func maxSeriesDetail(n int) string {
	if n == 0 {
		return "default"
	}
	return strconv.Itoa(n)
}
