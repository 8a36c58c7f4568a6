package keystore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
)

// Keys as code. A list of definitions, each a NewKey with a name, says
// which keys should exist: Plan compares it with the store, name by name,
// and Apply makes the store so in one transaction, after checking that the
// store still gives the same plan. Applying the same definitions again
// plans no change and writes nothing. A key made this way records its
// maker (PlanOptions.ManagedBy), and pruning revokes only keys of that
// maker that the definitions no longer name, never a key made otherwise.

// ChangeKind is what applying a definition does to the store, or, for
// PlanRevoke, what pruning does to a key the definitions no longer name.
type ChangeKind string

// The kinds of change a plan holds.
const (
	// PlanCreate makes a key: no key not revoked has the name.
	PlanCreate ChangeKind = "create"
	// PlanUpdate changes the policy of the key of that name.
	PlanUpdate ChangeKind = "update"
	// PlanUnchanged leaves the key of that name as it is.
	PlanUnchanged ChangeKind = "unchanged"
	// PlanReplace revokes the key of that name and makes a new one with
	// the name, because the definition binds it to another host: a key's
	// host never changes.
	PlanReplace ChangeKind = "replace"
	// PlanRevoke revokes a key the maker made that the definitions no
	// longer name.
	PlanRevoke ChangeKind = "revoke"
)

// ErrChanged means the key store changed between a plan and its apply, so
// the plan no longer says what applying would do; nothing was written.
// Planning and applying again is safe.
var ErrChanged = errors.New("the key store changed since the plan")

// Diff is one field a change sets, with its value before and after, as a
// file names the field ("hostname", "rate", "expires_at") and as the audit
// log shows values ("default", "never", "any").
type Diff struct {
	Field, From, To string
}

// Change is one step of a Plan.
type Change struct {
	Kind ChangeKind
	Name string
	// Key is the key the plan found: zero for PlanCreate.
	Key Key
	// Want is the definition, checked and in the form the store keeps:
	// the key as Apply leaves it. Zero for PlanRevoke.
	Want NewKey
	// Diffs are the fields that differ, for PlanUpdate and PlanReplace.
	Diffs []Diff
	// Value is the value of the key PlanCreate or PlanReplace makes. Plan
	// draws it, so that a caller can keep it safe before Apply makes it
	// work; the store keeps only its hash.
	Value string
	// Result is, in what Apply returns, the key after the change: the new
	// key for PlanCreate and PlanReplace.
	Result Key

	update Update // what PlanUpdate sets
}

// PlanOptions say whose keys a plan manages.
type PlanOptions struct {
	// ManagedBy is recorded on the keys the plan makes, such as
	// ManagedByApply; pruning revokes only keys it made. It must be set.
	ManagedBy string
	// Prune revokes the keys ManagedBy made that the definitions do not
	// name; without it they are listed in Plan.Stale.
	Prune bool
}

// Plan is what applying definitions would do to the store, as Store.Plan
// found it.
type Plan struct {
	// Changes hold one change per definition, in their order, then the
	// keys pruning revokes, in id order.
	Changes []Change
	// Stale are the keys ManagedBy made that the definitions do not name,
	// which pruning would revoke, when the plan does not prune.
	Stale []Key

	opts PlanOptions
	defs []NewKey
}

// Count returns how many of p's changes are of kind k.
func (p Plan) Count(k ChangeKind) int {
	n := 0
	for _, c := range p.Changes {
		if c.Kind == k {
			n++
		}
	}
	return n
}

// Changed reports whether applying p would write anything.
func (p Plan) Changed() bool { return p.Count(PlanUnchanged) < len(p.Changes) }

// Plan compares defs, keys to be, with the store and returns what applying
// them would do; it writes nothing. Each definition needs a name (see
// CheckName), unique among defs. It returns ErrInvalidHostname,
// ErrInvalidScope or ErrInvalidPolicy for a definition the store would not
// keep, naming it.
func (s *Store) Plan(ctx context.Context, defs []NewKey, o PlanOptions) (Plan, error) {
	if o.ManagedBy == "" {
		return Plan{}, errors.New("keystore: plan: no maker for the keys it makes")
	}
	checked, err := checkDefinitions(defs)
	if err != nil {
		return Plan{}, err
	}
	cur, err := managedKeys(ctx, s.db, o.ManagedBy)
	if err != nil {
		return Plan{}, err
	}
	p := planChanges(cur, checked, o)
	for i, c := range p.Changes {
		if c.Kind == PlanCreate || c.Kind == PlanReplace {
			p.Changes[i].Value = uuid.NewString()
		}
	}
	return p, nil
}

// Apply makes the changes of p, a plan Store.Plan made, in one transaction,
// and returns them with each key's Result. The transaction first plans
// again and returns ErrChanged, writing nothing, unless that gives the
// same plan, so what is applied is what p showed. Every change is recorded
// in the audit log, with one entry for the whole apply. A plan without
// changes writes nothing.
func (s *Store) Apply(ctx context.Context, p Plan) (Plan, error) {
	out := p
	out.Changes = slices.Clone(p.Changes)
	if !p.Changed() {
		for i := range out.Changes {
			out.Changes[i].Result = out.Changes[i].Key
		}
		return out, nil
	}
	opts := &sql.TxOptions{}
	if s.dialect.changes {
		// A key another transaction changes after this one has read it
		// makes this one fail, rather than write over what it did not see.
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return Plan{}, fmt.Errorf("keystore: apply: %w", err)
	}
	defer tx.Rollback()
	cur, err := managedKeys(ctx, tx, p.opts.ManagedBy)
	if err != nil {
		return Plan{}, changed(err)
	}
	if err := samePlan(p, planChanges(cur, p.defs, p.opts)); err != nil {
		return Plan{}, err
	}
	now := s.Now().UTC()
	var ids []int64
	for i := range out.Changes {
		changedIDs, err := s.applyChange(ctx, tx, &out.Changes[i], p.opts.ManagedBy, now)
		if err != nil {
			return Plan{}, changed(err)
		}
		ids = append(ids, changedIDs...)
	}
	if err := s.audit(ctx, tx, now, 0, ActionApply, applyDetail(out)); err != nil {
		return Plan{}, changed(err)
	}
	if err := s.commit(ctx, tx, now, ids...); err != nil {
		return Plan{}, changed(fmt.Errorf("keystore: apply: %w", err))
	}
	return out, nil
}

// applyChange makes c in tx and sets its Result. It returns the ids of the
// keys it changed.
func (s *Store) applyChange(ctx context.Context, tx boundTx, c *Change, maker string, now time.Time) ([]int64, error) {
	source := "source=" + maker
	switch c.Kind {
	case PlanUnchanged:
		c.Result = c.Key
		return nil, nil
	case PlanUpdate:
		sets, args, detail := updateColumns(c.update)
		k, err := scanKey(tx.QueryRowContext(ctx, queryUpdateKey(strings.Join(sets, ", ")), append(args, c.Key.ID)...))
		if err != nil {
			return nil, fmt.Errorf("keystore: update key %d: %w", c.Key.ID, err)
		}
		c.Result = k
		return []int64{k.ID}, s.audit(ctx, tx, now, k.ID, ActionUpdate, detail.String()+" "+source)
	case PlanRevoke:
		k, err := scanKey(tx.QueryRowContext(ctx, queryRevokeKey, now.UnixNano(), c.Key.ID))
		if err != nil {
			return nil, fmt.Errorf("keystore: revoke key %d: %w", c.Key.ID, err)
		}
		c.Result = k
		return []int64{k.ID}, s.audit(ctx, tx, now, k.ID, ActionRevoke, source+" reason=pruned")
	}
	var ids []int64
	if c.Kind == PlanReplace {
		if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ?`, now.UnixNano(), c.Key.ID); err != nil {
			return nil, fmt.Errorf("keystore: revoke key %d: %w", c.Key.ID, err)
		}
		ids = append(ids, c.Key.ID)
	}
	hash := HashKey(c.Value)
	k, err := s.insertKey(ctx, tx, c.Want, hash[:], c.Value[:PrefixLen], maker, now)
	if err != nil {
		return nil, err
	}
	c.Result = k
	if err := s.audit(ctx, tx, now, k.ID, ActionGenerate, generateDetail(k)+" "+source); err != nil {
		return nil, err
	}
	if c.Kind == PlanReplace {
		if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET replaced_by = ? WHERE id = ?`, k.ID, c.Key.ID); err != nil {
			return nil, fmt.Errorf("keystore: revoke key %d: %w", c.Key.ID, err)
		}
		detail := fmt.Sprintf("%s reason=hostname replaced_by=%d", source, k.ID)
		if err := s.audit(ctx, tx, now, c.Key.ID, ActionRevoke, detail); err != nil {
			return nil, err
		}
	}
	return append(ids, k.ID), nil
}

// checkDefinitions checks each of defs as checkNewKey does, and that each
// has a name no other has, naming the definition at fault.
func checkDefinitions(defs []NewKey) ([]NewKey, error) {
	out := make([]NewKey, len(defs))
	seen := make(map[string]int, len(defs))
	for i, d := range defs {
		if err := CheckName(d.Name, string(FieldName)); err != nil {
			return nil, fmt.Errorf("definition %d: %w", i+1, err)
		}
		if j, dup := seen[d.Name]; dup {
			return nil, fmt.Errorf("%w: definitions %d and %d are both named %q", ErrInvalidPolicy, j+1, i+1, d.Name)
		}
		seen[d.Name] = i
		var err error
		if out[i], err = checkNewKey(d); err != nil {
			return nil, fmt.Errorf("definition %d (%q): %w", i+1, d.Name, err)
		}
	}
	return out, nil
}

// managedKeys reads, through q, the keys not revoked that a plan for
// maker weighs: those with a name, and those maker made.
func managedKeys(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, maker string) ([]Key, error) {
	rows, err := q.QueryContext(ctx, queryManagedKeys, maker)
	if err != nil {
		return nil, fmt.Errorf("keystore: read keys: %w", err)
	}
	keys, err := scanKeys(rows)
	if err != nil {
		return nil, fmt.Errorf("keystore: read keys: %w", err)
	}
	slices.SortFunc(keys, func(a, b Key) int { return cmp.Compare(a.ID, b.ID) })
	return keys, nil
}

// planChanges compares defs, checked, with cur, the keys managedKeys read.
func planChanges(cur []Key, defs []NewKey, o PlanOptions) Plan {
	p := Plan{opts: o, defs: defs, Changes: make([]Change, 0, len(defs))}
	byName := make(map[string]Key, len(cur))
	for _, k := range cur {
		if k.Name != "" {
			byName[k.Name] = k
		}
	}
	named := make(map[string]bool, len(defs))
	for _, d := range defs {
		named[d.Name] = true
		c := Change{Kind: PlanCreate, Name: d.Name, Want: d}
		if k, ok := byName[d.Name]; ok {
			c.Key = k
			c.Diffs, c.update = diffKey(k, d)
			switch {
			case k.Hostname != d.Hostname:
				c.Kind = PlanReplace
			case len(c.Diffs) == 0:
				c.Kind = PlanUnchanged
			default:
				c.Kind = PlanUpdate
			}
		}
		p.Changes = append(p.Changes, c)
	}
	for _, k := range cur {
		if k.ManagedBy != o.ManagedBy || (k.Name != "" && named[k.Name]) {
			continue
		}
		if o.Prune {
			p.Changes = append(p.Changes, Change{Kind: PlanRevoke, Name: k.Name, Key: k})
		} else {
			p.Stale = append(p.Stale, k)
		}
	}
	return p
}

// diffKey returns the fields of k that d, its definition, sets otherwise,
// and the Update that sets them.
func diffKey(k Key, d NewKey) ([]Diff, Update) {
	var (
		diffs []Diff
		u     Update
	)
	add := func(field, from, to string) { diffs = append(diffs, Diff{field, from, to}) }
	if k.Hostname != d.Hostname {
		add("hostname", k.Hostname, d.Hostname)
	}
	if k.Description != d.Description {
		add("description", k.Description, d.Description)
		u.Description = ptr(d.Description)
	}
	if !sameSet(k.Scopes, d.Scopes) {
		add("scopes", joinList(k.Scopes), joinList(d.Scopes))
		u.Scopes = ptr(d.Scopes)
	}
	if !sameSet(k.Measurements, d.Measurements) {
		add("measurements", measurementsDetail(k.Measurements), measurementsDetail(d.Measurements))
		u.Measurements = ptr(d.Measurements)
	}
	if k.Rate != d.Rate {
		add("rate", rateDetail(k.Rate), rateDetail(d.Rate))
		u.Rate = ptr(d.Rate)
	}
	if k.Burst != d.Burst {
		add("burst", burstDetail(k.Burst), burstDetail(d.Burst))
		u.Burst = ptr(d.Burst)
	}
	if k.Bucket != d.Bucket {
		add("bucket", bucketDetail(k.Bucket), bucketDetail(d.Bucket))
		u.Bucket = ptr(d.Bucket)
	}
	if k.MaxSeries != d.MaxSeries {
		add("max_series", maxSeriesDetail(k.MaxSeries), maxSeriesDetail(d.MaxSeries))
		u.MaxSeries = ptr(d.MaxSeries)
	}
	if !k.ExpiresAt.Equal(d.ExpiresAt) {
		add("expires_at", expiryDetail(k.ExpiresAt), expiryDetail(d.ExpiresAt))
		u.ExpiresAt = ptr(d.ExpiresAt)
	}
	return diffs, u
}

// sameSet reports whether a and b hold the same items, in any order.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// samePlan returns ErrChanged, saying what differs, unless again, planned
// inside the transaction, makes the changes p made before it.
func samePlan(p, again Plan) error {
	if len(p.Changes) != len(again.Changes) {
		return fmt.Errorf("keystore: %w: it plans %d changes, not %d; nothing was applied", ErrChanged,
			len(again.Changes), len(p.Changes))
	}
	for i, c := range p.Changes {
		a := again.Changes[i]
		if c.Kind != a.Kind || c.Name != a.Name || c.Key.ID != a.Key.ID || !slices.Equal(c.Diffs, a.Diffs) {
			return fmt.Errorf("keystore: %w: %q was to %s key %d, now %s key %d; nothing was applied", ErrChanged,
				c.Name, c.Kind, c.Key.ID, a.Kind, a.Key.ID)
		}
	}
	return nil
}

// changed turns the failures another writer causes during Apply (a name
// it took, a row it changed after Apply read it on PostgreSQL) into
// ErrChanged.
func changed(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01") || errors.Is(err, ErrNameTaken) {
		return fmt.Errorf("keystore: %w during the apply (%w); nothing was applied", ErrChanged, err)
	}
	return err
}

// applyDetail sums up an apply for the audit log.
func applyDetail(p Plan) string {
	var d details
	d.add("source", p.opts.ManagedBy)
	for _, k := range []ChangeKind{PlanCreate, PlanUpdate, PlanReplace, PlanRevoke, PlanUnchanged} {
		d.add(string(k), fmt.Sprint(p.Count(k)))
	}
	return d.String()
}
