package keystore

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// A quarantine stops a key whose points InfluxDB keeps refusing: the
// gateway refuses its writes until an admin has fixed the cause and
// released it. It is a column of the key, written like any other change
// (in the audit log, and in the change log that tells every replica's
// cache), so a key one replica quarantined is refused by all of them.

// MaxQuarantineReason is the longest reason a quarantine keeps, in bytes;
// a longer one is cut, marked with "…".
const MaxQuarantineReason = 512

// Quarantine quarantines the key with the given id now, for reason, and
// returns its record and whether it changed; the audit log gets a
// quarantine entry with the reason. A key quarantined already is returned
// as it is, keeping its first reason, and nothing is recorded. It returns
// ErrNotFound for an unknown id.
func (s *Store) Quarantine(ctx context.Context, id int64, reason string) (Key, bool, error) {
	reason = quarantineReason(reason)
	now := s.Now().UTC()
	var d details
	d.add("reason", reason)
	return s.changeQuarantine(ctx, now, id, ActionQuarantine, queryQuarantine, []any{now.UnixNano(), reason, id}, d.String())
}

// Release lifts the quarantine of the key with the given id, so its writes
// are taken again, and returns its record and whether it changed; the
// audit log gets a release entry. Releasing a key that is not quarantined
// changes and records nothing. It returns ErrNotFound for an unknown id.
func (s *Store) Release(ctx context.Context, id int64) (Key, bool, error) {
	return s.changeQuarantine(ctx, s.Now().UTC(), id, ActionRelease, queryRelease, []any{id}, "")
}

// changeQuarantine runs query, queryQuarantine or queryRelease with args on
// key id at now, and records action with detail if it changed the key.
func (s *Store) changeQuarantine(ctx context.Context, now time.Time, id int64, action, query string, args []any, detail string) (Key, bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Key{}, false, fmt.Errorf("keystore: %s key %d: %w", action, id, err)
	}
	defer tx.Rollback()
	k, err := scanKey(tx.QueryRowContext(ctx, query, args...))
	if isNoRows(err) {
		// Unknown, or in that state already.
		k, err := getKey(ctx, tx, id)
		return k, false, err
	}
	if err != nil {
		return Key{}, false, fmt.Errorf("keystore: %s key %d: %w", action, id, err)
	}
	if err := s.audit(ctx, tx, now, id, action, detail); err != nil {
		return Key{}, false, err
	}
	if err := s.commit(ctx, tx, now, id); err != nil {
		return Key{}, false, fmt.Errorf("keystore: %s key %d: %w", action, id, err)
	}
	return k, true, nil
}

// quarantineReason makes reason fit to store and show: control characters
// become spaces, and it is cut to MaxQuarantineReason bytes on a character
// boundary.
func quarantineReason(reason string) string {
	reason = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(strings.TrimSpace(reason), "?"))
	if len(reason) <= MaxQuarantineReason {
		return reason
	}
	cut := MaxQuarantineReason - len("…")
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut] + "…"
}
