package keystore

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// dialect is what differs between the backends beyond the statements they
// share (queries.go): how parameters are written, the few statements each
// writes its own way, and the change log PostgreSQL's writers keep (SQLite's
// triggers keep their own).
type dialect struct {
	name string
	// bind rewrites a statement written with SQLite's ? and ?N parameters
	// into the backend's own form.
	bind func(query string) string
	// upsertUsage adds one flush of usage, a JSON array of usageRow, for
	// the node given as the first parameter, in one statement.
	upsertUsage string
	// changes is true where writes record the keys they change in the
	// change log themselves and caches LISTEN for them (PostgreSQL); on
	// SQLite triggers record them and caches poll.
	changes bool
}

// upsertUsage returns the statement that adds one flush of usage to the
// rows of the node given as its first parameter: source yields the rows
// (id, at, addr, requests, points) from the JSON array given as its second,
// and greatest is the backend's two-argument maximum. A node's row keeps
// its latest use and the sums of its counts; usage of unknown keys is
// dropped by the join.
func upsertUsage(source, greatest string) string {
	return `INSERT INTO key_usage (key_id, node, last_used_at, last_used_addr, requests, points)
		SELECT u.id, ?, u.at, u.addr, u.requests, u.points FROM ` + source + ` JOIN api_keys k ON k.id = u.id WHERE true
		ON CONFLICT (key_id, node) DO UPDATE SET
			last_used_at = NULLIF(` + greatest + `(COALESCE(key_usage.last_used_at, 0), COALESCE(excluded.last_used_at, 0)), 0),
			last_used_addr = CASE WHEN excluded.last_used_at >= COALESCE(key_usage.last_used_at, 0)
				THEN excluded.last_used_addr ELSE key_usage.last_used_addr END,
			requests = key_usage.requests + excluded.requests,
			points = key_usage.points + excluded.points`
}

// boundDB is a *sql.DB whose statements are written in SQLite's form and bound
// to the backend's as they run, so that one set of statements serves both.
type boundDB struct {
	*sql.DB
	d *dialect
}

func (d boundDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return d.DB.QueryRowContext(ctx, d.d.bind(query), args...)
}

func (d boundDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return d.DB.QueryContext(ctx, d.d.bind(query), args...)
}

func (d boundDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return d.DB.ExecContext(ctx, d.d.bind(query), args...)
}

// BeginTx starts a transaction whose statements are bound as d's are.
func (d boundDB) BeginTx(ctx context.Context, opts *sql.TxOptions) (boundTx, error) {
	t, err := d.DB.BeginTx(ctx, opts)
	return boundTx{t, d.d}, err
}

// boundTx is a *sql.Tx that binds its statements as boundDB does.
type boundTx struct {
	*sql.Tx
	d *dialect
}

func (t boundTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.Tx.QueryRowContext(ctx, t.d.bind(query), args...)
}

func (t boundTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.Tx.QueryContext(ctx, t.d.bind(query), args...)
}

func (t boundTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.Tx.ExecContext(ctx, t.d.bind(query), args...)
}

func (t boundTx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return t.Tx.PrepareContext(ctx, t.d.bind(query))
}

// asIs leaves a statement in SQLite's form.
func asIs(query string) string { return query }

// dollarParams rewrites SQLite's parameters into PostgreSQL's: the n-th
// bare ? becomes $n and ?N becomes $N. Question marks inside quoted
// strings and identifiers are left alone.
func dollarParams(query string) string {
	var (
		b     strings.Builder
		n     int
		quote byte
	)
	b.Grow(len(query) + 16)
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			j := i + 1
			for j < len(query) && query[j] >= '0' && query[j] <= '9' {
				j++
			}
			b.WriteByte('$')
			if j > i+1 {
				b.WriteString(query[i+1 : j])
			} else {
				n++
				b.WriteString(strconv.Itoa(n))
			}
			i = j - 1
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
