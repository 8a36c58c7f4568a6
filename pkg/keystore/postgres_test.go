package keystore_test

// Tests of what only the PostgreSQL backend does: migrations under an
// advisory lock, the one-line errors for a server it cannot use, and the
// cache that follows the change log through notifications, polls and lost
// connections.

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/keystore"
)

// postgres is the PostgreSQL backend, for the tests of this file.
var postgres = postgresBackend

// TestPostgresReplicasMigrateTogether opens a fresh database from eight
// stores at once, as replicas starting together would, and checks that
// each migration was applied once.
func TestPostgresReplicasMigrateTogether(t *testing.T) {
	addr := postgres.newAddr(t)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			s, err := keystore.Open(context.Background(), addr)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Errorf("Open: %v", err)
		}
	}
	want := migrationCount(t, addr)
	if n := queryInt(t, addr, `SELECT count(*) FROM schema_version`); n != int64(want) {
		t.Errorf("schema_version has %d rows, want %d: one per migration", n, want)
	}
}

// TestPostgresOpenErrors checks the message for each way a server can be
// unusable: one line, naming the host and port, never the password, and
// within the timeout.
func TestPostgresOpenErrors(t *testing.T) {
	srv := testenv.StartPostgreSQL(t)
	const password = "s3cret-pw"
	withPassword := srv.RequirePassword(t, "app", password)
	execRaw(t, srv.URL, `GRANT ALL ON SCHEMA public TO app`)
	u, _ := url.Parse(withPassword)
	server := u.Host
	wrongPassword := strings.Replace(withPassword, password, "not-"+password, 1)
	silent := testenv.SilentServer(t)

	tests := []struct {
		name, addr string
		want       string // the whole message, with the server named
	}{
		{"WrongPassword", wrongPassword,
			`keystore: cannot connect to PostgreSQL at ` + server + `: password authentication failed for user "app" (SQLSTATE 28P01)`},
		{"NoDatabase", strings.Replace(withPassword, u.Path, "/nosuchdb", 1),
			`keystore: cannot connect to PostgreSQL at ` + server + `: database "nosuchdb" does not exist (SQLSTATE 3D000)`},
		{"NoAnswer", "postgres://app:" + password + "@" + silent + "/db",
			`keystore: cannot connect to PostgreSQL at ` + silent + `: no answer within 500ms`},
		{"BadPort", "postgres://app:" + password + "@127.0.0.1:99999x/db",
			`keystore: cannot use the PostgreSQL address postgres://app:xxxxx@127.0.0.1:99999x/db: invalid port`},
		{"BadParameter", "postgresql://app:" + password + "@127.0.0.1:5432/db?sslmode=maybe",
			`keystore: cannot use the PostgreSQL address postgresql://app:xxxxx@127.0.0.1:5432/db?sslmode=maybe: sslmode is invalid`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			s, err := keystore.OpenWith(context.Background(), tt.addr, keystore.Options{Timeout: 500 * time.Millisecond})
			took := time.Since(start)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q\nwant    %q", err, tt.want)
			}
			if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q shows the password or has more than one line", err)
			}
			if took > 2*time.Second {
				t.Errorf("Open took %v with a 500ms timeout", took)
			}
		})
	}
	s, err := keystore.Open(context.Background(), withPassword)
	if err != nil {
		t.Fatalf("Open with the right password: %v", err)
	}
	s.Close()
	srv.Stop(t)
	_, err = keystore.Open(context.Background(), withPassword)
	var ce *keystore.ConnectError
	if want := "keystore: cannot connect to PostgreSQL at " + server + ": connect: connection refused"; err == nil || err.Error() != want || !errors.As(err, &ce) {
		t.Errorf("Open of a stopped server: error = %v, want %q", err, want)
	}
}

// TestPostgresCacheCatchesUp revokes keys while the cache's listening
// connection is gone (terminated by the server, as a restart or a network
// failure would) and while a notification is lost (a change logged
// without NOTIFY), and checks that the cache applies both.
func TestPostgresCacheCatchesUp(t *testing.T) {
	s, addr := openStore(t, postgres)
	ctx := context.Background()
	c := newCache(t, s, keystore.CacheOptions{Poll: 200 * time.Millisecond})
	k1, p1 := generate(t, s, keystore.NewKey{Hostname: "127.0.0.1"})
	k2, p2 := generate(t, s, keystore.NewKey{Hostname: "127.0.0.1"})
	for _, p := range []string{p1, p2} {
		waitAuth(t, c, p, nil, nil, time.Second)
	}

	db := strings.TrimPrefix(mustParse(t, addr).Path, "/")
	if n := queryInt(t, addr, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = ? AND application_name = 'metricgate listener'`, db); n != 1 {
		t.Fatalf("terminated %d listening connections, want 1", n)
	}
	if _, err := s.Revoke(ctx, k1.ID); err != nil {
		t.Fatal(err)
	}
	took := waitAuth(t, c, p1, keystore.ErrRevoked, nil, 6*time.Second)
	t.Logf("a revocation made while the listener was cut off reached the cache in %v", took.Round(time.Millisecond))

	// A change whose notification never comes: the poll finds it.
	execRaw(t, addr, `UPDATE api_keys SET revoked_at = ? WHERE id = ?`, time.Now().UnixNano(), k2.ID)
	execRaw(t, addr, `INSERT INTO key_changes (key_id, at) VALUES (?, ?)`, k2.ID, time.Now().UnixNano())
	took = waitAuth(t, c, p2, keystore.ErrRevoked, nil, 6*time.Second)
	t.Logf("a change without a notification reached the cache in %v (poll every 200ms)", took.Round(time.Millisecond))
}

// TestPostgresCacheConcurrentWriters revokes 120 cached keys from eight
// stores at once and checks that the cache misses none: change ids must be
// handed out in commit order for a cache that reads "after the last id" to
// see them all.
func TestPostgresCacheConcurrentWriters(t *testing.T) {
	s, addr := openStore(t, postgres)
	c := newCache(t, s, keystore.CacheOptions{Poll: time.Hour})
	var keys []keystore.Key
	var plains []string
	for range 120 {
		k, p := generate(t, s, keystore.NewKey{Hostname: "127.0.0.1"})
		waitAuth(t, c, p, nil, nil, time.Second)
		keys, plains = append(keys, k), append(plains, p)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		writer := openAt(t, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; j < len(keys); j += 8 {
				if _, err := writer.Revoke(context.Background(), keys[j].ID); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for _, p := range plains {
		waitAuth(t, c, p, keystore.ErrRevoked, nil, 2*time.Second)
	}
}

// TestPostgresCacheOutage cuts one cache off PostgreSQL while another
// store keeps it, and checks what the cache answers: cached keys from
// memory until MaxStale, ErrUnavailable for keys it does not hold or can
// no longer vouch for; and, once it is back, the revocation and the new
// key made while it was cut off.
func TestPostgresCacheOutage(t *testing.T) {
	admin, addr := openStore(t, postgres)
	p := newProxy(t, mustParse(t, addr).Host)
	proxied := mustParse(t, addr)
	proxied.Host = p.addr()
	s := openAt(t, proxied.String())
	clock := testenv.NewClock(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	ctx := context.Background()
	loopback := netip.MustParseAddr("127.0.0.1")
	k1, p1 := generate(t, admin, keystore.NewKey{Hostname: "127.0.0.1"})
	_, p2 := generate(t, admin, keystore.NewKey{Hostname: "127.0.0.1"})
	c := newCache(t, s, keystore.CacheOptions{Poll: time.Hour, MaxStale: time.Minute, Now: clock.Now})
	if _, err := c.Authenticate(ctx, p1, loopback); err != nil {
		t.Fatal(err)
	}

	p.cut()
	waitFor(t, "the cache to notice", func() bool { return !c.Status().Connected })
	if _, err := c.Authenticate(ctx, p1, loopback); err != nil {
		t.Errorf("cached key while cut off: %v, want it accepted", err)
	}
	if _, err := c.Authenticate(ctx, p2, loopback); !errors.Is(err, keystore.ErrUnavailable) {
		t.Errorf("key not cached while cut off: %v, want ErrUnavailable", err)
	}
	if _, err := admin.Revoke(ctx, k1.ID); err != nil {
		t.Fatal(err)
	}
	_, p3 := generate(t, admin, keystore.NewKey{Hostname: "127.0.0.1"})
	clock.Advance(time.Minute + time.Second)
	if _, err := c.Authenticate(ctx, p1, loopback); !errors.Is(err, keystore.ErrUnavailable) {
		t.Errorf("cached key after MaxStale: %v, want ErrUnavailable", err)
	}
	if err := c.Ping(ctx); err == nil {
		t.Error("Ping after MaxStale succeeded, want an error")
	}
	if st := c.Status(); st.Connected || st.Error == "" || st.BehindSeconds != 61 {
		t.Errorf("Status = %+v, want cut off for 61s, with the reason", st)
	}

	p.restore()
	waitFor(t, "the cache to reconnect", func() bool { return c.Status().Connected })
	for _, tt := range []struct {
		name, key string
		want      error
	}{{"RevokedMeanwhile", p1, keystore.ErrRevoked}, {"NotCached", p2, nil}, {"MadeMeanwhile", p3, nil}} {
		if _, err := c.Authenticate(ctx, tt.key, loopback); !errors.Is(err, tt.want) {
			t.Errorf("%s: Authenticate = %v, want %v", tt.name, err, tt.want)
		}
	}
	if err := c.Ping(ctx); err != nil || c.Behind() != 0 {
		t.Errorf("Ping = %v, Behind = %v after catching up; want nil, 0", err, c.Behind())
	}
}

// waitFor waits up to 10 s for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
	}
}

func mustParse(t *testing.T, addr string) *url.URL {
	t.Helper()
	u, err := url.Parse(addr)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// proxy forwards TCP connections to a server and can cut them off: the
// test's way to cut one client off PostgreSQL while others keep it.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		go p.forward(c)
	}
}

func (p *proxy) forward(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

// cut closes every connection and refuses new ones until restore.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *proxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}
