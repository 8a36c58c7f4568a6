package keystore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// This file holds what is particular to PostgreSQL: how the pool is opened,
// how a failure to connect is reported, and the statements it writes its
// own way. The shared statements run through database/sql on the pool
// (stdlib.OpenDBFromPool), with their parameters rewritten by dollarParams.

// postgresDialect binds the shared statements to $N parameters.
var postgresDialect = &dialect{
	name:    "postgres",
	bind:    dollarParams,
	changes: true,
	upsertUsage: upsertUsage(`jsonb_to_recordset(CAST(? AS jsonb))
		AS u(id bigint, at bigint, addr text, requests bigint, points bigint)`, "GREATEST"),
}

// openPostgres connects s to the PostgreSQL database at addr, within
// o.Timeout, and migrates its schema.
func (s *Store) openPostgres(ctx context.Context, addr string, o Options) error {
	s.addr = redactAddr(addr)
	cfg, err := pgxpool.ParseConfig(addr)
	if err != nil {
		return addrError(addr, err)
	}
	name := o.Name
	if name == "" {
		name = "metricgate"
	}
	cfg.ConnConfig.ConnectTimeout = o.Timeout
	cfg.ConnConfig.RuntimeParams["application_name"] = name
	s.listen = cfg.ConnConfig.Copy()
	s.listen.RuntimeParams["application_name"] = name + " listener"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return addrError(addr, err)
	}
	pctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return connectError(&cfg.ConnConfig.Config, err, o.Timeout)
	}
	s.pool, s.dialect = pool, postgresDialect
	s.db = boundDB{stdlib.OpenDBFromPool(pool), postgresDialect}
	if err := s.migratePostgres(ctx); err != nil {
		s.Close()
		return fmt.Errorf("keystore: %s: %w", s.addr, err)
	}
	return nil
}

// ConnectError is a failure to reach PostgreSQL or to be let in: refused,
// timed out, or a wrong password. Its message is one line that names the
// server's host and port and never a password.
type ConnectError struct {
	// Server is the host and port tried.
	Server string
	// Reason says what went wrong, such as "connection refused" or
	// `password authentication failed for user "app" (SQLSTATE 28P01)`.
	Reason string
	err    error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("keystore: cannot connect to PostgreSQL at %s: %s", e.Server, e.Reason)
}

// Unwrap returns the driver's error, for errors.Is; its text may hold more
// than Error shows.
func (e *ConnectError) Unwrap() error { return e.err }

// connectError describes err, a failure to connect with c, as a
// ConnectError.
func connectError(c *pgconn.Config, err error, timeout time.Duration) error {
	var (
		pgErr  *pgconn.PgError
		netErr net.Error
		opErr  *net.OpError
		reason string
	)
	switch {
	case errors.As(err, &pgErr):
		reason = fmt.Sprintf("%s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		reason = fmt.Sprintf("no answer within %s", timeout)
	case errors.As(err, &opErr):
		reason = opErr.Err.Error()
	default:
		reason = err.Error()
		if inner := errors.Unwrap(err); inner != nil {
			reason = inner.Error()
		}
	}
	server := net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port)))
	return &ConnectError{Server: server, Reason: hideSecret(oneLine(reason), c.Password), err: err}
}

// addrError reports an address pgx cannot use, shown without its
// password.
func addrError(addr string, err error) error {
	reason := err.Error()
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		reason = urlErr.Err.Error()
	} else if inner := errors.Unwrap(err); inner != nil {
		reason = inner.Error()
	} else if _, after, ok := strings.Cut(reason, "`: "); ok && strings.HasPrefix(reason, "cannot parse `") {
		reason = after // pgx's own message repeats the address
	}
	if u, uerr := url.Parse(addr); uerr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			reason = hideSecret(reason, pw)
		}
	}
	return fmt.Errorf("keystore: cannot use the PostgreSQL address %s: %s", redactAddr(addr), oneLine(reason))
}

// Redacted returns the store address addr as it may be shown: a
// PostgreSQL URL with its password replaced by xxxxx, a SQLite path as it
// is.
func Redacted(addr string) string {
	if !IsPostgres(addr) {
		return addr
	}
	return redactAddr(addr)
}

// userinfo matches the user and password of a URL that url.Parse refuses.
var userinfo = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):[^@/]*@`)

// redactAddr returns addr with any password, in the user part or as a
// password parameter, replaced by xxxxx.
func redactAddr(addr string) string {
	u, err := url.Parse(addr)
	if err != nil {
		return userinfo.ReplaceAllString(addr, "${1}:xxxxx@")
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// hideSecret replaces every occurrence of the secret in s.
func hideSecret(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "xxxxx")
}

// oneLine joins the lines of s, which pgx uses to list one failure per
// address tried.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
