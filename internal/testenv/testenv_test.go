package testenv_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metricgate/metricgate/internal/testenv"
)

// TestPostgreSQLRestart starts a private PostgreSQL, keeps a row across a
// stop and start, and checks it runs on its own port, as the user it must
// run as, with the configuration written for it.
func TestPostgreSQLRestart(t *testing.T) {
	pg := testenv.StartPostgreSQL(t)
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		conn, err := pgx.Connect(ctx, pg.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec("CREATE TABLE kept (v text)")
	exec("INSERT INTO kept VALUES ($1)", "before the restart")

	pg.Stop(t)
	if _, err := pgx.Connect(ctx, pg.URL); err == nil {
		t.Fatal("connected to a stopped PostgreSQL")
	}
	pg.Start(t)

	conn, err := pgx.Connect(ctx, pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v, fsync, user string
	if err := conn.QueryRow(ctx, "SELECT v, current_setting('fsync'), session_user FROM kept").Scan(&v, &fsync, &user); err != nil {
		t.Fatal(err)
	}
	if v != "before the restart" || fsync != "off" || user != "postgres" {
		t.Errorf("got row %q, fsync %q, user %q; want the row kept, fsync off, user postgres", v, fsync, user)
	}
}

// TestPostgreSQLDatabases creates two databases for a test on a private
// server: each URL names its own, and a table made in one is not in the
// other.
func TestPostgreSQLDatabases(t *testing.T) {
	pg := testenv.StartPostgreSQL(t)
	ctx := context.Background()
	a, b := pg.CreateDatabase(t), pg.CreateDatabase(t)
	if a == b {
		t.Fatalf("two fresh databases have one URL %q", a)
	}
	connA, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer connA.Close(ctx)
	connB, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer connB.Close(ctx)
	if _, err := connA.Exec(ctx, "CREATE TABLE only_in_a (n int)"); err != nil {
		t.Fatal(err)
	}
	var inB bool
	if err := connB.QueryRow(ctx, "SELECT to_regclass('only_in_a') IS NOT NULL").Scan(&inB); err != nil {
		t.Fatal(err)
	}
	if inB {
		t.Error("a table made in one fresh database is in the other")
	}
}

// TestPostgreSQLShared uses the shared server scripts/test.sh starts: the
// database the test gets is the one its URL names, and is gone after the
// test.
func TestPostgreSQLShared(t *testing.T) {
	ctx := context.Background()
	var url, name string
	t.Run("Fresh", func(t *testing.T) {
		url = testenv.PostgreSQL(t)
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(url, "/"+name+"?") {
			t.Errorf("connected to database %q through %s", name, url)
		}
	})
	if t.Skipped() || name == "" {
		return
	}
	conn, err := pgx.Connect(ctx, os.Getenv(testenv.EnvPostgresURL))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %q is still there after its test", name)
	}
}

// TestRedis starts a private Redis and talks to it over a plain TCP
// connection, in Redis's protocol: PING, then a SET read back by GET.
func TestRedis(t *testing.T) {
	r := testenv.StartRedis(t)
	conn, err := net.Dial("tcp", r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	in := bufio.NewReader(conn)
	send := func(args ...string) string {
		t.Helper()
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		if _, err := conn.Write([]byte(b.String())); err != nil {
			t.Fatal(err)
		}
		line, err := in.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "$") {
			n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
			body := make([]byte, n+2)
			if _, err := in.Read(body); err != nil {
				t.Fatal(err)
			}
			return string(body[:n])
		}
		return strings.TrimSpace(line)
	}
	if got := send("PING"); got != "+PONG" {
		t.Errorf("PING: got %q, want +PONG", got)
	}
	if got := send("SET", "gate", "open"); got != "+OK" {
		t.Errorf("SET: got %q, want +OK", got)
	}
	if got := send("GET", "gate"); got != "open" {
		t.Errorf("GET: got %q, want open", got)
	}
	if got := send("CONFIG", "GET", "save"); got != "*2" {
		t.Errorf("CONFIG GET save: got %q, want a two-element answer", got)
	}
}

// TestInfluxDBRestart stops a private InfluxDB and starts it again: it is
// unreachable between, and afterwards answers on the same URL with the
// points written before.
func TestInfluxDBRestart(t *testing.T) {
	s := testenv.StartInfluxDB(t, "outage")
	db := s.DB("outage")
	write(t, db, "m v=1 1700000000000000000\nm v=2 1700000000000000001")
	if n := db.Count(t, "m", "v"); n != 2 {
		t.Fatalf("count before the restart: got %d, want 2", n)
	}
	s.Stop(t)
	if resp, err := http.Get(s.URL + "/ping"); err == nil {
		resp.Body.Close()
		t.Fatal("a stopped InfluxDB answered /ping")
	}
	s.Start(t)
	if n := db.Count(t, "m", "v"); n != 2 {
		t.Errorf("count after the restart: got %d, want 2", n)
	}
}

// TestInfluxDBShared uses a fresh database on the shared InfluxDB, and
// waits for points a goroutine writes later.
func TestInfluxDBShared(t *testing.T) {
	db := testenv.InfluxDB(t)
	if n := db.Count(t, "m", "v"); n != 0 {
		t.Fatalf("a fresh database holds %d points", n)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		http.Post(db.URL+"/write?db="+db.Name, "text/plain", strings.NewReader("m v=1 1\nm v=2 2\nm v=3 3"))
	}()
	if n := db.WaitCount(t, "m", "v", 3, 10*time.Second); n != 3 {
		t.Errorf("WaitCount: got %d, want 3", n)
	}
	s := db.Query(t, `SELECT v FROM m WHERE time = 2`)
	if len(s) != 1 || len(s[0].Values) != 1 || fmt.Sprint(s[0].Values[0]) != "[2 2]" {
		t.Errorf("query: got %+v, want one row at time 2 with v 2", s)
	}
}

func write(t *testing.T, db *testenv.DB, lines string) {
	t.Helper()
	resp, err := http.Post(db.URL+"/write?db="+db.Name, "text/plain", strings.NewReader(lines))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: got %s, want 204", resp.Status)
	}
}

// TestCommand runs the scripts' command: a detached Redis that outlives
// the start command, stopped by the stop command, and a port.
func TestCommand(t *testing.T) {
	if _, err := os.Stat("/usr/bin/redis-server"); err != nil {
		testenv.Missing(t, "no Redis: %v", err)
	}
	dir := t.TempDir()
	var out, errs bytes.Buffer
	if code := testenv.Main([]string{"redis", "start", dir}, &out, &errs); code != 0 {
		t.Fatalf("redis start: exit %d, %s", code, errs.String())
	}
	t.Cleanup(func() { testenv.Main([]string{"redis", "stop", dir}, &out, &errs) })
	addr, ok := strings.CutPrefix(strings.TrimSpace(out.String()), "REDIS_ADDR=")
	addr = strings.Trim(addr, "'")
	if !ok {
		t.Fatalf("redis start printed %q, want REDIS_ADDR=...", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "redis-server.pid")); err != nil {
		t.Errorf("no process id file: %v", err)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("the detached Redis is not listening on %s: %v", addr, err)
	}
	conn.Close()
	if code := testenv.Main([]string{"redis", "stop", dir}, &out, &errs); code != 0 {
		t.Fatalf("redis stop: exit %d, %s", code, errs.String())
	}
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Error("Redis still listens after redis stop")
	}

	out.Reset()
	if code := testenv.Main([]string{"port"}, &out, &errs); code != 0 {
		t.Fatalf("port: exit %d, %s", code, errs.String())
	}
	p, err := strconv.Atoi(strings.TrimSpace(out.String()))
	if err != nil || p < 10000 || p >= 32768 {
		t.Errorf("port printed %q, want a port from 10000 below the ephemeral range", out.String())
	}
	if code := testenv.Main([]string{"influxdb", "start"}, &out, &errs); code != 2 {
		t.Errorf("influxdb start without DIR: exit %d, want 2", code)
	}
}

// recorder is a testing.TB that records how a helper ended the test.
type recorder struct {
	testing.TB
	failed, skipped bool
}

func (r *recorder) Helper()      {}
func (r *recorder) Fatal(...any) { r.failed = true; runtime.Goexit() }
func (r *recorder) Skip(...any)  { r.skipped = true; runtime.Goexit() }
func (r *recorder) run(f func(testing.TB)) {
	done := make(chan struct{})
	go func() { defer close(done); f(r) }()
	<-done
}

// TestMissing fails a test whose server is missing when CI is set, and
// skips it otherwise.
func TestMissing(t *testing.T) {
	for _, tt := range []struct {
		ci         string
		fail, skip bool
	}{{"true", true, false}, {"", false, true}, {"false", false, true}} {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			r := &recorder{TB: t}
			r.run(func(tb testing.TB) { testenv.Missing(tb, "no %s", "server") })
			if r.failed != tt.fail || r.skipped != tt.skip {
				t.Errorf("got failed %v, skipped %v; want %v, %v", r.failed, r.skipped, tt.fail, tt.skip)
			}
		})
	}
}

// TestBufferAndClock shares a Buffer and a Clock between goroutines, which
// the race detector checks.
func TestBufferAndClock(t *testing.T) {
	var b testenv.Buffer
	c := testenv.NewClock(time.Unix(100, 0))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			fmt.Fprint(&b, "x")
			c.Advance(time.Second)
			_ = b.String()
		})
	}
	wg.Wait()
	if b.String() != "xxxx" || !c.Now().Equal(time.Unix(104, 0)) {
		t.Errorf("got %q at %v, want xxxx at %v", b.String(), c.Now(), time.Unix(104, 0))
	}
}
