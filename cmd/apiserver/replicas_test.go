package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to reach behind the replicas

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/keystore"
)

// TestReplicasSharePostgreSQL runs three apiservers on one PostgreSQL key
// store while a loader writes through all three, and checks what several
// gateways promise:
//
//   - 100 keys revoked one at a time, most with keyctl and some through the
//     admin API of one replica, are refused by all three within a second
//     of the revocation's acknowledgement (p50, p99 and max are logged);
//   - a revocation made while every replica's listening connection has
//     been terminated by the server still reaches them all;
//   - PostgreSQL stopped for 10 s under load: ingestion with known keys
//     goes on, a key no replica holds gets 503 (never 2xx), a fourth
//     replica with --cache-max-stale 2s answers 503 once stale, and after
//     the restart every replica catches up and refuses what is revoked;
//   - no acknowledged point is missing from InfluxDB, and the usage the
//     replicas recorded adds up to the loader's acknowledged requests.
func TestReplicasSharePostgreSQL(t *testing.T) {
	c := newCluster(t, 3)
	stale := c.startReplica("gw-stale", "--cache-max-stale", "2s")
	keys := c.generate(t, 112)
	revoked, afterRestart, unused, staleKey := keys[:100], keys[100:110], keys[110], keys[111]
	// First, while the keys' creation is fresh news: the loops below take
	// longer than its --cache-max-stale on a loaded machine. And once the
	// replica has applied every change of their creation: a look-up that
	// races a change is answered but not cached, and a key not cached got
	// 503 at once in the outage below, before the replica was stale (in 2
	// of 3 runs on a loaded machine).
	newest := c.queryInt(t, `SELECT max(id) FROM key_changes`)
	waitUntil(t, "the stale replica to apply the keys' creation", 10*time.Second,
		func() bool { return readKeystore(t, stale).LastChange >= newest })
	c.mustAccept(t, stale, staleKey.key)
	for _, k := range revoked {
		for _, p := range c.replicas {
			c.mustAccept(t, p, k.key)
		}
	}
	for _, k := range afterRestart {
		for _, p := range c.replicas {
			c.mustAccept(t, p, k.key)
		}
	}

	// A steady load, some hundreds of points a second, rather than as many
	// as six workers can send: on two shared cores a saturated CPU would
	// measure the scheduler's delays rather than the revocation's.
	l := newLoader(c.loaderKey)
	l.pause = 5 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var turn atomic.Int64
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		l.run(ctx, 6, func() string { return c.replicas[turn.Add(1)%3].base })
	}()
	if !l.waitAcked(200, 10*time.Second) {
		t.Fatalf("the loader got fewer than 200 points in (status counts %v)", l.codes)
	}

	latencies := c.revokeAll(t, revoked)
	t.Logf("revocation reached all 3 replicas: p50 %v, p99 %v, max %v over %d keys (target p99 < 250ms, max < 1s)",
		percentile(latencies, 50), percentile(latencies, 99), percentile(latencies, 100), len(latencies))
	if p99, most := percentile(latencies, 99), percentile(latencies, 100); p99 >= 250*time.Millisecond || most >= time.Second {
		t.Errorf("revocation latency p99 %v, max %v; want under 250ms and 1s", p99, most)
	}

	c.lostNotification(t, afterRestart[0])
	c.outage(t, l, stale, staleKey.key, unused.key)

	restart := c.revokeAll(t, afterRestart[1:])
	t.Logf("after PostgreSQL restarted, revocations reached all 3 replicas in at most %v", percentile(restart, 100))
	if most := percentile(restart, 100); most >= time.Second {
		t.Errorf("after the restart a revocation took %v to reach every replica, want under 1s", most)
	}

	cancel()
	<-loaded
	c.checkDelivered(t, l)
}

// cluster is apiservers on one private PostgreSQL and one InfluxDB
// database.
type cluster struct {
	t         *testing.T
	pg        *testenv.PostgresServer
	db        string // the key store's URL
	influx    *testenv.DB
	keyctlBin string
	replicas  []*process
	all       []*process // replicas and any other apiserver started
	keys      *keystore.Store
	loaderID  int64
	loaderKey string
	adminKey  string
	client    *http.Client
}

// newCluster starts PostgreSQL and n replicas named gw-1, gw-2, ...
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{t: t, pg: testenv.StartPostgreSQL(t), influx: testenv.InfluxDB(t), keyctlBin: buildKeyctl(t),
		client: &http.Client{Timeout: 5 * time.Second}}
	c.db = c.pg.CreateDatabase(t)
	var err error
	if c.keys, err = keystore.Open(context.Background(), c.db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.keys.Close() })
	loader := c.generate(t, 1)[0]
	c.loaderID, c.loaderKey = loader.id, loader.key
	_, c.adminKey, err = c.keys.Generate(context.Background(), keystore.NewKey{Hostname: "127.0.0.1", Scopes: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		c.replicas = append(c.replicas, c.startReplica(fmt.Sprintf("gw-%d", i+1)))
	}
	return c
}

// startReplica starts an apiserver on the cluster's stores with a spool of
// its own. Throttling is off: the test's probes fail on purpose.
func (c *cluster) startReplica(name string, args ...string) *process {
	t := c.t
	p := startProcess(t, append([]string{"--db", c.db, "--node-name", name, "--influx-url", c.influx.URL,
		"--influx-bucket", c.influx.Name, "--spool-dir", t.TempDir(), "--auth-fail-burst", "0", "--batch-wait", "50ms",
		"--log-format", "text"}, args...)...)
	c.all = append(c.all, p)
	return p
}

// generated is a key made for the test.
type generated struct {
	id  int64
	key string
}

// generate makes n keys for 127.0.0.1 in the store.
func (c *cluster) generate(t *testing.T, n int) []generated {
	t.Helper()
	var out []generated
	for range n {
		k, plain, err := c.keys.Generate(context.Background(), keystore.NewKey{Hostname: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, generated{k.ID, plain})
	}
	return out
}

// buildKeyctl builds keyctl, whose revocations the test measures as an
// operator would make them, and returns its path.
func buildKeyctl(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		testenv.Missing(t, "no go command to build keyctl with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "keyctl")
	if out, err := exec.Command(gobin, "build", "-o", bin, "github.com/metricgate/metricgate/cmd/keyctl").CombinedOutput(); err != nil {
		t.Fatalf("build keyctl: %v\n%s", err, out)
	}
	return bin
}

// keyctl runs keyctl on the cluster's store and returns its output; it
// fails the test unless keyctl succeeds.
func (c *cluster) keyctl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(c.keyctlBin, append([]string{"--db", c.db}, args...)...).Output()
	if err != nil {
		t.Fatalf("keyctl %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// probe submits one point with key to p and returns the status.
func (c *cluster) probe(p *process, key string) (int, http.Header) {
	req, _ := http.NewRequest("POST", p.base+"/api/submit", strings.NewReader(`{"measurement": "probe", "field": "n", "value": 1}`))
	req.Header.Set("X-API-Key", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

func (c *cluster) mustAccept(t *testing.T, p *process, key string) {
	t.Helper()
	if code, _ := c.probe(p, key); code != 200 {
		t.Fatalf("%s answered %d for a valid key, want 200", p.base, code)
	}
}

// revokeAll revokes each key, every fourth through the admin API of a
// replica and the rest with keyctl, and returns, for each, the time from
// the revocation's acknowledgement until every replica refused the key.
func (c *cluster) revokeAll(t *testing.T, keys []generated) []time.Duration {
	t.Helper()
	var out []time.Duration
	for i, k := range keys {
		if i%4 == 3 {
			c.revokeByAPI(t, c.replicas[i%len(c.replicas)], k.id)
		} else {
			c.keyctl(t, "revoke", strconv.FormatInt(k.id, 10), "--yes")
		}
		out = append(out, c.timeToRefuse(t, k.key, time.Now(), time.Second))
	}
	return out
}

// revokeByAPI revokes key id through p's admin API.
func (c *cluster) revokeByAPI(t *testing.T, p *process, id int64) {
	t.Helper()
	req, _ := http.NewRequest("DELETE", fmt.Sprintf("%s/admin/api/keys/%d", p.admin, id), nil)
	req.Header.Set("Authorization", "Bearer "+c.adminKey)
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("DELETE key %d through %s: %d, want 200", id, p.admin, resp.StatusCode)
	}
}

// timeToRefuse probes every replica with key until it answers 401 and
// returns how long after since the last one did. A replica that still
// accepts the key after within fails the test.
func (c *cluster) timeToRefuse(t *testing.T, key string, since time.Time, within time.Duration) time.Duration {
	t.Helper()
	took := make([]time.Duration, len(c.replicas))
	var wg sync.WaitGroup
	for i, p := range c.replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ; ; time.Sleep(500 * time.Microsecond) {
				code, _ := c.probe(p, key)
				took[i] = time.Since(since)
				switch {
				case code == 401:
					return
				case code != 200:
					t.Errorf("replica %s answered %d for a key being revoked, want 200 or 401", p.base, code)
					return
				case took[i] > within:
					t.Errorf("replica %s still accepts a key %v after its revocation", p.base, took[i])
					return
				}
			}
		}()
	}
	wg.Wait()
	return slices.Max(took)
}

// percentile returns the p-th percentile of ds (nearest rank).
func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p+99)/100 - 1
	return s[max(0, i)].Round(100 * time.Microsecond)
}

// lostNotification terminates every replica's listening connection from
// the server's side, as a restart or a network failure would, revokes k at
// once, and checks that every replica still learns of it, within 6 s.
func (c *cluster) lostNotification(t *testing.T, k generated) {
	t.Helper()
	n := c.queryInt(t, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name LIKE 'metricgate % listener'`)
	if n != int64(len(c.all)) {
		t.Fatalf("terminated %d listening connections, want %d, one per apiserver", n, len(c.all))
	}
	c.keyctl(t, "revoke", strconv.FormatInt(k.id, 10), "--yes")
	took := c.timeToRefuse(t, k.key, time.Now(), 6*time.Second)
	t.Logf("a revocation made while every listener was terminated reached all 3 replicas in %v (target < 6s)", took.Round(time.Millisecond))
}

// queryInt runs a query that returns one integer on the key store.
func (c *cluster) queryInt(t *testing.T, query string, args ...any) int64 {
	t.Helper()
	db, err := sql.Open("pgx", c.db)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%.50s: %v", query, err)
	}
	return n
}

// outage stops PostgreSQL for 10 s while l loads the replicas, and checks
// that ingestion goes on, that a key no replica holds gets 503, that the
// stale replica (--cache-max-stale 2s) answers 503 for its cached key once
// stale and is not ready, and that after the restart every apiserver
// follows the store again.
func (c *cluster) outage(t *testing.T, l *loader, stale *process, staleKey, unused string) {
	t.Helper()
	before := l.codesNow()
	c.pg.Stop(t)
	start := time.Now()
	if code, h := c.probe(c.replicas[0], unused); code != 503 || h.Get("Retry-After") == "" {
		t.Errorf("a key the replica does not hold, with PostgreSQL down: %d, want 503 with Retry-After", code)
	}
	staleAfter := c.waitCode(t, stale, staleKey, 503, 10*time.Second, start)
	if code := getStatus(t, stale.base+"/readyz"); code != 503 {
		t.Errorf("/readyz of the stale replica = %d, want 503", code)
	}
	st := readKeystore(t, c.replicas[0])
	if st.Connected || st.BehindSeconds <= 0 {
		t.Errorf("admin /readyz keystore during the outage = %+v, want cut off and behind", st)
	}
	for prev := l.acknowledged(); time.Since(start) < 10*time.Second; prev = l.acknowledged() {
		if !l.waitAcked(prev+20, 2*time.Second) {
			t.Errorf("ingestion stalled %v into the outage: fewer than 20 points acknowledged in 2s", time.Since(start).Round(time.Second))
		}
	}
	during := l.acknowledged()
	c.pg.Start(t)
	restarted := time.Now()
	for _, p := range c.all {
		waitUntil(t, "an apiserver to follow the key store again", 15*time.Second, func() bool { return readKeystore(t, p).Connected })
	}
	caughtUp := time.Since(restarted)
	c.mustAccept(t, stale, staleKey)
	after := l.codesNow()
	for code, n := range after {
		if code != 200 && n != before[code] {
			t.Errorf("the loader got %d more answers %d during the outage (before %v, after %v), want only 200", n-before[code], code, before, after)
		}
	}
	t.Logf("PostgreSQL down for %v: %d points acknowledged meanwhile; the --cache-max-stale 2s replica answered 503 after %v; all %d apiservers followed the store again %v after the restart",
		restarted.Sub(start).Round(100*time.Millisecond), during-before[200], staleAfter.Round(100*time.Millisecond), len(c.all), caughtUp.Round(time.Millisecond))
}

// waitCode probes p with key until it answers want, and returns how long
// after since that was; it fails after within, or if the answer is
// neither 200 nor want.
func (c *cluster) waitCode(t *testing.T, p *process, key string, want int, within time.Duration, since time.Time) time.Duration {
	t.Helper()
	for {
		code, h := c.probe(p, key)
		if code == want {
			if want == 503 && h.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
			return time.Since(since)
		}
		if code != 200 || time.Since(since) > within {
			t.Fatalf("%s answered %d %v after %v, want 200 then %d", p.base, code, time.Since(since), since, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkDelivered stops the load's aftermath: every replica drains its
// spool and stops, every acknowledged point is in InfluxDB, the usage the
// replicas recorded adds up to the loader's acknowledged requests, and
// the audit log names the replicas whose admin API revoked keys.
func (c *cluster) checkDelivered(t *testing.T, l *loader) {
	t.Helper()
	for _, p := range c.all {
		p.waitDrained(t, 30*time.Second)
	}
	if missing := l.missing(t, c.influx); missing != 0 {
		t.Errorf("%d of %d acknowledged points are missing from InfluxDB, want none", missing, len(l.acked))
	}
	for _, p := range c.all {
		p.stop(t)
	}
	var shown struct{ Requests int64 }
	if err := json.Unmarshal([]byte(c.keyctl(t, "show", c.loaderKey, "-o", "json")), &shown); err != nil {
		t.Fatal(err)
	}
	acked, lost := int64(len(l.acked)), int64(l.codes[0])
	if shown.Requests < acked || shown.Requests > acked+lost {
		t.Errorf("keyctl show: %d requests, want the %d acknowledged (plus up to %d whose answer was lost)", shown.Requests, acked, lost)
	}
	if n := c.queryInt(t, `SELECT count(*) FROM key_usage WHERE key_id = $1`, c.loaderID); n != 3 {
		t.Errorf("the loader's key has usage from %d nodes, want 3", n)
	}
	var audit []struct{ Action, Node string }
	if err := json.Unmarshal([]byte(c.keyctl(t, "audit", "--limit", "0", "-o", "json")), &audit); err != nil {
		t.Fatal(err)
	}
	nodes := map[string]int{}
	for _, e := range audit {
		if e.Action == "revoke" {
			nodes[e.Node]++
		}
	}
	if nodes[""] == 0 || nodes["gw-1"]+nodes["gw-2"]+nodes["gw-3"] == 0 {
		t.Errorf("revocations by node = %v, want some by keyctl (no node) and some through the replicas", nodes)
	}
	t.Logf("%d points acknowledged through 3 replicas (status counts %v), none missing; usage recorded %d requests", acked, l.codes, shown.Requests)
}

// codesNow returns a copy of the loader's status counts.
func (l *loader) codesNow() map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.codes)
}

// readKeystore reads the key store's state from p's admin /readyz.
func readKeystore(t *testing.T, p *process) keystore.CacheStatus {
	t.Helper()
	resp, err := http.Get(p.admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ready struct{ Keystore keystore.CacheStatus }
	if err := json.NewDecoder(resp.Body).Decode(&ready); err != nil {
		t.Fatal(err)
	}
	return ready.Keystore
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitUntil waits up to within for cond.
func waitUntil(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", within, what)
		}
	}
}

// TestDatabaseUnusable starts the apiserver on a PostgreSQL it cannot use
// and checks that it exits with status 1 within --db-timeout, saying why
// in one line that names the server and not the password.
func TestDatabaseUnusable(t *testing.T) {
	for _, tt := range testenv.UnusablePostgreSQL(t, "300ms") {
		t.Run(tt.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "--db", tt.URL, "--db-timeout", "300ms", "--listen", "127.0.0.1:0",
				"--admin-listen", "", "--spool-dir", t.TempDir())
			cmd.Env = append(os.Environ(), "APISERVER_TEST_EXEC=1")
			start := time.Now()
			out, err := cmd.CombinedOutput()
			took := time.Since(start)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("apiserver ended with %v, want exit status 1; output:\n%s", err, out)
			}
			if got, want := strings.TrimSpace(string(out)), "apiserver: "+tt.Want; got != want {
				t.Errorf("output = %q\nwant     %q", got, want)
			}
			if strings.Contains(string(out), tt.Password) {
				t.Errorf("output shows the password: %s", out)
			}
			if took > 3*time.Second {
				t.Errorf("the apiserver took %v to give up with --db-timeout 300ms", took)
			}
		})
	}
}
